"""Reshaping layers: `Flatten`, `Reshape`, `Permute`, `RepeatVector`.

Every shape here is per example (batch axis excluded, as in Keras); the batch
axis is carried through untouched, so the layers trace with a symbolic batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp

from funkeras._validation import check_int, shape_str
from funkeras.layers._common import autocast, check_single_spec
from funkeras.layers.base import Layer, layer_label
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = ["Flatten", "Reshape", "Permute", "RepeatVector"]


@dataclass(eq=False)
class Flatten(Layer):
    """Flattens each example to a vector: `(batch, d1, ..., dn) -> (batch, d1*...*dn)`.

    The batch axis is kept; a `(batch,)` input becomes `(batch, 1)`, as in Keras.

    Input shape:
        `(batch, ...)`.

    Output shape:
        `(batch, prod(...))`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.reshaping import Flatten
        >>> layer = Flatten()
        >>> spec = jax.ShapeDtypeStruct((2, 3), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> layer.apply(params, state, jnp.zeros((5, 2, 3)))[0].shape
        (5, 6)
    """

    uses_key: ClassVar[bool] = False

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        del key
        check_single_spec(self, input_spec)
        return {}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        del params, training, key, mask
        x = autocast(x, self.dtype)
        if x.ndim < 1:
            raise ValueError(
                f"{layer_label(self)}: expected inputs with a batch axis, got a scalar."
            )
        # The per-example size is static; the batch size may be symbolic, so it
        # is passed through rather than computed with a -1.
        size = math.prod(x.shape[1:])
        return jnp.reshape(x, (x.shape[0], size)), state


@dataclass(eq=False)
class Reshape(Layer):
    """Reshapes each example: `(batch, ...) -> (batch, *target_shape)`.

    Args:
        target_shape: The new shape of one example (batch axis excluded), a tuple
            of positive ints; one entry may be -1, inferred from the input size.

    Input shape:
        `(batch, ...)` with as many elements per example as `target_shape`.

    Output shape:
        `(batch, *target_shape)`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.reshaping import Reshape
        >>> layer = Reshape((3, -1))
        >>> spec = jax.ShapeDtypeStruct((12,), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> layer.apply(params, state, jnp.zeros((2, 12)))[0].shape
        (2, 3, 4)
    """

    uses_key: ClassVar[bool] = False

    target_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if not isinstance(self.target_shape, tuple | list):
            raise TypeError(
                f"{owner}: `target_shape` must be a tuple of ints (batch axis "
                f"excluded), got {self.target_shape!r}."
            )
        shape = []
        for d in self.target_shape:
            if isinstance(d, int) and not isinstance(d, bool) and d == -1:
                shape.append(-1)
            else:
                shape.append(check_int(owner, "target_shape", d))
        if shape.count(-1) > 1:
            raise ValueError(
                f"{owner}: `target_shape` may contain at most one -1, got "
                f"{tuple(shape)}."
            )
        self.target_shape = tuple(shape)

    def resolve(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """`target_shape` with its -1 filled in for examples of shape `in_shape`."""
        size = math.prod(in_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(
                    f"{layer_label(self)}: cannot reshape examples of shape "
                    f"{shape_str(in_shape)} ({size} elements) to "
                    f"{shape_str(self.target_shape)}: {size} is not a multiple of "
                    f"{known}. Check `target_shape` (batch axis excluded)."
                )
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if size != known:
            raise ValueError(
                f"{layer_label(self)}: cannot reshape examples of shape "
                f"{shape_str(in_shape)} ({size} elements) to "
                f"{shape_str(self.target_shape)} ({known} elements). "
                "`target_shape` excludes the batch axis; its sizes must multiply "
                "to the input's, or use -1 for one axis."
            )
        return self.target_shape

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        del key
        spec = check_single_spec(self, input_spec)
        self.resolve(tuple(spec.shape))
        return {}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        del params, training, key, mask
        x = autocast(x, self.dtype)
        if x.ndim < 1:
            raise ValueError(
                f"{layer_label(self)}: expected inputs with a batch axis, got a scalar."
            )
        target = self.resolve(tuple(x.shape[1:]))
        return jnp.reshape(x, (x.shape[0], *target)), state


@dataclass(eq=False)
class Permute(Layer):
    """Permutes the non-batch axes: `y = transpose(x, (0, *dims))`.

    Args:
        dims: A permutation of `1..rank-1` (1-indexed; the batch axis 0 stays
            first), as in Keras: `Permute((2, 1))` swaps the two axes of
            `(batch, a, b)` inputs.

    Input shape:
        `(batch, d1, ..., dn)` with `n == len(dims)`.

    Output shape:
        `(batch, d[dims[0]], ..., d[dims[n-1]])`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.reshaping import Permute
        >>> layer = Permute((2, 1))
        >>> spec = jax.ShapeDtypeStruct((3, 4), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> layer.apply(params, state, jnp.zeros((2, 3, 4)))[0].shape
        (2, 4, 3)
    """

    uses_key: ClassVar[bool] = False

    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if not isinstance(self.dims, tuple | list):
            raise TypeError(
                f"{owner}: `dims` must be a tuple of ints, got {self.dims!r}."
            )
        dims = tuple(check_int(owner, "dims", d) for d in self.dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(
                f"{owner}: `dims` must be a permutation of 1..{len(dims)} (1-indexed "
                f"non-batch axes, as in Keras), got {dims}."
            )
        self.dims = dims

    def _check_rank(self, rank: int, shown: str) -> None:
        if rank != len(self.dims):
            raise ValueError(
                f"{layer_label(self)}: `dims`={self.dims} permutes {len(self.dims)} "
                f"axes, but the input has {rank} non-batch axes (shape {shown}). "
                "Give one entry per non-batch axis."
            )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        del key
        spec = check_single_spec(self, input_spec)
        self._check_rank(len(spec.shape), shape_str((None, *spec.shape)))
        return {}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        del params, training, key, mask
        x = autocast(x, self.dtype)
        self._check_rank(x.ndim - 1, shape_str(tuple(x.shape)))
        return jnp.transpose(x, (0, *self.dims)), state


@dataclass(eq=False)
class RepeatVector(Layer):
    """Repeats each input vector `n` times: `(batch, features) -> (batch, n, features)`.

    Keras' `RepeatVector`, the usual bridge from an encoder's last state to a
    decoder that runs over `n` steps.

    Args:
        n: Positive int, the number of repetitions (the new time axis).

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.reshaping import RepeatVector
        >>> y, _ = RepeatVector(3).apply({}, {}, jnp.ones((2, 4)))
        >>> y.shape
        (2, 3, 4)
    """

    uses_key: ClassVar[bool] = False

    n: int

    def __post_init__(self) -> None:
        super().__post_init__()
        self.n = check_int(type(self).__name__, "n", self.n)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        del key
        spec = check_single_spec(self, input_spec)
        if len(spec.shape) != 1:
            raise ValueError(
                f"{layer_label(self)}: expected 2D inputs (batch, features), got "
                f"shape {shape_str((None, *spec.shape))}."
            )
        return {}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        del params, training, key, mask
        x = autocast(x, self.dtype)
        if x.ndim != 2:
            raise ValueError(
                f"{layer_label(self)}: expected 2D inputs (batch, features), got "
                f"x.shape={shape_str(x.shape)}."
            )
        return jnp.repeat(x[:, None, :], self.n, axis=1), state
