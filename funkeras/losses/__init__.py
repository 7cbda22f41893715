"""Losses with Keras 3 names, arguments and numerics, as pure functions and classes.

Every loss function takes `(y_true, y_pred)` (labels first, as in Keras) and
returns one value per sample, an array of shape `(batch,)`. Keras reduces only
the last axis (the features, or the classes), so for inputs of rank > 2 its
functions return `(batch, d1, ...)`; funkeras then takes the mean over the
remaining non-batch axes, which gives the same value as Keras'
`"sum_over_batch_size"` reduction. Inputs of shape `(batch,)` are one value per
sample (as if `(batch, 1)`). Labels of shape `(batch,)` and predictions of shape
`(batch, 1)` (or the reverse) are matched as Keras matches them, never broadcast
to `(batch, batch)`. Losses are computed in float32 (or wider).

The classes (`MeanSquaredError()`, `SparseCategoricalCrossentropy(from_logits=True)`)
hold the configuration; calling one reduces the loss as Keras does (by default the
weighted sum divided by the number of elements). They also take `mask=`, a boolean
`(batch,)` vector of real rows, so that a padded batch gives exactly the loss of
its real rows. `reduce_loss` does the same for per-sample values.

Probabilities are clipped to `[1e-7, 1 - 1e-7]` exactly where Keras clips them.

The modules: `base` (`Loss`, `LossFunctionWrapper`, reductions, the shared
shape rules and the catalogue), `regression`, `probabilistic` and `hinge`.

Example:
    >>> import jax.numpy as jnp
    >>> from funkeras import losses
    >>> losses.get("mse")(jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 1.0]])).tolist()
    [0.5]
"""

from funkeras.losses.base import (
    EPSILON,
    REDUCTIONS,
    Loss,
    LossFunctionWrapper,
    check_sparse_labels,
    deserialize,
    get,
    reduce_loss,
    serialize,
    sparse_labels_out_of_range,
    squeeze_or_expand_to_same_rank,
)
from funkeras.losses.hinge import (
    CategoricalHinge,
    Hinge,
    SquaredHinge,
    categorical_hinge,
    hinge,
    squared_hinge,
)
from funkeras.losses.probabilistic import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    kl_divergence,
    poisson,
    sparse_categorical_crossentropy,
)
from funkeras.losses.regression import (
    CosineSimilarity,
    Huber,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    cosine_similarity,
    huber,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)

__all__ = [
    "EPSILON",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "huber",
    "log_cosh",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "kl_divergence",
    "poisson",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "cosine_similarity",
    "Loss",
    "LossFunctionWrapper",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "Huber",
    "LogCosh",
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "KLDivergence",
    "Poisson",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "CosineSimilarity",
    "REDUCTIONS",
    "reduce_loss",
    "squeeze_or_expand_to_same_rank",
    "check_sparse_labels",
    "sparse_labels_out_of_range",
    "get",
    "serialize",
    "deserialize",
]
