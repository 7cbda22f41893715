"""Keras' JAX customization API over funkeras' pure train state.

Keras 3 on JAX lets a `Model` subclass override `train_step(self, state, data)`
where `state` is `(trainable_variables, non_trainable_variables,
optimizer_variables, metrics_variables)` (four lists of arrays) and the step
returns `(logs, new_state)`, written with `stateless_call`,
`stateless_compute_loss`, `optimizer.stateless_apply` and the metrics'
`stateless_update_state`; `test_step(self, state, data)` takes
`(trainable_variables, non_trainable_variables, metrics_variables)`.

funkeras keeps its own train state (`TrainState`: params and state pytrees, an
optax state, metric states). This module maps one onto the other:

- `VariableLayout`: params/state pytrees <-> Keras' two flat lists, in Keras'
  order (`model.trainable_variables`, then `model.non_trainable_variables`:
  frozen params and layer state).
- the optimizer variables are the leaves of the optax state;
- the metrics variables are the variables of `model.metrics`, one flat list
  (the compiled loss tracker `"loss"`, the compiled metrics
  `"compile_metrics"`, then the metrics the model holds as attributes);
- `keras_train_step` / `keras_test_step` / `keras_predict_step` turn a
  Keras-form step into funkeras' pure step signatures, so the loop, the
  executors and `jax.jit` see an ordinary step (one compile per shape).

A step scope (a `contextvars.ContextVar`) carries the batch's row mask and PRNG
key into `stateless_call` and `compute_loss` while a Keras-form step runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from funkeras import metrics as metrics_lib
from funkeras.metrics.base import row_mask_scope
from funkeras.training.state import Batch, TrainState, step_key
from funkeras.utils.dataset import pack_x_y_sample_weight

__all__ = [
    "StepScope",
    "current_scope",
    "step_scope",
    "is_keras_train_step",
    "is_keras_step",
    "VariableLayout",
    "ModelVariable",
    "CompileMetrics",
    "KerasMetrics",
    "flatten_logs",
    "keras_train_step",
    "keras_test_step",
    "keras_predict_step",
    "stateless_apply",
    "get_path",
    "put_path",
    "tracked_metrics",
]


# ----------------------------------------------------------------------------
# The step scope.
# ----------------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class StepScope:
    """What a Keras-form step's pieces read while it runs.

    Attributes:
        mask: The batch's row mask (False on padding rows), or None.
        key: The step's PRNG key (None when the model draws no random numbers).
        calls: How many `stateless_call`s this step made (call `i > 0` draws
            from `fold_in(key, i)`).
        params: The params of the latest `stateless_call` or
            `stateless_compute_loss` (their regularization penalty joins
            `compute_loss`).
        losses: The input-dependent losses (`add_loss` in `call`) of that call.
    """

    mask: Any = None
    key: Any = None
    calls: int = 0
    params: Any = None
    losses: Any = None

    def next_key(self) -> Any:
        if self.key is None:
            return None
        key = self.key if self.calls == 0 else jax.random.fold_in(self.key, self.calls)
        self.calls += 1
        return key

    def rows(self, batch: int) -> Any:
        """The row mask if it fits a batch of `batch` rows, else None."""
        if self.mask is None or jnp.shape(self.mask)[0] != batch:
            return None
        return self.mask


_SCOPE: contextvars.ContextVar[StepScope | None] = contextvars.ContextVar(
    "funkeras_keras_step", default=None
)


def current_scope() -> StepScope | None:
    """The scope of the Keras-form step running now, or None."""
    return _SCOPE.get()


@contextlib.contextmanager
def step_scope(mask: Any = None, key: Any = None) -> Iterator[StepScope]:
    """Run a Keras-form step's body with its row mask and key in scope."""
    scope = StepScope(mask=mask, key=key)
    token = _SCOPE.set(scope)
    try:
        with row_mask_scope(mask):
            yield scope
    finally:
        _SCOPE.reset(token)


# ----------------------------------------------------------------------------
# Which contract an override follows.
# ----------------------------------------------------------------------------


def _positional(method: Callable[..., Any]) -> list[str] | None:
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                 p.POSITIONAL_OR_KEYWORD)]


def is_keras_train_step(method: Callable[..., Any]) -> bool:
    """Whether a bound `train_step` override follows Keras' JAX contract.

    Both contracts take two arguments; Keras' names them `(state, data)`,
    funkeras' `(train_state, batch)`. The override is Keras' when its first
    argument is called `state` or its second `data`.
    """
    names = _positional(method)
    if not names or len(names) != 2:
        return False
    return names[0] == "state" or names[1] == "data"


def is_keras_step(method: Callable[..., Any], funkeras_arity: int) -> bool:
    """Whether a bound `test_step`/`predict_step` override is Keras' `(state,
    data)` form (funkeras' takes `funkeras_arity` arguments)."""
    names = _positional(method)
    return names is not None and len(names) == 2 != funkeras_arity


# ----------------------------------------------------------------------------
# Params/state pytrees <-> Keras' flat lists of variables.
# ----------------------------------------------------------------------------


def get_path(tree: Any, path: tuple[str, ...]) -> Any:
    """`tree[path[0]][path[1]]...`."""
    for k in path:
        tree = tree[k]
    return tree


def put_path(tree: dict, path: tuple[str, ...], value: Any) -> None:
    """Set `tree[path[0]]...[path[-1]] = value` (the dicts on the way exist)."""
    for k in path[:-1]:
        tree = tree[k]
    tree[path[-1]] = value


_get, _put = get_path, put_path


def _skeleton(tree: Any) -> Any:
    if not isinstance(tree, dict):
        return None
    return {k: _skeleton(v) for k, v in tree.items()}


def _value(v: Any) -> Any:
    return v.value if isinstance(v, ModelVariable) else v


class VariableLayout:
    """Where each of Keras' variables lives in funkeras' `(params, state)`.

    Args:
        entries: `(path, is_param, trainable)` per weight in Keras' order
            (`Model.weight_entries()`).
        shapes: `(params, state)` as `jax.ShapeDtypeStruct` trees.
    """

    def __init__(self, entries: list[tuple[tuple[str, ...], bool, bool]],
                 shapes: tuple[Any, Any]) -> None:
        self.trainable = [(path, True) for path, p, t in entries if t]
        self.non_trainable = [(path, p) for path, p, t in entries if not t]
        self.shapes = shapes

    def split(self, params: Any, state: Any) -> tuple[list[Any], list[Any]]:
        """`(trainable_variables, non_trainable_variables)` as lists of arrays."""
        trees = {True: params, False: state}
        return (
            [_get(params, path) for path, _ in self.trainable],
            [_get(trees[p], path) for path, p in self.non_trainable],
        )

    def merge(self, trainable: Any, non_trainable: Any,
              owner: str = "stateless_call") -> tuple[Any, Any]:
        """`(params, state)` from the two lists (the inverse of `split`)."""
        self.check(owner, "trainable_variables", trainable, self.trainable)
        self.check(owner, "non_trainable_variables", non_trainable, self.non_trainable)
        params, state = _skeleton(self.shapes[0]), _skeleton(self.shapes[1])
        trees = {True: params, False: state}
        for (path, _), v in zip(self.trainable, trainable, strict=True):
            _put(params, path, _value(v))
        for (path, p), v in zip(self.non_trainable, non_trainable, strict=True):
            _put(trees[p], path, _value(v))
        return params, state

    def params_with(self, trainable: Any, fill: Callable[[Any], Any]) -> Any:
        """A params tree: `trainable` in place, `fill(shape)` for frozen params."""
        params = jax.tree.map(fill, self.shapes[0])
        for (path, _), v in zip(self.trainable, trainable, strict=True):
            _put(params, path, _value(v))
        return params

    def check(self, owner: str, what: str, values: Any, slots: list[Any]) -> None:
        if not isinstance(values, list | tuple) or len(values) != len(slots):
            got: Any = type(values).__name__
            if isinstance(values, list | tuple):
                got = len(values)
            raise ValueError(
                f"{owner}: `{what}` must be a list of {len(slots)} arrays in the "
                f"order of `model.{what}`, got {got}."
            )


class ModelVariable:
    """One of a model's weights as Keras shows it (`model.trainable_variables`).

    `.value` is the current array; `assign(v)` replaces it in the model's
    params or state. `.path` is `"layer/weight"`.

    Example:
        >>> import funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(2,)), fk.layers.Dense(1)])
        >>> [v.path for v in model.trainable_variables]
        ['dense/kernel', 'dense/bias']
    """

    def __init__(self, model: Any, path: tuple[str, ...], is_param: bool,
                 trainable: bool) -> None:
        self.model, self.path_keys = model, path
        self.is_param, self.trainable = is_param, trainable

    @property
    def path(self) -> str:
        return "/".join(self.path_keys)

    @property
    def name(self) -> str:
        return self.path_keys[-1]

    @property
    def value(self) -> Any:
        tree = self.model.params if self.is_param else self.model.state
        return _get(tree, self.path_keys)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def dtype(self) -> Any:
        return self.value.dtype

    def numpy(self) -> np.ndarray:
        return np.asarray(self.value)

    def assign(self, value: Any) -> None:
        """Set the weight (shape and dtype kept)."""
        old = self.value
        value = jnp.asarray(_value(value), old.dtype)
        if value.shape != old.shape:
            raise ValueError(
                f"{self.path}: cannot assign shape {tuple(value.shape)} to a weight "
                f"of shape {tuple(old.shape)}."
            )
        tree = jax.tree.map(lambda a: a, self.model.params if self.is_param
                            else self.model.state)
        _put(tree, self.path_keys, value)
        if self.is_param:
            self.model.params = tree
        else:
            self.model.state = tree

    def __jax_array__(self) -> Any:
        return self.value

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self.value)
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return (f"<ModelVariable path={self.path}, shape={self.shape}, "
                f"trainable={self.trainable}>")


# ----------------------------------------------------------------------------
# Metrics as Keras lists them.
# ----------------------------------------------------------------------------


class CompileMetrics:
    """The metrics given to `compile`, as Keras' one `"compile_metrics"` metric.

    Its variables are the leaves of the compiled metrics' states;
    `stateless_update_state(vars, y, y_pred, sample_weight=None)` updates them
    all; `stateless_result(vars)` is a dict `{metric name: value}` (flattened
    into the logs, as Keras does).
    """

    name = "compile_metrics"

    def __init__(self, objective: Any) -> None:
        self.objective = objective
        trackers, states = objective.init_metrics()
        self._trackers0 = trackers
        self._leaves0, self._treedef = jax.tree.flatten(states)

    @property
    def variables(self) -> list[Any]:
        return list(self._leaves0)

    def _states(self, metric_variables: Any) -> Any:
        if len(metric_variables) != len(self._leaves0):
            raise ValueError(
                f"compile_metrics: expected {len(self._leaves0)} variables, got "
                f"{len(metric_variables)}."
            )
        return jax.tree.unflatten(self._treedef, list(metric_variables))

    def stateless_update_state(self, metric_variables: Any, y_true: Any,
                               y_pred: Any, sample_weight: Any = None) -> list[Any]:
        states = self._states(metric_variables)
        batch = jax.tree.leaves(y_pred)[0].shape[0]
        scope = current_scope()
        mask = None if scope is None else scope.rows(batch)
        if mask is None:
            mask = jnp.ones((batch,), bool)
        _, new = self.objective.update_metrics(
            (self._trackers0, states), y_true, y_pred, sample_weight, mask,
            jnp.zeros((), jnp.float32), {},
        )
        return jax.tree.leaves(new)

    def stateless_result(self, metric_variables: Any) -> dict[str, Any]:
        logs = self.objective.results((self._trackers0, self._states(metric_variables)))
        skip = {"loss", *self.objective.loss_names}
        return {k: v for k, v in logs.items() if k not in skip}

    def stateless_reset_state(self) -> list[Any]:
        return list(self._leaves0)

    def __repr__(self) -> str:
        return "CompileMetrics(name='compile_metrics')"


def _is_metric(x: Any) -> bool:
    return callable(getattr(x, "stateless_update_state", None)) and hasattr(
        x, "variables"
    )


def tracked_metrics(owner: Any) -> list[Any]:
    """The metric objects `owner` holds as attributes (lists and dicts walked)."""
    out: list[Any] = []
    seen: set[int] = set()

    def walk(v: Any) -> None:
        if isinstance(v, metrics_lib.Metric) and id(v) not in seen:
            seen.add(id(v))
            out.append(v)
        elif isinstance(v, list | tuple):
            for i in v:
                walk(i)
        elif isinstance(v, dict):
            for i in v.values():
                walk(i)

    for name, value in vars(owner).items():
        if not name.startswith("_"):
            walk(value)
    return out


class KerasMetrics:
    """The compiled objective seen through Keras' flat `metrics_variables`.

    The loop keeps `init_metrics()` (one list: the variables of every metric
    in `model.metrics`) in the train state; the rest of the objective
    (losses, log names) is the compiled one's.
    """

    def __init__(self, objective: Any, metrics: Callable[[], list[Any]]) -> None:
        self.inner = objective
        self.metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def slices(self, metrics_variables: Any) -> list[tuple[Any, list[Any]]]:
        out, i = [], 0
        for m in self.metrics():
            n = len(m.variables)
            out.append((m, list(metrics_variables[i:i + n])))
            i += n
        return out

    def init_metrics(self) -> list[Any]:
        out: list[Any] = []
        for m in self.metrics():
            if not _is_metric(m):
                raise TypeError(
                    f"model.metrics: {m!r} is not a metric (it needs `variables` "
                    "and `stateless_update_state`)."
                )
            out += [jnp.asarray(v) for v in m.stateless_reset_state()]
        return out

    def results(self, metrics_variables: Any) -> dict[str, Any]:
        return flatten_logs(
            {m.name: m.stateless_result(v) for m, v in self.slices(metrics_variables)}
        )


def flatten_logs(logs: Any) -> dict[str, Any]:
    """Keras' logs with nested dicts (`"compile_metrics"`) merged in."""
    if not isinstance(logs, Mapping):
        raise TypeError(
            f"train_step/test_step: the logs must be a dict of scalars, got "
            f"{type(logs).__name__}."
        )
    out: dict[str, Any] = {}
    for k, v in logs.items():
        if isinstance(v, Mapping):
            out.update(flatten_logs(v))
        else:
            out[str(k)] = jnp.asarray(v)
    return out


# ----------------------------------------------------------------------------
# Keras-form steps as funkeras steps.
# ----------------------------------------------------------------------------


def _data(batch: Batch) -> Any:
    if batch.y is None and batch.sample_weight is None:
        return (batch.x,)
    return pack_x_y_sample_weight(batch.x, batch.y, batch.sample_weight)


def _check_state(name: str, new: Any, n: int, what: str) -> tuple[Any, ...]:
    if not isinstance(new, list | tuple) or len(new) != n:
        raise ValueError(
            f"{name}: a Keras-style step returns `(logs, state)` with state "
            f"`({what})`; got {type(new).__name__}"
            + (f" of {len(new)}" if isinstance(new, list | tuple) else "") + "."
        )
    return tuple(new)


def keras_train_step(step: Callable[..., Any], layout: VariableLayout,
                     opt_treedef: Any, uses_key: bool) -> Callable[..., Any]:
    """`(TrainState, Batch) -> (TrainState, logs)` running Keras' `train_step(state,
    data)`, `step`."""

    def train_step(ts: TrainState, batch: Batch) -> tuple[TrainState, Any]:
        tv, ntv = layout.split(ts.params, ts.state)
        state = (tv, ntv, jax.tree.leaves(ts.opt_state), list(ts.metrics))
        key = step_key(ts) if uses_key else None
        with step_scope(batch.mask, key):
            out = step(state, _data(batch))
        logs, new = _check_state("train_step", out, 2, "logs, state")
        tv, ntv, ov, mv = _check_state(
            "train_step", new, 4,
            "trainable_variables, non_trainable_variables, optimizer_variables, "
            "metrics_variables",
        )
        params, new_state = layout.merge(tv, ntv, "train_step")
        opt_state = jax.tree.unflatten(opt_treedef, list(ov))
        metrics = [jnp.asarray(v).astype(jnp.asarray(o).dtype)
                   for v, o in zip(mv, ts.metrics, strict=True)]
        ts = ts._replace(params=params, state=new_state, opt_state=opt_state,
                         metrics=metrics, step=ts.step + 1)
        return ts, flatten_logs(logs)

    return train_step


def keras_test_step(
    step: Callable[..., Any], layout: VariableLayout
) -> Callable[..., Any]:
    """`(params, state, metrics, batch) -> (metrics, logs)` running Keras'
    `test_step(state, data)`, `step`."""

    def test_step(params: Any, state: Any, metrics: Any, batch: Batch) -> Any:
        tv, ntv = layout.split(params, state)
        with step_scope(batch.mask, None):
            out = step((tv, ntv, list(metrics)), _data(batch))
        logs, new = _check_state("test_step", out, 2, "logs, state")
        _, _, mv = _check_state(
            "test_step", new, 3,
            "trainable_variables, non_trainable_variables, metrics_variables",
        )
        metrics = [jnp.asarray(v).astype(jnp.asarray(o).dtype)
                   for v, o in zip(mv, metrics, strict=True)]
        return metrics, flatten_logs(logs)

    return test_step


def keras_predict_step(
    step: Callable[..., Any], layout: VariableLayout
) -> Callable[..., Any]:
    """`(params, state, x) -> y` running Keras' `predict_step(state, data)`,
    which returns `(y_pred, non_trainable_variables)` (or just `y_pred`)."""

    def predict_step(params: Any, state: Any, x: Any) -> Any:
        tv, ntv = layout.split(params, state)
        with step_scope(None, None):
            out = step((tv, ntv), (x,))
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], list):
            return out[0]
        return out

    return predict_step


def stateless_apply(tx: Any, opt_treedef: Any, layout: VariableLayout,
                    optimizer_variables: Any, grads: Any,
                    trainable_variables: Any) -> tuple[list[Any], list[Any]]:
    """Keras' `optimizer.stateless_apply`: `(new trainable, new optimizer
    variables)` after one update of `tx` with `grads` (lists in
    `trainable_variables` order)."""
    layout.check("optimizer.stateless_apply", "trainable_variables",
                 trainable_variables, layout.trainable)
    layout.check("optimizer.stateless_apply", "grads", grads, layout.trainable)
    leaves = list(optimizer_variables)
    if len(leaves) != opt_treedef.num_leaves:
        raise ValueError(
            f"optimizer.stateless_apply: expected {opt_treedef.num_leaves} optimizer "
            f"variables, got {len(leaves)}."
        )
    opt_state = jax.tree.unflatten(opt_treedef, leaves)

    def zeros(s: Any) -> Any:
        return jnp.zeros(s.shape, s.dtype)

    params = layout.params_with(trainable_variables, zeros)
    grad_tree = layout.params_with(grads, zeros)
    updates, opt_state = tx.update(grad_tree, opt_state, params)
    params = optax.apply_updates(params, updates)
    return ([_get(params, path) for path, _ in layout.trainable],
            jax.tree.leaves(opt_state))
