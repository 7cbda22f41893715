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

The modules: `base` (`Metric`, `Mean`, `Sum`, `MeanMetricWrapper`), `accuracy`,
`regression`, `confusion_metrics` (precision, recall, AUC, F-scores), `iou` and
`lookup` (`get`, `serialize`, `deserialize`).

Example:
    >>> import jax.numpy as jnp
    >>> from funkeras import metrics
    >>> m = metrics.get("mae")
    >>> float(m.result(m.update(m.init(), jnp.zeros((2, 1)), jnp.ones((2, 1)))))
    1.0
"""

from funkeras.losses import (
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from funkeras.metrics.accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from funkeras.metrics.base import Mean, MeanMetricWrapper, Metric, Sum, row_weights
from funkeras.metrics.confusion_metrics import (
    AUC,
    F1Score,
    FalseNegatives,
    FalsePositives,
    FBetaScore,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
)
from funkeras.metrics.iou import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from funkeras.metrics.lookup import deserialize, get, serialize
from funkeras.metrics.regression import (
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    R2Score,
    RootMeanSquaredError,
)

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
    "IoU",
    "MeanIoU",
    "BinaryIoU",
    "OneHotIoU",
    "OneHotMeanIoU",
    "TruePositives",
    "FalsePositives",
    "TrueNegatives",
    "FalseNegatives",
]
