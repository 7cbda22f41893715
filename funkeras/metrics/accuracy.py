"""Accuracy metrics: exact, binary, categorical, sparse and top-k accuracy, as
per-sample functions and as metrics (Keras 3 names, arguments and numerics)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from funkeras import losses
from funkeras._validation import check_float, check_int, shape_str
from funkeras.losses.base import (
    match_shapes,
    pair_shapes,
    per_sample,
    same_static_dims,
    sparse_labels,
)
from funkeras.losses.probabilistic import loss_kind
from funkeras.metrics.base import FUNCTIONS, MeanMetricWrapper, Metric
from funkeras.typing import Array, ArrayLike

__all__ = [
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "accuracy_for",
]


def _classes_pred(fn: str, y_pred: ArrayLike) -> Array:
    y_pred = jnp.asarray(y_pred)
    if y_pred.ndim < 2:
        raise ValueError(
            f"{fn}: expected y_pred of shape (batch, num_classes), got "
            f"y_pred.shape={shape_str(y_pred.shape)}."
        )
    return y_pred


def _one_hot_labels(fn: str, sparse_fn: str, y_true: ArrayLike, y_pred: Array) -> Array:
    y_true = jnp.asarray(y_true)
    if not same_static_dims(tuple(y_true.shape), tuple(y_pred.shape)):
        hint = ""
        if y_true.ndim == y_pred.ndim - 1 or y_true.shape[-1] == 1:
            hint = f" The labels look like integer class ids: use {sparse_fn}."
        raise ValueError(
            f"{fn}: expected one-hot y_true of the same shape as y_pred, got "
            f"{pair_shapes(y_true, y_pred)}.{hint}"
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
    y_true, y_pred = match_shapes("accuracy", jnp.asarray(y_true), jnp.asarray(y_pred))
    return per_sample(jnp.mean((y_true == y_pred).astype(jnp.float32), axis=-1))


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
    y_true, y_pred = match_shapes(
        "binary_accuracy", jnp.asarray(y_true), jnp.asarray(y_pred)
    )
    predicted = (y_pred > threshold).astype(jnp.float32)
    hits = (y_true.astype(jnp.float32) == predicted).astype(jnp.float32)
    return per_sample(jnp.mean(hits, axis=-1))


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
    return per_sample(hits.astype(jnp.float32))


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
    labels = sparse_labels(fn, y_true, y_pred)
    hits = jnp.argmax(y_pred, axis=-1).astype(jnp.int32) == labels
    return per_sample(hits.astype(jnp.float32))


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
    return per_sample(_in_top_k(labels, y_pred, k).astype(jnp.float32))


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
    labels = sparse_labels(fn, y_true, y_pred)
    return per_sample(_in_top_k(labels, y_pred, k).astype(jnp.float32))


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


def _loss_kind(loss: Any) -> tuple[str | None, bool]:
    """("binary" | "sparse" | "categorical" | None, from_logits) of a loss."""
    if loss is None:
        return None, False
    if isinstance(loss, str):
        try:
            loss = losses.get(loss)
        except ValueError:
            return None, False
    from_logits = False
    if isinstance(loss, losses.Loss):
        from_logits = bool(loss.get_config().get("from_logits", False))
    return loss_kind(loss), from_logits


def accuracy_for(
    name: str,
    loss: Any,
    output_shape: Sequence[Any] | None,
    label_shape: Sequence[Any] | None,
) -> Metric:
    """The accuracy metric `compile` gives for "accuracy" (see `metrics.get`).

    Chosen by the loss' kind (binary, sparse or categorical crossentropy), else
    by the shapes of one output and one label (without the batch axis), else
    exact `Accuracy`.

    Example:
        >>> from funkeras.metrics.accuracy import accuracy_for
        >>> accuracy_for("acc", "binary_crossentropy", None, None)
        BinaryAccuracy(name='acc')
    """
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


for _fn in (
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    top_k_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
):
    FUNCTIONS.register(_fn, _fn.__name__)
