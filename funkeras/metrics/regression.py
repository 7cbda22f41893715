"""Regression metrics: mean squared, absolute, percentage and logarithmic
errors, log-cosh, root mean squared error and R2 (Keras 3 names and numerics)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from funkeras._validation import check_int, shape_str
from funkeras.losses import (
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from funkeras.losses.base import match_shapes, per_sample
from funkeras.metrics.base import (
    Mean,
    MeanMetricWrapper,
    Metric,
    State,
    num_outputs,
    row_weights,
)
from funkeras.typing import Array, ArrayLike

__all__ = [
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "LogCoshError",
    "RootMeanSquaredError",
    "R2Score",
]


class MeanSquaredError(MeanMetricWrapper):
    """Mean squared error over everything seen.

    Args:
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.MeanSquaredError()
        >>> float(m.result(m.update(m.init(), jnp.array([[0., 1.], [0., 0.]]),
        ...                         jnp.array([[1., 1.], [0., 0.]]))))
        0.25
    """

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    """Mean absolute error over everything seen.

    Args:
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.MeanAbsoluteError()
        >>> float(m.result(m.update(m.init(), jnp.array([[0., 1.], [0., 0.]]),
        ...                         jnp.array([[1., 1.], [0., 0.]]),
        ...                         sample_weight=jnp.array([1., 0.]))))
        0.5
    """

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, dtype=dtype)


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """Mean absolute percentage error over everything seen.

    Args:
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.MeanAbsolutePercentageError()
        >>> float(m.result(m.update(m.init(), jnp.array([[2.]]), jnp.array([[1.]]))))
        50.0
    """

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(mean_absolute_percentage_error, name=name, dtype=dtype)


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """Mean squared logarithmic error over everything seen.

    Args:
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.MeanSquaredLogarithmicError()
        >>> round(float(m.result(m.update(m.init(), jnp.array([[0., 1.], [0., 0.]]),
        ...                               jnp.array([[1., 1.], [0., 0.]])))), 4)
        0.1201
    """

    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(mean_squared_logarithmic_error, name=name, dtype=dtype)


class LogCoshError(MeanMetricWrapper):
    """Mean log-cosh error over everything seen.

    Args:
        name: The metric's name (Keras' default: "logcosh").
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.LogCoshError()
        >>> round(float(m.result(m.update(m.init(), jnp.array([[0., 1.], [0., 0.]]),
        ...                               jnp.array([[1., 1.], [0., 0.]])))), 4)
        0.1084
    """

    def __init__(self, name="logcosh", dtype=None):
        super().__init__(log_cosh, name=name, dtype=dtype)


class RootMeanSquaredError(Mean):
    """Root mean squared error: `sqrt(mean(square(y_pred - y_true)))` over all seen.

    State: `total`, `count` (of per-sample mean squared errors).

    Args:
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.RootMeanSquaredError()
        >>> float(m.result(m.update(m.init(), jnp.array([[0., 1.], [0., 0.]]),
        ...                         jnp.array([[1., 1.], [0., 0.]]))))
        0.5
    """

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update(  # type: ignore[override]
        self,
        state: State,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
        mask: ArrayLike | None = None,
    ) -> State:
        y_true, y_pred = match_shapes(
            "RootMeanSquaredError", jnp.asarray(y_true), jnp.asarray(y_pred)
        )
        error = jnp.square(y_pred.astype(self.dtype) - y_true.astype(self.dtype))
        values = per_sample(error)
        return self._accumulate(state, values, row_weights(values, sample_weight, mask))

    def result(self, state: State) -> Array:
        return jnp.sqrt(super().result(state))


class R2Score(Metric):
    """Coefficient of determination, `1 - SS_res / SS_tot`, per output then averaged.

    Inputs are `(batch, num_outputs)` (or `(batch,)`, one output). Per output:
    `SS_tot = sum(w*y^2) - sum(w*y)^2 / sum(w)` and `SS_res = sum(w*(y - p)^2)`;
    an infinite score (a constant target with errors) becomes 0, as in Keras.
    With `num_regressors > 0` the adjusted R2 is returned, falling back to the
    plain score when there are too few samples (Keras warns there; a jitted
    metric cannot). `init` needs the prediction spec. State: `squared_sum`, `sum`,
    `residual`, `count` (per output) and `num_samples`.

    Args:
        class_aggregation: `"uniform_average"` (mean over outputs),
            `"variance_weighted_average"`, or `None` (one score per output).
        num_regressors: Number of regressors for the adjusted R2 (0: plain R2).
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.R2Score()
        >>> state = m.init(jax.ShapeDtypeStruct((1,), jnp.float32))
        >>> y_true = jnp.array([[1.], [4.], [3.]])
        >>> y_pred = jnp.array([[2.], [4.], [4.]])
        >>> state = m.update(state, y_true, y_pred)
        >>> round(float(m.result(state)), 4)
        0.5714
    """

    def __init__(
        self,
        class_aggregation="uniform_average",
        num_regressors=0,
        name="r2_score",
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        allowed = (None, "uniform_average", "variance_weighted_average")
        if class_aggregation not in allowed:
            raise ValueError(
                f"R2Score: `class_aggregation` must be one of {list(allowed)}, got "
                f"{class_aggregation!r}."
            )
        self.class_aggregation = class_aggregation
        self.num_regressors = check_int(
            "R2Score", "num_regressors", num_regressors, minimum=0
        )

    def init(self, y_pred_spec: Any = None) -> State:
        n = num_outputs("R2Score", y_pred_spec)
        return {
            "squared_sum": self._zeros((n,)),
            "sum": self._zeros((n,)),
            "residual": self._zeros((n,)),
            "count": self._zeros((n,)),
            "num_samples": self._zeros(),
        }

    def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
        y_true, y_pred = match_shapes(
            "R2Score", jnp.asarray(y_true), jnp.asarray(y_pred)
        )
        if y_pred.ndim != 2:
            raise ValueError(
                "R2Score: expected inputs of shape (batch, num_outputs), got "
                f"y_pred.shape={shape_str(y_pred.shape)}."
            )
        if y_pred.shape[-1] != state["sum"].shape[0]:
            raise ValueError(
                f"R2Score: the state was made for {state['sum'].shape[0]} outputs but "
                f"y_pred.shape={shape_str(y_pred.shape)}; pass the prediction spec to "
                "`init`."
            )
        y_true = y_true.astype(self.dtype)
        y_pred = y_pred.astype(self.dtype)
        weights = row_weights(y_pred, sample_weight, mask)
        w = (
            jnp.ones_like(y_true)
            if weights is None
            else jnp.broadcast_to(weights[:, None].astype(self.dtype), y_true.shape)
        )
        real = w != 0
        wy = jnp.where(real, y_true * w, 0.0)
        residual = jnp.where(real, jnp.square(y_true - y_pred) * w, 0.0)
        if mask is None:
            samples = jnp.sum(jnp.ones_like(y_true))
        else:
            rows = jnp.asarray(mask).astype(self.dtype)
            samples = jnp.sum(rows) * y_true.shape[-1]
        return {
            "squared_sum": state["squared_sum"]
            + jnp.sum(jnp.where(real, y_true * wy, 0.0), 0),
            "sum": state["sum"] + jnp.sum(wy, axis=0),
            "residual": state["residual"] + jnp.sum(residual, axis=0),
            "count": state["count"] + jnp.sum(w, axis=0),
            "num_samples": state["num_samples"] + samples,
        }

    def result(self, state):
        mean = state["sum"] / state["count"]
        total = state["squared_sum"] - state["sum"] * mean
        raw = 1.0 - state["residual"] / total
        raw = jnp.where(jnp.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score = jnp.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = jnp.sum(total * raw) / jnp.sum(total)
        else:
            score = raw
        if self.num_regressors:
            n = state["num_samples"]
            p = float(self.num_regressors)
            adjusted = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
            score = jnp.where(n - 1.0 > p, adjusted, score)
        return score

    def get_config(self):
        return {
            **super().get_config(),
            "class_aggregation": self.class_aggregation,
            "num_regressors": self.num_regressors,
        }
