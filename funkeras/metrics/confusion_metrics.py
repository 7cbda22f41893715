"""Confusion-matrix metrics: precision, recall, AUC and the F-scores, from
true/false positive and negative counts (Keras 3 names, arguments and numerics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._validation import (
    check_float,
    check_int,
    shape_str,
)
from funkeras.losses.base import EPSILON, div_no_nan, match_shapes, pair_shapes
from funkeras.metrics.base import Metric, num_outputs, row_weights
from funkeras.typing import Array, ArrayLike

__all__ = [
    "Precision",
    "Recall",
    "AUC",
    "FBetaScore",
    "F1Score",
    "TruePositives",
    "FalsePositives",
    "TrueNegatives",
    "FalseNegatives",
]


_NEG_INF = -1e10  # Keras' threshold when only `top_k` selects the positives.


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
    y_true, y_pred = match_shapes(
        owner,
        y_true,
        y_pred,
        hint=" Labels are binary (one per prediction); one-hot encode integer "
        "class ids.",
    )
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if not class_id < y_pred.shape[-1]:
            raise ValueError(
                f"{owner}: `class_id`={class_id} is out of range for "
                f"y_pred.shape={shape_str(y_pred.shape)} ({y_pred.shape[-1]} classes)."
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
                f"(batch, num_labels), got {shape_str(y_pred.shape)}."
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
        value = div_no_nan(tp, tp + state[self._other])
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
            labels = self.num_labels or num_outputs(
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
                "AUC: the state has shape "
                f"{shape_str(state['true_positives'].shape)} but this batch gives "
                f"{shape_str(counts['tp'].shape)}; pass the prediction spec (or "
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
        return div_no_nan(jnp.sum(by_label * weights), jnp.sum(weights))

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
        slope = div_no_nan(dtp, jnp.maximum(dp, 0.0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = jnp.where(both, div_no_nan(p[:-1], jnp.maximum(p[1:], 0.0)), 1.0)
        increments = div_no_nan(
            slope * (dtp + intercept * jnp.log(ratio)),
            jnp.maximum(tp[1:] + fn[1:], 0.0),
        )
        return self._average_labels(increments)

    def result(self, state):
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc(state)
        tp, fp = state["true_positives"], state["false_positives"]
        tn, fn = state["true_negatives"], state["false_negatives"]
        recall = div_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = div_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, div_no_nan(tp, tp + fp)
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
            else (num_outputs(type(self).__name__, y_pred_spec),)
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
                f"got {pair_shapes(y_true, y_pred)}. "
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


class _ConditionCount(Metric):
    """A weighted count of one confusion-matrix cell, per threshold (Keras')."""

    _cell: str = "tp"

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = _parse_thresholds(type(self).__name__, thresholds, 0.5)
        self._evenly = _evenly_distributed(self.thresholds)

    def init(self, y_pred_spec=None):
        return {"accumulator": self._zeros((len(self.thresholds),))}

    def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
        counts = _confusion_counts(
            type(self).__name__,
            y_true,
            y_pred,
            tuple(self.thresholds),
            evenly=self._evenly,
            weights=row_weights(jnp.asarray(y_pred), sample_weight, mask),
        )
        return {
            "accumulator": state["accumulator"] + counts[self._cell].astype(self.dtype)
        }

    def result(self, state):
        value = state["accumulator"]
        return value[0] if len(self.thresholds) == 1 else value

    def get_config(self):
        thresholds = self.init_thresholds
        if isinstance(thresholds, tuple | np.ndarray):
            thresholds = [float(t) for t in thresholds]
        return {**super().get_config(), "thresholds": thresholds}


_COUNT_DOC = """The weighted number of {what}: predictions above a threshold count as
    positive (one count per threshold with several). State: `accumulator`.

    Args:
        thresholds: A float or list of floats in [0, 1] (default 0.5).
        name: The metric's name.
        dtype: The state's dtype.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import metrics
        >>> m = metrics.{cls}()
        >>> y_true, y_pred = jnp.array([0, 1, 1, 1]), jnp.array([1., 0., 1., 1.])
        >>> float(m.result(m.update(m.init(), y_true, y_pred)))
        {value}
    """


class TruePositives(_ConditionCount):
    __doc__ = _COUNT_DOC.format(what="true positives", cls="TruePositives", value="2.0")
    _cell = "tp"


class FalsePositives(_ConditionCount):
    __doc__ = _COUNT_DOC.format(
        what="false positives", cls="FalsePositives", value="1.0"
    )
    _cell = "fp"


class TrueNegatives(_ConditionCount):
    __doc__ = _COUNT_DOC.format(what="true negatives", cls="TrueNegatives", value="0.0")
    _cell = "tn"


class FalseNegatives(_ConditionCount):
    __doc__ = _COUNT_DOC.format(
        what="false negatives", cls="FalseNegatives", value="1.0"
    )
    _cell = "fn"
