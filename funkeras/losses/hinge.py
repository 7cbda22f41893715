"""Hinge losses for maximum-margin classifiers: hinge, squared and categorical
hinge (Keras 3 names and numerics)."""

from __future__ import annotations

import jax.numpy as jnp

from funkeras.losses.base import (
    CATALOGUE,
    Elements,
    LossFunctionWrapper,
    as_float,
    builtin,
    compiled,
    match_shapes,
    per_sample,
)
from funkeras.typing import Array, ArrayLike

__all__ = [
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
]


def _to_hinge_labels(y_true: Array) -> Array:
    """Keras: labels all in {0, 1} (over the whole batch) become {-1, 1}."""
    is_binary = jnp.all((y_true == 0) | (y_true == 1))
    return jnp.where(is_binary, 2.0 * y_true - 1.0, y_true)


@compiled
def _hinge_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = match_shapes("hinge", *as_float(y_true, y_pred))
    y_true = _to_hinge_labels(y_true)
    return jnp.mean(jnp.maximum(1.0 - y_true * y_pred, 0.0), axis=-1), None


@compiled
def _squared_hinge_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = match_shapes("squared_hinge", *as_float(y_true, y_pred))
    y_true = _to_hinge_labels(y_true)
    return jnp.mean(jnp.square(jnp.maximum(1.0 - y_true * y_pred, 0.0)), axis=-1), None


@compiled
def _categorical_hinge_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = match_shapes("categorical_hinge", *as_float(y_true, y_pred))
    pos = jnp.sum(y_true * y_pred, axis=-1)
    neg = jnp.max((1.0 - y_true) * y_pred, axis=-1)
    return jnp.maximum(neg - pos + 1.0, 0.0), None


def hinge(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Hinge loss per sample: `mean(maximum(1 - y_true * y_pred, 0), axis=-1)`.

    Labels are expected in {-1, 1}; if every label of the batch is 0 or 1 they are
    converted to -1/1 first, as Keras does.

    Args:
        y_true: Labels in {-1, 1} (or {0, 1}), the same shape as `y_pred`.
        y_pred: Scores.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> losses.hinge(jnp.array([[0., 1.]]), jnp.array([[0.5, 0.5]])).tolist()
        [1.0]
    """
    return per_sample(_hinge_elements(y_true, y_pred)[0])


def squared_hinge(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Squared hinge loss per sample: `mean(square(maximum(1 - y_true * y_pred, 0)))`.

    Labels in {0, 1} are converted to {-1, 1} as for `hinge`.

    Args:
        y_true: Labels in {-1, 1} (or {0, 1}), the same shape as `y_pred`.
        y_pred: Scores.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[0., 1.]]), jnp.array([[0.5, 0.5]])
        >>> losses.squared_hinge(y_true, y_pred).tolist()
        [1.25]
    """
    return per_sample(_squared_hinge_elements(y_true, y_pred)[0])


def categorical_hinge(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Categorical hinge per sample: `maximum(neg - pos + 1, 0)`.

    `pos = sum(y_true * y_pred)` and `neg = max((1 - y_true) * y_pred)` over the
    last axis.

    Args:
        y_true: One-hot labels, the same shape as `y_pred`.
        y_pred: Scores, shape `(batch, num_classes)`.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[0., 1.]]), jnp.array([[0.75, 0.5]])
        >>> losses.categorical_hinge(y_true, y_pred).tolist()
        [1.25]
    """
    return per_sample(_categorical_hinge_elements(y_true, y_pred)[0])


class Hinge(LossFunctionWrapper):
    """Hinge loss, reduced over the batch (labels in {-1, 1}, or {0, 1} converted).

    Args:
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> float(losses.Hinge()(jnp.array([[1.], [-1.]]), jnp.array([[0.5], [0.5]])))
        1.0
    """

    def __init__(self, reduction="sum_over_batch_size", name="hinge", dtype=None):
        super().__init__(hinge, reduction=reduction, name=name, dtype=dtype)


class SquaredHinge(LossFunctionWrapper):
    """Squared hinge loss, reduced over the batch.

    Args:
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[1.], [-1.]]), jnp.array([[0.5], [0.5]])
        >>> float(losses.SquaredHinge()(y_true, y_pred))
        1.25
    """

    def __init__(
        self, reduction="sum_over_batch_size", name="squared_hinge", dtype=None
    ):
        super().__init__(squared_hinge, reduction=reduction, name=name, dtype=dtype)


class CategoricalHinge(LossFunctionWrapper):
    """Categorical hinge loss, reduced over the batch.

    Args:
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[0., 1.]]), jnp.array([[0.75, 0.5]])
        >>> float(losses.CategoricalHinge()(y_true, y_pred))
        1.25
    """

    def __init__(
        self, reduction="sum_over_batch_size", name="categorical_hinge", dtype=None
    ):
        super().__init__(categorical_hinge, reduction=reduction, name=name, dtype=dtype)


builtin(hinge, _hinge_elements)
builtin(squared_hinge, _squared_hinge_elements)
builtin(categorical_hinge, _categorical_hinge_elements)
for _cls in (Hinge, SquaredHinge, CategoricalHinge):
    CATALOGUE.register(_cls, _cls.__name__)
