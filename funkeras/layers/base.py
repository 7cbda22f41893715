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
import inspect
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from funkeras import regularizers
from funkeras._validation import check_int, normalize_dtype, shape_str, short_message
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
    "unknown_dim",
    "is_known_dim",
    "public_shape",
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


# One scope for every symbolic dimension (the batch axis and the unknown axes
# of `Input(shape=(None, ...))`), so that they can meet in one computation.
_SCOPE = jax.export.SymbolicScope()
_unknown_ids = itertools.count(1)


def _symbolic_batch() -> Any:
    (batch,) = jax.export.symbolic_shape("batch", scope=_SCOPE)
    return batch


def unknown_dim() -> Any:
    """A fresh symbolic dimension for an axis of unknown size (`None` in a shape).

    Layers are traced with it as `jax.eval_shape` traces the batch axis, so a
    layer that can handle any size (a Dense on the last axis, a pooling over
    time) builds, and one that cannot fails when it is called.
    """
    (dim,) = jax.export.symbolic_shape(f"len_{next(_unknown_ids)}", scope=_SCOPE)
    return dim


def is_known_dim(d: Any) -> bool:
    """Whether an axis size is a plain int (not `None` or a symbolic dimension)."""
    return isinstance(d, int | np.integer)


def public_shape(shape: Sequence[Any]) -> tuple[int | None, ...]:
    """`shape` with every unknown (symbolic) axis shown as `None`, as Keras shows it."""
    return tuple(int(d) if is_known_dim(d) else None for d in shape)


def _unknown_axes(spec: Any) -> str:
    """Which axes of an input spec (no batch axis) have unknown size, in words."""
    found = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(spec)[0]:
        where = f"input{jax.tree_util.keystr(path)}"
        for i, d in enumerate(getattr(leaf, "shape", ())):
            if not is_known_dim(d):
                found.append(f"axis {i + 1} of {where}")
    return ", ".join(found)


def _unknown_axes_error(layer: Any, what: str, tree: Any) -> None:
    """Raise if a leaf of `tree` (params/state specs) has a size that is not an int."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        shape = tuple(getattr(leaf, "shape", ()))
        if not all(is_known_dim(d) for d in shape):
            raise ValueError(
                f"{layer_label(layer)}: its {what} "
                f"`{jax.tree_util.keystr(path)}` would have shape "
                f"{shape_str(public_shape(shape))}, which depends on an input axis of "
                "unknown size (None). Give that axis its size in `Input(shape=...)`."
            )


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

    def compute_output_spec(self, input_spec: InputSpec, **options: Any) -> InputSpec:
        """The output spec (no batch axis) for `input_spec`, from `jax.eval_shape`.

        Traces `init` and `apply` abstractly with a symbolic batch dimension, so
        shape errors surface here, before anything runs, and no second shape
        formula can drift from `apply`. `options` are the static keyword options
        of a call (see `bind_call`), passed on to `apply`. Axes of unknown size
        (`Input(shape=(None, 4))`) are traced as symbolic dimensions too; a layer
        whose weights would depend on one is refused with a clear error.
        """
        unknown = _unknown_axes(input_spec)
        try:
            params, state = jax.eval_shape(
                lambda k: self.init(k, input_spec), jax.random.key(0)
            )
        except Exception as e:
            if not unknown:
                raise
            raise ValueError(
                f"{layer_label(self)} cannot build on an input axis of unknown size "
                f"(None): {unknown}. Give that axis its size in `Input(shape=...)`. "
                f"({short_message(e)})"
            ) from e
        _unknown_axes_error(self, "weight", params)
        _unknown_axes_error(self, "state", state)
        x = add_batch_axis(input_spec, _symbolic_batch())
        try:
            y, _ = jax.eval_shape(
                lambda p, s, x: self.apply(p, s, x, training=False, **options),
                params,
                state,
                x,
            )
        except jax.errors.InconclusiveDimensionOperation as e:
            raise ValueError(
                f"{layer_label(self)} cannot handle an input axis of unknown size "
                f"(None): {unknown}. Give that axis its size in `Input(shape=...)`. "
                f"({short_message(e)})"
            ) from e
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

    # -- calls (the functional API) ---------------------------------------------

    def bind_call(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Map a Keras-style call `layer(...)` to `apply`'s `(x, options)`.

        `x` is the pytree of tensor inputs `apply` receives as `x` (`None`
        entries allowed); `options` is a dict of static, JSON-safe keyword
        options `apply` receives as extra keyword arguments. `training=` is
        handled by `__call__` for every layer (a per-call override) and never
        reaches `bind_call`.

        The default takes exactly one input (a tensor, or a list/dict of
        tensors) and `mask=None`. A layer with several tensor arguments,
        keyword tensors or options overrides it: that is the documented way to
        write a multi-input layer.

        Example:
            >>> import jax.numpy as jnp
            >>> from dataclasses import dataclass
            >>> import funkeras as fk
            >>> @dataclass(eq=False)
            ... class Blend(fk.layers.Layer):
            ...     uses_key = False
            ...     def bind_call(self, a, b, weights=None, *, scale=1.0):
            ...         return {"a": a, "b": b, "weights": weights}, {"scale": scale}
            ...     def apply(self, params, state, x, *, training=False, key=None,
            ...               mask=None, scale=1.0):
            ...         w = 0.5 if x["weights"] is None else x["weights"]
            ...         return scale * (w * x["a"] + (1 - w) * x["b"]), state
            >>> a, b = fk.Input(shape=(3,)), fk.Input(shape=(3,))
            >>> y = Blend()(a, b, scale=2.0)
            >>> model = fk.Model([a, b], y)
            >>> model.predict([jnp.ones((1, 3)), jnp.zeros((1, 3))], verbose=0).tolist()
            [[1.0, 1.0, 1.0]]
        """
        label = layer_label(self)
        mask = kwargs.pop("mask", None)
        if kwargs:
            raise TypeError(
                f"{label}: got unexpected keyword argument(s) {sorted(kwargs)}; "
                "the layer takes one input tensor (and `training=`)."
            )
        if len(args) != 1:
            raise TypeError(
                f"{label} takes one input tensor; got {len(args)} positional "
                "arguments. To merge tensors, use a merge layer such as "
                "Concatenate()([a, b])."
                if len(args) > 1
                else f"{label} takes one input tensor; got none."
            )
        if mask is not None:
            raise ValueError(
                f"{label}: `mask=` is not supported yet (sequence masks come with "
                "the masking layers); call the layer without it."
            )
        return args[0], {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the layer Keras-style; on symbolic tensors, record a graph node.

        `layer(inputs)`, or whatever `bind_call` accepts (`layer(a, b, key=c,
        scale=2.0)`); `training=True/False` forces the mode of this call (a
        Dropout called with `training=True` stays active in `predict`).
        Returns the symbolic output tensor(s): a tuple when `apply` returns
        one (`out, h, c = layer(x)`).
        """
        training = kwargs.pop("training", None)
        if training is not None and not isinstance(training, bool):
            raise TypeError(
                f"{layer_label(self)}: `training` must be True, False or None, got "
                f"{training!r}."
            )
        x, options = self._bind(args, kwargs)
        leaves = jax.tree.leaves(x, is_leaf=is_symbolic_value)
        symbolic = [t for t in leaves if isinstance(t, SymbolicValue)]
        if not symbolic:
            return self._call_on_arrays(x, options, training)
        if len(symbolic) != len(leaves):
            other = next(t for t in leaves if not isinstance(t, SymbolicValue))
            raise TypeError(
                f"{layer_label(self)}: every input of a call in a graph must be a "
                "symbolic tensor (from `funkeras.Input` or a layer call); got a mix "
                f"of symbolic tensors and {type(other).__name__}."
            )
        input_spec = jax.tree.map(lambda t: t.spec, x, is_leaf=is_symbolic_value)
        output_spec = self.compute_output_spec(input_spec, **options)
        return symbolic[0].record_call(
            self, x, output_spec, options=options, training=training
        )

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """`bind_call(*args, **kwargs)` with clear errors and checked options."""
        bind = self.bind_call
        if type(self).bind_call is not Layer.bind_call:
            try:
                inspect.signature(bind).bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(
                    f"{layer_label(self)}: {e}; the layer is called as "
                    f"{type(self).__name__}{inspect.signature(bind)}."
                ) from None
        x, options = bind(*args, **kwargs)
        if not isinstance(options, dict) or not all(
            isinstance(k, str) for k in options
        ):
            raise TypeError(
                f"{layer_label(self)}: `bind_call` must return `(x, options)` with "
                f"`options` a dict keyed by str, got {options!r:.200}."
            )
        for k, v in options.items():
            try:
                json.dumps(v)
            except (TypeError, ValueError):
                raise TypeError(
                    f"{layer_label(self)}: option `{k}` must be a static JSON-safe "
                    f"value (bool, number, str, list, dict), got {type(v).__name__}. "
                    "Tensors go in `x`."
                ) from None
        return x, options

    def _call_on_arrays(self, x: Any, options: dict[str, Any], training: Any) -> Any:
        """A call on concrete arrays (not symbolic tensors)."""
        del x, options, training
        raise TypeError(
            f"{layer_label(self)}: layers are called on symbolic tensors from "
            "`funkeras.Input(...)` to build a model. To run a layer on arrays, "
            "use `params, state = layer.init(key, spec)` and "
            "`layer.apply(params, state, x)`, or wrap it in a model."
        )

    # -- feature extraction -------------------------------------------------------

    @property
    def inbound_nodes(self) -> list[Any]:
        """The graph nodes that call this layer, in call order (filled by the graph)."""
        nodes = self.__dict__.get("_inbound_nodes")
        if nodes is None:
            nodes = self.__dict__["_inbound_nodes"] = []
        return nodes

    def _single_node(self, what: str) -> Any:
        nodes = self.inbound_nodes
        if not nodes:
            raise ValueError(
                f"{layer_label(self)} has never been called on symbolic tensors, so "
                f"it has no `{what}`. Call it on `funkeras.Input(...)` (or build "
                "its model) first."
            )
        if len(nodes) > 1:
            raise ValueError(
                f"{layer_label(self)} has been called {len(nodes)} times, so `{what}` "
                "is ambiguous. Use `layer.inbound_nodes[i].inputs` / `.outputs` for "
                "the i-th call."
            )
        return nodes[0]

    @property
    def input(self) -> Any:
        """The symbolic input(s) of the layer's one call in a graph (Keras' `.input`)."""
        return self._single_node("input").inputs

    @property
    def output(self) -> Any:
        """The symbolic output(s) of the layer's one call in a graph (Keras' `.output`).

        Example:
            >>> import funkeras as fk
            >>> dense = fk.layers.Dense(2)
            >>> y = dense(fk.Input(shape=(3,)))
            >>> dense.output is y
            True
        """
        return self._single_node("output").outputs

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
    def record_call(
        self,
        layer: Layer,
        inputs: Any,
        output_spec: InputSpec,
        *,
        options: dict[str, Any] | None = None,
        training: bool | None = None,
    ) -> Any:
        """Record `layer` called on `inputs`; return the symbolic outputs.

        `output_spec` is the pytree of output specs (no batch axis) the outputs
        take the structure of; `options` the call's static keyword options for
        `apply`; `training` the call's forced mode (None: the model's). The
        recorded node is appended to `layer.inbound_nodes`.
        """


def is_symbolic_value(x: Any) -> bool:
    """Whether `x` is a symbolic value (a leaf of a symbolic inputs pytree)."""
    return isinstance(x, SymbolicValue)


@dataclass(eq=False, kw_only=True)
class InputLayer(Layer):
    """The layer behind `funkeras.Input`: a named entry point of a graph.

    Args:
        shape: The shape of one example (no batch axis); `None` marks an axis of
            unknown size (a sequence length), traced as a symbolic dimension.
    """

    shape: tuple[int | None, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        shape = tuple(self.shape)
        for d in shape:
            if d is not None:
                check_int("Input", "shape", d)
        self.shape = shape

    def example_shape(self) -> tuple[Any, ...]:
        """The shape of one example, a fresh symbolic dimension for each `None`."""
        return tuple(unknown_dim() if d is None else d for d in self.shape)

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        del params, training, key, mask
        return x, state
