"""The layer protocol, and the hook a layer call records a graph node through.

A layer is a dataclass of hyperparameters plus two pure functions::

    params, state = layer.init(key, input_spec)
    y, state = layer.apply(params, state, x, training=False, key=None, mask=None)

`input_spec` is a `jax.ShapeDtypeStruct` (or a list/dict of them) *without* the
batch axis. `params` and `state` are plain nested dicts of arrays. Calling a layer
on a `SymbolicValue` (what `funkeras.Input` returns) asks that value to record
the call; `funkeras.graph` implements it (tensors, nodes, the graph
description). Nothing here knows about graphs, models or training.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from funkeras import regularizers
from funkeras._validation import check_int, normalize_dtype, shape_str
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "Layer",
    "InputLayer",
    "SymbolicValue",
    "is_symbolic_value",
    "layer_label",
    "check_last_axis",
    "check_rank",
    "add_batch_axis",
    "strip_batch_axis",
]


# ----------------------------------------------------------------------------
# Small helpers shared by every layer: names, messages, config validation.
# ----------------------------------------------------------------------------


def layer_label(layer: Any) -> str:
    """`Dense(name='dense_1')`, the way every error message names a layer."""
    name = getattr(layer, "name", None)
    cls = type(layer).__name__
    return f"{cls}(name={name!r})" if name else f"{cls}()"


def check_last_axis(layer: Any, x: Any, expected: int, *, what: str = "x") -> None:
    """Raise a clear error if the last axis of `x` (array or spec) is not `expected`."""
    shape = tuple(x.shape)
    if not shape or (isinstance(shape[-1], int) and shape[-1] != expected):
        raise ValueError(
            f"{layer_label(layer)}: expected the last axis of `{what}` to be "
            f"{expected} (from `init`), got {what}.shape={shape_str(shape)}. "
            "Did the previous layer's output size change?"
        )


def check_rank(
    layer: Any, spec: Any, ranks: int | Sequence[int], *, hint: str = ""
) -> None:
    """Raise a clear error if `spec` (no batch axis) has a rank not in `ranks`."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    rank = len(spec.shape)
    if rank not in ranks:
        want = " or ".join(str(r + 1) for r in ranks)
        raise ValueError(
            f"{layer_label(layer)}: expected inputs of rank {want} "
            f"(batch included), got shape {shape_str((None, *spec.shape))}."
            + (f" {hint}" if hint else "")
        )


def add_batch_axis(spec: InputSpec, batch: Any) -> InputSpec:
    """Prepend a batch axis (an int or a symbolic dimension) to every spec leaf."""
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct((batch, *s.shape), s.dtype), spec
    )


def strip_batch_axis(spec: InputSpec) -> InputSpec:
    """Drop the leading axis of every spec leaf."""
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(tuple(s.shape[1:]), s.dtype), spec
    )


def _symbolic_batch() -> Any:
    (batch,) = jax.export.symbolic_shape("batch")
    return batch


# ----------------------------------------------------------------------------
# The protocol.
# ----------------------------------------------------------------------------


@dataclass(eq=False, kw_only=True)
class Layer:
    """Base class of every layer: hyperparameters plus pure `init` and `apply`.

    Subclass it as a dataclass (`@dataclass(eq=False)`) holding only JSON-safe
    hyperparameters, and override `init` and `apply`. Layers compare and hash by
    identity: two `Dense(10)` are two layers, and one instance called twice in a
    graph shares its weights.

    Args:
        name: The layer's name in a model. `None` lets the model name it from graph
            order (`dense`, `dense_1`, ...), the same in every process.
        trainable: `False` freezes the layer: its params get no updates, and a
            frozen `BatchNormalization` runs in inference mode.
        dtype: The dtype of the layer's params (and of its computation).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from dataclasses import dataclass
        >>> import funkeras as fk
        >>> @dataclass(eq=False)
        ... class Scale(fk.layers.Layer):
        ...     factor: float = 2.0
        ...     def apply(self, params, state, x, *, training=False, key=None, mask=None):
        ...         return x * self.factor, state
        >>> layer = Scale(3.0)
        >>> params, state = layer.init(jax.random.key(0), jax.ShapeDtypeStruct((2,), jnp.float32))
        >>> layer.apply(params, state, jnp.ones((1, 2)))[0].tolist()
        [[3.0, 3.0]]
    """

    name: str | None = None
    trainable: bool = True
    dtype: str = "float32"

    # Whether `apply` may draw random numbers. Models derive a key for a call
    # node only when its layer says so (a custom layer does by default).
    uses_key: ClassVar[bool] = True

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise TypeError(
                f"{owner}: `name` must be a non-empty str, got {self.name!r}."
            )
        if self.name is not None and "/" in self.name:
            raise ValueError(
                f"{owner}: `name` may not contain '/', got {self.name!r} "
                "('/' separates layers in weight keys)."
            )
        if not isinstance(self.trainable, bool):
            raise TypeError(
                f"{owner}: `trainable` must be a bool, got {self.trainable!r}."
            )
        self.dtype = normalize_dtype(owner, self.dtype)

    # -- the protocol ---------------------------------------------------------

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create `(params, state)` for inputs described by `input_spec` (no batch axis).

        Pure: the same key and spec give the same arrays. The default holds nothing.
        """
        del key, input_spec
        return {}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Any,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Any, State]:
        """Compute the layer's output; return `(y, state)`. Pure.

        Args:
            params: What `init` returned as params.
            state: What `init` (or the previous call) returned as state.
            x: The input batch (batch axis first).
            training: Training mode (dropout active, batch statistics).
            key: A PRNG key, needed only by layers that draw random numbers.
            mask: Optional boolean `(batch,)` vector marking the real rows.
        """
        raise TypeError(
            f"{layer_label(self)}: the layer class does not define `apply`."
        )

    def penalty(self, params: Params) -> Array:
        """The regularization loss of `params` (0.0 without regularizers).

        For every variable `v` the layer holds, a `v_regularizer` attribute that is
        set (`kernel_regularizer="l2"`) adds its penalty.
        """
        total = jnp.zeros((), jnp.float32)
        for var_name, value in params.items():
            reg = getattr(self, f"{var_name}_regularizer", None)
            if reg is not None:
                total = total + regularizers.get(reg)(value).astype(jnp.float32)
        return total

    def compute_output_spec(self, input_spec: InputSpec) -> InputSpec:
        """The output spec (no batch axis) for `input_spec`, from `jax.eval_shape`.

        Traces `init` and `apply` abstractly with a symbolic batch dimension, so
        shape errors surface here, before anything runs, and no second shape
        formula can drift from `apply`.
        """
        params, state = jax.eval_shape(
            lambda k: self.init(k, input_spec), jax.random.key(0)
        )
        x = add_batch_axis(input_spec, _symbolic_batch())
        y, _ = jax.eval_shape(
            lambda p, s, x: self.apply(p, s, x, training=False), params, state, x
        )
        return strip_batch_axis(y)

    def get_config(self) -> dict[str, Any]:
        """The layer's hyperparameters as a JSON-safe dict (`from_config` inverts it)."""
        if not dataclasses.is_dataclass(self):
            raise TypeError(
                f"{layer_label(self)}: `get_config` is automatic only for dataclass "
                "layers; define `get_config` on this class to make it serializable."
            )
        return {
            f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from `get_config()`'s output."""
        return cls(**config)

    # -- symbolic calls (the functional API) ------------------------------------

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Call the layer on symbolic tensors from `funkeras.Input` to build a graph.

        Returns symbolic output tensor(s) and records the call (a graph node).
        To compute on arrays, use `init` and `apply` (or a model's `predict`).
        """
        if kwargs:
            raise TypeError(
                f"{layer_label(self)}: calling a layer takes only the inputs, got "
                f"extra arguments {sorted(kwargs)}."
            )
        leaves = jax.tree.leaves(inputs, is_leaf=is_symbolic_value)
        if not leaves or not all(isinstance(t, SymbolicValue) for t in leaves):
            raise TypeError(
                f"{layer_label(self)}: layers are called on symbolic tensors from "
                "`funkeras.Input(...)` to build a model. To run a layer on arrays, "
                "use `params, state = layer.init(key, spec)` and "
                "`layer.apply(params, state, x)`, or wrap it in a model."
            )
        input_spec = jax.tree.map(lambda t: t.spec, inputs, is_leaf=is_symbolic_value)
        output_spec = self.compute_output_spec(input_spec)
        return leaves[0].record_call(self, inputs, output_spec)

    def __repr__(self) -> str:
        return layer_label(self)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------------------
# What a layer call records on, and the entry layer of a graph.
# ----------------------------------------------------------------------------


class SymbolicValue(abc.ABC):
    """A placeholder value a layer can be called on (implemented by `funkeras.graph`).

    Calling a layer on symbolic values records the call through `record_call`;
    the layers know nothing else of the graph.
    """

    __slots__ = ()

    @property
    @abc.abstractmethod
    def spec(self) -> jax.ShapeDtypeStruct:
        """One example's shape and dtype (no batch axis)."""

    @abc.abstractmethod
    def record_call(self, layer: Layer, inputs: Any, output_spec: InputSpec) -> Any:
        """Record `layer` called on `inputs`; return the symbolic outputs.

        `output_spec` is the pytree of output specs (no batch axis) the outputs
        take the structure of.
        """


def is_symbolic_value(x: Any) -> bool:
    """Whether `x` is a symbolic value (a leaf of a symbolic inputs pytree)."""
    return isinstance(x, SymbolicValue)


@dataclass(eq=False, kw_only=True)
class InputLayer(Layer):
    """The layer behind `funkeras.Input`: a named entry point of a graph.

    Args:
        shape: The shape of one example (no batch axis).
    """

    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        shape = tuple(self.shape)
        for d in shape:
            if d is None:
                raise ValueError(
                    "Input: only the batch axis may be unknown; got shape "
                    f"{self.shape!r}. Give every other axis its size."
                )
            check_int("Input", "shape", d)
        self.shape = shape

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        del params, training, key, mask
        return x, state
