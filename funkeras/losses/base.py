"""The base of the losses: `Loss`, `LossFunctionWrapper`, reductions, and the
shape and dtype rules every loss shares (also used by `funkeras.metrics`).

The built-in losses register themselves in `CATALOGUE` (names, aliases and
classes), which `get`, `serialize` and `deserialize` read; `ELEMENTS` maps each
built-in function to its element function (values before reduction, plus the
mask of elements that count). See `funkeras.losses` for the catalogue itself.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._catalogue import Catalogue
from funkeras._validation import (
    check_int,
    normalize_dtype,
    shape_str,
    to_snake_case,
)
from funkeras.typing import Array, ArrayLike

__all__ = [
    "EPSILON",
    "REDUCTIONS",
    "Elements",
    "CATALOGUE",
    "ELEMENTS",
    "builtin",
    "compute_dtype",
    "as_float",
    "squeeze_or_expand_to_same_rank",
    "pair_shapes",
    "same_static_dims",
    "check_batched",
    "match_shapes",
    "per_sample",
    "class_axis",
    "sparse_labels",
    "compiled",
    "div_no_nan",
    "reduce_loss",
    "Loss",
    "LossFunctionWrapper",
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


def compute_dtype(x: Array) -> Any:
    """float32, or the input's float dtype if wider (bf16/f16 are promoted)."""
    if jnp.issubdtype(x.dtype, jnp.floating):
        return jnp.promote_types(x.dtype, jnp.float32)
    return jnp.dtype(jnp.float32)


def as_float(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[Array, Array]:
    """`y_true` and `y_pred` as arrays of `compute_dtype(y_pred)`."""
    y_pred = jnp.asarray(y_pred)
    dtype = compute_dtype(y_pred)
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


def pair_shapes(y_true: Any, y_pred: Any) -> str:
    """`"y_true.shape=(2, 3) and y_pred.shape=(2,)"`: the tail of a shape error."""
    return (
        f"y_true.shape={shape_str(y_true.shape)} and "
        f"y_pred.shape={shape_str(y_pred.shape)}"
    )


def same_static_dims(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal ranks and equal non-batch dims (the batch dim may be symbolic)."""
    return len(a) == len(b) and all(x == y for x, y in zip(a[1:], b[1:], strict=True))


def check_batched(fn: str, y_true: Array, y_pred: Array) -> None:
    """Refuse scalar inputs: losses need a batch axis first."""
    if y_pred.ndim == 0 or y_true.ndim == 0:
        raise ValueError(
            f"{fn}: expected batched inputs (batch axis first), got "
            f"{pair_shapes(y_true, y_pred)}."
        )


def match_shapes(
    fn: str, y_true: Array, y_pred: Array, hint: str = ""
) -> tuple[Array, Array]:
    """Keras' rank matching, then a clear error unless the shapes are equal."""
    check_batched(fn, y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    if y_true.ndim == 1 and y_pred.ndim == 1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    if not same_static_dims(tuple(y_true.shape), tuple(y_pred.shape)):
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
            f"{pair_shapes(y_true, y_pred)}.{hint}"
        )
    return y_true, y_pred


def per_sample(values: Array) -> Array:
    """Mean over every non-batch axis: `(batch, ...)` -> `(batch,)`."""
    if values.ndim > 1:
        values = jnp.mean(values, axis=tuple(range(1, values.ndim)))
    return values


def class_axis(fn: str, axis: Any, ndim: int) -> int:
    """`axis` checked against rank `ndim` and made non-negative; never the batch."""
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


def sparse_labels(fn: str, y_true: ArrayLike, y_pred: Array) -> Array:
    """Validate and squeeze sparse labels against y_pred (classes on the last axis)."""
    y_true = jnp.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.ndim > 0 and y_true.shape[-1] == 1:
        y_true = jnp.squeeze(y_true, -1)
    num_classes = y_pred.shape[-1]
    expected = tuple(y_pred.shape[:-1])
    if not same_static_dims(tuple(y_true.shape), expected):
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
            f"{fn}: y_true.shape={shape_str(y_true.shape)} does not fit "
            f"y_pred.shape={shape_str(y_pred.shape)}.{hint}"
        )
    return y_true.astype(jnp.int32)


# ----------------------------------------------------------------------------
# Element functions: Keras' values, shape (batch, d1, ...), plus a validity mask.
# ----------------------------------------------------------------------------

Elements = tuple[Array, Array | None]
"""An element function's values `(batch, d1, ...)` and the mask of those that count."""


def compiled(fn: Callable[..., Any]) -> Callable[..., Any]:
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


CATALOGUE = Catalogue(
    "loss",
    {},
    tail="Known losses: {names} (functions, their aliases, and classes).",
    example="{'class_name': 'Huber', 'config': {'delta': 2.0}}",
)
"""Every built-in loss by name: functions, aliases and classes (see `builtin`)."""

ELEMENTS: dict[Callable[..., Array], Callable[..., Elements]] = {}
"""Built-in loss function -> its element function (values and validity mask)."""


def builtin(
    fn: Callable[..., Array], elements: Callable[..., Elements], *aliases: str
) -> None:
    """Register a built-in loss function under its name and `aliases`.

    Args:
        fn: The per-sample loss function (its `__name__` is its saved name).
        elements: Its element function, used by `LossFunctionWrapper`.
        *aliases: Other names `get` accepts (`"mse"`).
    """
    ELEMENTS[fn] = elements
    CATALOGUE.register(fn, fn.__name__, *aliases)


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


def div_no_nan(num: Array, den: Array) -> Array:
    """`num / den`, and 0 where `den` is 0 (with no NaN in the gradient)."""
    safe = jnp.where(den == 0, jnp.ones_like(den), den)
    return jnp.where(den == 0, jnp.zeros_like(num * den), num / safe)


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
            f"{owner}: `{what}` of shape {shape_str(w.shape)} does not fit losses of "
            f"shape {shape_str(values.shape)}; expected shape (batch,) (or a scalar)."
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
    values = values.astype(compute_dtype(values))
    # `real` marks the elements that count: valid (not ignored) and in a real row.
    real = jnp.ones(values.shape, values.dtype)
    if valid is not None:
        real = real * valid.astype(values.dtype)
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.ndim != 1:
            raise ValueError(
                f"{owner}: `mask` must be a boolean vector of shape (batch,), got "
                f"shape {shape_str(mask.shape)}."
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
        return per_sample(weighted)
    total = jnp.sum(weighted)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight":
        return div_no_nan(total, jnp.sum(weights))
    # "sum_over_batch_size" and "mean": divide by the number of real elements.
    return div_no_nan(total, jnp.sum(real))


def _with_sequence_mask(
    owner: str, values: Array, valid: Array | None, sequence_mask: ArrayLike
) -> Array:
    """`valid` (or all True) AND a sequence mask covering `values`' leading axes."""
    seq = jnp.asarray(sequence_mask).astype(bool)
    if values.ndim < seq.ndim or tuple(values.shape[: seq.ndim]) != tuple(seq.shape):
        raise ValueError(
            f"{owner}: the sequence mask of shape {shape_str(seq.shape)} does not fit "
            f"the loss values of shape {shape_str(values.shape)}; the mask must cover "
            "their leading axes (batch, time). A loss that reduces over time cannot "
            "take a per-timestep mask."
        )
    seq = jnp.expand_dims(seq, tuple(range(seq.ndim, values.ndim)))
    seq = jnp.broadcast_to(seq, values.shape)
    return seq if valid is None else jnp.logical_and(jnp.asarray(valid, bool), seq)


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

    kind: ClassVar[str | None] = None
    """`"binary"`, `"categorical"` or `"sparse"` for a crossentropy (the labels it
    expects), else None: how `compile` picks an accuracy and checks labels."""

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
        sequence_mask: ArrayLike | None = None,
    ) -> Array:
        """The reduced loss of a batch.

        Args:
            y_true: Labels.
            y_pred: Predictions.
            sample_weight: Optional per-sample weights, shape `(batch,)`.
            mask: Optional boolean `(batch,)` vector of real rows; other rows
                neither contribute nor count.
            sequence_mask: Optional boolean mask of `y_pred`'s leading axes
                (Keras' `(batch, time)` mask of a masked output): masked
                timesteps neither contribute nor count, as in Keras.

        Returns:
            A scalar (or per-sample values with `reduction="none"`).
        """
        y_pred = jnp.asarray(y_pred)
        if self.dtype is not None:
            y_pred = y_pred.astype(self.dtype)
        values, valid = self._elements(y_true, y_pred)
        if sequence_mask is not None:
            valid = _with_sequence_mask(
                type(self).__name__, jnp.asarray(values), valid, sequence_mask
            )
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

    @property
    def fn_kwargs(self) -> dict[str, Any]:
        """The keyword arguments passed to `fn` on every call (a copy)."""
        return dict(self._fn_kwargs)

    def call(self, y_true: ArrayLike, y_pred: ArrayLike) -> Array:
        """Per-sample losses, shape `(batch,)`."""
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def _elements(self, y_true: ArrayLike, y_pred: Array) -> Elements:
        elements = ELEMENTS.get(self.fn)
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
        obj = CATALOGUE.get(identifier, custom_objects)
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
        return CATALOGUE.serialize(loss)
    name = CATALOGUE.name_of(loss)
    if name is not None and not inspect.isclass(loss):
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
    if isinstance(config, dict) and config.get("class_name") == "function":
        inner = config.get("config")
        if not isinstance(inner, str):
            raise ValueError(
                f"Could not deserialize loss {config!r}: 'config' must be a name."
            )
        obj = CATALOGUE.get(inner, custom_objects)
        if inspect.isclass(obj):
            raise ValueError(
                f"Could not deserialize loss {config!r}: {inner!r} is a class."
            )
        return obj
    return CATALOGUE.deserialize(config, custom_objects=custom_objects, base=Loss)


CATALOGUE.register(LossFunctionWrapper, "LossFunctionWrapper")
