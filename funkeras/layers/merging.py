"""Merging layers: `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`,
`Concatenate`, `Dot`.

Each takes a list (or tuple) of at least two inputs; its `input_spec` is the list
of their specs. The elementwise merges need identical shapes (Keras would also
broadcast equal-rank inputs; funkeras keeps it strict so a shape slip fails
loudly at `init`). `Concatenate` needs equal shapes except on its axis.

Sequence masks merge as Keras merges them: the elementwise merges OR their
inputs' masks (no mask when an input has none); `Concatenate` ORs them along
the last axis and joins them along the time axis (an input without a mask
counts as all True).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from funkeras._validation import check_int, shape_str
from funkeras.layers._common import autocast
from funkeras.layers.base import Layer, layer_label
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "add",
    "subtract",
    "multiply",
    "average",
    "maximum",
    "minimum",
    "concatenate",
    "Dot",
    "dot",
]


def _shapes_str(shapes: Sequence[Sequence[Any]]) -> str:
    return "[" + ", ".join(shape_str(s) for s in shapes) + "]"


@dataclass(eq=False)
class _Merge(Layer):
    """Shared checks of the merging layers: a list of >= 2 inputs of fitting shapes."""

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True

    _exact_count: ClassVar[int | None] = None

    def _inputs(self, x: Any, what: str) -> list[Any]:
        """`x` as a list, after checking it is a list/tuple of enough arrays/specs."""
        if not isinstance(x, list | tuple) or not all(
            hasattr(a, "shape") and hasattr(a, "dtype") for a in x
        ):
            raise TypeError(
                f"{layer_label(self)}: expected a list of {what}s (one per input), "
                f"got {type(x).__name__}. Call it on a list, e.g. "
                f"`{type(self).__name__}()([a, b])`."
            )
        count = type(self)._exact_count
        if count is not None and len(x) != count:
            raise ValueError(
                f"{layer_label(self)}: expects exactly {count} inputs, got {len(x)}."
            )
        if len(x) < 2:
            raise ValueError(
                f"{layer_label(self)}: expects a list of at least 2 inputs, got "
                f"{len(x)}."
            )
        return list(x)

    def _check_shapes(self, shapes: list[tuple[Any, ...]]) -> None:
        """Elementwise merges: every input has the same per-example shape."""
        if any(s != shapes[0] for s in shapes[1:]):
            raise ValueError(
                f"{layer_label(self)}: all inputs must have the same shape, got "
                f"{_shapes_str([(None, *s) for s in shapes])}. Resize or reshape "
                "them to match (e.g. a `Dense` to a common size), or use "
                "`Concatenate`."
            )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        del key
        specs = self._inputs(input_spec, "input spec")
        self._check_shapes([tuple(s.shape) for s in specs])
        return {}, {}

    def _merge(self, xs: list[Array]) -> Array:
        raise TypeError(f"{layer_label(self)}: the class does not define `_merge`.")

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """Keras' rule: the OR of the inputs' masks; None if an input has none."""
        del inputs
        if mask is None:
            return None
        masks = list(mask)
        if any(m is None for m in masks):
            return None
        out = masks[0]
        for m in masks[1:]:
            out = jnp.logical_or(out, m)
        return out

    def apply(
        self,
        params: Params,
        state: State,
        x: Any,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        del params, training, key, mask
        xs = autocast(self._inputs(x, "array"), self.dtype)
        self._check_shapes([tuple(a.shape[1:]) for a in xs])
        return self._merge(xs), state


@dataclass(eq=False)
class Add(_Merge):
    """Sums its inputs elementwise: `y = x1 + x2 + ... + xn`.

    Input shape:
        A list of >= 2 inputs, all of shape `(batch, ...)`.

    Output shape:
        `(batch, ...)`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.merging import Add
        >>> spec = jax.ShapeDtypeStruct((2,), jnp.float32)
        >>> layer = Add()
        >>> params, state = layer.init(jax.random.key(0), [spec, spec])
        >>> a, b = jnp.array([[1.0, 2.0]]), jnp.array([[10.0, 20.0]])
        >>> layer.apply(params, state, [a, b])[0].tolist()
        [[11.0, 22.0]]
    """

    def _merge(self, xs: list[Array]) -> Array:
        return functools.reduce(jnp.add, xs)


@dataclass(eq=False)
class Subtract(_Merge):
    """Subtracts its second input from its first: `y = x1 - x2`.

    Input shape:
        A list of exactly 2 inputs of shape `(batch, ...)`.

    Output shape:
        `(batch, ...)`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.merging import Subtract
        >>> spec = jax.ShapeDtypeStruct((2,), jnp.float32)
        >>> layer = Subtract()
        >>> params, state = layer.init(jax.random.key(0), [spec, spec])
        >>> a, b = jnp.array([[1.0, 2.0]]), jnp.array([[10.0, 20.0]])
        >>> layer.apply(params, state, [a, b])[0].tolist()
        [[-9.0, -18.0]]
    """

    _exact_count = 2

    def _merge(self, xs: list[Array]) -> Array:
        return xs[0] - xs[1]


@dataclass(eq=False)
class Multiply(_Merge):
    """Multiplies its inputs elementwise: `y = x1 * x2 * ... * xn`.

    Input shape:
        A list of >= 2 inputs, all of shape `(batch, ...)`.

    Output shape:
        `(batch, ...)`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.merging import Multiply
        >>> spec = jax.ShapeDtypeStruct((2,), jnp.float32)
        >>> layer = Multiply()
        >>> params, state = layer.init(jax.random.key(0), [spec, spec])
        >>> a, b = jnp.array([[1.0, 2.0]]), jnp.array([[10.0, 20.0]])
        >>> layer.apply(params, state, [a, b])[0].tolist()
        [[10.0, 40.0]]
    """

    def _merge(self, xs: list[Array]) -> Array:
        return functools.reduce(jnp.multiply, xs)


@dataclass(eq=False)
class Average(_Merge):
    """Averages its inputs elementwise: `y = (x1 + ... + xn) / n`.

    Input shape:
        A list of >= 2 inputs, all of shape `(batch, ...)`.

    Output shape:
        `(batch, ...)`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.merging import Average
        >>> spec = jax.ShapeDtypeStruct((2,), jnp.float32)
        >>> layer = Average()
        >>> params, state = layer.init(jax.random.key(0), [spec, spec])
        >>> a, b = jnp.array([[1.0, 2.0]]), jnp.array([[10.0, 20.0]])
        >>> layer.apply(params, state, [a, b])[0].tolist()
        [[5.5, 11.0]]
    """

    def _merge(self, xs: list[Array]) -> Array:
        return functools.reduce(jnp.add, xs) / len(xs)


@dataclass(eq=False)
class Maximum(_Merge):
    """Takes the elementwise maximum of its inputs: `y = max(x1, ..., xn)`.

    Input shape:
        A list of >= 2 inputs, all of shape `(batch, ...)`.

    Output shape:
        `(batch, ...)`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.merging import Maximum
        >>> spec = jax.ShapeDtypeStruct((2,), jnp.float32)
        >>> layer = Maximum()
        >>> params, state = layer.init(jax.random.key(0), [spec, spec])
        >>> a, b = jnp.array([[1.0, 30.0]]), jnp.array([[10.0, 20.0]])
        >>> layer.apply(params, state, [a, b])[0].tolist()
        [[10.0, 30.0]]
    """

    def _merge(self, xs: list[Array]) -> Array:
        return functools.reduce(jnp.maximum, xs)


@dataclass(eq=False)
class Minimum(_Merge):
    """Takes the elementwise minimum of its inputs: `y = min(x1, ..., xn)`.

    Input shape:
        A list of >= 2 inputs, all of shape `(batch, ...)`.

    Output shape:
        `(batch, ...)`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.merging import Minimum
        >>> spec = jax.ShapeDtypeStruct((2,), jnp.float32)
        >>> layer = Minimum()
        >>> params, state = layer.init(jax.random.key(0), [spec, spec])
        >>> a, b = jnp.array([[1.0, 30.0]]), jnp.array([[10.0, 20.0]])
        >>> layer.apply(params, state, [a, b])[0].tolist()
        [[1.0, 20.0]]
    """

    def _merge(self, xs: list[Array]) -> Array:
        return functools.reduce(jnp.minimum, xs)


@dataclass(eq=False)
class Concatenate(_Merge):
    """Joins its inputs along `axis`: `y = concatenate([x1, ..., xn], axis)`.

    Args:
        axis: The axis to join along, counted with the batch axis (Keras' rule):
            `-1` (the default) is the last axis; the batch axis 0 is not allowed.

    Input shape:
        A list of >= 2 inputs of equal rank whose shapes agree except on `axis`.

    Output shape:
        The common shape, with `axis` the sum of the inputs' sizes on it.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.merging import Concatenate
        >>> layer = Concatenate()
        >>> specs = [jax.ShapeDtypeStruct((2,), jnp.float32),
        ...          jax.ShapeDtypeStruct((3,), jnp.float32)]
        >>> params, state = layer.init(jax.random.key(0), specs)
        >>> y, _ = layer.apply(params, state, [jnp.zeros((4, 2)), jnp.ones((4, 3))])
        >>> y.shape
        (4, 5)
    """

    axis: int = -1

    def __post_init__(self) -> None:
        super().__post_init__()
        self.axis = check_int(type(self).__name__, "axis", self.axis, minimum=None)

    def _check_shapes(self, shapes: list[tuple[Any, ...]]) -> None:
        shown = _shapes_str([(None, *s) for s in shapes])
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(
                f"{layer_label(self)}: all inputs must have the same rank, got "
                f"shapes {shown}."
            )
        rank = ranks.pop() + 1  # with the batch axis
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank:
            raise ValueError(
                f"{layer_label(self)}: `axis`={self.axis} is not a non-batch axis of "
                f"inputs of rank {rank} (shapes {shown}); allowed: 1..{rank - 1} or "
                f"-{rank - 1}..-1."
            )
        drop = axis - 1
        rest = [s[:drop] + s[drop + 1 :] for s in shapes]
        if any(r != rest[0] for r in rest[1:]):
            raise ValueError(
                f"{layer_label(self)}: inputs must have the same shape except on the "
                f"concatenation axis {self.axis}, got {shown}. Fix the shapes, or "
                "pick the `axis` on which they differ."
            )

    def _merge(self, xs: list[Array]) -> Array:
        return jnp.concatenate(xs, axis=self.axis)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """Keras' rule: each mask broadcast to its input's shape (all True when
        an input has none), concatenated along `axis`, then any over the last
        axis: masks OR along the features axis and join along the time axis."""
        if mask is None or all(m is None for m in mask):
            return None
        masks = []
        for x, m in zip(inputs, mask, strict=True):
            if m is None:
                m = jnp.ones(x.shape, bool)
            elif m.ndim < x.ndim:
                m = jnp.broadcast_to(
                    jnp.expand_dims(m, tuple(range(m.ndim, x.ndim))), x.shape
                )
            masks.append(m)
        return jnp.any(jnp.concatenate(masks, axis=self.axis), axis=-1)


# Keras' functional forms: build the layer and call it on the inputs.


def _functional(layer_cls: type[_Merge], name: str) -> Any:
    def merge(inputs: Sequence[Any], **kwargs: Any) -> Any:
        return layer_cls(**kwargs)(inputs)

    merge.__name__ = merge.__qualname__ = name
    cls = layer_cls.__name__
    merge.__doc__ = f"""`{cls}(**kwargs)(inputs)`: Keras' functional form.

    Args:
        inputs: A list of >= 2 symbolic tensors (`fk.Input(...)` or layer outputs).
        **kwargs: The `{cls}` arguments (`name=`, ...).

    Example:
        >>> import funkeras as fk
        >>> a, b = fk.Input(shape=(4,)), fk.Input(shape=(4,))
        >>> fk.layers.{name}([a, b]).shape[-1]
        {8 if layer_cls is Concatenate else 4}
    """
    return merge


add = _functional(Add, "add")
subtract = _functional(Subtract, "subtract")
multiply = _functional(Multiply, "multiply")
average = _functional(Average, "average")
maximum = _functional(Maximum, "maximum")
minimum = _functional(Minimum, "minimum")


def concatenate(inputs: Sequence[Any], axis: int = -1, **kwargs: Any) -> Any:
    """`Concatenate(axis=axis, **kwargs)(inputs)`, Keras' functional form.

    Args:
        inputs: A list of >= 2 symbolic tensors (`fk.Input(...)` or layer outputs).
        axis: The axis to join along (Keras' rule: counted with the batch axis).
        **kwargs: Other `Concatenate` arguments (`name=`, ...).

    Example:
        >>> import funkeras as fk
        >>> a, b = fk.Input(shape=(2,)), fk.Input(shape=(3,))
        >>> fk.layers.concatenate([a, b]).shape
        (None, 5)
    """
    return Concatenate(axis=axis, **kwargs)(inputs)


@dataclass(eq=False)
class Dot(_Merge):
    """Dot product of two inputs per example, over `axes` (Keras' `Dot`).

    For each example, the axis `axes[0]` of the first input is contracted with
    `axes[1]` of the second; the output keeps the first input's other axes, then
    the second's (Keras' `batch_dot`). Two vectors give `(batch, 1)`.

    Args:
        axes: An int (the same axis of both inputs) or a pair `(a0, a1)`;
            counted with the batch axis, which cannot be contracted. Negative
            values count from the end of each input.
        normalize: L2-normalize both inputs along the contracted axes first, so
            the output is the cosine similarity.

    Input shape:
        A list of 2 inputs of rank >= 2 (batch included) whose contracted axes
        have the same size.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.merging import Dot
        >>> a = jnp.array([[1.0, 0.0], [3.0, 4.0]])
        >>> b = jnp.array([[2.0, 5.0], [3.0, 4.0]])
        >>> Dot(axes=1).apply({}, {}, [a, b])[0].tolist()
        [[2.0], [25.0]]
        >>> Dot(axes=1, normalize=True).apply({}, {}, [a, a])[0].tolist()
        [[1.0], [1.0]]
    """

    axes: int | tuple[int, int]
    normalize: bool = False

    _exact_count: ClassVar[int | None] = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if isinstance(self.axes, list | tuple):
            if len(self.axes) != 2:
                raise ValueError(
                    f"{owner}: `axes` must be an int or a pair of ints, got "
                    f"{self.axes!r}."
                )
            self.axes = tuple(
                check_int(owner, "axes", a, minimum=None) for a in self.axes
            )
        else:
            self.axes = check_int(owner, "axes", self.axes, minimum=None)
        if not isinstance(self.normalize, bool):
            raise TypeError(
                f"{owner}: `normalize` must be a bool, got {self.normalize!r}."
            )

    def _resolved(self, ranks: Sequence[int]) -> tuple[int, int]:
        """The two contracted axes, non-negative, for inputs of `ranks` (batched)."""
        given = self.axes if isinstance(self.axes, tuple) else (self.axes,) * 2
        return tuple(a % r if a < 0 else a for a, r in zip(given, ranks, strict=True))

    def _check_shapes(self, shapes: list[tuple[Any, ...]]) -> None:
        batched = [(None, *s) for s in shapes]
        if any(len(s) < 2 for s in batched):
            raise ValueError(
                f"{layer_label(self)}: both inputs need rank >= 2 (batch included), "
                f"got shapes {_shapes_str(batched)}."
            )
        a0, a1 = self._resolved([len(s) for s in batched])
        if 0 in (a0, a1) or a0 >= len(batched[0]) or a1 >= len(batched[1]):
            raise ValueError(
                f"{layer_label(self)}: axes={self.axes} must name a non-batch axis "
                f"of each input, got shapes {_shapes_str(batched)}."
            )
        if batched[0][a0] != batched[1][a1]:
            raise ValueError(
                f"{layer_label(self)}: the contracted axes must have the same size, "
                f"got {batched[0][a0]} (axis {a0} of the first input) and "
                f"{batched[1][a1]} (axis {a1} of the second); shapes "
                f"{_shapes_str(batched)}."
            )

    def _merge(self, xs: list[Array]) -> Array:
        x, y = xs
        a0, a1 = self._resolved([x.ndim, y.ndim])
        if self.normalize:  # Keras' ops.normalize: x / max(||x||, 1e-7)
            x = x * jnp.minimum(
                jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=a0, keepdims=True)), 1e7
            )
            y = y * jnp.minimum(
                jax.lax.rsqrt(jnp.sum(jnp.square(y), axis=a1, keepdims=True)), 1e7
            )
        x = jnp.moveaxis(x, a0, -1)
        y = jnp.moveaxis(y, a1, 1)
        x_rest, y_rest = x.shape[1:-1], y.shape[2:]
        batch, depth = x.shape[0], x.shape[-1]
        out = jnp.matmul(
            x.reshape(batch, -1, depth), y.reshape(batch, depth, -1)
        ).reshape(batch, *x_rest, *y_rest)
        return out.reshape(batch, 1) if out.ndim == 1 else out


def dot(inputs: Sequence[Any], axes: int | tuple[int, int] = -1, **kwargs: Any) -> Any:
    """`Dot(axes=axes, **kwargs)(inputs)`, Keras' functional form.

    Args:
        inputs: A list of 2 symbolic tensors.
        axes: As in `Dot` (the last axis of both by default).
        **kwargs: Other `Dot` arguments (`normalize=`, `name=`, ...).

    Example:
        >>> import funkeras as fk
        >>> a, b = fk.Input(shape=(5, 4)), fk.Input(shape=(3, 4))
        >>> fk.layers.dot([a, b], axes=-1).shape
        (None, 5, 3)
    """
    return Dot(axes=axes, **kwargs)(inputs)
