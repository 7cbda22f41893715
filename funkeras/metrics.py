"""Metrics as pure `(init, update, result)` triples over a state pytree.

A metric object holds configuration only. Its state is a dict of arrays (keyed by
Keras' variable names: `total`, `count`, `true_positives`, ...), so it lives in
the train state and updates inside a jitted step::

    state = metric.init()                       # or init(y_pred_spec) for R2Score
    state = metric.update(state, y_true, y_pred, sample_weight=None, mask=None)
    value = metric.result(state)

`mask` is a boolean `(batch,)` vector marking the real rows of a padded batch:
masked rows contribute nothing. Names, arguments and numerics follow Keras 3
(`keras.metrics`); `get` resolves strings such as `"accuracy"` the way
`Model.compile` does. Per-sample metric functions (`binary_accuracy`, ...) are
also provided, as in `keras.metrics`.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras import losses as losses_module
from funkeras._validation import check_float, check_int, normalize_dtype, to_snake_case
from funkeras.losses import (
    EPSILON,
    _per_sample,
    _same_static_dims,
    _sparse_labels,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    squeeze_or_expand_to_same_rank,
)
from funkeras.typing import Array, ArrayLike

__all__ = [
    "Metric",
    "Mean",
    "Sum",
    "MeanMetricWrapper",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "RootMeanSquaredError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "LogCoshError",
    "R2Score",
    "Precision",
    "Recall",
    "AUC",
    "FBetaScore",
    "F1Score",
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "log_cosh",
    "row_weights",
    "get",
    "serialize",
    "deserialize",
]

State = dict[str, Array]

_NEG_INF = -1e10  # Keras' threshold when only `top_k` selects the positives.


# ----------------------------------------------------------------------------
# Per-sample metric functions.
# ----------------------------------------------------------------------------


def _shape(x: Any) -> str:
    return str(tuple(x.shape))


def _pair(fn: str, y_true: ArrayLike, y_pred: ArrayLike) -> tuple[Array, Array]:
    """Keras' rank matching; (batch,) inputs become (batch, 1); equal shapes."""
    y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
    if y_true.ndim == 0 or y_pred.ndim == 0:
        raise ValueError(
            f"{fn}: expected batched inputs, got y_true.shape={_shape(y_true)} and "
            f"y_pred.shape={_shape(y_pred)}."
        )
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if y_true.ndim == 1 and y_pred.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    if not _same_static_dims(tuple(y_true.shape), tuple(y_pred.shape)):
        raise ValueError(
            f"{fn}: y_true and y_pred must have the same shape, got "
            f"y_true.shape={_shape(y_true)} and y_pred.shape={_shape(y_pred)}."
        )
    return y_true, y_pred


def _classes_pred(fn: str, y_pred: ArrayLike) -> Array:
    y_pred = jnp.asarray(y_pred)
    if y_pred.ndim < 2:
        raise ValueError(
            f"{fn}: expected y_pred of shape (batch, num_classes), got "
            f"y_pred.shape={_shape(y_pred)}."
        )
    return y_pred


def _one_hot_labels(fn: str, sparse_fn: str, y_true: ArrayLike, y_pred: Array) -> Array:
    y_true = jnp.asarray(y_true)
    if not _same_static_dims(tuple(y_true.shape), tuple(y_pred.shape)):
        hint = ""
        if y_true.ndim == y_pred.ndim - 1 or y_true.shape[-1] == 1:
            hint = f" The labels look like integer class ids: use {sparse_fn}."
        raise ValueError(
            f"{fn}: expected one-hot y_true of the same shape as y_pred, got "
            f"y_true.shape={_shape(y_true)} and y_pred.shape={_shape(y_pred)}.{hint}"
        )
    return y_true


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """How often predictions equal labels, per sample: `mean(y_true == y_pred, -1)`.

    Args:
        y_true: Labels.
        y_pred: Predicted labels, the same shape.

    Returns:
        Per-sample values in [0, 1], shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> metrics.accuracy(jnp.array([1, 2, 3]), jnp.array([1, 0, 3])).tolist()
        [1.0, 0.0, 1.0]
    """
    y_true, y_pred = _pair("accuracy", y_true, y_pred)
    return _per_sample(jnp.mean((y_true == y_pred).astype(jnp.float32), axis=-1))


def binary_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, threshold: float = 0.5
) -> Array:
    """How often `y_pred > threshold` matches the binary labels, per sample.

    Args:
        y_true: Labels in {0, 1}.
        y_pred: Probabilities (or logits with `threshold=0.0`), the same shape.
        threshold: Predictions above it count as 1.

    Returns:
        Per-sample values in [0, 1], shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> metrics.binary_accuracy(jnp.array([[1.], [1.], [0.], [0.]]),
        ...                         jnp.array([[0.98], [1.], [0.], [0.6]])).tolist()
        [1.0, 1.0, 1.0, 0.0]
    """
    y_true, y_pred = _pair("binary_accuracy", y_true, y_pred)
    predicted = (y_pred > threshold).astype(jnp.float32)
    hits = (y_true.astype(jnp.float32) == predicted).astype(jnp.float32)
    return _per_sample(jnp.mean(hits, axis=-1))


def categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Whether the arg-max of `y_pred` is the one-hot label's class, per sample.

    Args:
        y_true: One-hot labels, the same shape as `y_pred`.
        y_pred: Scores (probabilities or logits), classes on the last axis.

    Returns:
        Per-sample values in {0, 1} (means over extra axes), shape `(batch,)`.

    Raises:
        ValueError: For integer class ids (use `sparse_categorical_accuracy`).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> y_true = jnp.array([[0, 0, 1], [0, 1, 0]])
        >>> y_pred = jnp.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> metrics.categorical_accuracy(y_true, y_pred).tolist()
        [0.0, 1.0]
    """
    fn = "categorical_accuracy"
    y_pred = _classes_pred(fn, y_pred)
    y_true = _one_hot_labels(fn, "sparse_categorical_accuracy", y_true, y_pred)
    hits = jnp.argmax(y_true, axis=-1) == jnp.argmax(y_pred, axis=-1)
    return _per_sample(hits.astype(jnp.float32))


def sparse_categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Whether the arg-max of `y_pred` equals the integer label, per sample.

    Args:
        y_true: Integer class ids, shape `(batch,)` or `(batch, 1)`.
        y_pred: Scores (probabilities or logits), shape `(batch, num_classes)`.

    Returns:
        Per-sample values in {0, 1} (means over extra axes), shape `(batch,)`.

    Raises:
        ValueError: For one-hot labels (use `categorical_accuracy`).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> y_pred = jnp.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
        >>> metrics.sparse_categorical_accuracy(jnp.array([[2], [1]]), y_pred).tolist()
        [0.0, 1.0]
    """
    fn = "sparse_categorical_accuracy"
    y_pred = _classes_pred(fn, y_pred)
    labels = _sparse_labels(fn, y_true, y_pred)
    hits = jnp.argmax(y_pred, axis=-1).astype(jnp.int32) == labels
    return _per_sample(hits.astype(jnp.float32))


def _in_top_k(labels: Array, y_pred: Array, k: int) -> Array:
    """Keras' in_top_k: the label's score is at least the k-th largest (ties count)."""
    k = min(k, y_pred.shape[-1])
    kth = jax.lax.top_k(y_pred, k)[0][..., -1]
    target = jnp.take_along_axis(y_pred, labels[..., None], axis=-1)[..., 0]
    return target >= kth


def top_k_categorical_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, k: int = 5
) -> Array:
    """Whether the one-hot label's class is among the `k` highest scores, per sample.

    Args:
        y_true: One-hot labels, the same shape as `y_pred`.
        y_pred: Scores, classes on the last axis.
        k: How many of the top scores count.

    Returns:
        Per-sample values in {0, 1}, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> y_true = jnp.array([[0, 0, 1], [0, 1, 0]])
        >>> y_pred = jnp.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> metrics.top_k_categorical_accuracy(y_true, y_pred, k=1).tolist()
        [0.0, 1.0]
    """
    fn = "top_k_categorical_accuracy"
    k = check_int(fn, "k", k)
    y_pred = _classes_pred(fn, y_pred)
    y_true = _one_hot_labels(fn, "sparse_top_k_categorical_accuracy", y_true, y_pred)
    labels = jnp.argmax(y_true, axis=-1).astype(jnp.int32)
    return _per_sample(_in_top_k(labels, y_pred, k).astype(jnp.float32))


def sparse_top_k_categorical_accuracy(
    y_true: ArrayLike, y_pred: ArrayLike, k: int = 5
) -> Array:
    """Whether the integer label is among the `k` highest scores, per sample.

    Args:
        y_true: Integer class ids, shape `(batch,)` or `(batch, 1)`.
        y_pred: Scores, shape `(batch, num_classes)`.
        k: How many of the top scores count.

    Returns:
        Per-sample values in {0, 1}, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> y_pred = jnp.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
        >>> y_true = jnp.array([2, 1])
        >>> metrics.sparse_top_k_categorical_accuracy(y_true, y_pred, k=1).tolist()
        [0.0, 1.0]
    """
    fn = "sparse_top_k_categorical_accuracy"
    k = check_int(fn, "k", k)
    y_pred = _classes_pred(fn, y_pred)
    labels = _sparse_labels(fn, y_true, y_pred)
    return _per_sample(_in_top_k(labels, y_pred, k).astype(jnp.float32))


# ----------------------------------------------------------------------------
# Weights.
# ----------------------------------------------------------------------------


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
                f"metrics: `{what}` must have shape (batch,), got shape {_shape(w)}."
            )
        weights = weights * jnp.broadcast_to(w.astype(jnp.float32), (batch,))
    return weights


def _div_no_nan(num: Array, den: Array) -> Array:
    safe = jnp.where(den == 0, jnp.ones_like(den), den)
    return jnp.where(den == 0, jnp.zeros_like(num * den), num / safe)


# ----------------------------------------------------------------------------
# Base and reduction metrics.
# ----------------------------------------------------------------------------


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
        raise TypeError(f"{type(self).__name__}: a Metric subclass must define `init`.")

    def update(
        self,
        state: State,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
        mask: ArrayLike | None = None,
    ) -> State:
        """The state after one more batch (pure)."""
        raise TypeError(
            f"{type(self).__name__}: a Metric subclass must define `update`."
        )

    def result(self, state: State) -> Array:
        """The metric's value for everything accumulated in `state`."""
        raise TypeError(
            f"{type(self).__name__}: a Metric subclass must define `result`."
        )

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


def _num_outputs(owner: str, y_pred_spec: Any) -> int:
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
                weight = weight * jnp.asarray(sample_weight, self.dtype).reshape(())
            if mask is not None:
                weight = weight * jnp.sum(jnp.asarray(mask).astype(self.dtype))
            return {
                "total": state["total"] + jnp.where(weight != 0, values * weight, 0.0),
                "count": state["count"] + weight,
            }
        values = _per_sample(values)
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
        return _div_no_nan(state["total"], state["count"])


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


_METRIC_FUNCTIONS: dict[str, Callable[..., Array]] = {
    fn.__name__: fn
    for fn in (
        accuracy,
        binary_accuracy,
        categorical_accuracy,
        sparse_categorical_accuracy,
        top_k_categorical_accuracy,
        sparse_top_k_categorical_accuracy,
    )
}


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
    ) -> State:
        values = jnp.asarray(self.fn(y_true, y_pred, **self._fn_kwargs))
        if values.ndim == 0:
            raise ValueError(
                f"{self!r}: the metric function returned a scalar; it must return one "
                "value per sample, shape (batch,)."
            )
        values = _per_sample(values.astype(self.dtype))
        return self._accumulate(state, values, row_weights(values, sample_weight, mask))

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


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels (exact equality).

    Args:
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.Accuracy()
        >>> state = m.update(m.init(), jnp.array([[1], [2], [3], [4]]),
        ...                  jnp.array([[0], [2], [3], [4]]))
        >>> float(m.result(state))
        0.75
    """

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often `y_pred > threshold` matches binary labels.

    Args:
        name: The metric's name.
        dtype: The state's dtype.
        threshold: Predictions above it count as 1: in (0, 1) for probabilities,
            0.0 for logits.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.BinaryAccuracy()
        >>> state = m.update(m.init(), jnp.array([[1.], [1.], [0.], [0.]]),
        ...                  jnp.array([[0.98], [1.], [0.], [0.6]]))
        >>> float(m.result(state))
        0.75
    """

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        threshold = check_float("BinaryAccuracy", "threshold", threshold)
        if not math.isfinite(threshold):
            raise ValueError(
                f"BinaryAccuracy: `threshold` must be finite, got {threshold}."
            )
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of `y_pred` is the one-hot label's class.

    Args:
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.CategoricalAccuracy()
        >>> state = m.update(m.init(), jnp.array([[0, 0, 1], [0, 1, 0]]),
        ...                  jnp.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]]),
        ...                  sample_weight=jnp.array([0.7, 0.3]))
        >>> round(float(m.result(state)), 4)
        0.3
    """

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of `y_pred` equals the integer label.

    Args:
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.SparseCategoricalAccuracy()
        >>> state = m.update(m.init(), jnp.array([[2], [1]]),
        ...                  jnp.array([[0.1, 0.6, 0.3], [0.05, 0.95, 0]]))
        >>> float(m.result(state))
        0.5
    """

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot label's class is among the `k` highest scores.

    Args:
        k: How many of the top scores count.
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.TopKCategoricalAccuracy(k=1)
        >>> state = m.update(m.init(), jnp.array([[0, 0, 1], [0, 1, 0]]),
        ...                  jnp.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]]))
        >>> float(m.result(state))
        0.5
    """

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        k = check_int("TopKCategoricalAccuracy", "k", k)
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the `k` highest scores.

    Args:
        k: How many of the top scores count.
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.SparseTopKCategoricalAccuracy(k=1)
        >>> state = m.update(m.init(), jnp.array([2, 1]),
        ...                  jnp.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]]))
        >>> float(m.result(state))
        0.5
    """

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None):
        k = check_int("SparseTopKCategoricalAccuracy", "k", k)
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


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
        y_true, y_pred = _pair("RootMeanSquaredError", y_true, y_pred)
        error = jnp.square(y_pred.astype(self.dtype) - y_true.astype(self.dtype))
        values = _per_sample(error)
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
        n = _num_outputs("R2Score", y_pred_spec)
        return {
            "squared_sum": self._zeros((n,)),
            "sum": self._zeros((n,)),
            "residual": self._zeros((n,)),
            "count": self._zeros((n,)),
            "num_samples": self._zeros(),
        }

    def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
        y_true, y_pred = _pair("R2Score", y_true, y_pred)
        if y_pred.ndim != 2:
            raise ValueError(
                "R2Score: expected inputs of shape (batch, num_outputs), got "
                f"y_pred.shape={_shape(y_pred)}."
            )
        if y_pred.shape[-1] != state["sum"].shape[0]:
            raise ValueError(
                f"R2Score: the state was made for {state['sum'].shape[0]} outputs but "
                f"y_pred.shape={_shape(y_pred)}; pass the prediction spec to `init`."
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


# ----------------------------------------------------------------------------
# Confusion-matrix metrics.
# ----------------------------------------------------------------------------


def _parse_thresholds(owner: str, thresholds: Any, default: float) -> list[float]:
    if thresholds is None:
        return [default]
    values = (
        list(thresholds)
        if isinstance(thresholds, list | tuple | np.ndarray)
        else [thresholds]
    )
    if not values:
        raise ValueError(f"{owner}: `thresholds` must not be empty.")
    return [check_float(owner, "thresholds", t, low=0.0, high=1.0) for t in values]


def _evenly_distributed(thresholds: Sequence[float]) -> bool:
    """Keras: at least 3 thresholds equal to linspace(0, 1) up to 1e-7."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _filter_top_k(x: Array, k: int) -> Array:
    """Keep the top `k` values of the last axis; set the others to -1e10 (Keras)."""
    k = min(k, x.shape[-1])
    _, idx = jax.lax.top_k(x, k)
    keep = jnp.sum(jax.nn.one_hot(idx, x.shape[-1], dtype=x.dtype), axis=-2)
    return x * keep + _NEG_INF * (1.0 - keep)


@functools.partial(
    jax.jit,
    static_argnames=(
        "owner",
        "thresholds",
        "evenly",
        "top_k",
        "class_id",
        "multi_label",
    ),
)
def _confusion_counts(
    owner: str,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    thresholds: tuple[float, ...],
    *,
    evenly: bool,
    weights: Array | None,
    top_k: int | None = None,
    class_id: int | None = None,
    multi_label: bool = False,
    label_weights: Array | None = None,
) -> dict[str, Array]:
    """Weighted tp/fp/fn/tn at every threshold (`y_pred > threshold` is positive).

    Returns arrays of shape `(T,)`, or `(T, num_labels)` with `multi_label`.
    Jitted (with the configuration static), so an eager update compiles one
    program rather than one per operation; inside a jitted step it is inlined.
    """
    y_pred = jnp.asarray(y_pred).astype(jnp.float32)
    y_true = jnp.asarray(y_true)
    if y_pred.ndim == 0 or y_true.ndim == 0:
        raise ValueError(
            f"{owner}: expected batched inputs, got y_true.shape={_shape(y_true)} and "
            f"y_pred.shape={_shape(y_pred)}."
        )
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if y_pred.ndim == 1 and y_true.ndim == 1:
        y_pred, y_true = y_pred[:, None], y_true[:, None]
    if not _same_static_dims(tuple(y_true.shape), tuple(y_pred.shape)):
        raise ValueError(
            f"{owner}: y_true and y_pred must have the same shape, got "
            f"y_true.shape={_shape(y_true)} and y_pred.shape={_shape(y_pred)}. Labels "
            "are binary (one per prediction); one-hot encode integer class ids."
        )
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if not class_id < y_pred.shape[-1]:
            raise ValueError(
                f"{owner}: `class_id`={class_id} is out of range for "
                f"y_pred.shape={_shape(y_pred)} ({y_pred.shape[-1]} classes)."
            )
        y_true = y_true[..., class_id : class_id + 1]
        y_pred = y_pred[..., class_id : class_id + 1]
    w = jnp.ones(y_pred.shape, jnp.float32)
    if weights is not None:
        w = w * jnp.expand_dims(weights, tuple(range(1, y_pred.ndim)))
    if label_weights is not None and not multi_label:
        w = w * jnp.broadcast_to(label_weights, y_pred.shape)
    if multi_label:
        if y_pred.ndim != 2:
            raise ValueError(
                f"{owner}: multi_label=True expects y_pred of shape "
                f"(batch, num_labels), got {_shape(y_pred)}."
            )
        pred, lab, w = y_pred, y_true, w
    else:
        pred, lab, w = y_pred.reshape(-1, 1), y_true.reshape(-1, 1), w.reshape(-1, 1)
    lab = (lab != 0).astype(jnp.float32)
    true_w = lab * w
    false_w = (1.0 - lab) * w
    num_t, num_l = len(thresholds), pred.shape[-1]
    if evenly:
        # Keras' O(T + N) path: each prediction falls in one bucket between evenly
        # spaced thresholds; a reversed cumulative sum gives the counts above each.
        pred = jnp.clip(pred, 0.0, 1.0)
        bucket = jnp.ceil(pred * (num_t - 1)) - 1
        if thresholds[0] < 0.0 or thresholds[-1] > 1.0:
            bucket = jnp.maximum(bucket, 0)
        bucket = bucket.astype(jnp.int32)
        ids = jnp.where(bucket < 0, num_t, bucket) * num_l + jnp.arange(num_l)[None, :]
        ids = ids.reshape(-1)

        def above(values: Array) -> Array:
            per_bucket = jax.ops.segment_sum(values.reshape(-1), ids, num_t * num_l)
            per_bucket = per_bucket.reshape(num_t, num_l)
            return jnp.flip(jnp.cumsum(jnp.flip(per_bucket, 0), axis=0), 0)

        tp, fp = above(true_w), above(false_w)
    else:
        thr = jnp.asarray(np.asarray(thresholds, np.float32))[:, None, None]
        positive = pred[None] > thr
        tp = jnp.sum(jnp.where(positive, true_w[None], 0.0), axis=1)
        fp = jnp.sum(jnp.where(positive, false_w[None], 0.0), axis=1)
    fn = jnp.sum(true_w, axis=0, keepdims=True) - tp
    tn = jnp.sum(false_w, axis=0, keepdims=True) - fp
    counts = {"tp": tp, "fp": fp, "fn": fn, "tn": tn}
    if not multi_label:
        counts = {k: v[:, 0] for k, v in counts.items()}
    return counts


class _PrecisionRecall(Metric):
    _other: str  # "false_positives" (precision) or "false_negatives" (recall)

    def __init__(
        self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None
    ):
        super().__init__(name=name, dtype=dtype)
        owner = type(self).__name__
        if top_k is not None:
            top_k = check_int(owner, "top_k", top_k)
        if class_id is not None:
            class_id = check_int(owner, "class_id", class_id, minimum=0)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default = 0.5 if top_k is None else _NEG_INF
        self.thresholds = _parse_thresholds(owner, thresholds, default)
        self._evenly = _evenly_distributed(self.thresholds)

    def init(self, y_pred_spec=None):
        n = len(self.thresholds)
        return {"true_positives": self._zeros((n,)), self._other: self._zeros((n,))}

    def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
        counts = _confusion_counts(
            type(self).__name__,
            y_true,
            y_pred,
            tuple(self.thresholds),
            evenly=self._evenly,
            weights=row_weights(jnp.asarray(y_pred), sample_weight, mask),
            top_k=self.top_k,
            class_id=self.class_id,
        )
        key = "fp" if self._other == "false_positives" else "fn"
        return {
            "true_positives": state["true_positives"] + counts["tp"].astype(self.dtype),
            self._other: state[self._other] + counts[key].astype(self.dtype),
        }

    def result(self, state):
        tp = state["true_positives"]
        value = _div_no_nan(tp, tp + state[self._other])
        return value[0] if len(self.thresholds) == 1 else value

    def get_config(self):
        thresholds = self.init_thresholds
        if isinstance(thresholds, tuple | np.ndarray):
            thresholds = [float(t) for t in thresholds]
        return {
            **super().get_config(),
            "thresholds": thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


class Precision(_PrecisionRecall):
    """Precision, `tp / (tp + fp)`, of thresholded predictions (weighted counts).

    Predictions above a threshold are positive. With several thresholds the
    result has one value per threshold. With `top_k`, only the `k` highest
    predictions of each row can be positive; with `class_id`, only that class is
    scored. State: `true_positives`, `false_positives` (one per threshold).

    Args:
        thresholds: A float or list of floats in [0, 1] (default 0.5; with
            `top_k` and no thresholds, every top-k prediction is positive).
        top_k: Optional int, consider only the top-k predictions per row.
        class_id: Optional int, the class to score (last axis of `y_pred`).
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.Precision()
        >>> y_true, y_pred = jnp.array([0, 1, 1, 1]), jnp.array([1., 0., 1., 1.])
        >>> state = m.update(m.init(), y_true, y_pred)
        >>> round(float(m.result(state)), 4)
        0.6667
    """

    _other = "false_positives"


class Recall(_PrecisionRecall):
    """Recall, `tp / (tp + fn)`, of thresholded predictions (weighted counts).

    Thresholds, `top_k` and `class_id` work as for `Precision`. State:
    `true_positives`, `false_negatives` (one per threshold).

    Args:
        thresholds: A float or list of floats in [0, 1] (default 0.5).
        top_k: Optional int, consider only the top-k predictions per row.
        class_id: Optional int, the class to score.
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.Recall()
        >>> y_true, y_pred = jnp.array([0, 1, 1, 1]), jnp.array([1., 0., 1., 1.])
        >>> state = m.update(m.init(), y_true, y_pred)
        >>> round(float(m.result(state)), 4)
        0.6667
    """

    _other = "false_negatives"


class AUC(Metric):
    """Area under the ROC or precision-recall curve, by Keras' Riemann sum.

    Predictions are counted at `num_thresholds` thresholds: `num_thresholds - 2`
    evenly spaced in (0, 1), plus `-1e-7` and `1 + 1e-7` at the ends (or the given
    `thresholds` plus those ends). The area is a sum over the intervals between
    thresholds: the trapezoid rule (`"interpolation"`) for ROC, and for PR the
    interpolation of Davis & Goadrich (2006) that Keras uses (true and false
    positives vary linearly, not precision); `"minoring"`/`"majoring"` take the
    lower/upper height. State: `true_positives`, `false_positives`,
    `true_negatives`, `false_negatives` (shape `(num_thresholds,)`, or
    `(num_thresholds, num_labels)` with `multi_label`).

    Args:
        num_thresholds: Int > 1, the number of thresholds.
        curve: `"ROC"` or `"PR"`.
        summation_method: `"interpolation"`, `"minoring"` or `"majoring"`.
        name: The metric's name.
        dtype: The state's dtype.
        thresholds: Optional list of thresholds in [0, 1] (replaces
            `num_thresholds`).
        multi_label: Whether each label gets its own curve (averaged), rather than
            flattening all labels into one.
        num_labels: The number of labels with `multi_label` (else taken from the
            spec given to `init`).
        label_weights: Optional per-label weights (the average with
            `multi_label`; per-element weights otherwise).
        from_logits: Whether `y_pred` holds logits (a sigmoid is applied).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.AUC(num_thresholds=3)
        >>> y_true, y_pred = jnp.array([0, 0, 1, 1]), jnp.array([0., 0.5, 0.3, 0.9])
        >>> state = m.update(m.init(), y_true, y_pred)
        >>> float(m.result(state))
        0.75
    """

    def __init__(
        self,
        num_thresholds=200,
        curve="ROC",
        summation_method="interpolation",
        name=None,
        dtype=None,
        thresholds=None,
        multi_label=False,
        num_labels=None,
        label_weights=None,
        from_logits=False,
    ):
        super().__init__(name=name, dtype=dtype)
        if not isinstance(curve, str) or curve.upper() not in ("ROC", "PR"):
            raise ValueError(f"AUC: `curve` must be 'ROC' or 'PR', got {curve!r}.")
        methods = ("interpolation", "minoring", "majoring")
        if (
            not isinstance(summation_method, str)
            or summation_method.lower() not in methods
        ):
            raise ValueError(
                f"AUC: `summation_method` must be one of {list(methods)}, got "
                f"{summation_method!r}."
            )
        self.curve = curve.upper()
        self.summation_method = summation_method.lower()
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_parse_thresholds("AUC", thresholds, 0.5))
            self.num_thresholds = len(inner) + 2
            self._evenly = _evenly_distributed([0.0, *inner, 1.0])
        else:
            num_thresholds = check_int(
                "AUC", "num_thresholds", num_thresholds, minimum=2
            )
            self.num_thresholds = num_thresholds
            inner = [
                (i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)
            ]
            self._evenly = True
        # End points just outside [0, 1] so that predictions of exactly 0 or 1 are
        # counted on the right side.
        self.thresholds = [0.0 - EPSILON, *inner, 1.0 + EPSILON]
        if not isinstance(multi_label, bool):
            raise TypeError(f"AUC: `multi_label` must be a bool, got {multi_label!r}.")
        self.multi_label = multi_label
        if num_labels is not None:
            if not multi_label:
                raise ValueError(
                    "AUC: `num_labels` is needed only when `multi_label` is True."
                )
            num_labels = check_int("AUC", "num_labels", num_labels)
        self.num_labels = num_labels
        if label_weights is not None:
            label_weights = [
                check_float("AUC", "label_weights", w, low=0.0) for w in label_weights
            ]
        self.label_weights = label_weights
        if not isinstance(from_logits, bool):
            raise TypeError(f"AUC: `from_logits` must be a bool, got {from_logits!r}.")
        self.from_logits = from_logits

    def init(self, y_pred_spec=None):
        shape: tuple[int, ...] = (self.num_thresholds,)
        if self.multi_label:
            labels = self.num_labels or _num_outputs(
                "AUC(multi_label=True)", y_pred_spec
            )
            shape = (self.num_thresholds, labels)
        keys = (
            "true_positives",
            "false_positives",
            "true_negatives",
            "false_negatives",
        )
        return {k: self._zeros(shape) for k in keys}

    def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
        y_pred = jnp.asarray(y_pred)
        if self.from_logits:
            y_pred = jax.nn.sigmoid(y_pred)
        label_weights = None
        if self.label_weights is not None and not self.multi_label:
            label_weights = jnp.asarray(self.label_weights, jnp.float32)
        counts = _confusion_counts(
            "AUC",
            y_true,
            y_pred,
            tuple(self.thresholds),
            evenly=self._evenly,
            weights=row_weights(y_pred, sample_weight, mask),
            multi_label=self.multi_label,
            label_weights=label_weights,
        )
        if counts["tp"].shape != state["true_positives"].shape:
            raise ValueError(
                f"AUC: the state has shape {_shape(state['true_positives'])} but this "
                f"batch gives {_shape(counts['tp'])}; pass the prediction spec (or "
                "`num_labels`) to make the state."
            )
        names = {
            "tp": "true_positives",
            "fp": "false_positives",
            "tn": "true_negatives",
            "fn": "false_negatives",
        }
        return {
            names[k]: state[names[k]] + v.astype(self.dtype) for k, v in counts.items()
        }

    def _average_labels(self, by_label: Array) -> Array:
        if not self.multi_label:
            return jnp.sum(by_label)
        by_label = jnp.sum(by_label, axis=0)
        if self.label_weights is None:
            return jnp.mean(by_label)
        weights = jnp.asarray(self.label_weights, by_label.dtype)
        return _div_no_nan(jnp.sum(by_label * weights), jnp.sum(weights))

    def _interpolate_pr_auc(self, state):
        # Davis & Goadrich (2006), closed form (Keras): within each interval TP and
        # P = TP + FP vary linearly, so precision = (TP_A + slope * (P - P_A)) / P
        # integrates to slope * (dTP + intercept * log(P_B / P_A)).
        tp, fp, fn = (
            state["true_positives"],
            state["false_positives"],
            state["false_negatives"],
        )
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _div_no_nan(dtp, jnp.maximum(dp, 0.0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = jnp.where(both, _div_no_nan(p[:-1], jnp.maximum(p[1:], 0.0)), 1.0)
        increments = _div_no_nan(
            slope * (dtp + intercept * jnp.log(ratio)),
            jnp.maximum(tp[1:] + fn[1:], 0.0),
        )
        return self._average_labels(increments)

    def result(self, state):
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc(state)
        tp, fp = state["true_positives"], state["false_positives"]
        tn, fn = state["true_negatives"], state["false_negatives"]
        recall = _div_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _div_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, _div_no_nan(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = jnp.minimum(y[:-1], y[1:])
        else:
            heights = jnp.maximum(y[:-1], y[1:])
        return self._average_labels((x[:-1] - x[1:]) * heights)

    def get_config(self):
        config = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": self.label_weights,
            "from_logits": self.from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config


class FBetaScore(Metric):
    """F-beta score, `(1 + b^2) * P * R / (b^2 * P + R)`, per class or averaged.

    Inputs are `(batch, num_classes)` binary (multi-label) or one-hot labels and
    scores. With `threshold=None` the arg-max of each row is the prediction;
    otherwise scores above `threshold`. `average`: `None` (one score per class),
    `"micro"` (global counts), `"macro"` (mean over classes) or `"weighted"` (mean
    weighted by support). `init` needs the prediction spec unless `"micro"`.
    State: `true_positives`, `false_positives`, `false_negatives`,
    `intermediate_weights`.

    Args:
        average: `None`, `"micro"`, `"macro"` or `"weighted"`.
        beta: Positive float, the weight of recall.
        threshold: `None` (arg-max) or a float in (0, 1].
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.FBetaScore(beta=2.0, threshold=0.5)
        >>> state = m.init(jax.ShapeDtypeStruct((3,), jnp.float32))
        >>> y_true = jnp.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]])
        >>> y_pred = jnp.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]])
        >>> state = m.update(state, y_true, y_pred)
        >>> [round(x, 4) for x in m.result(state).tolist()]
        [0.3846, 0.9091, 0.8333]
    """

    def __init__(
        self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None
    ):
        super().__init__(name=name, dtype=dtype)
        owner = type(self).__name__
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                f"{owner}: `average` must be one of [None, 'micro', 'macro', "
                f"'weighted'], got {average!r}."
            )
        self.average = average
        self.beta = check_float(owner, "beta", beta, low=0.0, low_inclusive=False)
        if threshold is not None:
            threshold = check_float(
                owner, "threshold", threshold, low=0.0, high=1.0, low_inclusive=False
            )
        self.threshold = threshold

    def init(self, y_pred_spec=None):
        shape = (
            ()
            if self.average == "micro"
            else (_num_outputs(type(self).__name__, y_pred_spec),)
        )
        keys = (
            "true_positives",
            "false_positives",
            "false_negatives",
            "intermediate_weights",
        )
        return {k: self._zeros(shape) for k in keys}

    def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
        owner = type(self).__name__
        y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
        if y_pred.ndim != 2 or y_true.shape[1:] != y_pred.shape[1:] or y_true.ndim != 2:
            raise ValueError(
                f"{owner}: expected y_true and y_pred of shape (batch, num_classes), "
                f"got y_true.shape={_shape(y_true)} and y_pred.shape={_shape(y_pred)}. "
                "One-hot encode integer class ids."
            )
        y_pred = y_pred.astype(self.dtype)
        if self.threshold is None:
            top = jnp.max(y_pred, axis=-1, keepdims=True)
            # The arg-max row becomes 1, but an all-zero row stays all zero.
            predicted = (y_pred >= top) & (jnp.abs(y_pred) > 1e-9)
        else:
            predicted = y_pred > self.threshold
        predicted = predicted.astype(self.dtype)
        y_true = y_true.astype(self.dtype)
        weights = row_weights(y_pred, sample_weight, mask)
        axis = None if self.average == "micro" else 0

        def weighted_sum(values):
            if weights is not None:
                w = weights[:, None].astype(self.dtype)
                values = jnp.where(w != 0, values * w, 0.0)
            return jnp.sum(values, axis=axis)

        return {
            "true_positives": state["true_positives"]
            + weighted_sum(predicted * y_true),
            "false_positives": state["false_positives"]
            + weighted_sum(predicted * (1.0 - y_true)),
            "false_negatives": state["false_negatives"]
            + weighted_sum((1.0 - predicted) * y_true),
            "intermediate_weights": state["intermediate_weights"]
            + weighted_sum(y_true),
        }

    def result(self, state):
        tp = state["true_positives"]
        precision = tp / (tp + state["false_positives"] + EPSILON)
        recall = tp / (tp + state["false_negatives"] + EPSILON)
        b2 = self.beta**2
        score = (1.0 + b2) * precision * recall / (b2 * precision + recall + EPSILON)
        if self.average == "weighted":
            support = state["intermediate_weights"]
            return jnp.sum(score * support / (jnp.sum(support) + EPSILON))
        if self.average is not None:
            return jnp.mean(score)
        return score

    def get_config(self):
        return {
            **super().get_config(),
            "average": self.average,
            "beta": self.beta,
            "threshold": self.threshold,
        }


class F1Score(FBetaScore):
    """F1 score, `2 * P * R / (P + R)`: `FBetaScore` with `beta=1`.

    Args:
        average: `None`, `"micro"`, `"macro"` or `"weighted"`.
        threshold: `None` (arg-max) or a float in (0, 1].
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.F1Score(threshold=0.5)
        >>> state = m.init(jax.ShapeDtypeStruct((3,), jnp.float32))
        >>> y_true = jnp.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]])
        >>> y_pred = jnp.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]])
        >>> state = m.update(state, y_true, y_pred)
        >>> [round(x, 4) for x in m.result(state).tolist()]
        [0.5, 0.8, 0.6667]
    """

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(
            average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype
        )

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


# ----------------------------------------------------------------------------
# Lookup and serialization.
# ----------------------------------------------------------------------------

_CLASSES: dict[str, type[Metric]] = {
    cls.__name__: cls
    for cls in (
        Mean,
        Sum,
        MeanMetricWrapper,
        Accuracy,
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        MeanAbsoluteError,
        MeanSquaredError,
        RootMeanSquaredError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        LogCoshError,
        R2Score,
        Precision,
        Recall,
        AUC,
        FBetaScore,
        F1Score,
    )
}
_NAMES: dict[str, type[Metric]] = {
    **{
        to_snake_case(name): cls
        for name, cls in _CLASSES.items()
        if cls is not MeanMetricWrapper
    },
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError,
    "rmse": RootMeanSquaredError,
    "RMSE": RootMeanSquaredError,
}


def _function_name(fn: Callable[..., Array]) -> str:
    name = getattr(fn, "__name__", None)
    if name in _METRIC_FUNCTIONS and _METRIC_FUNCTIONS[name] is fn:
        return name
    try:
        return losses_module.serialize(fn)["config"]
    except ValueError:
        raise ValueError(
            f"Cannot serialize the metric function {fn!r}: only built-in metric and "
            "loss functions can be stored as data. Write a Metric subclass instead."
        ) from None


def _function(name: str) -> Callable[..., Array]:
    if name in _METRIC_FUNCTIONS:
        return _METRIC_FUNCTIONS[name]
    fn = losses_module.get(name)
    if not callable(fn) or isinstance(fn, losses_module.Loss):
        raise ValueError(f"{name!r} does not name a metric or loss function.")
    return fn


def _known_names() -> list[str]:
    loss_names = [*losses_module._FUNCTIONS, *losses_module._ALIASES]
    return [*_NAMES, *_CLASSES, *_METRIC_FUNCTIONS, *loss_names, "acc"]


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, _known_names(), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown metric {name!r}.{hint} Known metrics: {sorted(_NAMES)}, the class "
        "names, and the loss names (averaged over samples)."
    )


def _loss_kind(loss: Any) -> tuple[str | None, bool]:
    """("binary" | "sparse" | "categorical" | None, from_logits) of a loss."""
    if loss is None:
        return None, False
    if isinstance(loss, str):
        try:
            loss = losses_module.get(loss)
        except ValueError:
            return None, False
    fn, kwargs = loss, {}
    if isinstance(loss, losses_module.LossFunctionWrapper):
        fn, kwargs = loss.fn, loss._fn_kwargs
    kinds = {
        losses_module.binary_crossentropy: "binary",
        losses_module.binary_focal_crossentropy: "binary",
        losses_module.sparse_categorical_crossentropy: "sparse",
        losses_module.categorical_crossentropy: "categorical",
    }
    try:
        kind = kinds.get(fn)
    except TypeError:  # unhashable callables
        kind = None
    return kind, bool(kwargs.get("from_logits", False))


def _accuracy(
    name: str,
    loss: Any,
    output_shape: Sequence[Any] | None,
    label_shape: Sequence[Any] | None,
) -> Metric:
    kind, from_logits = _loss_kind(loss)
    if kind is None and output_shape is not None:
        out = tuple(getattr(output_shape, "shape", output_shape))
        # Keras 3 (compile_utils): one output unit is binary; labels of lower rank,
        # or one label column against several outputs, are sparse. Shapes here
        # have no batch axis, so () is one value per sample.
        if not out or out[-1] == 1:
            kind = "binary"
        elif label_shape is not None:
            lab = tuple(getattr(label_shape, "shape", label_shape))
            sparse = len(lab) < len(out) or (lab[-1] == 1 and out[-1] != 1)
            kind = "sparse" if sparse else "categorical"
        else:
            raise ValueError(
                f"metrics.get({name!r}): cannot tell sparse from one-hot labels for "
                f"outputs of shape {out}; pass `loss=` or `label_shape=`, or name the "
                "metric: 'sparse_categorical_accuracy' or 'categorical_accuracy'."
            )
    if kind == "binary":
        # A logits output is positive above 0, which is probability 0.5.
        return BinaryAccuracy(name=name, threshold=0.0 if from_logits else 0.5)
    if kind == "sparse":
        return SparseCategoricalAccuracy(name=name)
    if kind == "categorical":
        return CategoricalAccuracy(name=name)
    return Accuracy(name=name)


def get(
    identifier: Any,
    loss: Any = None,
    output_shape: Sequence[Any] | None = None,
    *,
    label_shape: Sequence[Any] | None = None,
    custom_objects: dict[str, Any] | None = None,
) -> Metric | None:
    """Resolve a metric given by name, config dict, class, instance or function.

    Strings take the metric's name in logs, as in Keras' `compile`
    (`get("mae").name == "mae"`). `"accuracy"`/`"acc"` resolve as `compile` does:
    by the loss (binary crossentropy: `BinaryAccuracy`, with threshold 0 for
    logits; sparse categorical: `SparseCategoricalAccuracy`; categorical:
    `CategoricalAccuracy`), else by shapes (one output unit: binary; labels of
    lower rank or one label column: sparse; else categorical), else exact
    `Accuracy`. Loss names (`"binary_crossentropy"`, `"kld"`, ...) give the loss'
    mean over samples; a function is wrapped in `MeanMetricWrapper`.

    Args:
        identifier: `None`, a name, a dict `{"class_name", "config"}`, a `Metric`
            class or instance, or a per-sample function.
        loss: The compiled loss (name, function or `Loss`), for `"accuracy"`.
        output_shape: The shape of one prediction, without the batch axis
            (`(10,)`), or its spec; for `"accuracy"`.
        label_shape: The shape of one label, without the batch axis (`()` for
            integer class ids), or its spec; for `"accuracy"`.
        custom_objects: Optional mapping of extra names to classes or functions.

    Returns:
        A `Metric` instance (or `None`).

    Raises:
        ValueError: For an unknown name (with the closest known names), or an
            `"accuracy"` that the shapes cannot decide.

    Example:
        >>> from funkeras import metrics
        >>> metrics.get("accuracy", loss="sparse_categorical_crossentropy")
        SparseCategoricalAccuracy(name='accuracy')
        >>> metrics.get("acc", output_shape=(1,))
        BinaryAccuracy(name='acc')
        >>> metrics.get("mae")
        MeanAbsoluteError(name='mae')
    """
    if identifier is None:
        return None
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier, custom_objects)
    if isinstance(identifier, str):
        if custom_objects and identifier in custom_objects:
            return get(custom_objects[identifier])
        if identifier.lower() in ("accuracy", "acc"):
            return _accuracy(identifier, loss, output_shape, label_shape)
        if identifier in _NAMES or identifier in _CLASSES:
            cls = _NAMES.get(identifier) or _CLASSES[identifier]
            if cls is MeanMetricWrapper:
                raise ValueError(
                    "metrics.get('MeanMetricWrapper'): it needs a function `fn`."
                )
            return cls(name=identifier)
        if identifier in _METRIC_FUNCTIONS:
            return MeanMetricWrapper(_METRIC_FUNCTIONS[identifier], name=identifier)
        try:
            fn = losses_module.get(identifier)
        except ValueError:
            raise _unknown(identifier) from None
        if isinstance(fn, losses_module.LossFunctionWrapper):
            return MeanMetricWrapper(fn.fn, name=identifier, **fn._fn_kwargs)
        return MeanMetricWrapper(fn, name=identifier)
    if inspect.isclass(identifier):
        if not issubclass(identifier, Metric):
            raise TypeError(f"Could not interpret metric identifier {identifier!r}.")
        return identifier()
    if isinstance(identifier, losses_module.LossFunctionWrapper):
        return MeanMetricWrapper(
            identifier.fn, name=identifier.name, **identifier._fn_kwargs
        )
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(
        f"Could not interpret metric identifier {identifier!r}: expected a name, a "
        "config dict, a Metric or a function."
    )


def serialize(metric: Metric) -> dict[str, Any]:
    """A JSON-safe description of a metric (`get`/`deserialize` invert it).

    Args:
        metric: A `Metric` instance.

    Returns:
        `{"class_name": ..., "config": ...}`.

    Example:
        >>> from funkeras import metrics
        >>> config = metrics.serialize(metrics.BinaryAccuracy(threshold=0.3))
        >>> config["config"]["threshold"]
        0.3
    """
    if not isinstance(metric, Metric):
        raise TypeError(f"serialize expects a Metric, got {metric!r}.")
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(
    config: dict[str, Any], custom_objects: dict[str, Any] | None = None
) -> Metric:
    """Rebuild a metric from `serialize`'s output.

    Args:
        config: `{"class_name": ..., "config": ...}`.
        custom_objects: Optional mapping of extra names to `Metric` classes.

    Returns:
        The `Metric` instance.

    Raises:
        ValueError: For a malformed config or an unknown class name.

    Example:
        >>> from funkeras import metrics
        >>> metrics.deserialize({"class_name": "AUC", "config": {"curve": "PR"}}).curve
        'PR'
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"Could not deserialize metric {config!r}: expected a dict with "
            "'class_name' and 'config'."
        )
    name, inner = config["class_name"], config.get("config", {})
    cls = (custom_objects or {}).get(name) or _CLASSES.get(name)
    if cls is None:
        raise _unknown(name)
    if not (inspect.isclass(cls) and issubclass(cls, Metric)):
        raise ValueError(
            f"Could not deserialize metric {config!r}: {name!r} is not a Metric."
        )
    if not isinstance(inner, dict):
        raise ValueError(
            f"Could not deserialize metric {config!r}: 'config' must be a dict."
        )
    return cls.from_config(inner)
