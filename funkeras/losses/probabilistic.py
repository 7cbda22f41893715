"""Probabilistic losses: binary, focal, categorical and sparse crossentropies,
Kullback-Leibler divergence and Poisson (Keras 3 names, arguments and numerics)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from funkeras._validation import check_bool, check_float, check_int, shape_str
from funkeras.losses.base import (
    CATALOGUE,
    EPSILON,
    Elements,
    Loss,
    LossFunctionWrapper,
    as_float,
    builtin,
    check_batched,
    class_axis,
    compiled,
    compute_dtype,
    match_shapes,
    pair_shapes,
    per_sample,
    same_static_dims,
    sparse_labels,
)
from funkeras.typing import Array, ArrayLike

__all__ = [
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "kl_divergence",
    "poisson",
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "KLDivergence",
    "Poisson",
    "loss_kind",
]


def _check_label_smoothing(fn: str, label_smoothing: Any) -> float:
    return check_float(fn, "label_smoothing", label_smoothing, low=0.0, high=1.0)


def _bce_hint() -> str:
    return (
        " binary_crossentropy takes one probability (or logit) per label, with "
        "labels of the same shape; for integer class ids over several classes use "
        "sparse_categorical_crossentropy."
    )


def _binary_prepare(fn, y_true, y_pred, label_smoothing, axis):
    label_smoothing = _check_label_smoothing(fn, label_smoothing)
    y_true, y_pred = as_float(y_true, y_pred)
    check_batched(fn, y_true, y_pred)
    y_true, y_pred = match_shapes(fn, y_true, y_pred, hint=_bce_hint())
    axis = class_axis(fn, axis, y_pred.ndim)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return y_true, y_pred, axis


def _bce_from_probs(y_true: Array, y_pred: Array) -> Array:
    y_pred = jnp.clip(y_pred, EPSILON, 1.0 - EPSILON)
    return -(y_true * jnp.log(y_pred) + (1.0 - y_true) * jnp.log(1.0 - y_pred))


@compiled
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


@compiled
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
        f"{fn}: y_pred has a single class (shape {shape_str(y_pred.shape)}), so the "
        "loss is always 0. For one probability per sample use binary_crossentropy "
        "(and a sigmoid output); otherwise give the last layer one unit per class."
    )


def _log_probs(y_pred: Array, from_logits: bool) -> Array:
    """Log-probabilities over the last axis, as Keras computes them."""
    if from_logits:
        return jax.nn.log_softmax(y_pred, axis=-1)
    y_pred = y_pred / jnp.sum(y_pred, axis=-1, keepdims=True)
    return jnp.log(jnp.clip(y_pred, EPSILON, 1.0 - EPSILON))


@compiled
def _cce_elements(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    fn = "categorical_crossentropy"
    label_smoothing = _check_label_smoothing(fn, label_smoothing)
    y_true, y_pred = as_float(y_true, y_pred)
    check_batched(fn, y_true, y_pred)
    if y_pred.ndim < 2:
        raise ValueError(
            f"{fn}: expected y_pred of shape (batch, num_classes), got "
            f"y_pred.shape={shape_str(y_pred.shape)}."
        )
    axis = class_axis(fn, axis, y_pred.ndim)
    y_pred = jnp.moveaxis(y_pred, axis, -1)
    if y_true.ndim == y_pred.ndim:
        y_true = jnp.moveaxis(y_true, axis, -1)
    num_classes = y_pred.shape[-1]
    if num_classes == 1:
        raise _one_class_error(fn, y_pred)
    if not same_static_dims(tuple(y_true.shape), tuple(y_pred.shape)):
        hint = ""
        if y_true.ndim == y_pred.ndim - 1 or y_true.shape[-1] == 1:
            hint = (
                " The labels look like integer class ids: use "
                "sparse_categorical_crossentropy (or one-hot encode them)."
            )
        raise ValueError(
            f"{fn}: expected one-hot y_true of the same shape as y_pred, got "
            f"{pair_shapes(y_true, y_pred)}.{hint}"
        )
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / num_classes
    return -jnp.sum(y_true * _log_probs(y_pred, from_logits), axis=-1), None


@compiled
def _scce_elements(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    fn = "sparse_categorical_crossentropy"
    if ignore_class is not None:
        ignore_class = check_int(fn, "ignore_class", ignore_class, minimum=None)
    y_pred = jnp.asarray(y_pred)
    y_pred = y_pred.astype(compute_dtype(y_pred))
    if y_pred.ndim < 2:
        raise ValueError(
            f"{fn}: expected y_pred of shape (batch, num_classes), got "
            f"y_pred.shape={shape_str(y_pred.shape)}."
        )
    axis = class_axis(fn, axis, y_pred.ndim)
    y_pred = jnp.moveaxis(y_pred, axis, -1)
    num_classes = y_pred.shape[-1]
    if num_classes == 1:
        raise _one_class_error(fn, y_pred)
    labels = sparse_labels(fn, y_true, y_pred)
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


@compiled
def _kld_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = match_shapes("kl_divergence", *as_float(y_true, y_pred))
    y_true = jnp.clip(y_true, EPSILON, 1.0)
    y_pred = jnp.clip(y_pred, EPSILON, 1.0)
    return jnp.sum(y_true * jnp.log(y_true / y_pred), axis=-1), None


@compiled
def _poisson_elements(y_true, y_pred) -> Elements:
    y_true, y_pred = match_shapes("poisson", *as_float(y_true, y_pred))
    return jnp.mean(y_pred - y_true * jnp.log(y_pred + EPSILON), axis=-1), None


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
    return per_sample(
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
    return per_sample(
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
    return per_sample(
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
    return per_sample(
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
    return per_sample(_kld_elements(y_true, y_pred)[0])


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
    return per_sample(_poisson_elements(y_true, y_pred)[0])


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

    kind = "binary"

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

    kind = "binary"

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

    kind = "categorical"

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

    kind = "sparse"

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


_KINDS = {
    binary_crossentropy: "binary",
    binary_focal_crossentropy: "binary",
    categorical_crossentropy: "categorical",
    sparse_categorical_crossentropy: "sparse",
}


def loss_kind(loss: Any) -> str | None:
    """`"binary"`, `"categorical"` or `"sparse"` for a crossentropy loss, else None.

    Read from the type (a `Loss`'s `kind`) or, for a function or a
    `LossFunctionWrapper`, from which built-in function it is; names are not
    compared, so a custom loss called "sparse_categorical_crossentropy" is None.

    Example:
        >>> from funkeras import losses
        >>> from funkeras.losses.probabilistic import loss_kind
        >>> loss_kind(losses.SparseCategoricalCrossentropy(from_logits=True))
        'sparse'
        >>> loss_kind(losses.binary_crossentropy), loss_kind(losses.mean_squared_error)
        ('binary', None)
    """
    if isinstance(loss, Loss):
        if loss.kind is not None or not isinstance(loss, LossFunctionWrapper):
            return loss.kind
        loss = loss.fn
    try:
        return _KINDS.get(loss)
    except TypeError:  # an unhashable callable is no built-in
        return None


builtin(binary_crossentropy, _bce_elements, "bce", "BCE")
builtin(binary_focal_crossentropy, _focal_elements)
builtin(categorical_crossentropy, _cce_elements)
builtin(sparse_categorical_crossentropy, _scce_elements)
builtin(kl_divergence, _kld_elements, "kld", "KLD", "kullback_leibler_divergence")
builtin(poisson, _poisson_elements)
for _cls in (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    KLDivergence,
    Poisson,
):
    CATALOGUE.register(_cls, _cls.__name__)
