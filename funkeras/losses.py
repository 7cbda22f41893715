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
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._validation import (
    check_bool,
    check_float,
    check_int,
    normalize_dtype,
    to_snake_case,
)
from funkeras.typing import Array, ArrayLike

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

EPSILON = 1e-7
"""Keras' `backend.epsilon()`: the clipping bound for probabilities."""

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none")
"""The reductions a `Loss` accepts (`None` is read as `"none"`)."""


# ----------------------------------------------------------------------------
# Shapes and dtypes.
# ----------------------------------------------------------------------------


def _shape(x: Any) -> str:
    return str(tuple(x.shape))


def _compute_dtype(x: Array) -> Any:
    """float32, or the input's float dtype if wider (bf16/f16 are promoted)."""
    if jnp.issubdtype(x.dtype, jnp.floating):
        return jnp.promote_types(x.dtype, jnp.float32)
    return jnp.dtype(jnp.float32)


def _as_float(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[Array, Array]:
    y_pred = jnp.asarray(y_pred)
    dtype = _compute_dtype(y_pred)
    return jnp.asarray(y_true).astype(dtype), y_pred.astype(dtype)


def squeeze_or_expand_to_same_rank(
    x1: Array, x2: Array, expand_rank_1: bool = True
) -> tuple[Array, Array]:
    """Match ranks that differ by one trailing axis of size 1, as Keras does.

    `(batch,)` against `(batch, 1)` becomes `(batch, 1)` and `(batch, 1)`
    (`expand_rank_1=True`); at higher ranks the size-1 axis is squeezed instead.
    Anything else is returned unchanged.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.losses import squeeze_or_expand_to_same_rank
        >>> a, b = squeeze_or_expand_to_same_rank(jnp.zeros(4), jnp.zeros((4, 1)))
        >>> a.shape, b.shape
        ((4, 1), (4, 1))
    """
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = jnp.expand_dims(x2, -1)
        else:
            x1 = jnp.squeeze(x1, -1)
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = jnp.expand_dims(x1, -1)
        else:
            x2 = jnp.squeeze(x2, -1)
    return x1, x2


def _same_static_dims(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal ranks and equal non-batch dims (the batch dim may be symbolic)."""
    return len(a) == len(b) and all(x == y for x, y in zip(a[1:], b[1:], strict=True))


def _check_batched(fn: str, y_true: Array, y_pred: Array) -> None:
    if y_pred.ndim == 0 or y_true.ndim == 0:
        raise ValueError(
            f"{fn}: expected batched inputs (batch axis first), got "
            f"y_true.shape={_shape(y_true)} and y_pred.shape={_shape(y_pred)}."
        )


def _match(
    fn: str, y_true: Array, y_pred: Array, hint: str = ""
) -> tuple[Array, Array]:
    """Keras' rank matching, then a clear error unless the shapes are equal."""
    _check_batched(fn, y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if y_true.ndim == 1 and y_pred.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    if not _same_static_dims(tuple(y_true.shape), tuple(y_pred.shape)):
        if (
            not hint
            and y_pred.shape[-1] != 1
            and (y_true.ndim == y_pred.ndim - 1 or y_true.shape[-1] == 1)
        ):
            hint = (
                " `y_true` looks like integer class ids: for classification, use "
                "sparse_categorical_crossentropy."
            )
        raise ValueError(
            f"{fn}: y_true and y_pred must have the same shape, got "
            f"y_true.shape={_shape(y_true)} and y_pred.shape={_shape(y_pred)}.{hint}"
        )
    return y_true, y_pred


def _per_sample(values: Array) -> Array:
    """Mean over every non-batch axis: `(batch, ...)` -> `(batch,)`."""
    if values.ndim > 1:
        values = jnp.mean(values, axis=tuple(range(1, values.ndim)))
    return values


def _class_axis(fn: str, axis: Any, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"{fn}: `axis` must be an int, got {axis!r}.")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{fn}: `axis`={axis} is out of range for inputs of rank {ndim}."
        )
    axis = int(axis) % ndim
    if axis == 0:
        raise ValueError(
            f"{fn}: `axis` may not be the batch axis (0); use the features axis "
            "(usually -1)."
        )
    return axis


def _l2_normalize(x: Array, axis: int) -> Array:
    # Keras: x * min(rsqrt(sum(x^2)), 1/eps). rsqrt(max(s, eps^2)) is the same value
    # and keeps the gradient finite for an all-zero vector.
    square_sum = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(square_sum, EPSILON**2))


def _check_label_smoothing(fn: str, label_smoothing: Any) -> float:
    return check_float(fn, "label_smoothing", label_smoothing, low=0.0, high=1.0)


# ----------------------------------------------------------------------------
# Element functions: Keras' values, shape (batch, d1, ...), plus a validity mask.
# ----------------------------------------------------------------------------

Elements = tuple[Array, Array | None]


def _compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Jit an element function with its hyperparameters static.

    Called eagerly, a loss then runs as one compiled program instead of one per
    operation; inside a jitted step the inner jit is inlined. Shape errors are
    raised while tracing, before anything runs.
    """
    num_params = len(inspect.signature(fn).parameters)
    jitted = jax.jit(fn, static_argnums=tuple(range(2, num_params)))

    @functools.wraps(fn)
    def call(
        y_true: ArrayLike, y_pred: ArrayLike, *args: Any, **kwargs: Any
    ) -> Elements:
        # Arrays, not nested lists: jit would treat a list as many scalar arguments.
        return jitted(jnp.asarray(y_true), jnp.asarray(y_pred), *args, **kwargs)

    return call


@_compiled
def _mse_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = _match("mean_squared_error", *_as_float(y_true, y_pred))
    return jnp.mean(jnp.square(y_true - y_pred), axis=-1), None


@_compiled
def _mae_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = _match("mean_absolute_error", *_as_float(y_true, y_pred))
    return jnp.mean(jnp.abs(y_true - y_pred), axis=-1), None


@_compiled
def _mape_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = _match(
        "mean_absolute_percentage_error", *_as_float(y_true, y_pred)
    )
    diff = jnp.abs((y_true - y_pred) / jnp.maximum(jnp.abs(y_true), EPSILON))
    return 100.0 * jnp.mean(diff, axis=-1), None


@_compiled
def _msle_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = _match(
        "mean_squared_logarithmic_error", *_as_float(y_true, y_pred)
    )
    first = jnp.log(jnp.maximum(y_pred, EPSILON) + 1.0)
    second = jnp.log(jnp.maximum(y_true, EPSILON) + 1.0)
    return jnp.mean(jnp.square(first - second), axis=-1), None


@_compiled
def _huber_elements(y_true, y_pred, delta=1.0) -> Elements:
    delta = check_float("huber", "delta", delta, low=0.0, low_inclusive=False)
    y_true, y_pred = _match("huber", *_as_float(y_true, y_pred))
    error = y_pred - y_true
    abs_error = jnp.abs(error)
    values = jnp.where(
        abs_error <= delta, 0.5 * jnp.square(error), delta * abs_error - 0.5 * delta**2
    )
    return jnp.mean(values, axis=-1), None


@_compiled
def _log_cosh_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = _match("log_cosh", *_as_float(y_true, y_pred))
    x = y_pred - y_true
    # log(cosh(x)) = x + softplus(-2x) - log(2): no overflow for large |x|.
    return jnp.mean(x + jax.nn.softplus(-2.0 * x) - math.log(2.0), axis=-1), None


def _bce_hint() -> str:
    return (
        " binary_crossentropy takes one probability (or logit) per label, with "
        "labels of the same shape; for integer class ids over several classes use "
        "sparse_categorical_crossentropy."
    )


def _binary_prepare(fn, y_true, y_pred, label_smoothing, axis):
    label_smoothing = _check_label_smoothing(fn, label_smoothing)
    y_true, y_pred = _as_float(y_true, y_pred)
    _check_batched(fn, y_true, y_pred)
    y_true, y_pred = _match(fn, y_true, y_pred, hint=_bce_hint())
    axis = _class_axis(fn, axis, y_pred.ndim)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return y_true, y_pred, axis


def _bce_from_probs(y_true: Array, y_pred: Array) -> Array:
    y_pred = jnp.clip(y_pred, EPSILON, 1.0 - EPSILON)
    return -(y_true * jnp.log(y_pred) + (1.0 - y_true) * jnp.log(1.0 - y_pred))


@_compiled
def _bce_elements(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    fn = "binary_crossentropy"
    y_true, y_pred, axis = _binary_prepare(fn, y_true, y_pred, label_smoothing, axis)
    if from_logits:
        values = -y_true * jax.nn.log_sigmoid(y_pred) - (
            1.0 - y_true
        ) * jax.nn.log_sigmoid(-y_pred)
    else:
        values = _bce_from_probs(y_true, y_pred)
    return jnp.mean(values, axis=axis), None


@_compiled
def _focal_elements(
    y_true,
    y_pred,
    apply_class_balancing=False,
    alpha=0.25,
    gamma=2.0,
    from_logits=False,
    label_smoothing=0.0,
    axis=-1,
):
    fn = "binary_focal_crossentropy"
    alpha = check_float(fn, "alpha", alpha, low=0.0, high=1.0)
    gamma = check_float(fn, "gamma", gamma, low=0.0)
    y_true, y_pred, axis = _binary_prepare(fn, y_true, y_pred, label_smoothing, axis)
    if from_logits:
        y_pred = jax.nn.sigmoid(y_pred)
    bce = _bce_from_probs(y_true, y_pred)
    p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
    values = jnp.power(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        values = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * values
    return jnp.mean(values, axis=axis), None


def _one_class_error(fn: str, y_pred: Array) -> ValueError:
    return ValueError(
        f"{fn}: y_pred has a single class (shape {_shape(y_pred)}), so the loss "
        "is always 0. For one probability per sample use binary_crossentropy "
        "(and a sigmoid output); otherwise give the last layer one unit per class."
    )


def _log_probs(y_pred: Array, from_logits: bool) -> Array:
    """Log-probabilities over the last axis, as Keras computes them."""
    if from_logits:
        return jax.nn.log_softmax(y_pred, axis=-1)
    y_pred = y_pred / jnp.sum(y_pred, axis=-1, keepdims=True)
    return jnp.log(jnp.clip(y_pred, EPSILON, 1.0 - EPSILON))


@_compiled
def _cce_elements(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    fn = "categorical_crossentropy"
    label_smoothing = _check_label_smoothing(fn, label_smoothing)
    y_true, y_pred = _as_float(y_true, y_pred)
    _check_batched(fn, y_true, y_pred)
    if y_pred.ndim < 2:
        raise ValueError(
            f"{fn}: expected y_pred of shape (batch, num_classes), got "
            f"y_pred.shape={_shape(y_pred)}."
        )
    axis = _class_axis(fn, axis, y_pred.ndim)
    y_pred = jnp.moveaxis(y_pred, axis, -1)
    if y_true.ndim == y_pred.ndim:
        y_true = jnp.moveaxis(y_true, axis, -1)
    num_classes = y_pred.shape[-1]
    if num_classes == 1:
        raise _one_class_error(fn, y_pred)
    if not _same_static_dims(tuple(y_true.shape), tuple(y_pred.shape)):
        hint = ""
        if y_true.ndim == y_pred.ndim - 1 or y_true.shape[-1] == 1:
            hint = (
                " The labels look like integer class ids: use "
                "sparse_categorical_crossentropy (or one-hot encode them)."
            )
        raise ValueError(
            f"{fn}: expected one-hot y_true of the same shape as y_pred, got "
            f"y_true.shape={_shape(y_true)} and y_pred.shape={_shape(y_pred)}.{hint}"
        )
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / num_classes
    return -jnp.sum(y_true * _log_probs(y_pred, from_logits), axis=-1), None


def _sparse_labels(fn: str, y_true: ArrayLike, y_pred: Array) -> Array:
    """Validate and squeeze sparse labels against y_pred (classes on the last axis)."""
    y_true = jnp.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.ndim > 0 and y_true.shape[-1] == 1:
        y_true = jnp.squeeze(y_true, -1)
    num_classes = y_pred.shape[-1]
    expected = tuple(y_pred.shape[:-1])
    if not _same_static_dims(tuple(y_true.shape), expected):
        if y_true.ndim == y_pred.ndim and num_classes > 1:
            hint = (
                " The labels look one-hot (one column per class): use "
                "categorical_crossentropy, or pass integer class ids of shape "
                f"{str(expected)}."
            )
        else:
            hint = (
                f" Expected integer class ids of shape {str(expected)} "
                "(or with a trailing 1)."
            )
        raise ValueError(
            f"{fn}: y_true.shape={_shape(y_true)} does not fit "
            f"y_pred.shape={_shape(y_pred)}.{hint}"
        )
    return y_true.astype(jnp.int32)


@_compiled
def _scce_elements(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    fn = "sparse_categorical_crossentropy"
    if ignore_class is not None:
        ignore_class = check_int(fn, "ignore_class", ignore_class, minimum=None)
    y_pred = jnp.asarray(y_pred)
    y_pred = y_pred.astype(_compute_dtype(y_pred))
    if y_pred.ndim < 2:
        raise ValueError(
            f"{fn}: expected y_pred of shape (batch, num_classes), got "
            f"y_pred.shape={_shape(y_pred)}."
        )
    axis = _class_axis(fn, axis, y_pred.ndim)
    y_pred = jnp.moveaxis(y_pred, axis, -1)
    num_classes = y_pred.shape[-1]
    if num_classes == 1:
        raise _one_class_error(fn, y_pred)
    labels = _sparse_labels(fn, y_true, y_pred)
    valid = None
    if ignore_class is not None:
        valid = labels != ignore_class
        # Keras zeroes the ignored rows of y_pred; a valid class id keeps the
        # (discarded) value finite and its gradient free of 0/0.
        labels = jnp.where(valid, labels, 0)
    # one_hot of an out-of-range id is all zeros: Keras' silent 0 loss. Check labels
    # with `check_sparse_labels` (host) or `sparse_labels_out_of_range` (in graph).
    one_hot = jax.nn.one_hot(labels, num_classes, dtype=y_pred.dtype)
    values = -jnp.sum(one_hot * _log_probs(y_pred, from_logits), axis=-1)
    if valid is not None:
        values = jnp.where(valid, values, 0.0)
    return values, valid


@_compiled
def _kld_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = _match("kl_divergence", *_as_float(y_true, y_pred))
    y_true = jnp.clip(y_true, EPSILON, 1.0)
    y_pred = jnp.clip(y_pred, EPSILON, 1.0)
    return jnp.sum(y_true * jnp.log(y_true / y_pred), axis=-1), None


@_compiled
def _poisson_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = _match("poisson", *_as_float(y_true, y_pred))
    return jnp.mean(y_pred - y_true * jnp.log(y_pred + EPSILON), axis=-1), None


def _to_hinge_labels(y_true: Array) -> Array:
    """Keras: labels all in {0, 1} (over the whole batch) become {-1, 1}."""
    is_binary = jnp.all((y_true == 0) | (y_true == 1))
    return jnp.where(is_binary, 2.0 * y_true - 1.0, y_true)


@_compiled
def _hinge_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = _match("hinge", *_as_float(y_true, y_pred))
    y_true = _to_hinge_labels(y_true)
    return jnp.mean(jnp.maximum(1.0 - y_true * y_pred, 0.0), axis=-1), None


@_compiled
def _squared_hinge_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = _match("squared_hinge", *_as_float(y_true, y_pred))
    y_true = _to_hinge_labels(y_true)
    return jnp.mean(jnp.square(jnp.maximum(1.0 - y_true * y_pred, 0.0)), axis=-1), None


@_compiled
def _categorical_hinge_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = _match("categorical_hinge", *_as_float(y_true, y_pred))
    pos = jnp.sum(y_true * y_pred, axis=-1)
    neg = jnp.max((1.0 - y_true) * y_pred, axis=-1)
    return jnp.maximum(neg - pos + 1.0, 0.0), None


@_compiled
def _cosine_elements(y_true, y_pred, axis=-1) -> Elements:
    fn = "cosine_similarity"
    y_true, y_pred = _match(fn, *_as_float(y_true, y_pred))
    axis = _class_axis(fn, axis, y_pred.ndim)
    return -jnp.sum(
        _l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), axis=axis
    ), None


# ----------------------------------------------------------------------------
# Per-sample loss functions (the public, Keras-named API).
# ----------------------------------------------------------------------------


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
    return _per_sample(_mse_elements(y_true, y_pred)[0])


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
    return _per_sample(_mae_elements(y_true, y_pred)[0])


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
    return _per_sample(_mape_elements(y_true, y_pred)[0])


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
    return _per_sample(_msle_elements(y_true, y_pred)[0])


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
    return _per_sample(_huber_elements(y_true, y_pred, delta)[0])


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
    return _per_sample(_log_cosh_elements(y_true, y_pred)[0])


def binary_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """Binary crossentropy per sample, averaged over `axis` (the labels).

    With probabilities, `y_pred` is clipped to `[1e-7, 1 - 1e-7]`; with
    `from_logits=True` the stable `log_sigmoid` form is used. Label smoothing
    squeezes the labels towards 0.5:
    `y * (1 - label_smoothing) + 0.5 * label_smoothing`.

    Args:
        y_true: Labels in [0, 1], the same shape as `y_pred`.
        y_pred: Probabilities, or logits with `from_logits=True`.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Float in [0, 1].
        axis: The axis averaged over (the labels axis).

    Returns:
        Per-sample losses, shape `(batch,)`.

    Raises:
        ValueError: For labels whose shape does not fit `y_pred`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> v = losses.binary_crossentropy(jnp.array([[0., 1.], [0., 0.]]),
        ...                                jnp.array([[0.6, 0.4], [0.4, 0.6]]))
        >>> [round(x, 3) for x in v.tolist()]
        [0.916, 0.714]
    """
    return _per_sample(
        _bce_elements(y_true, y_pred, from_logits, label_smoothing, axis)[0]
    )


def binary_focal_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """Binary focal crossentropy per sample (Lin et al., 2018).

    The binary crossentropy of each label is scaled by `(1 - p_t) ** gamma`, with
    `p_t = y * p + (1 - y) * (1 - p)`, and, with `apply_class_balancing=True`, by
    `alpha` for positives and `1 - alpha` for negatives; then averaged over `axis`.

    Args:
        y_true: Labels in [0, 1], the same shape as `y_pred`.
        y_pred: Probabilities, or logits with `from_logits=True`.
        apply_class_balancing: Whether to weight the classes by `alpha`.
        alpha: Weight of class 1, in [0, 1].
        gamma: Focusing parameter, >= 0 (0 gives binary crossentropy).
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Float in [0, 1], as in `binary_crossentropy`.
        axis: The axis averaged over.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> v = losses.binary_focal_crossentropy(jnp.array([[0., 1.], [0., 0.]]),
        ...                                      jnp.array([[0.6, 0.4], [0.4, 0.6]]))
        >>> [round(x, 3) for x in v.tolist()]
        [0.33, 0.206]
    """
    return _per_sample(
        _focal_elements(
            y_true,
            y_pred,
            apply_class_balancing,
            alpha,
            gamma,
            from_logits,
            label_smoothing,
            axis,
        )[0]
    )


def categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Array:
    """Categorical crossentropy per sample, for one-hot (or soft) labels.

    Probabilities are renormalised to sum to 1 along `axis` and clipped to
    `[1e-7, 1 - 1e-7]` (Keras); logits go through `log_softmax`. Label smoothing
    gives `y * (1 - label_smoothing) + label_smoothing / num_classes`.

    Args:
        y_true: One-hot labels, the same shape as `y_pred`.
        y_pred: Probabilities, or logits with `from_logits=True`, classes on `axis`.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Float in [0, 1].
        axis: The classes axis.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Raises:
        ValueError: For integer class ids (use `sparse_categorical_crossentropy`),
            other mismatched shapes, or a single class.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true = jnp.array([[0., 1., 0.], [0., 0., 1.]])
        >>> y_pred = jnp.array([[0.05, 0.95, 0.], [0.1, 0.8, 0.1]])
        >>> v = losses.categorical_crossentropy(y_true, y_pred)
        >>> [round(x, 4) for x in v.tolist()]
        [0.0513, 2.3026]
    """
    return _per_sample(
        _cce_elements(y_true, y_pred, from_logits, label_smoothing, axis)[0]
    )


def sparse_categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> Array:
    """Categorical crossentropy per sample, for integer class ids.

    Labels of shape `(batch,)` or `(batch, 1)` (Keras squeezes the 1) against
    predictions `(batch, num_classes)`; higher ranks work alike. Entries whose
    label is `ignore_class` get 0 loss; here they still count in the mean over
    the non-batch axes, whereas `SparseCategoricalCrossentropy(ignore_class=...)`
    reduces over the non-ignored entries only, as Keras does.

    Out-of-range ids give 0 loss in Keras (and here): check them with
    `check_sparse_labels` before training.

    Args:
        y_true: Integer class ids.
        y_pred: Probabilities, or logits with `from_logits=True`, classes on `axis`.
        from_logits: Whether `y_pred` holds logits.
        ignore_class: Optional class id whose entries are ignored (e.g. -1 or 255).
        axis: The classes axis of `y_pred`.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Raises:
        ValueError: For one-hot labels (use `categorical_crossentropy`), other
            shapes that do not fit, or a single class.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> v = losses.sparse_categorical_crossentropy(
        ...     jnp.array([1, 2]), jnp.array([[0.05, 0.95, 0.], [0.1, 0.8, 0.1]]))
        >>> [round(x, 4) for x in v.tolist()]
        [0.0513, 2.3026]
    """
    return _per_sample(
        _scce_elements(y_true, y_pred, from_logits, ignore_class, axis)[0]
    )


def kl_divergence(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Kullback-Leibler divergence per sample: `sum(y_true * log(y_true / y_pred))`.

    Both are clipped to `[1e-7, 1]` first, as in Keras.

    Args:
        y_true: Target distributions, shape `(batch, ..., num_classes)`.
        y_pred: Predicted distributions, same shape.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[0.5, 0.5]]), jnp.array([[0.25, 0.75]])
        >>> round(float(losses.kl_divergence(y_true, y_pred)[0]), 4)
        0.1438
    """
    return _per_sample(_kld_elements(y_true, y_pred)[0])


def poisson(y_true: ArrayLike, y_pred: ArrayLike) -> Array:
    """Poisson loss per sample: `mean(y_pred - y_true * log(y_pred + 1e-7))`.

    Args:
        y_true: Targets (counts), shape `(batch, d0, ..., dN)`.
        y_pred: Predicted rates, same shape.

    Returns:
        Per-sample losses, shape `(batch,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y_true, y_pred = jnp.array([[1., 0.]]), jnp.array([[1., 2.]])
        >>> round(float(losses.poisson(y_true, y_pred)[0]), 4)
        1.5
    """
    return _per_sample(_poisson_elements(y_true, y_pred)[0])


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
    return _per_sample(_hinge_elements(y_true, y_pred)[0])


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
    return _per_sample(_squared_hinge_elements(y_true, y_pred)[0])


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
    return _per_sample(_categorical_hinge_elements(y_true, y_pred)[0])


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
    return _per_sample(_cosine_elements(y_true, y_pred, axis)[0])


_ELEMENTS: dict[Callable[..., Array], Callable[..., Elements]] = {
    mean_squared_error: _mse_elements,
    mean_absolute_error: _mae_elements,
    mean_absolute_percentage_error: _mape_elements,
    mean_squared_logarithmic_error: _msle_elements,
    huber: _huber_elements,
    log_cosh: _log_cosh_elements,
    binary_crossentropy: _bce_elements,
    binary_focal_crossentropy: _focal_elements,
    categorical_crossentropy: _cce_elements,
    sparse_categorical_crossentropy: _scce_elements,
    kl_divergence: _kld_elements,
    poisson: _poisson_elements,
    hinge: _hinge_elements,
    squared_hinge: _squared_hinge_elements,
    categorical_hinge: _categorical_hinge_elements,
    cosine_similarity: _cosine_elements,
}


# ----------------------------------------------------------------------------
# Reductions.
# ----------------------------------------------------------------------------


def _standardize_reduction(owner: str, reduction: Any) -> str:
    if reduction is None:
        return "none"
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(
            f"{owner}: `reduction` must be one of {list(REDUCTIONS)} or None, "
            f"got {reduction!r}."
        )
    return reduction


def _div_no_nan(num: Array, den: Array) -> Array:
    safe = jnp.where(den == 0, jnp.ones_like(den), den)
    return jnp.where(den == 0, jnp.zeros_like(num), num / safe)


def _row_weights_like(owner: str, what: str, w: ArrayLike, values: Array) -> Array:
    """`w` of shape (), (batch,), (batch, 1) or a prefix of values' shape, broadcast."""
    w = jnp.asarray(w).astype(values.dtype)
    if w.ndim == 0:
        return jnp.broadcast_to(w, values.shape)
    while w.ndim > values.ndim and w.shape[-1] == 1:
        w = jnp.squeeze(w, -1)
    fits = w.ndim <= values.ndim and all(
        a == 1 or a == b
        for a, b in zip(w.shape[1:], values.shape[1 : w.ndim], strict=True)
    )
    if not fits:
        raise ValueError(
            f"{owner}: `{what}` of shape {_shape(w)} does not fit losses of shape "
            f"{_shape(values)}; expected shape (batch,) (or a scalar)."
        )
    w = jnp.expand_dims(w, tuple(range(w.ndim, values.ndim)))
    return jnp.broadcast_to(w, values.shape)


def _reduce(
    owner: str,
    values: ArrayLike,
    valid: Array | None,
    sample_weight: ArrayLike | None,
    mask: ArrayLike | None,
    reduction: str,
) -> Array:
    def as_array(x: ArrayLike | None) -> Array | None:
        return None if x is None else jnp.asarray(x)

    return _reduce_compiled(
        owner,
        jnp.asarray(values),
        as_array(valid),
        as_array(sample_weight),
        as_array(mask),
        reduction,
    )


@functools.partial(jax.jit, static_argnums=(0, 5))
def _reduce_compiled(
    owner: str,
    values: Array,
    valid: Array | None,
    sample_weight: Array | None,
    mask: Array | None,
    reduction: str,
) -> Array:
    if values.ndim == 0:
        raise ValueError(
            f"{owner}: the loss gave a scalar; a loss must give one value per sample "
            "(shape (batch,) or (batch, ...)) so that sample weights and padded rows "
            "can be handled. Reduce over the non-batch axes only."
        )
    values = values.astype(_compute_dtype(values))
    # `real` marks the elements that count: valid (not ignored) and in a real row.
    real = jnp.ones(values.shape, values.dtype)
    if valid is not None:
        real = real * valid.astype(values.dtype)
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.ndim != 1:
            raise ValueError(
                f"{owner}: `mask` must be a boolean vector of shape (batch,), got "
                f"shape {_shape(mask)}."
            )
        real = real * _row_weights_like(owner, "mask", mask.astype(bool), values)
    weights = real
    if sample_weight is not None:
        weights = real * _row_weights_like(
            owner, "sample_weight", sample_weight, values
        )
    # `where`, not a product: a padded row's value never reaches the sum (not even
    # a NaN), and gets no gradient.
    weighted = jnp.where(real > 0, values * weights, 0.0)
    if reduction == "none":
        return _per_sample(weighted)
    total = jnp.sum(weighted)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight":
        return _div_no_nan(total, jnp.sum(weights))
    # "sum_over_batch_size" and "mean": divide by the number of real elements.
    return _div_no_nan(total, jnp.sum(real))


def reduce_loss(
    per_sample: ArrayLike,
    sample_weight: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    reduction: str | None = "sum_over_batch_size",
) -> Array:
    """Reduce per-sample losses to one value, Keras' way, over the real rows only.

    `"sum_over_batch_size"` (and `"mean"`) is the weighted sum divided by the
    number of real samples (the weights are not in the divisor); `"sum"` the
    weighted sum; `"mean_with_sample_weight"` the weighted sum divided by the sum
    of the weights; `"none"` the weighted per-sample values. Rows where `mask` is
    False contribute nothing and are not counted, so a padded batch gives exactly
    the loss of its real rows. An all-masked batch gives 0.

    Args:
        per_sample: Losses of shape `(batch,)` (or `(batch, ...)`, reduced over all
            their elements).
        sample_weight: Optional weights, shape `(batch,)`, `(batch, 1)` or scalar.
        mask: Optional boolean `(batch,)` vector, True for real rows.
        reduction: One of `REDUCTIONS` (or None for `"none"`).

    Returns:
        A scalar, or the `(batch,)` weighted values for `"none"`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.losses import reduce_loss
        >>> losses = jnp.array([1.0, 3.0, 100.0])
        >>> float(reduce_loss(losses, mask=jnp.array([True, True, False])))
        2.0
        >>> weights = jnp.array([1., 0., 0.])
        >>> float(reduce_loss(losses, sample_weight=weights, reduction="sum"))
        1.0
    """
    reduction = _standardize_reduction("reduce_loss", reduction)
    return _reduce("reduce_loss", per_sample, None, sample_weight, mask, reduction)


# ----------------------------------------------------------------------------
# Classes.
# ----------------------------------------------------------------------------


class Loss:
    """Base class of losses: configuration plus `call`, reduced when called.

    Subclass it and define `call(y_true, y_pred)` returning one value per sample
    (shape `(batch,)`, or `(batch, ...)`, reduced over all its elements). Calling
    the instance reduces those values (see `reduce_loss`).

    Args:
        name: The loss' name (defaults to the snake_case class name).
        reduction: One of `REDUCTIONS` (or None for `"none"`); Keras' default
            `"sum_over_batch_size"` divides the weighted sum by the number of
            elements. `"none"` returns the weighted per-sample values.
        dtype: The dtype of the computation; `None` means float32 (or the wider
            dtype of `y_pred`).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> class Cube(losses.Loss):
        ...     def call(self, y_true, y_pred):
        ...         return jnp.mean(jnp.abs(y_pred - y_true) ** 3, axis=-1)
        >>> float(Cube()(jnp.zeros((2, 1)), jnp.array([[1.0], [2.0]])))
        4.5
    """

    def __init__(
        self,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        owner = type(self).__name__
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"{owner}: `name` must be a non-empty str, got {name!r}.")
        self.name = name or to_snake_case(owner)
        self.reduction = _standardize_reduction(owner, reduction)
        self.dtype = None if dtype is None else normalize_dtype(owner, dtype)

    def call(self, y_true: ArrayLike, y_pred: ArrayLike) -> Array:
        """Per-sample losses, shape `(batch,)`, before weighting and reduction."""
        raise TypeError(
            f"{type(self).__name__}: a Loss subclass must define "
            "`call(self, y_true, y_pred)` returning one value per sample."
        )

    def _elements(self, y_true: ArrayLike, y_pred: Array) -> Elements:
        return self.call(y_true, y_pred), None

    def __call__(
        self,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
        *,
        mask: ArrayLike | None = None,
    ) -> Array:
        """The reduced loss of a batch.

        Args:
            y_true: Labels.
            y_pred: Predictions.
            sample_weight: Optional per-sample weights, shape `(batch,)`.
            mask: Optional boolean `(batch,)` vector of real rows; other rows
                neither contribute nor count.

        Returns:
            A scalar (or per-sample values with `reduction="none"`).
        """
        y_pred = jnp.asarray(y_pred)
        if self.dtype is not None:
            y_pred = y_pred.astype(self.dtype)
        values, valid = self._elements(y_true, y_pred)
        return _reduce(
            type(self).__name__, values, valid, sample_weight, mask, self.reduction
        )

    def get_config(self) -> dict[str, Any]:
        """The loss' configuration as a JSON-safe dict (`from_config` inverts it)."""
        return {"name": self.name, "reduction": self.reduction, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """Rebuild a loss from `get_config()`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class LossFunctionWrapper(Loss):
    """A `Loss` around a per-sample loss function and its keyword arguments.

    Args:
        fn: A function `(y_true, y_pred, **kwargs) -> (batch,)` (or `(batch, ...)`).
        reduction: See `Loss`.
        name: The loss' name (defaults to `fn.__name__`).
        dtype: See `Loss`.
        **kwargs: Passed to `fn` on every call.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> loss = losses.LossFunctionWrapper(losses.huber, delta=0.5)
        >>> float(loss(jnp.zeros((2, 1)), jnp.array([[0.25], [2.0]])))
        0.453125
    """

    def __init__(
        self,
        fn: Callable[..., Array],
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if not callable(fn):
            raise TypeError(
                f"{type(self).__name__}: `fn` must be a loss function, got {fn!r}."
            )
        super().__init__(
            name=name or getattr(fn, "__name__", None), reduction=reduction, dtype=dtype
        )
        self.fn = fn
        self._fn_kwargs = dict(kwargs)

    def call(self, y_true: ArrayLike, y_pred: ArrayLike) -> Array:
        """Per-sample losses, shape `(batch,)`."""
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def _elements(self, y_true: ArrayLike, y_pred: Array) -> Elements:
        elements = _ELEMENTS.get(self.fn)
        if elements is not None:
            return elements(y_true, y_pred, **self._fn_kwargs)
        return self.call(y_true, y_pred), None

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), **self._fn_kwargs}
        if type(self) is LossFunctionWrapper:
            config["fn"] = serialize(self.fn)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        config = dict(config)
        if "fn" in config:
            config["fn"] = get(config["fn"])
        return cls(**config)




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


class BinaryCrossentropy(LossFunctionWrapper):
    """Binary crossentropy, reduced over the batch.

    Args:
        from_logits: Whether `y_pred` holds logits (recommended: more stable).
        label_smoothing: Float in [0, 1]; labels are squeezed towards 0.5.
        axis: The labels axis averaged over.
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> bce = losses.BinaryCrossentropy(from_logits=True)
        >>> round(float(bce(jnp.array([[0., 1.], [0., 0.]]),
        ...                 jnp.array([[-18.6, 0.51], [2.94, -12.8]]))), 3)
        0.865
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="binary_crossentropy",
        dtype=None,
    ):
        owner = "BinaryCrossentropy"
        super().__init__(
            binary_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=check_bool(owner, "from_logits", from_logits),
            label_smoothing=_check_label_smoothing(owner, label_smoothing),
            axis=check_int(owner, "axis", axis, minimum=None),
        )


class BinaryFocalCrossentropy(LossFunctionWrapper):
    """Binary focal crossentropy (Lin et al., 2018), reduced over the batch.

    Args:
        apply_class_balancing: Whether to weight class 1 by `alpha`, class 0 by
            `1 - alpha`.
        alpha: Float in [0, 1].
        gamma: Focusing parameter, >= 0.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Float in [0, 1].
        axis: The labels axis averaged over.
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> loss = losses.BinaryFocalCrossentropy(gamma=2.0, from_logits=True)
        >>> y_true = jnp.array([[0., 1., 0., 0.]])
        >>> logits = jnp.array([[-18.6, 0.51, 2.94, -12.8]])
        >>> round(float(loss(y_true, logits)), 3)
        0.691
    """

    def __init__(
        self,
        apply_class_balancing=False,
        alpha=0.25,
        gamma=2.0,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="binary_focal_crossentropy",
        dtype=None,
    ):
        owner = "BinaryFocalCrossentropy"
        super().__init__(
            binary_focal_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            apply_class_balancing=check_bool(
                owner, "apply_class_balancing", apply_class_balancing
            ),
            alpha=check_float(owner, "alpha", alpha, low=0.0, high=1.0),
            gamma=check_float(owner, "gamma", gamma, low=0.0),
            from_logits=check_bool(owner, "from_logits", from_logits),
            label_smoothing=_check_label_smoothing(owner, label_smoothing),
            axis=check_int(owner, "axis", axis, minimum=None),
        )


class CategoricalCrossentropy(LossFunctionWrapper):
    """Categorical crossentropy for one-hot labels, reduced over the batch.

    Args:
        from_logits: Whether `y_pred` holds logits (recommended: more stable).
        label_smoothing: Float in [0, 1]; `y * (1 - ls) + ls / num_classes`.
        axis: The classes axis.
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> cce = losses.CategoricalCrossentropy()
        >>> round(float(cce(jnp.array([[0., 1., 0.], [0., 0., 1.]]),
        ...                 jnp.array([[0.05, 0.95, 0.], [0.1, 0.8, 0.1]]))), 3)
        1.177
    """

    def __init__(
        self,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
        dtype=None,
    ):
        owner = "CategoricalCrossentropy"
        super().__init__(
            categorical_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=check_bool(owner, "from_logits", from_logits),
            label_smoothing=_check_label_smoothing(owner, label_smoothing),
            axis=check_int(owner, "axis", axis, minimum=None),
        )


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Categorical crossentropy for integer class ids, reduced over the batch.

    With `ignore_class`, the entries with that label neither contribute nor count
    in `"sum_over_batch_size"` (Keras' masked reduction).

    Args:
        from_logits: Whether `y_pred` holds logits (recommended: more stable).
        ignore_class: Optional class id to ignore (e.g. -1 or 255 for "void").
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> scce = losses.SparseCategoricalCrossentropy()
        >>> y_pred = jnp.array([[0.05, 0.95, 0.], [0.1, 0.8, 0.1]])
        >>> round(float(scce(jnp.array([1, 2]), y_pred)), 3)
        1.177
    """

    def __init__(
        self,
        from_logits=False,
        ignore_class=None,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        owner = "SparseCategoricalCrossentropy"
        if ignore_class is not None:
            ignore_class = check_int(owner, "ignore_class", ignore_class, minimum=None)
        super().__init__(
            sparse_categorical_crossentropy,
            reduction=reduction,
            name=name,
            dtype=dtype,
            from_logits=check_bool(owner, "from_logits", from_logits),
            ignore_class=ignore_class,
        )


class KLDivergence(LossFunctionWrapper):
    """Kullback-Leibler divergence, reduced over the batch.

    Args:
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> y = jnp.array([[0.5, 0.5]])
        >>> float(losses.KLDivergence()(y, y))
        0.0
    """

    def __init__(
        self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None
    ):
        super().__init__(kl_divergence, reduction=reduction, name=name, dtype=dtype)


class Poisson(LossFunctionWrapper):
    """Poisson loss, reduced over the batch.

    Args:
        reduction: See `Loss`.
        name: The loss' name.
        dtype: See `Loss`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import losses
        >>> round(float(losses.Poisson()(jnp.array([[1.]]), jnp.array([[1.]]))), 4)
        1.0
    """

    def __init__(self, reduction="sum_over_batch_size", name="poisson", dtype=None):
        super().__init__(poisson, reduction=reduction, name=name, dtype=dtype)


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


# ----------------------------------------------------------------------------
# Sparse label checks.
# ----------------------------------------------------------------------------


def check_sparse_labels(
    y_true: ArrayLike, num_classes: int, *, ignore_class: int | None = None
) -> None:
    """Refuse integer class ids outside `[0, num_classes)`, on the host, with NumPy.

    Keras silently gives such labels 0 loss; funkeras checks the data instead.
    Float labels must hold whole numbers.

    Args:
        y_true: The labels (any shape; NumPy or JAX, concrete).
        num_classes: The number of classes (the last axis of the predictions).
        ignore_class: A label value that is allowed although out of range (the
            `ignore_class` of the loss).

    Raises:
        ValueError: Naming the first offending value, its position, how many labels
            are bad, and the valid range.

    Example:
        >>> import numpy as np
        >>> from funkeras.losses import check_sparse_labels
        >>> check_sparse_labels(np.array([0, 2, 1]), 3)
        >>> check_sparse_labels(np.array([0, 3]), 3)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: sparse labels: found label 3 at index (1,), but labels must be ...
    """
    num_classes = check_int("check_sparse_labels", "num_classes", num_classes)
    labels = np.asarray(y_true)
    if labels.dtype.kind not in "iubf":
        raise TypeError(
            f"sparse labels: expected integer class ids, got dtype {labels.dtype}."
        )
    bad = (labels < 0) | (labels >= num_classes)
    if labels.dtype.kind == "f":
        bad |= ~np.isfinite(labels) | (np.floor(labels) != labels)
    if ignore_class is not None:
        bad &= labels != ignore_class
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = labels[index]
        value = value.item() if hasattr(value, "item") else value
        allowed = f"[0, {num_classes})"
        if ignore_class is not None:
            allowed += f" or the ignore_class {ignore_class}"
        raise ValueError(
            f"sparse labels: found label {value} at index {index}, but labels must be "
            f"integers in {allowed} (num_classes={num_classes}); {int(bad.sum())} of "
            f"{labels.size} labels are invalid."
        )


def sparse_labels_out_of_range(
    y_true: ArrayLike, num_classes: int, *, ignore_class: int | None = None
) -> Array:
    """Whether any class id is outside `[0, num_classes)`: a boolean scalar, in graph.

    The traceable twin of `check_sparse_labels`, for data that cannot be checked
    on the host up front (iterables): compute it in the step and act on it there.

    Args:
        y_true: The labels (any shape).
        num_classes: The number of classes.
        ignore_class: A label value that is allowed although out of range.

    Returns:
        A boolean scalar array.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.losses import sparse_labels_out_of_range
        >>> bool(sparse_labels_out_of_range(jnp.array([0, 5]), 3))
        True
    """
    num_classes = check_int("sparse_labels_out_of_range", "num_classes", num_classes)
    labels = jnp.asarray(y_true)
    bad = (labels < 0) | (labels >= num_classes)
    if jnp.issubdtype(labels.dtype, jnp.floating):
        bad = bad | ~jnp.isfinite(labels) | (jnp.floor(labels) != labels)
    if ignore_class is not None:
        bad = bad & (labels != ignore_class)
    return jnp.any(bad)


# ----------------------------------------------------------------------------
# Lookup and serialization.
# ----------------------------------------------------------------------------

_FUNCTIONS: dict[str, Callable[..., Array]] = {fn.__name__: fn for fn in _ELEMENTS}
_ALIASES: dict[str, Callable[..., Array]] = {
    "mse": mean_squared_error,
    "MSE": mean_squared_error,
    "mae": mean_absolute_error,
    "MAE": mean_absolute_error,
    "mape": mean_absolute_percentage_error,
    "MAPE": mean_absolute_percentage_error,
    "msle": mean_squared_logarithmic_error,
    "MSLE": mean_squared_logarithmic_error,
    "bce": binary_crossentropy,
    "BCE": binary_crossentropy,
    "kld": kl_divergence,
    "KLD": kl_divergence,
    "kullback_leibler_divergence": kl_divergence,
    "logcosh": log_cosh,
    "huber_loss": huber,
}
_CLASSES: dict[str, type[Loss]] = {
    cls.__name__: cls
    for cls in (
        MeanSquaredError,
        MeanAbsoluteError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        Huber,
        LogCosh,
        BinaryCrossentropy,
        BinaryFocalCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
        KLDivergence,
        Poisson,
        Hinge,
        SquaredHinge,
        CategoricalHinge,
        CosineSimilarity,
        LossFunctionWrapper,
    )
}


def _unknown(name: str, known: list[str]) -> ValueError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown loss {name!r}.{hint} Known losses: {sorted(_FUNCTIONS)} (also class "
        "names such as 'MeanSquaredError', and the aliases 'mse', 'mae', 'mape', "
        "'msle', 'bce', 'kld', 'logcosh', 'huber_loss')."
    )


def _lookup(name: str, custom_objects: dict[str, Any] | None) -> Any:
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    for table in (_FUNCTIONS, _ALIASES, _CLASSES):
        if name in table:
            return table[name]
    raise _unknown(name, [*_FUNCTIONS, *_ALIASES, *_CLASSES])


def get(
    identifier: Any, custom_objects: dict[str, Any] | None = None
) -> Callable[..., Array] | Loss | None:
    """Resolve a loss given by name, config dict, class, instance or function.

    Args:
        identifier: `None`; a Keras loss function name (`"mean_squared_error"`),
            alias (`"mse"`, `"bce"`, `"kld"`, `"logcosh"`, `"huber_loss"`, ...) or
            class name (`"MeanSquaredError"`, giving an instance); a dict
            `{"class_name": ..., "config": ...}` from `serialize`; a `Loss` class or
            instance; or any callable, returned as is.
        custom_objects: Optional mapping of extra names to classes or functions.

    Returns:
        A per-sample loss function, or a `Loss` instance (or `None`).

    Raises:
        ValueError: For an unknown name, with the closest known names.
        TypeError: For anything else.

    Example:
        >>> from funkeras import losses
        >>> losses.get("mse") is losses.mean_squared_error
        True
        >>> config = {"from_logits": True}
        >>> losses.get({"class_name": "CategoricalCrossentropy", "config": config})
        CategoricalCrossentropy(name='categorical_crossentropy')
    """
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier, custom_objects)
    if isinstance(identifier, str):
        obj = _lookup(identifier, custom_objects)
    else:
        obj = identifier
    if inspect.isclass(obj):
        if not issubclass(obj, Loss):
            raise TypeError(
                f"Could not interpret loss identifier {identifier!r}: not a Loss class."
            )
        return obj()
    if callable(obj):
        return obj
    raise TypeError(
        f"Could not interpret loss identifier {identifier!r}: expected a name, a "
        "config dict, a Loss or a function."
    )


def serialize(loss: Callable[..., Array] | Loss) -> dict[str, Any]:
    """A JSON-safe description of a loss (`get`/`deserialize` invert it).

    Args:
        loss: A `Loss` instance or a built-in loss function.

    Returns:
        `{"class_name": ..., "config": ...}`; for a function the class name is
        `"function"` and the config its Keras name.

    Raises:
        ValueError: For a function that is not a built-in loss (a saved file holds
            data, never code).

    Example:
        >>> from funkeras import losses
        >>> losses.serialize(losses.mean_squared_error)
        {'class_name': 'function', 'config': 'mean_squared_error'}
        >>> losses.serialize(losses.Huber(delta=2.0))["config"]["delta"]
        2.0
    """
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    name = getattr(loss, "__name__", None)
    if name in _FUNCTIONS and _FUNCTIONS[name] is loss:
        return {"class_name": "function", "config": name}
    raise ValueError(
        f"Cannot serialize the loss {loss!r}: only built-in loss functions and Loss "
        "instances can be stored as data. Wrap custom code in a Loss subclass and "
        "register it when loading."
    )


def deserialize(
    config: dict[str, Any], custom_objects: dict[str, Any] | None = None
) -> Callable[..., Array] | Loss:
    """Rebuild a loss from `serialize`'s output.

    Args:
        config: `{"class_name": ..., "config": ...}`.
        custom_objects: Optional mapping of extra names to classes or functions.

    Returns:
        The loss function or `Loss` instance.

    Raises:
        ValueError: For a malformed config or an unknown name.

    Example:
        >>> from funkeras import losses
        >>> loss = losses.deserialize({"class_name": "Huber", "config": {"delta": 2.0}})
        >>> loss.get_config()["delta"]
        2.0
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"Could not deserialize loss {config!r}: expected a dict with 'class_name' "
            "and 'config'."
        )
    class_name, inner = config["class_name"], config.get("config", {})
    if class_name == "function":
        if not isinstance(inner, str):
            raise ValueError(
                f"Could not deserialize loss {config!r}: 'config' must be a name."
            )
        obj = _lookup(inner, custom_objects)
        if inspect.isclass(obj):
            raise ValueError(
                f"Could not deserialize loss {config!r}: {inner!r} is a class."
            )
        return obj
    cls = _lookup(class_name, custom_objects)
    if not (inspect.isclass(cls) and issubclass(cls, Loss)):
        raise ValueError(
            f"Could not deserialize loss {config!r}: {class_name!r} is not a Loss "
            "class."
        )
    if not isinstance(inner, dict):
        raise ValueError(
            f"Could not deserialize loss {config!r}: 'config' must be a dict."
        )
    return cls.from_config(inner)
