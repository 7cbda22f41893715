"""Regression losses: squared, absolute, percentage and logarithmic errors,
Huber, log-cosh and cosine similarity (Keras 3 names, arguments and numerics)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from funkeras._validation import check_float, check_int
from funkeras.losses.base import (
    CATALOGUE,
    EPSILON,
    Elements,
    LossFunctionWrapper,
    as_float,
    builtin,
    class_axis,
    compiled,
    match_shapes,
    per_sample,
)
from funkeras.typing import Array, ArrayLike

__all__ = [
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "huber",
    "log_cosh",
    "cosine_similarity",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "Huber",
    "LogCosh",
    "CosineSimilarity",
]


def _l2_normalize(x: Array, axis: int) -> Array:
    # Keras: x * min(rsqrt(sum(x^2)), 1/eps). rsqrt(max(s, eps^2)) is the same value
    # and keeps the gradient finite for an all-zero vector.
    square_sum = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(square_sum, EPSILON**2))


@compiled
def _mse_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = match_shapes("mean_squared_error", *as_float(y_true, y_pred))
    return jnp.mean(jnp.square(y_true - y_pred), axis=-1), None


@compiled
def _mae_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = match_shapes("mean_absolute_error", *as_float(y_true, y_pred))
    return jnp.mean(jnp.abs(y_true - y_pred), axis=-1), None


@compiled
def _mape_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = match_shapes(
        "mean_absolute_percentage_error", *as_float(y_true, y_pred)
    )
    diff = jnp.abs((y_true - y_pred) / jnp.maximum(jnp.abs(y_true), EPSILON))
    return 100.0 * jnp.mean(diff, axis=-1), None


@compiled
def _msle_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = match_shapes(
        "mean_squared_logarithmic_error", *as_float(y_true, y_pred)
    )
    first = jnp.log(jnp.maximum(y_pred, EPSILON) + 1.0)
    second = jnp.log(jnp.maximum(y_true, EPSILON) + 1.0)
    return jnp.mean(jnp.square(first - second), axis=-1), None


@compiled
def _huber_elements(y_true, y_pred, delta=1.0) -> Elements:
    delta = check_float("huber", "delta", delta, low=0.0, low_inclusive=False)
    y_true, y_pred = match_shapes("huber", *as_float(y_true, y_pred))
    error = y_pred - y_true
    abs_error = jnp.abs(error)
    values = jnp.where(
        abs_error <= delta, 0.5 * jnp.square(error), delta * abs_error - 0.5 * delta**2
    )
    return jnp.mean(values, axis=-1), None


@compiled
def _log_cosh_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = match_shapes("log_cosh", *as_float(y_true, y_pred))
    x = y_pred - y_true
    # log(cosh(x)) = x + softplus(-2x) - log(2): no overflow for large |x|.
    return jnp.mean(x + jax.nn.softplus(-2.0 * x) - math.log(2.0), axis=-1), None


@compiled
def _cosine_elements(y_true, y_pred, axis=-1) -> Elements:
    fn = "cosine_similarity"
    y_true, y_pred = match_shapes(fn, *as_float(y_true, y_pred))
    axis = class_axis(fn, axis, y_pred.ndim)
    return -jnp.sum(
        _l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), axis=axis
    ), None


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Mean squared error per sample: `mean(square(y_true - y_pred), axis=-1)`.

    Args:
        y_true: Targets, shape `(batch, d0, ..., dN)`.
        y_pred: Predictions, same shape (a trailing axis of 1 may be missing).

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> losses.mean_squared_error(jnp.array([[0., 1.], [0., 0.]]),
        ...                           jnp.array([[1., 1.], [1., 0.]])).tolist()
        [0.5, 0.5]
    """
    return per_sample(_mse_elements(y_true, y_pred)[0])


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Mean absolute error per sample: `mean(abs(y_true - y_pred), axis=-1)`.

    Args:
        y_true: Targets, shape `(batch, d0, ..., dN)`.
        y_pred: Predictions, same shape.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[0., 1.]]), jnp.array([[1., 3.]])
        >>> losses.mean_absolute_error(y_true, y_pred).tolist()
        [1.5]
    """
    return per_sample(_mae_elements(y_true, y_pred)[0])


def mean_absolute_percentage_error(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Mean absolute percentage error: `100 * mean(abs((y_true - y_pred) / y_true))`.

    The denominator is `max(abs(y_true), 1e-7)`, as in Keras.

    Args:
        y_true: Targets, shape `(batch, d0, ..., dN)`.
        y_pred: Predictions, same shape.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> losses.mean_absolute_percentage_error(jnp.array([[2., 4.]]),
        ...                                       jnp.array([[1., 5.]])).tolist()
        [37.5]
    """
    return per_sample(_mape_elements(y_true, y_pred)[0])


def mean_squared_logarithmic_error(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Mean squared log error: `mean(square(log(1 + y_pred) - log(1 + y_true)))`.

    Values below `1e-7` are replaced by `1e-7` first, as in Keras.

    Args:
        y_true: Targets, shape `(batch, d0, ..., dN)`.
        y_pred: Predictions, same shape.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[0., 1.]]), jnp.array([[1., 1.]])
        >>> round(float(losses.mean_squared_logarithmic_error(y_true, y_pred)[0]), 4)
        0.2402
    """
    return per_sample(_msle_elements(y_true, y_pred)[0])


def huber(y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0) -> Array:
    """Huber loss per sample: quadratic for `|error| <= delta`, linear beyond.

    Per element `0.5 * e**2` if `|e| <= delta`, else `delta * |e| - 0.5 * delta**2`,
    with `e = y_pred - y_true`; then the mean over the last axis.

    Args:
        y_true: Targets, shape `(batch, d0, ..., dN)`.
        y_pred: Predictions, same shape.
        delta: Positive float, where the loss turns from quadratic to linear.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> losses.huber(jnp.array([[0., 0.]]), jnp.array([[0.5, 3.]])).tolist()
        [1.3125]
    """
    return per_sample(_huber_elements(y_true, y_pred, delta)[0])


def log_cosh(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Log-cosh loss per sample: `mean(log(cosh(y_pred - y_true)), axis=-1)`.

    Computed as `x + softplus(-2x) - log(2)`, which does not overflow.

    Args:
        y_true: Targets, shape `(batch, d0, ..., dN)`.
        y_pred: Predictions, same shape.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[0., 1.]]), jnp.array([[1., 1.]])
        >>> round(float(losses.log_cosh(y_true, y_pred)[0]), 4)
        0.2169
    """
    return per_sample(_log_cosh_elements(y_true, y_pred)[0])


def cosine_similarity(y_true: ArrayLike, y_pred: ArrayLike, axis: int = -1) -> Array:
    """Negative cosine similarity per sample: `-sum(l2_norm(y_true) * l2_norm(y_pred))`.

    -1 means the same direction, 0 orthogonal; a zero vector gives 0.

    Args:
        y_true: Targets, shape `(batch, d0, ..., dN)`.
        y_pred: Predictions, same shape.
        axis: The axis along which the similarity is computed.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> v = losses.cosine_similarity(jnp.array([[0., 1.], [1., 1.]]),
        ...                              jnp.array([[1., 0.], [-1., -1.]]))
        >>> [round(x, 4) for x in v.tolist()]
        [-0.0, 1.0]
    """
    return per_sample(_cosine_elements(y_true, y_pred, axis)[0])


class MeanSquaredError(LossFunctionWrapper):
    """Mean squared error: `mean(square(y_true - y_pred))`, reduced over the batch.

    Args:
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> float(losses.MeanSquaredError()(jnp.array([[0., 1.], [0., 0.]]),
        ...                                 jnp.array([[1., 1.], [1., 0.]])))
        0.5
    """

    def __init__(
        self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None
    ):
        super().__init__(
            mean_squared_error, reduction=reduction, name=name, dtype=dtype
        )


class MeanAbsoluteError(LossFunctionWrapper):
    """Mean absolute error: `mean(abs(y_true - y_pred))`, reduced over the batch.

    Args:
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[0., 1.]]), jnp.array([[1., 1.]])
        >>> float(losses.MeanAbsoluteError()(y_true, y_pred))
        0.5
    """

    def __init__(
        self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None
    ):
        super().__init__(
            mean_absolute_error, reduction=reduction, name=name, dtype=dtype
        )


class MeanAbsolutePercentageError(LossFunctionWrapper):
    """Mean absolute percentage error, reduced over the batch.

    Args:
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[2.]]), jnp.array([[1.]])
        >>> float(losses.MeanAbsolutePercentageError()(y_true, y_pred))
        50.0
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="mean_absolute_percentage_error",
        dtype=None,
    ):
        super().__init__(
            mean_absolute_percentage_error, reduction=reduction, name=name, dtype=dtype
        )


class MeanSquaredLogarithmicError(LossFunctionWrapper):
    """Mean squared logarithmic error, reduced over the batch.

    Args:
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[1.]]), jnp.array([[1.]])
        >>> float(losses.MeanSquaredLogarithmicError()(y_true, y_pred))
        0.0
    """

    def __init__(
        self,
        reduction="sum_over_batch_size",
        name="mean_squared_logarithmic_error",
        dtype=None,
    ):
        super().__init__(
            mean_squared_logarithmic_error, reduction=reduction, name=name, dtype=dtype
        )


class Huber(LossFunctionWrapper):
    """Huber loss (quadratic within `delta`, linear beyond), reduced over the batch.

    Args:
        delta: Positive float, where the loss turns linear.
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> float(losses.Huber(delta=1.0)(jnp.array([[0.]]), jnp.array([[3.]])))
        2.5
    """

    def __init__(
        self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None
    ):
        delta = check_float("Huber", "delta", delta, low=0.0, low_inclusive=False)
        super().__init__(
            huber, reduction=reduction, name=name, dtype=dtype, delta=delta
        )


class LogCosh(LossFunctionWrapper):
    """Log-cosh loss, reduced over the batch.

    Args:
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> round(float(losses.LogCosh()(jnp.array([[0., 1.], [0., 0.]]),
        ...                              jnp.array([[1., 1.], [0., 0.]]))), 4)
        0.1084
    """

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(log_cosh, reduction=reduction, name=name, dtype=dtype)


class CosineSimilarity(LossFunctionWrapper):
    """Negative cosine similarity, reduced over the batch.

    Args:
        axis: The axis along which the similarity is computed.
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[1., 1.]]), jnp.array([[2., 2.]])
        >>> round(float(losses.CosineSimilarity()(y_true, y_pred)), 4)
        -1.0
    """

    def __init__(
        self,
        axis=-1,
        reduction="sum_over_batch_size",
        name="cosine_similarity",
        dtype=None,
    ):
        super().__init__(
            cosine_similarity,
            reduction=reduction,
            name=name,
            dtype=dtype,
            axis=check_int("CosineSimilarity", "axis", axis, minimum=None),
        )


builtin(mean_squared_error, _mse_elements, "mse", "MSE")
builtin(mean_absolute_error, _mae_elements, "mae", "MAE")
builtin(mean_absolute_percentage_error, _mape_elements, "mape", "MAPE")
builtin(mean_squared_logarithmic_error, _msle_elements, "msle", "MSLE")
builtin(huber, _huber_elements, "huber_loss")
builtin(log_cosh, _log_cosh_elements, "logcosh")
builtin(cosine_similarity, _cosine_elements)
for _cls in (
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    Huber,
    LogCosh,
    CosineSimilarity,
):
    CATALOGUE.register(_cls, _cls.__name__)
