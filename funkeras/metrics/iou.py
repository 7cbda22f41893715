"""Intersection-over-union metrics: `IoU`, `MeanIoU`, `BinaryIoU`, `OneHotIoU`,
`OneHotMeanIoU` (Keras 3 names, arguments and numerics).

Each accumulates a `(num_classes, num_classes)` confusion matrix (rows: true
class, columns: predicted class) over every element of every batch, so a
segmentation model's `(batch, height, width)` labels are scored pixel by pixel.
The result is `tp / (tp + fp + fn)` per target class, averaged over the target
classes that occurred (a class absent from both labels and predictions counts
for nothing), each divided with Keras' `+ 1e-7`.

Differs from Keras: the state is float32 (Keras keeps an int matrix and casts
sample weights to int), so fractional sample weights count as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp

from funkeras._validation import check_float, check_int
from funkeras.losses.base import EPSILON
from funkeras.metrics.base import Metric, row_weights
from funkeras.typing import Array

__all__ = ["IoU", "MeanIoU", "BinaryIoU", "OneHotIoU", "OneHotMeanIoU"]


class _IoUBase(Metric):
    def __init__(
        self,
        num_classes: int,
        target_class_ids: Sequence[int],
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ) -> None:
        super().__init__(name=name, dtype=dtype)
        owner = type(self).__name__
        self.num_classes = check_int(owner, "num_classes", num_classes)
        if isinstance(target_class_ids, int):
            target_class_ids = [target_class_ids]
        ids = [
            check_int(owner, "target_class_ids", i, minimum=0) for i in target_class_ids
        ]
        if not ids:
            raise ValueError(f"{owner}: `target_class_ids` must not be empty.")
        if max(ids) >= self.num_classes:
            raise ValueError(
                f"{owner}: target class id {max(ids)} is out of range "
                f"[0, {self.num_classes}) for num_classes={self.num_classes}."
            )
        self.target_class_ids = ids
        self.ignore_class = (
            None
            if ignore_class is None
            else check_int(owner, "ignore_class", ignore_class, minimum=None)
        )
        self.sparse_y_true = bool(sparse_y_true)
        self.sparse_y_pred = bool(sparse_y_pred)
        self.axis = check_int(owner, "axis", axis, minimum=None)

    def init(self, y_pred_spec: Any = None) -> dict[str, Array]:
        n = self.num_classes
        return {"total_confusion_matrix": self._zeros((n, n))}

    def _labels(self, y_true: Any, y_pred: Any) -> tuple[Array, Array]:
        y_true, y_pred = jnp.asarray(y_true), jnp.asarray(y_pred)
        if not self.sparse_y_true:
            y_true = jnp.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = jnp.argmax(y_pred, axis=self.axis)
        return y_true, y_pred

    def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
        batch = jnp.shape(y_pred)[0]
        weights = row_weights(jnp.asarray(y_pred), sample_weight, mask)
        y_true, y_pred = self._labels(y_true, y_pred)
        y_true = y_true.astype(jnp.int32).reshape(batch, -1)
        y_pred = y_pred.astype(jnp.int32).reshape(batch, -1)
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"{type(self).__name__}: y_true and y_pred must hold the same number "
                f"of labels per row, got {y_true.shape[1]} and {y_pred.shape[1]}."
            )
        w = jnp.ones(y_true.shape, jnp.float32)
        if weights is not None:
            w = w * weights[:, None]
        n = self.num_classes
        valid = (y_true >= 0) & (y_true < n) & (y_pred >= 0) & (y_pred < n)
        if self.ignore_class is not None:
            valid = valid & (y_true != self.ignore_class)
        w = jnp.where(valid, w, 0.0)
        index = jnp.where(valid, y_true * n + y_pred, 0).ravel()
        cm = jnp.zeros((n * n,), jnp.float32).at[index].add(w.ravel()).reshape(n, n)
        return {
            "total_confusion_matrix": state["total_confusion_matrix"]
            + cm.astype(self.dtype)
        }

    def result(self, state):
        cm = state["total_confusion_matrix"].astype(jnp.float32)
        tp = jnp.diag(cm)
        denominator = cm.sum(0) + cm.sum(1) - tp
        ids = jnp.asarray(self.target_class_ids)
        tp, denominator = tp[ids], denominator[ids]
        valid = denominator > 1e-9
        iou = jnp.where(valid, tp / (denominator + EPSILON), 0.0)
        return jnp.sum(iou) / (jnp.sum(valid.astype(jnp.float32)) + EPSILON)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "target_class_ids": list(self.target_class_ids),
            "ignore_class": self.ignore_class,
            "sparse_y_true": self.sparse_y_true,
            "sparse_y_pred": self.sparse_y_pred,
            "axis": self.axis,
        }


class IoU(_IoUBase):
    """Intersection-over-union of the `target_class_ids`, from integer labels.

    Args:
        num_classes: The number of classes (labels are `0 .. num_classes - 1`;
            others are ignored).
        target_class_ids: The classes whose IoU is averaged.
        name: The metric's name.
        dtype: The state's dtype.
        ignore_class: A label to leave out (e.g. a "void" class), or None.
        sparse_y_true: `y_true` holds class ids (True) or scores to `argmax`.
        sparse_y_pred: `y_pred` holds class ids (True) or scores to `argmax`.
        axis: The class axis for `argmax` of non-sparse inputs.

    State: `total_confusion_matrix` `(num_classes, num_classes)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.IoU(num_classes=2, target_class_ids=[0])
        >>> s = m.update(m.init(), jnp.array([0, 0, 1, 1]), jnp.array([0, 1, 0, 1]))
        >>> round(float(m.result(s)), 4)  # class 0: 1 / (2 + 2 - 1)
        0.3333
    """


class MeanIoU(_IoUBase):
    """Mean intersection-over-union over all `num_classes` classes (integer labels).

    Args:
        num_classes: The number of classes.
        name: The metric's name.
        dtype: The state's dtype.
        ignore_class: A label to leave out, or None.
        sparse_y_true: `y_true` holds class ids (True) or scores to `argmax`.
        sparse_y_pred: `y_pred` holds class ids (True) or scores to `argmax`
            (set False for a model's per-class scores).
        axis: The class axis for `argmax`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.MeanIoU(num_classes=2)
        >>> s = m.update(m.init(), jnp.array([0, 0, 1, 1]), jnp.array([0, 1, 0, 1]))
        >>> round(float(m.result(s)), 4)
        0.3333
    """

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ) -> None:
        n = check_int(type(self).__name__, "num_classes", num_classes)
        super().__init__(
            n,
            list(range(n)),
            name,
            dtype,
            ignore_class,
            sparse_y_true,
            sparse_y_pred,
            axis,
        )

    def get_config(self):
        config = super().get_config()
        del config["target_class_ids"]
        return config


class BinaryIoU(_IoUBase):
    """IoU of binary labels, predictions thresholded: `y_pred >= threshold` is 1.

    Args:
        target_class_ids: Which of the classes 0 and 1 to average (both by
            default).
        threshold: Predictions at or above it count as class 1.
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.BinaryIoU(target_class_ids=[1], threshold=0.3)
        >>> y_true, y_pred = jnp.array([0, 1, 0, 1]), jnp.array([0.1, 0.2, 0.4, 0.7])
        >>> s = m.update(m.init(), y_true, y_pred)
        >>> round(float(m.result(s)), 4)
        0.3333
    """

    def __init__(
        self,
        target_class_ids: Sequence[int] = (0, 1),
        threshold: float = 0.5,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(2, target_class_ids, name, dtype)
        self.threshold = check_float(type(self).__name__, "threshold", threshold)

    def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
        y_pred = (jnp.asarray(y_pred, jnp.float32) >= self.threshold).astype(jnp.int32)
        return super().update(state, y_true, y_pred, sample_weight, mask)

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "target_class_ids": list(self.target_class_ids),
            "threshold": self.threshold,
        }


class OneHotIoU(_IoUBase):
    """`IoU` for one-hot `y_true` (and per-class scores in `y_pred`).

    Args:
        num_classes: The number of classes.
        target_class_ids: The classes whose IoU is averaged.
        name: The metric's name.
        dtype: The state's dtype.
        ignore_class: A label to leave out, or None.
        sparse_y_pred: `y_pred` holds class ids (True) or scores (False).
        axis: The class axis.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.OneHotIoU(num_classes=3, target_class_ids=[0, 2])
        >>> y_true = jnp.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]])
        >>> y_pred = jnp.array([[.2, .3, .5], [.1, .2, .7], [.5, .3, .1], [.1, .4, .5]])
        >>> round(float(m.result(m.update(m.init(), y_true, y_pred))), 4)
        0.1667
    """

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Sequence[int],
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ) -> None:
        super().__init__(
            num_classes,
            target_class_ids,
            name,
            dtype,
            ignore_class,
            False,
            sparse_y_pred,
            axis,
        )

    def get_config(self):
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class OneHotMeanIoU(MeanIoU):
    """`MeanIoU` for one-hot `y_true` (and per-class scores in `y_pred`).

    Args:
        num_classes: The number of classes.
        name: The metric's name.
        dtype: The state's dtype.
        ignore_class: A label to leave out, or None.
        sparse_y_pred: `y_pred` holds class ids (True) or scores (False).
        axis: The class axis.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.OneHotMeanIoU(num_classes=3)
        >>> y_true = jnp.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]])
        >>> y_pred = jnp.array([[.2, .3, .5], [.1, .2, .7], [.5, .3, .1], [.1, .4, .5]])
        >>> round(float(m.result(m.update(m.init(), y_true, y_pred))), 4)
        0.1111
    """

    def __init__(
        self,
        num_classes: int,
        name: str | None = None,
        dtype: Any = None,
        ignore_class: int | None = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ) -> None:
        super().__init__(
            num_classes, name, dtype, ignore_class, False, sparse_y_pred, axis
        )

    def get_config(self):
        config = super().get_config()
        del config["sparse_y_true"]
        return config
