"""Keras' way of writing layers (`build` + `add_weight` + `call`) over the protocol.

Keras 3 runs on JAX the same way: the variables a layer creates in `build` are
recorded, and every `call` is a stateless call with the current arrays bound
in a scope. Here:

- `add_weight(...)` returns a `Variable` *handle*: a name, a shape, an
  initializer, no array. `init(key, spec)` runs `build(input_shape)` once (the
  shape with a `None` batch axis, as Keras passes it), then draws weight `i`
  (creation order) from `fold_in(fold_in(key, 0), i)`; trainable weights go to
  `params`, non-trainable ones to `state`, keyed by the weight's name.
- `apply(params, state, x)` runs `call` inside a binding scope (a
  `contextvars.ContextVar`, safe under `jax.jit` and in threads): `self.w` in
  `call` reads the bound array of this call; `assign`/`assign_add` (or
  `self.v = ...`) on a non-trainable weight writes the call's new state;
  `add_loss(v)` collects `v`.
- Layers held as attributes (also in lists and dicts) are tracked: their
  params and state sit under their name (`params["dense"]["kernel"]`). `init`
  runs `call` once on a zero batch of one row, and a sublayer is initialised the
  first time `call` runs it, from `fold_in(fold_in(key, 1), j)` (j: its index
  in attribute order).
- The losses a call adds (and the sublayers' regularization penalties) reach
  training through `penalty(params)`, which re-runs `call` in inference mode on
  a zero batch of one row and sums them. A loss that depends on the *inputs*
  (an activity term) cannot be computed from the params alone: `init` finds
  that out by tracing, and such a layer's losses leave each `apply` through
  `collect_losses`, which the train and test steps open and add to the loss.

Nothing here knows about graphs, models or training.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Var

from funkeras import constraints, initializers, regularizers
from funkeras._validation import normalize_dtype, shape_str, to_snake_case
from funkeras.random import next_seed

__all__ = [
    "Variable",
    "Frame",
    "unwrap",
    "caller",
    "bind",
    "is_layer",
    "is_keras_style",
    "framework_build",
    "next_layer_seed",
    "variables_of",
    "add_variable",
    "tracked_layers",
    "keras_init",
    "keras_call",
    "keras_apply",
    "keras_penalty",
    "keras_has_penalty",
    "call_sublayer",
    "call_takes_mask",
    "KERAS_WEIGHT_ORDER",
    "ordered_names",
    "sublayer",
    "flat_weights",
    "trainable_mask",
    "set_flat_weights",
    "collect_losses",
    "keras_activity",
]


# ----------------------------------------------------------------------------
# The binding scope.
# ----------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class Frame:
    """The arrays one call of one owner (a layer or a metric) sees and writes.

    Attributes:
        params: Trainable weights by name (and tracked sublayers' params).
        state: Non-trainable weights by name (and sublayers' state); `assign`
            writes here.
        losses: What `add_loss` collected (sublayers' losses and penalties too).
        training: The call's training flag (passed on to sublayers).
        key: The call's PRNG key (sublayer call `n` gets `fold_in(key, n)`).
        mask: The call's row mask (passed on to sublayers).
        sequence_mask: The call's sequence mask (Keras' `mask` argument of
            `call`), shaped like its inputs, or None.
        init_key: Set while `init` runs `call`: a sublayer met for the first
            time is initialised from it.
        fresh: The sublayers initialised during this call: `(params, state)`.
        calls: How many sublayer calls this frame made.
    """

    params: dict[str, Any]
    state: dict[str, Any]
    losses: list[Any] = dataclasses.field(default_factory=list)
    training: bool = False
    key: Any = None
    mask: Any = None
    sequence_mask: Any = None
    init_key: Any = None
    fresh: dict[str, Any] = dataclasses.field(default_factory=dict)
    calls: int = 0


_FRAMES: contextvars.ContextVar[tuple[tuple[int, Any, Frame], ...]] = (
    contextvars.ContextVar("funkeras_weight_frames", default=())
)


def _frame_of(owner: Any) -> Frame | None:
    for oid, _, frame in reversed(_FRAMES.get()):
        if oid == id(owner):
            return frame
    return None


def caller() -> tuple[Any, Frame] | None:
    """The innermost `(owner, frame)` whose `call` is running, or None."""
    frames = _FRAMES.get()
    if not frames:
        return None
    _, owner, frame = frames[-1]
    return owner, frame


@contextlib.contextmanager
def bind(owner: Any, frame: Frame) -> Iterator[Frame]:
    """Bind `frame` to `owner` for the duration of the block."""
    token = _FRAMES.set((*_FRAMES.get(), (id(owner), owner, frame)))
    try:
        yield frame
    finally:
        _FRAMES.reset(token)


# ----------------------------------------------------------------------------
# Variables: handles recorded by `add_weight`, bound to arrays during a call.
# ----------------------------------------------------------------------------


def _unwrap(x: Any) -> Any:
    return x.value if isinstance(x, Variable) else x


def unwrap(tree: Any) -> Any:
    """`tree` with every `Variable` leaf replaced by its current array."""
    return jax.tree.map(_unwrap, tree, is_leaf=lambda v: isinstance(v, Variable))


def _binary(op: Callable[[Any, Any], Any], reverse: bool = False) -> Any:
    def method(self: Variable, other: Any) -> Any:
        a, b = self.value, _unwrap(other)
        return op(b, a) if reverse else op(a, b)

    return method


class Variable:
    """A weight made by `add_weight`: a handle, bound to an array during a call.

    Inside `call` it reads as the array of the current call's params (trainable)
    or state (non-trainable); outside, as the layer's own concrete array (once
    the layer has been called on arrays). It supports arithmetic, `jnp`
    functions (`__jax_array__`), `np.asarray`, `.value`, `.numpy()`, and, for a
    non-trainable weight, `assign`, `assign_add` and `assign_sub`.

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> class Counter(fk.layers.Layer):
        ...     def build(self, input_shape):
        ...         self.count = self.add_weight(shape=(), initializer="zeros",
        ...                                      trainable=False, name="count")
        ...     def call(self, x):
        ...         self.count.assign_add(1.0)
        ...         return x
        >>> layer = Counter()
        >>> _ = layer(jnp.ones((2, 3))); _ = layer(jnp.ones((2, 3)))
        >>> float(layer.count.numpy())
        2.0
    """

    __array_priority__ = 100

    def __init__(
        self,
        owner: Any,
        name: str,
        shape: tuple[int, ...],
        dtype: str,
        initializer: Any,
        trainable: bool,
        regularizer: Any = None,
        constraint: Any = None,
    ) -> None:
        self.owner = owner
        self.name = name
        self.shape = tuple(shape)
        self.dtype = dtype
        self.initializer = initializers.get(initializer)
        self.trainable = trainable
        self.regularizer = (
            None if regularizer is None else regularizers.get(regularizer)
        )
        # Applied to the weight after each optimizer update (Keras' semantics).
        self.constraint = constraints.get(constraint)

    @property
    def path(self) -> str:
        """`"layer_name/variable_name"`, as Keras 3 names it."""
        return f"{getattr(self.owner, 'name', None)}/{self.name}"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def initial_value(self, key: Any) -> Any:
        """A fresh value drawn from `key` (the layer's `init` calls this)."""
        value = self.initializer(key, self.shape, jnp.dtype(self.dtype))
        value = jnp.asarray(value, self.dtype)
        if value.shape != self.shape:
            raise ValueError(
                f"{self.path}: the initializer returned shape "
                f"{shape_str(value.shape)}, expected {shape_str(self.shape)}."
            )
        return value

    def _tree(self, frame: Frame | None) -> dict[str, Any]:
        if frame is not None:
            return frame.params if self.trainable else frame.state
        store = self.owner.concrete_weights()
        if store is None:
            raise ValueError(
                f"{self.path}: the variable has no value yet. Inside `call` it is "
                "bound to the current weights; outside, call the layer on an "
                "array first (or read the model's `params`)."
            )
        return store[0] if self.trainable else store[1]

    @property
    def value(self) -> Any:
        """The array this variable stands for now."""
        return self._tree(_frame_of(self.owner))[self.name]

    def numpy(self) -> np.ndarray:
        """The value as a NumPy array."""
        return np.asarray(self.value)

    def assign(self, value: Any) -> Variable:
        """Set the value (a non-trainable variable inside `call`: the new state)."""
        frame = _frame_of(self.owner)
        if frame is not None and self.trainable:
            raise TypeError(
                f"{self.path}: a trainable weight cannot be assigned inside `call` "
                "(params change only through the optimizer). Make it "
                "`trainable=False` to keep state that `call` updates."
            )
        value = jnp.asarray(_unwrap(value), self.dtype)
        if value.shape != self.shape:
            raise ValueError(
                f"{self.path}: cannot assign a value of shape "
                f"{shape_str(value.shape)} to a variable of shape "
                f"{shape_str(self.shape)}."
            )
        self._tree(frame)[self.name] = value
        return self

    def assign_add(self, delta: Any) -> Variable:
        """`assign(value + delta)`."""
        return self.assign(self.value + _unwrap(delta))

    def assign_sub(self, delta: Any) -> Variable:
        """`assign(value - delta)`."""
        return self.assign(self.value - _unwrap(delta))

    def __jax_array__(self) -> Any:
        return jnp.asarray(self.value)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self.value)
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, idx: Any) -> Any:
        return self.value[idx]

    def __float__(self) -> float:
        return float(self.value)

    def __int__(self) -> int:
        return int(self.value)

    def __neg__(self) -> Any:
        return -self.value

    def __abs__(self) -> Any:
        return abs(self.value)

    def __len__(self) -> int:
        return self.shape[0]

    __add__ = _binary(lambda a, b: a + b)
    __radd__ = _binary(lambda a, b: a + b, reverse=True)
    __sub__ = _binary(lambda a, b: a - b)
    __rsub__ = _binary(lambda a, b: a - b, reverse=True)
    __mul__ = _binary(lambda a, b: a * b)
    __rmul__ = _binary(lambda a, b: a * b, reverse=True)
    __truediv__ = _binary(lambda a, b: a / b)
    __rtruediv__ = _binary(lambda a, b: a / b, reverse=True)
    __matmul__ = _binary(lambda a, b: a @ b)
    __rmatmul__ = _binary(lambda a, b: jnp.matmul(a, b), reverse=True)
    __pow__ = _binary(lambda a, b: a**b)
    __rpow__ = _binary(lambda a, b: a**b, reverse=True)
    __lt__ = _binary(lambda a, b: a < b)
    __le__ = _binary(lambda a, b: a <= b)
    __gt__ = _binary(lambda a, b: a > b)
    __ge__ = _binary(lambda a, b: a >= b)

    def __repr__(self) -> str:
        return (
            f"<Variable path={self.path}, shape={shape_str(self.shape)}, "
            f"dtype={self.dtype}, trainable={self.trainable}>"
        )


def variables_of(owner: Any) -> dict[str, Variable]:
    """The variables `owner` created with `add_weight`, in creation order."""
    return owner.__dict__.setdefault("_fk_variables", {})


def add_variable(
    owner: Any,
    shape: Any = None,
    initializer: Any = None,
    dtype: Any = None,
    trainable: bool = True,
    regularizer: Any = None,
    constraint: Any = None,
    name: str | None = None,
) -> Variable:
    """Record a new variable on `owner` (Keras' `add_weight` / `add_variable`)."""
    label = f"{type(owner).__name__}(name={getattr(owner, 'name', None)!r})"
    shape = () if shape is None else tuple(shape)
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 0:
            raise ValueError(
                f"{label}.add_weight: `shape` must hold non-negative ints, got "
                f"{shape!r}."
            )
    owner_dtype = getattr(owner, "dtype", None) or "float32"
    dtype = normalize_dtype(label, owner_dtype if dtype is None else dtype)
    if initializer is None:
        initializer = (
            "glorot_uniform" if jnp.issubdtype(jnp.dtype(dtype), jnp.floating) else "zeros"
        )
    variables = variables_of(owner)
    if name is None:
        name = "variable"
        for i in itertools.count(1):
            if name not in variables:
                break
            name = f"variable_{i}"
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(
            f"{label}.add_weight: `name` must be a non-empty str without '/', got "
            f"{name!r}."
        )
    if name in variables:
        raise ValueError(
            f"{label}.add_weight: a weight named {name!r} already exists; weight "
            "names are the keys of the layer's params and must be unique."
        )
    var = Variable(owner, name, tuple(int(d) for d in shape), dtype, initializer,
                   bool(trainable), regularizer, constraint)
    variables[name] = var
    return var


# ----------------------------------------------------------------------------
# Which layers are Keras-style, and which sublayers they hold.
# ----------------------------------------------------------------------------


def is_layer(x: Any) -> bool:
    """Whether `x` follows the layer protocol (`init`, `apply`, `penalty`)."""
    return not isinstance(x, type) and all(
        callable(getattr(x, n, None)) for n in ("init", "apply", "penalty")
    )


def framework_build(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a `build` the library defines (not a user's Keras-style `build`)."""
    fn.funkeras_framework_build = True  # type: ignore[attr-defined]
    return fn


def _user_build(layer: Any) -> Callable[..., Any] | None:
    # A model subclass's own `build` is kept as `keras_build` (see Model).
    build = getattr(type(layer), "keras_build", None) or getattr(
        type(layer), "build", None
    )
    if build is None or getattr(build, "funkeras_framework_build", False):
        return None
    return build.__get__(layer)


def is_keras_style(layer: Any, base_call: Any) -> bool:
    """Whether `layer`'s class defines `call` (`base_call` is the base's)."""
    return getattr(type(layer), "call", base_call) is not base_call


def call_takes_mask(cls: type) -> bool:
    """Whether a Keras-style `cls.call` names `mask` (it consumes sequence masks)."""
    return _call_params(cls)[1]


@functools.cache
def _call_params(cls: type) -> tuple[bool, bool]:
    """Whether `cls.call` takes `training` and `mask` (Keras passes them if so)."""
    sig = inspect.signature(cls.call)
    kinds = {p.name: p.kind for p in sig.parameters.values()}
    var_kw = inspect.Parameter.VAR_KEYWORD in kinds.values()
    return ("training" in kinds or var_kw, "mask" in kinds)


def _walk_layers(value: Any, out: list[Any], seen: set[int]) -> None:
    if is_layer(value):
        if id(value) not in seen:
            seen.add(id(value))
            out.append(value)
    elif isinstance(value, list | tuple):
        for v in value:
            _walk_layers(v, out, seen)
    elif isinstance(value, dict):
        for v in value.values():
            _walk_layers(v, out, seen)


def tracked_layers(owner: Any) -> dict[str, Any]:
    """`owner`'s sublayers by name, in attribute order (lists and dicts walked).

    Named once, on first use: a sublayer keeps its own `name` if it has one,
    otherwise it gets the snake_case class name made unique (`dense`,
    `dense_1`), as Keras names layers.
    """
    names: dict[str, Any] | None = owner.__dict__.get("_fk_sublayers")
    found: list[Any] = []
    seen: set[int] = {id(owner)}
    for attr, value in list(owner.__dict__.items()):
        if not attr.startswith("_fk_"):
            _walk_layers(value, found, seen)
    if names is not None and len(names) == len(found):
        return names
    names = dict(names or {})
    known = {id(v) for v in names.values()}
    taken = set(names) | set(variables_of(owner))
    for layer in found:
        if id(layer) in known:
            continue
        base = layer.name or to_snake_case(type(layer).__name__)
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        taken.add(name)
        if layer.name is None:
            layer.name = name
        names[name] = layer
    owner.__dict__["_fk_sublayers"] = names
    return names




def next_layer_seed() -> int:
    """The seed of a layer built by a call on arrays: a draw from the process-wide
    seed stream (`funkeras.random.next_seed`), so `fk.utils.set_random_seed(s)`
    makes a script's layers repeat, and two layers differ, as in Keras.
    """
    return next_seed()


# ----------------------------------------------------------------------------
# init / apply / penalty of a Keras-style layer.
# ----------------------------------------------------------------------------


def _with_batch(spec: Any, batch: Any) -> Any:
    return jax.tree.map(lambda s: (batch, *s.shape), spec)


def _zeros(spec: Any) -> Any:
    """One example of zeros for `spec`; an axis of unknown size (`None` in
    `Input(shape=...)`, a symbolic dimension) gets length 1, since the zero call
    that discovers sublayers runs eagerly."""

    def one(s: Any) -> Any:
        shape = tuple(d if isinstance(d, int | np.integer) else 1 for d in s.shape)
        return jnp.zeros((1, *shape), s.dtype)

    return jax.tree.map(one, spec)


def _run_call(layer: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
              frame: Frame) -> Any:
    takes_training, takes_mask = _call_params(type(layer))
    kwargs = dict(kwargs)
    if takes_training:
        kwargs.setdefault("training", frame.training)
    if takes_mask:
        kwargs.setdefault("mask", frame.sequence_mask)
    with bind(layer, frame):
        y = unwrap(layer.call(*args, **kwargs))
    for var in variables_of(layer).values():
        if var.regularizer is not None:
            tree = frame.params if var.trainable else frame.state
            frame.losses.append(var.regularizer(tree[var.name]))
    return y


def _ensure_built(layer: Any, input_spec: Any) -> None:
    if layer.built:
        return
    build = _user_build(layer)
    if build is not None:
        shape = _with_batch(input_spec, None)
        build(shape)
    layer.built = True


def keras_init(layer: Any, key: Any, input_spec: Any) -> tuple[dict, dict]:
    """`init` of a Keras-style layer: build once, draw the weights, init sublayers."""
    _ensure_built(layer, input_spec)
    layer.__dict__["_fk_input_spec"] = input_spec
    params: dict[str, Any] = {}
    state: dict[str, Any] = {}
    own = jax.random.fold_in(key, 0)
    for i, var in enumerate(variables_of(layer).values()):
        value = var.initial_value(jax.random.fold_in(own, i))
        (params if var.trainable else state)[var.name] = value
    frame = Frame(dict(params), dict(state), init_key=jax.random.fold_in(key, 1))
    _run_call(layer, (_zeros(input_spec),), {}, frame)
    # What the zero call added (a sublayer penalty, an add_loss) says whether
    # `penalty` has anything to compute.
    layer.__dict__["_fk_adds_loss"] = bool(frame.losses)
    if frame.losses:
        # An added loss that depends on the inputs (an activity term) cannot
        # come from `penalty(params)`: every call's losses then leave `apply`
        # through `collect_losses` instead.
        zero_state = dict(frame.state)
        layer.__dict__["_fk_activity"] = _depends_on_inputs(
            lambda x: _sum_losses(keras_call(layer, frame.params, zero_state, (x,))[2]),
            _zeros(input_spec),
        )
    for name in tracked_layers(layer):
        if name in frame.fresh:
            params[name], state[name] = frame.fresh[name]
    return params, state


def keras_call(
    layer: Any,
    params: dict,
    state: dict,
    args: tuple[Any, ...],
    kwargs: dict[str, Any] | None = None,
    *,
    training: bool = False,
    key: Any = None,
    mask: Any = None,
    sequence_mask: Any = None,
) -> tuple[Any, dict, list[Any]]:
    """Run `call` with the weights bound; return `(outputs, new_state, losses)`.

    `mask` is the row mask (for sublayers); `sequence_mask` what `call`
    receives as Keras' `mask`."""
    frame = Frame(params, dict(state), training=training, key=key, mask=mask,
                  sequence_mask=sequence_mask)
    y = _run_call(layer, tuple(args), kwargs or {}, frame)
    return y, frame.state, frame.losses


def keras_apply(layer: Any, params: dict, state: dict, x: Any, *,
                training: bool = False, key: Any = None,
                mask: Any = None, sequence_mask: Any = None) -> tuple[Any, dict]:
    """`apply` of a Keras-style layer (the protocol's signature)."""
    y, state, losses = keras_call(layer, params, state, (x,), training=training,
                                  key=key, mask=mask, sequence_mask=sequence_mask)
    sink = _LOSSES.get()
    if sink is not None and losses and keras_activity(layer):
        sink.append(_sum_losses(losses))
    return y, state


_LOSSES: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "funkeras_added_losses", default=None
)


@contextlib.contextmanager
def collect_losses() -> Iterator[list[Any]]:
    """Collect the input-dependent losses of the Keras-style layers `apply`d in
    the block (one scalar per call of a layer whose `add_loss` depends on its
    inputs, its weight penalties included); a train or test step adds their
    sum to the batch's loss."""
    token = _LOSSES.set([])
    try:
        yield _LOSSES.get()
    finally:
        _LOSSES.reset(token)


def keras_activity(layer: Any) -> bool:
    """Whether the layer's `call` adds a loss that depends on its inputs."""
    return bool(layer.__dict__.get("_fk_activity", False))


def _sum_losses(losses: list[Any]) -> Any:
    total = jnp.zeros((), jnp.float32)
    for loss in losses:
        total = total + jnp.sum(jnp.asarray(_unwrap(loss), jnp.float32))
    return total


def _depends_on_inputs(fn: Callable[[Any], Any], x: Any) -> bool:
    jaxpr = jax.make_jaxpr(fn)(x).jaxpr
    dep = {v for v in jaxpr.invars}
    for eqn in jaxpr.eqns:
        if any(isinstance(v, Var) and v in dep for v in eqn.invars):
            dep.update(eqn.outvars)
    return any(isinstance(v, Var) and v in dep for v in jaxpr.outvars)


def keras_has_penalty(layer: Any) -> bool:
    """Whether the layer's calls add weight-only losses (True until `init` has
    told; False when they depend on the inputs: see `collect_losses`)."""
    return bool(layer.__dict__.get("_fk_adds_loss", True)) and not keras_activity(layer)


def keras_penalty(layer: Any, params: dict) -> Any:
    """The losses `call` adds (and its sublayers' penalties), from the params.

    Re-runs `call` in inference mode on a zero batch of one row, with the
    initial state. Zero for a layer whose added losses depend on its inputs
    (they leave each call through `collect_losses`).
    """
    spec = layer.__dict__.get("_fk_input_spec")
    if spec is None or not keras_has_penalty(layer):
        return jnp.zeros((), jnp.float32)
    _, state0 = jax.eval_shape(lambda k: keras_init(layer, k, spec), jax.random.key(0))
    state = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), state0)

    def losses_of(x: Any) -> Any:
        return _sum_losses(keras_call(layer, params, state, (x,))[2])

    return losses_of(_zeros(spec))


def call_sublayer(parent: Any, frame: Frame, layer: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any], base_call: Any) -> Any:
    """Run sublayer `layer` inside `parent`'s call, on `frame`'s weights."""
    names = tracked_layers(parent)
    name = next((n for n, v in names.items() if v is layer), None)
    label = f"{type(parent).__name__}(name={parent.name!r})"
    if name is None:
        raise ValueError(
            f"{label}: `call` runs {type(layer).__name__}(name={layer.name!r}), "
            "which is not an attribute of the layer. Create sublayers in "
            "`__init__` (or `build`) and keep them as attributes (lists and "
            "dicts of layers are tracked)."
        )
    if name not in frame.params:
        if frame.init_key is None:
            raise ValueError(
                f"{label}: the params have no entry for sublayer {name!r}; they "
                "were made before it was used. Initialise the layer again."
            )
        index = list(names).index(name)
        spec = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(tuple(a.shape[1:]), a.dtype),
            args[0] if len(args) == 1 else list(args),
        )
        p, s = layer.init(jax.random.fold_in(frame.init_key, index), spec)
        frame.params[name], frame.state[name] = p, s
        frame.fresh[name] = (p, s)
    kwargs = dict(kwargs)
    training = kwargs.pop("training", frame.training)
    training = frame.training if training is None else training
    # `sub(x, mask=m)` in Keras' `call` gives the sublayer a sequence mask; the
    # row mask always comes from the frame.
    seq = kwargs.pop("mask", None)
    mask = frame.mask
    key = None
    if frame.key is not None and getattr(layer, "uses_key", True):
        key = jax.random.fold_in(frame.key, frame.calls)
    frame.calls += 1
    params, state = frame.params[name], frame.state[name]
    if is_keras_style(layer, base_call):
        y, state, losses = keras_call(layer, params, state, args, kwargs,
                                      training=training, key=key, mask=mask,
                                      sequence_mask=seq)
        frame.losses.extend(losses)
    else:
        if len(args) != 1 or kwargs:
            raise TypeError(
                f"{label}: {type(layer).__name__}(name={name!r}) takes one input "
                f"(got {len(args)} positional and {sorted(kwargs)} keyword "
                "arguments)."
            )
        consumes = getattr(layer, "consumes_sequence_mask", False)
        extra = {"sequence_mask": seq} if consumes else {}
        y, state = layer.apply(params, state, args[0], training=bool(training),
                               key=key, mask=mask, **extra)
        has_penalty = getattr(layer, "has_penalty", None)
        if not callable(has_penalty) or has_penalty():
            frame.losses.append(layer.penalty(params))
    frame.state[name] = state
    return y


# ----------------------------------------------------------------------------
# Flat lists of weights, Keras order: own trainable, own non-trainable, sublayers.
# ----------------------------------------------------------------------------


# Keras creates a built-in layer's variables in this order; `get_weights` follows it.
KERAS_WEIGHT_ORDER = (
    "kernel",
    "depthwise_kernel",
    "pointwise_kernel",
    "recurrent_kernel",
    "embeddings",
    "bias",
    "gamma",
    "beta",
    "moving_mean",
    "moving_variance",
    "forward_layer",
    "backward_layer",
)


def ordered_names(layer: Any, tree: dict) -> list[str]:
    """`tree`'s keys in Keras' order for `layer`: its variables in creation
    order, then its sublayers in attribute order (jit sorts dict keys, so the
    order comes from the layer, not the dict)."""
    # A built-in layer's nested params (`Bidirectional`'s two directions) have
    # no sublayer object to ask: they keep the rank order below.
    names = [] if layer is None else [n for n in variables_of(layer) if n in tree]
    order = getattr(layer, "weight_order", ())
    names += [n for n in order if n in tree and n not in names]
    if is_layer(layer) and hasattr(layer, "call"):
        names += [n for n in layer.__dict__.get("_fk_sublayers", {}) if n in tree]
    rank = {n: i for i, n in enumerate(KERAS_WEIGHT_ORDER)}
    rest = sorted((k for k in tree if k not in names),
                  key=lambda k: (rank.get(k, len(rank)), k))
    return names + rest


def sublayer(layer: Any, name: str) -> Any:
    """The sublayer `name` of a Keras-style layer (None if unknown)."""
    return layer.__dict__.get("_fk_sublayers", {}).get(name)


def _paths(layer: Any, params: dict, state: dict) -> list[tuple[bool, tuple[str, ...]]]:
    out: list[tuple[bool, tuple[str, ...]]] = []
    p_names, s_names = ordered_names(layer, params), ordered_names(layer, state)
    out += [(True, (k,)) for k in p_names if not isinstance(params[k], dict)]
    out += [(False, (k,)) for k in s_names if not isinstance(state[k], dict)]
    subs = [k for k in p_names if isinstance(params[k], dict)]
    subs += [k for k in s_names if isinstance(state[k], dict) and k not in subs]
    for k in subs:
        sub = sublayer(layer, k)
        for is_param, path in _paths(sub, params.get(k, {}), state.get(k, {})):
            out.append((is_param, (k, *path)))
    return out


def _copy(tree: dict) -> dict:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


def _get(tree: dict, path: tuple[str, ...]) -> Any:
    for k in path:
        tree = tree[k]
    return tree


def flat_weights(layer: Any, params: dict, state: dict) -> list[tuple[bool, Any]]:
    """`(is_param, array)` for every weight of `layer`, in Keras' order."""
    return [
        (p, _get(params if p else state, path)) for p, path in _paths(layer, params, state)
    ]


def set_flat_weights(layer: Any, owner: str, params: dict, state: dict,
                     weights: list[Any]) -> tuple[dict, dict]:
    """New `(params, state)` with `weights` (in `flat_weights` order) in place."""
    paths = _paths(layer, params, state)
    if len(weights) != len(paths):
        raise ValueError(
            f"{owner}: `set_weights` expects {len(paths)} arrays, got {len(weights)}."
        )
    params, state = _copy(params), _copy(state)
    for (is_param, path), w in zip(paths, weights, strict=True):
        tree = params if is_param else state
        old = _get(tree, path)
        if tuple(np.shape(w)) != tuple(old.shape):
            raise ValueError(
                f"{owner}: weight {'/'.join(path)} has shape {tuple(old.shape)}, "
                f"got {tuple(np.shape(w))}."
            )
        _get(tree, path[:-1])[path[-1]] = jnp.asarray(np.array(w, dtype=old.dtype))
    return params, state


def trainable_mask(layer: Any, params: dict, base_call: Any, on: bool = True) -> dict:
    """Bools shaped like a Keras-style layer's `params`: True where trained.

    A sublayer with `trainable=False` (set on the attribute, as in Keras) is
    frozen with everything under it. `base_call` is the base class's `call`.
    """
    on = on and bool(getattr(layer, "trainable", True))
    mask: dict[str, Any] = {}
    for name, value in params.items():
        sub = sublayer(layer, name) if isinstance(value, dict) else None
        if sub is None:
            mask[name] = jax.tree.map(lambda _, o=on: o, value)
        elif is_keras_style(sub, base_call):
            mask[name] = trainable_mask(sub, value, base_call, on)
        else:
            sub_on = on and bool(getattr(sub, "trainable", True))
            mask[name] = jax.tree.map(lambda _, o=sub_on: o, value)
    return mask
