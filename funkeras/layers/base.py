"""The layer protocol, and the hook a layer call records a graph node through.

A layer is a dataclass of hyperparameters plus two pure functions::

    params, state = layer.init(key, input_spec)
    y, state = layer.apply(params, state, x, training=False, key=None, mask=None)

Keras' way of writing a layer (`__init__` + `build` with `add_weight` + `call`)
works too: the base class turns it into `init`/`apply` (see
`funkeras.layers.subclassing`). Calling a layer on arrays builds it on first
use and returns the output.

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
from funkeras.layers import subclassing as sc
from funkeras.layers.budget import check_weight_bytes
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

    # Keras' sequence masks: a `(batch, time)` boolean carried beside a tensor
    # by the graph (made by `Embedding(mask_zero=True)` or `Masking`), not the
    # `(batch,)` row mask `apply` takes as `mask`. See `compute_mask`.
    #
    # `supports_masking`: the layer passes its input's sequence mask on to its
    # output unchanged (Dense on 3D input, Dropout, Activation, ...).
    supports_masking: ClassVar[bool] = False
    # `consumes_sequence_mask`: `apply` takes `sequence_mask=`, a pytree with
    # the structure of `x` (a `(batch, time)` bool array or None per input
    # leaf; None when no input carries a mask). RNNs, attention, global
    # pooling consume it.
    consumes_sequence_mask: ClassVar[bool] = False

    # Keras' order of the layer's weight names (params keys) where it is not
    # the default (Keras' usual kernel, bias, ... order, then alphabetical):
    # MultiHeadAttention's sublayers go query, key, value, attention_output.
    # `get_weights`/`set_weights` follow it (jit sorts dict keys, so the order
    # comes from the layer).
    weight_order: ClassVar[tuple[str, ...]] = ()
    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A Keras-style `call(inputs, mask=None)` receives the sequence mask, as
        # in Keras: the class consumes it (unless it says otherwise).
        super().__init_subclass__(**kwargs)
        if (
            "call" in cls.__dict__
            and "consumes_sequence_mask" not in cls.__dict__
            and sc.call_takes_mask(cls)
        ):
            cls.consumes_sequence_mask = True

    def __init__(
        self,
        *,
        name: str | None = None,
        trainable: bool = True,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        # Used by Keras-style (non-dataclass) subclasses calling
        # `super().__init__(**kwargs)`; dataclass layers get their own __init__.
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword arguments "
                f"{sorted(kwargs)}; the Layer base class takes `name`, "
                "`trainable` and `dtype`."
            )
        self.name = name
        self.trainable = trainable
        self.dtype = "float32" if dtype is None else dtype
        self.__post_init__()

    def __setattr__(self, name: str, value: Any) -> None:
        # `self.moving = ...` on a weight made by `add_weight` assigns it (Keras).
        old = self.__dict__.get(name)
        if isinstance(old, sc.Variable) and not isinstance(value, sc.Variable):
            old.assign(value)
            return
        object.__setattr__(self, name, value)

    @property
    def built(self) -> bool:
        """Whether `build` has run (Keras-style layers) or weights exist."""
        return bool(self.__dict__.get("_fk_built", False))

    @built.setter
    def built(self, value: bool) -> None:
        self.__dict__["_fk_built"] = bool(value)

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

        Pure: the same key and spec give the same arrays. The default holds
        nothing; a Keras-style layer (one that defines `call`) runs `build` and
        draws the weights recorded by `add_weight`.
        """
        if self._keras_style():
            return sc.keras_init(self, key, input_spec)
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
        sequence_mask: Any = None,
    ) -> tuple[Any, State]:
        """Compute the layer's output; return `(y, state)`. Pure.

        Args:
            params: What `init` returned as params.
            state: What `init` (or the previous call) returned as state.
            x: The input batch (batch axis first).
            training: Training mode (dropout active, batch statistics).
            key: A PRNG key, needed only by layers that draw random numbers.
            mask: Optional boolean `(batch,)` vector marking the real rows.
            sequence_mask: For a layer with `consumes_sequence_mask`: its
                inputs' sequence masks (see the class attribute). A Keras-style
                `call(inputs, mask=None)` receives them as `mask`.
        """
        if self._keras_style():
            return sc.keras_apply(
                self,
                params,
                state,
                x,
                training=training,
                key=key,
                mask=mask,
                sequence_mask=sequence_mask,
            )
        raise TypeError(
            f"{layer_label(self)}: the layer class defines neither `apply` nor "
            "Keras' `call`."
        )

    def penalty(self, params: Params) -> Array:
        """The regularization loss of `params` (0.0 without regularizers).

        For every variable `v` the layer holds, a `v_regularizer` attribute that is
        set (`kernel_regularizer="l2"`) adds its penalty. A Keras-style layer's
        penalty is what its `call` adds with `add_loss` (weight terms) plus its
        sublayers' penalties.
        """
        if self._keras_style():
            return sc.keras_penalty(self, params)
        total = jnp.zeros((), jnp.float32)
        for var_name, value in params.items():
            reg = getattr(self, f"{var_name}_regularizer", None)
            if reg is not None:
                total = total + regularizers.get(reg)(value).astype(jnp.float32)
        return total

    def has_penalty(self) -> bool:
        """Whether `penalty` can be non-zero (known before tracing)."""
        if self._keras_style():
            return sc.keras_has_penalty(self)
        if type(self).penalty is not Layer.penalty:
            return True
        return any(
            getattr(self, n, None) is not None
            for n in dir(self)
            if n.endswith("_regularizer")
        )

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The sequence mask(s) of the outputs, from the inputs and their masks.

        Keras' `compute_mask`. `inputs` has the structure of `apply`'s `x` and
        `mask` mirrors it (a `(batch, time)` bool array or None per input; None
        when no input carries a mask). Return None (no output mask), one mask,
        or, for a layer with several outputs, a list aligned with them (None
        entries for outputs without a mask). Pure `jax.numpy`: it runs in the
        same trace as `apply`.

        The default passes the first input mask on when `supports_masking` is
        set, and returns None otherwise. `Embedding(mask_zero=True)` and
        `Masking` override it to make a mask; an RNN without
        `return_sequences` drops it.
        """
        del inputs
        if not self.supports_masking or mask is None:
            return None
        found = [m for m in jax.tree.leaves(mask) if m is not None]
        return found[0] if found else None

    # -- Keras' way of writing a layer -----------------------------------------

    def _keras_style(self) -> bool:
        return sc.is_keras_style(self, Layer.call)

    @sc.framework_build
    def build(self, input_shape: Any) -> None:
        """Create the weights with `add_weight` (Keras style; override it).

        `input_shape` has a `None` batch axis, as Keras passes it.
        """
        del input_shape

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """The forward computation, Keras style (override it instead of `apply`).

        During `call`, weights made by `add_weight` read as the arrays of the
        current call, and sublayers held as attributes can be called on arrays.
        `training` and `mask` are passed only if the signature names them.

        Example:
            >>> import jax.numpy as jnp
            >>> import funkeras as fk
            >>> class Linear(fk.layers.Layer):
            ...     def __init__(self, units=2, **kwargs):
            ...         super().__init__(**kwargs)
            ...         self.units = units
            ...     def build(self, input_shape):
            ...         self.w = self.add_weight(shape=(input_shape[-1], self.units),
            ...                                  initializer="ones", name="w")
            ...     def call(self, inputs):
            ...         return inputs @ self.w
            >>> Linear()(jnp.ones((1, 3))).tolist()
            [[3.0, 3.0]]
        """
        raise TypeError(f"{layer_label(self)}: the layer class does not define `call`.")

    def add_weight(
        self,
        shape: Any = None,
        initializer: Any = None,
        dtype: Any = None,
        trainable: bool = True,
        regularizer: Any = None,
        constraint: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> sc.Variable:
        """Record a weight (Keras' `add_weight`); return its `Variable` handle.

        Trainable weights go to `params`, the others to `state`, under `name`
        (default `"variable"`, `"variable_1"`, ... as Keras). Initial values are
        drawn in `init`, one `fold_in` of its key per weight in creation order.
        A `regularizer` adds its penalty to the layer's.
        """
        if kwargs:
            raise TypeError(
                f"{layer_label(self)}.add_weight: unexpected arguments {sorted(kwargs)}."
            )
        return sc.add_variable(
            self, shape, initializer, dtype, trainable, regularizer, constraint, name
        )

    def add_loss(self, value: Any) -> None:
        """Add `value` to the loss of the current call (Keras' `add_loss`).

        Only inside `call`. The losses of a call are summed into the training
        loss through `penalty(params)`; `layer.losses` shows those of the last
        call on arrays.
        """
        found = sc.caller()
        if found is None or found[0] is not self:
            raise ValueError(
                f"{layer_label(self)}: `add_loss` is only available inside `call`."
            )
        found[1].losses.append(sc.unwrap(value))

    @property
    def losses(self) -> list[Any]:
        """The losses added by the last call on arrays (Keras' `layer.losses`)."""
        return list(self.__dict__.get("_fk_losses", []))

    def concrete_weights(self) -> tuple[Params, State] | None:
        """`(params, state)` of a layer built by a call on arrays, else None."""
        params = self.__dict__.get("_fk_params")
        return None if params is None else (params, self.__dict__["_fk_state"])

    def _require_concrete(self, what: str) -> tuple[Params, State]:
        store = self.concrete_weights()
        if store is None:
            raise ValueError(
                f"{layer_label(self)}: `{what}` needs the layer's own weights, which "
                "exist once it is called on an array (`layer(x)`). A layer inside a "
                "model keeps its weights in the model: read `model.params"
                f"[{self.name!r}]` or `model.get_weights()`."
            )
        return store

    def _unbuilt(self) -> bool:
        """Never called on arrays nor on symbolic tensors: no weights yet."""
        return self.concrete_weights() is None and not self.inbound_nodes

    @property
    def weights(self) -> list[Array]:
        """All weights as arrays, Keras' order (own trainable, own non-trainable,
        then each sublayer's); `[]` before the layer is first called, as Keras."""
        if self._unbuilt():
            return []
        params, state = self._require_concrete("weights")
        return [a for _, a in sc.flat_weights(self, params, state)]

    @property
    def trainable_weights(self) -> list[Array]:
        """The trainable weights as arrays (none if `trainable=False`)."""
        if self._unbuilt():
            return []
        params, state = self._require_concrete("trainable_weights")
        if not self.trainable:
            return []
        return [a for p, a in sc.flat_weights(self, params, state) if p]

    @property
    def non_trainable_weights(self) -> list[Array]:
        """The non-trainable weights (all of them if `trainable=False`)."""
        if self._unbuilt():
            return []
        params, state = self._require_concrete("non_trainable_weights")
        return [a for p, a in sc.flat_weights(self, params, state) if not p or not self.trainable]

    def get_weights(self) -> list[np.ndarray]:
        """The weights as NumPy arrays, in `weights` order."""
        return [np.array(a, copy=True) for a in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the weights from a list in `get_weights` order (shapes checked)."""
        params, state = self._require_concrete("set_weights")
        params, state = sc.set_flat_weights(
            self, layer_label(self), params, state, list(weights)
        )
        self.__dict__["_fk_params"], self.__dict__["_fk_state"] = params, state

    # -- calls on arrays ----------------------------------------------------------

    def _call_on_arrays(self, *args: Any, **kwargs: Any) -> Any:
        """`layer(x)` on arrays: inside a Keras-style `call`, run as a tracked
        sublayer on the caller's weights; otherwise on the layer's own weights."""
        found = sc.caller()
        if found is not None and found[0] is not self:
            return sc.call_sublayer(found[0], found[1], self, args, kwargs, Layer.call)
        return self._eager_call(args, kwargs)

    def _eager_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Build from the first array (a key from the seed stream), then run."""
        kwargs = dict(kwargs)
        training = bool(kwargs.pop("training", False) or False)
        keras_style = self._keras_style()
        options: dict[str, Any] = {}
        sequence_mask = None
        if keras_style:
            # Keras' `layer(x, mask=m)`: the sequence mask `call` receives.
            sequence_mask = kwargs.pop("mask", None)
            args = tuple(jax.tree.map(jnp.asarray, a) for a in args)
            if not args:
                raise TypeError(f"{layer_label(self)}: calling a layer needs inputs.")
            x = args[0] if len(args) == 1 else list(args)
        else:
            sequence_mask = kwargs.pop("mask", None)
            x, options = self._bind(args, kwargs)
            x = jax.tree.map(jnp.asarray, x)
            if sequence_mask is not None and self.consumes_sequence_mask:
                options = {**options, "sequence_mask": jnp.asarray(sequence_mask)}
        if self.concrete_weights() is None:
            spec = jax.tree.map(
                lambda a: jax.ShapeDtypeStruct(tuple(a.shape[1:]), a.dtype), x
            )
            base = jax.random.key(sc.next_layer_seed())
            params, state = self.init(jax.random.fold_in(base, 0), spec)
            self.__dict__["_fk_params"], self.__dict__["_fk_state"] = params, state
            self.__dict__["_fk_key"], self.__dict__["_fk_ncalls"] = base, 0
        params, state = self._require_concrete("call")
        key = None
        if training:
            self.__dict__["_fk_ncalls"] += 1
            key = jax.random.fold_in(
                jax.random.fold_in(self.__dict__["_fk_key"], 1),
                self.__dict__["_fk_ncalls"],
            )
        if keras_style:
            y, state, losses = sc.keras_call(
                self,
                params,
                state,
                args,
                kwargs,
                training=training,
                key=key,
                sequence_mask=sequence_mask,
            )
        else:
            y, state = self.apply(
                params, state, x, training=training, key=key, **options
            )
            losses = [self.penalty(params)] if self.has_penalty() else []
        self.__dict__["_fk_state"] = state
        self.__dict__["_fk_losses"] = list(losses)
        return y

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
        check_weight_bytes(layer_label(self), params, state)
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
        config = {
            f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)
        }
        # Keras' rule for a class that is not itself a dataclass: the base config
        # holds the fields (name/trainable/dtype), and a layer whose `__init__`
        # takes more must override `get_config` to return them.
        missing = [a for a in _own_init_args(self) if a not in config]
        if "__dataclass_fields__" not in type(self).__dict__ and _base_get_config(
            self
        ) and missing:
            raise TypeError(
                f"{layer_label(self)}: `__init__` takes {missing}, which the base "
                "`get_config` cannot know. Override `get_config` to return them: "
                "`config = super().get_config(); config.update(units=self.units); "
                "return config` (as in Keras)."
            )
        return config

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
            raise TypeError(
                f"{label}: `mask=` takes a sequence mask: a symbolic bool tensor "
                "in a graph (or an array when calling the layer on arrays), got "
                f"{type(mask).__name__}."
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
        training = kwargs.get("training")
        if training is not None and not isinstance(training, bool):
            raise TypeError(
                f"{layer_label(self)}: `training` must be True, False or None, got "
                f"{training!r}."
            )
        everything = jax.tree.leaves((args, kwargs), is_leaf=is_symbolic_value)
        if not any(is_symbolic_value(t) for t in everything):
            return self._call_on_arrays(*args, **kwargs)
        kwargs.pop("training", None)
        explicit = None
        if not self._binds_mask() and any(
            is_symbolic_value(t)
            for t in jax.tree.leaves(kwargs.get("mask"), is_leaf=is_symbolic_value)
        ):
            explicit = kwargs.pop("mask")
        x, options = self._bind(args, kwargs)
        leaves = jax.tree.leaves(x, is_leaf=is_symbolic_value)
        symbolic = [t for t in leaves if isinstance(t, SymbolicValue)]
        if len(symbolic) != len(leaves):
            other = next(t for t in leaves if not isinstance(t, SymbolicValue))
            raise TypeError(
                f"{layer_label(self)}: every input of a call in a graph must be a "
                "symbolic tensor (from `funkeras.Input` or a layer call); got a mix "
                f"of symbolic tensors and {type(other).__name__}."
            )
        input_spec = jax.tree.map(lambda t: t.spec, x, is_leaf=is_symbolic_value)
        masks = None if explicit is None else self._explicit_masks(symbolic, explicit)
        output_spec = self.compute_output_spec(input_spec, **options)
        if masks is None:
            return symbolic[0].record_call(
                self, x, output_spec, options=options, training=training
            )
        return symbolic[0].record_call(
            self, x, output_spec, options=options, training=training, mask=masks
        )

    def _binds_mask(self) -> bool:
        """Whether the layer's own `bind_call` takes `mask=` (an RNN makes it a
        tensor input of its node) rather than leaving it to the graph."""
        if type(self).bind_call is Layer.bind_call:
            return False
        return "mask" in inspect.signature(self.bind_call).parameters

    def _explicit_masks(self, inputs: list[Any], mask: Any) -> list[Any]:
        """`layer(x, mask=m)` on symbolic tensors: one mask (or None) per input."""
        label = layer_label(self)
        given = list(mask) if isinstance(mask, list | tuple) else [mask]
        if len(given) != len(inputs):
            raise ValueError(
                f"{label}: `mask=` must give one mask (or None) per input tensor: "
                f"{len(inputs)} input(s), got {len(given)} mask(s)."
            )
        for t, m in zip(inputs, given, strict=True):
            if m is None:
                continue
            if not is_symbolic_value(m):
                raise TypeError(
                    f"{label}: in a graph, `mask=` must be symbolic tensors (or "
                    f"None), got {type(m).__name__}."
                )
            if not (jnp.dtype(m.spec.dtype) == jnp.bool_) or not (
                0 <= len(m.spec.shape) < len(t.spec.shape)
            ):
                raise ValueError(
                    f"{label}: a sequence mask must be a bool tensor of shape "
                    "(batch, time) covering the input's leading axes; got dtype "
                    f"{jnp.dtype(m.spec.dtype).name} and shape "
                    f"{shape_str((None, *public_shape(m.spec.shape)))} for an input "
                    f"of shape {shape_str((None, *public_shape(t.spec.shape)))}."
                )
        return given

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


def _base_get_config(layer: Any) -> bool:
    """Whether `layer`'s `get_config` is the library's (not overridden by a user)."""
    for cls in type(layer).__mro__:
        if "get_config" in cls.__dict__:
            return cls.__module__.startswith("funkeras.")
    return True


def _own_init_args(layer: Any) -> list[str]:
    """The named `__init__` arguments of a non-dataclass layer class (not the
    base's name/trainable/dtype)."""
    sig = inspect.signature(type(layer).__init__)
    return [
        p.name
        for p in sig.parameters.values()
        if p.name not in ("self", "name", "trainable", "dtype")
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


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
        mask: Any = None,
    ) -> Any:
        """Record `layer` called on `inputs`; return the symbolic outputs.

        `output_spec` is the pytree of output specs (no batch axis) the outputs
        take the structure of; `options` the call's static keyword options for
        `apply`; `training` the call's forced mode (None: the model's); `mask`
        the call's explicit sequence masks (`layer(x, mask=m)`: one symbolic
        bool tensor or None per input leaf). The recorded node is appended to
        `layer.inbound_nodes`.
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
