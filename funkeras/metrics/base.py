"""The base of the metrics: `Metric`, the reductions `Mean` and `Sum`,
`MeanMetricWrapper` (the mean of a per-sample function) and `row_weights`.

A metric object holds configuration only; its state is a dict of arrays that
`init`, `update` and `result` pass along (see `funkeras.metrics`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp

from funkeras import losses
from funkeras._catalogue import Catalogue
from funkeras._validation import normalize_dtype, shape_str, to_snake_case
from funkeras.layers import subclassing as sc
from funkeras.losses.base import div_no_nan, per_sample
from funkeras.typing import Array, ArrayLike

__all__ = [
    "State",
    "FUNCTIONS",
    "Metric",
    "Mean",
    "Sum",
    "MeanMetricWrapper",
    "row_weights",
    "num_outputs",
    "row_mask_scope",
]


_ROW_MASK: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "funkeras_metric_row_mask", default=None
)


@contextlib.contextmanager
def row_mask_scope(mask: Any) -> Iterator[None]:
    """Within the block, `stateless_update_state` counts only the rows `mask` marks.

    A Keras-style `train_step(state, data)` runs inside it: a short last batch
    is padded by repeating rows, and the padding must not reach the metrics.
    Per-row values (leading axis of the mask's length) are masked; a scalar
    (a batch's loss) counts once, as in Keras.
    """
    token = _ROW_MASK.set(mask)
    try:
        yield
    finally:
        _ROW_MASK.reset(token)


State = dict[str, Array]
"""A metric's state: arrays keyed by Keras' variable names."""

FUNCTIONS = Catalogue("metric function", {})
"""The built-in per-sample metric functions by name (registered where defined)."""


def row_weights(
    y_pred: ArrayLike,
    sample_weight: ArrayLike | None = None,
    mask: ArrayLike | None = None,
) -> Array | None:
    """One weight per row, `(batch,)` float32: sample weights times the row mask.

    The helper `update` methods use, also for `Metric` subclasses. Returns `None`
    when both are `None` (every row counts once).

    Args:
        y_pred: The batch (only its leading axis is used).
        sample_weight: Optional weights, shape `()`, `(batch,)` or `(batch, 1)`.
        mask: Optional boolean `(batch,)` vector, True for real rows.

    Returns:
        A `(batch,)` float32 array, or `None`.

    Raises:
        ValueError: For weights or a mask of another shape.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.metrics import row_weights
        >>> row_weights(jnp.zeros((3, 2)), jnp.array([1., 2., 3.]),
        ...             jnp.array([True, True, False])).tolist()
        [1.0, 2.0, 0.0]
    """
    if sample_weight is None and mask is None:
        return None
    batch = jnp.shape(y_pred)[0]
    weights = jnp.ones((batch,), jnp.float32)
    for what, w in (("sample_weight", sample_weight), ("mask", mask)):
        if w is None:
            continue
        w = jnp.asarray(w)
        if w.ndim == 2 and w.shape[-1] == 1:
            w = w[:, 0]
        if w.ndim > 1 or (what == "mask" and w.ndim != 1):
            raise ValueError(
                f"metrics: `{what}` must have shape (batch,), got shape "
                f"{shape_str(w.shape)}."
            )
        weights = weights * jnp.broadcast_to(w.astype(jnp.float32), (batch,))
    return weights


class Metric:
    """Base class of metrics: configuration plus pure `init`, `update`, `result`.

    Subclass it and define `init(y_pred_spec=None) -> state` (a dict of arrays),
    `update(state, y_true, y_pred, sample_weight=None, mask=None) -> state` and
    `result(state) -> array`. Keep them pure (they run inside a jitted step) and
    let masked rows contribute nothing (`row_weights` combines the weights and the
    mask).

    Args:
        name: The name shown in logs (defaults to the snake_case class name).
        dtype: The dtype of the state and the result (float32).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> class MaxError(metrics.Metric):
        ...     def init(self, y_pred_spec=None):
        ...         return {"max": jnp.zeros(())}
        ...     def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
        ...         err = jnp.abs(y_pred - y_true).max(axis=-1)
        ...         w = metrics.row_weights(y_pred, sample_weight, mask)
        ...         err = err if w is None else jnp.where(w > 0, err, 0.0)
        ...         return {"max": jnp.maximum(state["max"], err.max())}
        ...     def result(self, state):
        ...         return state["max"]
        >>> m = MaxError()
        >>> state = m.update(m.init(), jnp.zeros((2, 1)), jnp.array([[0.5], [3.0]]),
        ...                  mask=jnp.array([True, False]))
        >>> float(m.result(state))
        0.5
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Keras' way: `update_state` + `result(self)` over `add_variable`
        # variables. The user's `result` becomes `keras_result`; `result(state)`
        # binds the state and calls it.
        super().__init_subclass__(**kwargs)
        keras_style = any("update_state" in c.__dict__ for c in cls.__mro__[:-1]
                          if c is not Metric)
        if keras_style and "result" in cls.__dict__:
            cls.keras_result = cls.__dict__["result"]
            cls.result = Metric.bound_result

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        owner = type(self).__name__
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"{owner}: `name` must be a non-empty str, got {name!r}.")
        self.name = name or to_snake_case(owner)
        self.dtype = normalize_dtype(owner, "float32" if dtype is None else dtype)

    def init(self, y_pred_spec: Any = None) -> State:
        """A fresh state (zeros).

        Args:
            y_pred_spec: The spec (shape without the batch axis, and dtype) of one
                prediction; needed only by metrics whose state depends on the
                number of outputs (`R2Score`, `F1Score`, multi-label `AUC`).
        """
        if self._keras_style():
            return {
                var.name: var.initial_value(jax.random.key(i))
                for i, var in enumerate(sc.variables_of(self).values())
            }
        raise TypeError(f"{type(self).__name__}: a Metric subclass must define `init`.")

    def update(
        self,
        state: State,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
        mask: ArrayLike | None = None,
    ) -> State:
        """The state after one more batch (pure).

        A Keras-style metric's `update_state` runs with `state` bound to its
        variables and gets `sample_weight` times the row mask (so padded rows
        count for nothing when `update_state` honours `sample_weight`).
        """
        if self._keras_style():
            frame = sc.Frame({}, dict(state))
            weights = row_weights(y_pred, sample_weight, mask)
            with sc.bind(self, frame):
                self.update_state(y_true, y_pred, sample_weight=weights)
            return frame.state
        raise TypeError(
            f"{type(self).__name__}: a Metric subclass must define `update`."
        )

    def result(self, state: State) -> Array:
        """The metric's value for everything accumulated in `state`."""
        raise TypeError(
            f"{type(self).__name__}: a Metric subclass must define `result`."
        )

    # -- Keras' way of writing a metric -------------------------------------------

    def _keras_style(self) -> bool:
        return callable(getattr(self, "update_state", None))

    def add_variable(
        self,
        shape: Any = (),
        initializer: Any = "zeros",
        dtype: Any = None,
        aggregation: str = "sum",
        name: str | None = None,
    ) -> sc.Variable:
        """Record a state variable (Keras' `Metric.add_variable`); return its handle.

        Written Keras-style, a metric defines `update_state(y_true, y_pred,
        sample_weight=None)` (assigning its variables), `result()` and, if the
        default (back to the initial values) does not fit, `reset_state()`;
        it becomes a pure metric that `compile(metrics=[...])` runs under jit.

        Example:
            >>> import jax.numpy as jnp
            >>> import funkeras as fk
            >>> class Total(fk.metrics.Metric):
            ...     def __init__(self, name="total", **kwargs):
            ...         super().__init__(name=name, **kwargs)
            ...         self.total = self.add_variable(shape=(), name="total")
            ...     def update_state(self, y_true, y_pred, sample_weight=None):
            ...         self.total.assign_add(jnp.sum(y_pred))
            ...     def result(self):
            ...         return self.total.value
            >>> m = Total()
            >>> m.update_state(None, jnp.ones((2, 2)))
            >>> float(m.result())
            4.0
        """
        del aggregation
        return sc.add_variable(self, shape, initializer, dtype, False, None, None, name)

    add_weight = add_variable

    def concrete_weights(self) -> tuple[dict, State]:
        """`({}, state)`: the metric's own state for calls outside `compile`."""
        if "_fk_state" not in self.__dict__:
            self.__dict__["_fk_state"] = dict(self.init())
        return {}, self.__dict__["_fk_state"]

    def reset_state(self) -> None:
        """Set every variable back to its initial value (Keras' `reset_state`)."""
        for i, var in enumerate(sc.variables_of(self).values()):
            var.assign(var.initial_value(jax.random.key(i)))

    def bound_result(self, state: State | None = None) -> Array:
        """`result` of a Keras-style metric: its `result()` with `state` bound
        (the metric's own state outside `compile` when `state` is None)."""
        if state is None:
            return sc.unwrap(self.keras_result())
        with sc.bind(self, sc.Frame({}, dict(state))):
            return sc.unwrap(self.keras_result())

    # -- Keras' stateless API (a list of arrays for the metric's variables) ------

    def _state_names(self) -> list[str]:
        names = self.__dict__.get("_fk_state_names")
        if names is None:
            names = list(self.concrete_weights()[1])
            self.__dict__["_fk_state_names"] = names
        return names

    @property
    def variables(self) -> list[Any]:
        """The metric's variables in Keras' order (handles for a Keras-style
        metric, the current arrays otherwise); `len(metric.variables)` is how
        many entries the metric takes in Keras' flat `metrics_variables`."""
        if self._keras_style():
            return list(sc.variables_of(self).values())
        state = self.concrete_weights()[1]
        return [state[n] for n in self._state_names()]

    def stateless_update_state(
        self, metric_variables: Any, *args: Any, **kwargs: Any
    ) -> list[Any]:
        """Keras' `stateless_update_state`: the variables after one more batch.

        Pure: `metric_variables` is a list in `variables` order; the new list
        is returned. Inside a Keras-style train step, padding rows are masked.

        Example:
            >>> import jax.numpy as jnp
            >>> import funkeras as fk
            >>> m = fk.metrics.MeanAbsoluteError()
            >>> v = m.stateless_update_state(m.stateless_reset_state(),
            ...                              jnp.zeros((2, 1)), jnp.ones((2, 1)))
            >>> float(m.stateless_result(v))
            1.0
        """
        names = self._state_names()
        if len(metric_variables) != len(names):
            raise ValueError(
                f"{self!r}.stateless_update_state: expected {len(names)} variables "
                f"({names}), got {len(metric_variables)}."
            )
        state = dict(zip(names, (sc.unwrap(v) for v in metric_variables), strict=True))
        mask = _ROW_MASK.get()
        if mask is not None and args:
            first = jnp.asarray(sc.unwrap(args[-1]))
            if first.ndim and first.shape[0] == jnp.shape(mask)[0]:
                kwargs = {**kwargs, "mask": mask}
        new = self.update(state, *args, **kwargs)
        return [new[n] for n in names]

    def stateless_result(self, metric_variables: Any) -> Any:
        """Keras' `stateless_result`: the value for the variables given."""
        names = self._state_names()
        return self.result(
            dict(zip(names, (sc.unwrap(v) for v in metric_variables), strict=True))
        )

    def stateless_reset_state(self) -> list[Any]:
        """Keras' `stateless_reset_state`: the initial variables, as a list."""
        state = self.init()
        return [state[n] for n in self._state_names()]

    def get_config(self) -> dict[str, Any]:
        """The metric's configuration as a JSON-safe dict (`from_config` inverts it)."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        """Rebuild a metric from `get_config()`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def _zeros(self, shape: tuple[int, ...] = ()) -> Array:
        return jnp.zeros(shape, self.dtype)


def num_outputs(owner: str, y_pred_spec: Any) -> int:
    """The size of the last axis of one prediction (`init`'s `y_pred_spec`)."""
    if y_pred_spec is None:
        raise ValueError(
            f"{owner}: `init` needs `y_pred_spec`, the shape of one prediction "
            "(without the batch axis), to size its state: e.g. "
            "`metric.init(jax.ShapeDtypeStruct((3,), jnp.float32))`."
        )
    shape = tuple(getattr(y_pred_spec, "shape", y_pred_spec))
    return int(shape[-1]) if shape else 1


class Mean(Metric):
    """The (weighted) mean of the values given to `update`.

    `update(state, values, sample_weight=None, mask=None)`: values of shape
    `(batch, ...)` are averaged over their non-batch axes first; a scalar counts
    once (or with its scalar weight; with `mask`, weighted by the number of real
    rows). State: `total`, `count`.

    Args:
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.Mean()
        >>> state = m.update(m.init(), jnp.array([1., 3., 5., 7.]),
        ...                  sample_weight=jnp.array([1., 1., 0., 0.]))
        >>> float(m.result(state))
        2.0
    """

    def __init__(self, name: str | None = "mean", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def init(self, y_pred_spec: Any = None) -> State:
        return {"total": self._zeros(), "count": self._zeros()}

    def update(  # type: ignore[override]
        self,
        state: State,
        values: ArrayLike,
        sample_weight: ArrayLike | None = None,
        mask: ArrayLike | None = None,
    ) -> State:
        values = jnp.asarray(values).astype(self.dtype)
        if values.ndim == 0:
            weight = jnp.ones((), self.dtype)
            if sample_weight is not None:
                # Keras broadcasts a scalar over per-row weights: sum of weights.
                weight = weight * jnp.sum(jnp.asarray(sample_weight, self.dtype))
            if mask is not None:
                weight = weight * jnp.sum(jnp.asarray(mask).astype(self.dtype))
            return {
                "total": state["total"] + jnp.where(weight != 0, values * weight, 0.0),
                "count": state["count"] + weight,
            }
        values = per_sample(values)
        return self._accumulate(state, values, row_weights(values, sample_weight, mask))

    def _accumulate(self, state: State, values: Array, weights: Array | None) -> State:
        if weights is None:
            total = jnp.sum(values)
            count = jnp.sum(jnp.ones_like(values))
        else:
            weights = weights.astype(self.dtype)
            total = jnp.sum(jnp.where(weights != 0, values * weights, 0.0))
            count = jnp.sum(weights)
        return {"total": state["total"] + total, "count": state["count"] + count}

    def result(self, state: State) -> Array:
        return div_no_nan(state["total"], state["count"])


class Sum(Metric):
    """The (weighted) sum of the values given to `update`.

    `update(state, values, sample_weight=None, mask=None)`; values of shape
    `(batch, ...)` are summed over their non-batch axes. State: `total`.

    Args:
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.Sum()
        >>> float(m.result(m.update(m.init(), jnp.array([1., 3., 5., 7.]))))
        16.0
    """

    def __init__(self, name: str | None = "sum", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def init(self, y_pred_spec: Any = None) -> State:
        return {"total": self._zeros()}

    def update(  # type: ignore[override]
        self,
        state: State,
        values: ArrayLike,
        sample_weight: ArrayLike | None = None,
        mask: ArrayLike | None = None,
    ) -> State:
        values = jnp.asarray(values).astype(self.dtype)
        if values.ndim == 0:
            weight = jnp.ones((), self.dtype)
            if sample_weight is not None:
                weight = weight * jnp.asarray(sample_weight, self.dtype).reshape(())
            if mask is not None:
                weight = weight * jnp.sum(jnp.asarray(mask).astype(self.dtype))
            return {
                "total": state["total"] + jnp.where(weight != 0, values * weight, 0.0)
            }
        if values.ndim > 1:
            values = jnp.sum(values, axis=tuple(range(1, values.ndim)))
        weights = row_weights(values, sample_weight, mask)
        if weights is not None:
            values = jnp.where(weights != 0, values * weights, 0.0)
        return {"total": state["total"] + jnp.sum(values)}

    def result(self, state: State) -> Array:
        return state["total"]


class MeanMetricWrapper(Mean):
    """The (weighted) mean over samples of a per-sample function `fn(y_true, y_pred)`.

    Loss functions and the accuracy functions are wrapped this way. State:
    `total`, `count`.

    Args:
        fn: A function `(y_true, y_pred, **kwargs) -> (batch,)` (or `(batch, ...)`,
            averaged over its non-batch axes).
        name: The metric's name (defaults to `fn.__name__`).
        dtype: The state's dtype.
        **kwargs: Passed to `fn` on every update.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses, metrics
        >>> m = metrics.MeanMetricWrapper(losses.huber, delta=0.5)
        >>> state = m.update(m.init(), jnp.zeros((2, 1)), jnp.array([[0.25], [2.0]]))
        >>> float(m.result(state))
        0.453125
    """

    def __init__(
        self,
        fn: Callable[..., Array],
        name: str | None = None,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if not callable(fn):
            raise TypeError(
                f"{type(self).__name__}: `fn` must be a function, got {fn!r}."
            )
        super().__init__(name=name or getattr(fn, "__name__", None), dtype=dtype)
        self.fn = fn
        self._fn_kwargs = dict(kwargs)

    def update(  # type: ignore[override]
        self,
        state: State,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
        mask: ArrayLike | None = None,
        sequence_mask: ArrayLike | None = None,
    ) -> State:
        """Add a batch. `sequence_mask` (Keras' mask of `y_pred`, e.g. `(batch,
        time)`) makes masked timesteps count for nothing, as Keras does: each
        row adds the mean over its timesteps of `value * mask` to the total and
        the mean of the mask to the count."""
        if sequence_mask is not None:
            values = self._per_timestep(y_true, y_pred, jnp.asarray(sequence_mask))
            return self._update_masked(
                state, values, sample_weight, mask, sequence_mask
            )
        values = jnp.asarray(self.fn(y_true, y_pred, **self._fn_kwargs))
        if values.ndim == 0:
            raise ValueError(
                f"{self!r}: the metric function returned a scalar; it must return one "
                "value per sample, shape (batch,)."
            )
        values = values.astype(self.dtype)
        values = per_sample(values)
        return self._accumulate(state, values, row_weights(values, sample_weight, mask))

    def _per_timestep(self, y_true: ArrayLike, y_pred: ArrayLike, seq: Array) -> Array:
        """The function's value at every masked position, shape `seq.shape`.

        The mask's axes (batch, time) are folded into the batch axis, so a
        per-sample function gives one value per timestep (Keras' per-step
        values before the mask weights them).
        """
        y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
        n = seq.ndim
        lead = tuple(seq.shape)
        if tuple(y_pred.shape[:n]) != lead or tuple(y_true.shape[:n]) != lead or (
            y_pred.ndim == n
        ):
            raise ValueError(
                f"{self!r}: the sequence mask of shape {shape_str(lead)} does not fit "
                f"y_true.shape={shape_str(y_true.shape)} and "
                f"y_pred.shape={shape_str(y_pred.shape)}; the mask must cover their "
                "leading axes (batch, time)."
            )
        values = self.fn(
            y_true.reshape((-1, *y_true.shape[n:])),
            y_pred.reshape((-1, *y_pred.shape[n:])),
            **self._fn_kwargs,
        )
        return per_sample(jnp.asarray(values).astype(self.dtype)).reshape(lead)

    def _update_masked(
        self,
        state: State,
        values: Array,
        sample_weight: ArrayLike | None,
        mask: ArrayLike | None,
        sequence_mask: ArrayLike,
    ) -> State:
        seq = jnp.asarray(sequence_mask)
        if values.ndim < seq.ndim or tuple(values.shape[: seq.ndim]) != tuple(
            seq.shape
        ):
            raise ValueError(
                f"{self!r}: the sequence mask of shape {shape_str(seq.shape)} does not "
                f"fit the metric's values of shape {shape_str(values.shape)}; the mask "
                "must cover their leading axes (batch, time)."
            )
        # Keras' `reduce_to_samplewise_values`: values are averaged down to the
        # mask's rank, weighted by it, and each row counts the mean of its weights.
        if values.ndim > seq.ndim:
            values = jnp.mean(values, axis=tuple(range(seq.ndim, values.ndim)))
        weights = seq.astype(self.dtype)
        rows = row_weights(values, sample_weight, mask)
        if rows is not None:
            weights = weights * rows.astype(self.dtype).reshape(
                (-1,) + (1,) * (seq.ndim - 1)
            )
        axes = tuple(range(1, seq.ndim))
        weighted = jnp.where(weights != 0, values * weights, 0.0)
        per_row = jnp.mean(weighted, axis=axes) if axes else weighted
        counts = jnp.mean(weights, axis=axes) if axes else weights
        return {
            "total": state["total"] + jnp.sum(per_row),
            "count": state["count"] + jnp.sum(counts),
        }

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), **self._fn_kwargs}
        if type(self) is MeanMetricWrapper:
            config["fn"] = _function_name(self.fn)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        config = dict(config)
        if "fn" in config:
            config["fn"] = _function(config["fn"])
        return cls(**config)


def _function_name(fn: Callable[..., Array]) -> str:
    name = FUNCTIONS.name_of(fn)
    if name is not None:
        return name
    try:
        return losses.serialize(fn)["config"]
    except ValueError:
        raise ValueError(
            f"Cannot serialize the metric function {fn!r}: only built-in metric and "
            "loss functions can be stored as data. Write a Metric subclass instead."
        ) from None


def _function(name: str) -> Callable[..., Array]:
    fn = FUNCTIONS.find(name)
    if fn is not None:
        return fn
    fn = losses.get(name)
    if not callable(fn) or isinstance(fn, losses.Loss):
        raise ValueError(f"{name!r} does not name a metric or loss function.")
    return fn
