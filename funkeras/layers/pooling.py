"""Pooling layers: max and average over windows, and global max and average.

`_Pooling` is the windowed body of `MaxPooling1D/2D/3D` and `AveragePooling1D/2D/3D`
(specialised by rank and reduction), `_GlobalPooling` the body of the global
layers. "same" padding is split as Keras and TensorFlow split it (the odd element
at the end of an axis), and average pooling divides each window by the number of
real input elements in it, so the padded border does not pull averages to zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._validation import check_bool, check_choice, normalize_tuple, shape_str
from funkeras.layers._common import autocast, check_single_spec
from funkeras.layers.base import Layer, layer_label
from funkeras.layers.convolutional import (
    check_spatial_rank,
    normalize_data_format,
    padding_pairs,
)
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "MaxPooling3D",
    "AveragePooling3D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling3D",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
]


def _cast_input(x: Array, reduction: str, dtype: str) -> Array:
    """Floats to the layer's dtype; integers too for a mean, but kept for a max."""
    # A max of integers is exact (Keras leaves integer inputs alone); a mean is not.
    return autocast(x, dtype) if reduction == "max" else x.astype(dtype)


def _lowest(dtype: Any) -> np.ndarray:
    """The identity of `max` for `dtype`: -inf for floats, the minimum for ints."""
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating):
        return np.array(-np.inf, dtype)
    if jnp.issubdtype(dtype, jnp.integer):
        return np.array(np.iinfo(dtype).min, dtype)
    return np.array(False, dtype)


def _window_counts(
    spatial_shape: Sequence[int],
    window: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[tuple[int, int]],
    out_shape: Sequence[int],
) -> np.ndarray:
    """How many real (unpadded) input elements each output window covers.

    A static array of shape `out_shape`: per axis, window `o` spans input indices
    `[o * stride - before, o * stride - before + window)` clipped to the input;
    the count of a multi-axis window is the product over axes.
    """
    counts = np.ones((), np.float64)
    for n, k, s, (before, _), out in zip(
        spatial_shape, window, strides, pads, out_shape, strict=True
    ):
        starts = np.arange(out) * s - before
        per_axis = np.minimum(starts + k, n) - np.maximum(starts, 0)
        counts = np.multiply.outer(counts, per_axis)
    return counts


@dataclass(eq=False)
class _Pooling(Layer):
    """Max or average over sliding windows on `_rank` spatial axes."""

    uses_key: ClassVar[bool] = False

    pool_size: int | tuple[int, ...] = 2
    strides: int | tuple[int, ...] | None = None
    padding: str = "valid"
    data_format: str | None = None

    _rank: ClassVar[int] = 0
    _reduction: ClassVar[str] = "max"  # "max" or "average"

    def __post_init__(self) -> None:
        super().__post_init__()
        owner, rank = type(self).__name__, self._rank
        self.pool_size = normalize_tuple(owner, "pool_size", self.pool_size, rank)
        self.strides = (
            self.pool_size
            if self.strides is None
            else normalize_tuple(owner, "strides", self.strides, rank)
        )
        self.padding = check_choice(owner, "padding", self.padding, ("valid", "same"))
        self.data_format = normalize_data_format(owner, self.data_format)

    def _check_input(self, shape: tuple[Any, ...]) -> None:
        check_spatial_rank(self, shape, self._rank)
        if self.padding == "valid" and any(
            n < k for n, k in zip(shape[:-1], self.pool_size, strict=True)
        ):
            raise ValueError(
                f"{layer_label(self)}: with padding='valid' every spatial axis must "
                f"be at least pool_size={self.pool_size}, got input shape "
                f"{shape_str((None, *shape))}, which would give an empty output. "
                "Use padding='same' or a smaller `pool_size`."
            )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Validate `input_spec`; pooling holds no params or state."""
        del key
        self._check_input(tuple(check_single_spec(self, input_spec).shape))
        return {}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        """Return `(pooled x, state)`."""
        del params, training, key, mask
        x = jnp.asarray(x)
        self._check_input(tuple(x.shape[1:]))
        x = _cast_input(x, self._reduction, self.dtype)
        spatial = tuple(x.shape[1:-1])
        pads = padding_pairs(
            self.padding, spatial, self.pool_size, self.strides, (1,) * self._rank
        )
        window = (1, *self.pool_size, 1)
        strides = (1, *self.strides, 1)
        padding = ((0, 0), *pads, (0, 0))
        if self._reduction == "max":
            # Padding takes the identity of max, so it never wins a window.
            y = jax.lax.reduce_window(
                x, _lowest(x.dtype), jax.lax.max, window, strides, padding
            )
            return y, state
        # Sum in at least float32, so bfloat16 windows do not lose precision.
        acc_dtype = jnp.promote_types(x.dtype, jnp.float32)
        total = jax.lax.reduce_window(
            x.astype(acc_dtype),
            np.array(0, acc_dtype),
            jax.lax.add,
            window,
            strides,
            padding,
        )
        if self.padding == "valid":
            y = total / math.prod(self.pool_size)
        else:
            counts = _window_counts(
                spatial, self.pool_size, self.strides, pads, total.shape[1:-1]
            )
            y = total / counts[..., None].astype(acc_dtype)
        return y.astype(x.dtype), state


@dataclass(eq=False)
class MaxPooling1D(_Pooling):
    """Max over `pool_size` windows of steps, per channel.

    Args:
        pool_size: Int or 1-tuple, the window length.
        strides: Int, 1-tuple or `None` (the default: `pool_size`), the step
            between windows.
        padding: "valid" (no padding) or "same" (pad so the output has
            `ceil(steps / strides)` positions; an odd padding goes at the end, as
            in Keras; padded steps never win the max). Case-insensitive.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Input shape:
        `(batch, steps, channels)`.

    Output shape:
        `(batch, new_steps, channels)`: `(steps - pool_size) // strides + 1` for
        "valid", `ceil(steps / strides)` for "same".

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import MaxPooling1D
        >>> layer = MaxPooling1D(pool_size=2, strides=1, padding="same")
        >>> x = jnp.array([1.0, 3.0, 2.0, 4.0]).reshape(1, 4, 1)
        >>> spec = jax.ShapeDtypeStruct((4, 1), jnp.float32)
        >>> params, state = layer.init(None, spec)
        >>> layer.apply(params, state, x)[0][0, :, 0].tolist()
        [3.0, 3.0, 4.0, 4.0]
    """

    pool_size: int | tuple[int, ...] = 2
    _rank: ClassVar[int] = 1
    _reduction: ClassVar[str] = "max"


@dataclass(eq=False)
class MaxPooling2D(_Pooling):
    """Max over `pool_size` windows of height and width, per channel.

    Args:
        pool_size: Int or 2-tuple `(height, width)`, the window size.
        strides: Int, 2-tuple or `None` (the default: `pool_size`), the step
            between windows.
        padding: "valid" (no padding) or "same" (pad so each axis has
            `ceil(size / stride)` positions; an odd padding goes at the end, as in
            Keras; padded elements never win the max). Case-insensitive.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, new_height, new_width, channels)`, each new size given by the
        1-D rule of `MaxPooling1D` along its axis.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import MaxPooling2D
        >>> layer = MaxPooling2D()
        >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
        >>> spec = jax.ShapeDtypeStruct((4, 4, 1), jnp.float32)
        >>> params, state = layer.init(None, spec)
        >>> layer.apply(params, state, x)[0][0, :, :, 0].tolist()
        [[5.0, 7.0], [13.0, 15.0]]
    """

    pool_size: int | tuple[int, ...] = (2, 2)
    _rank: ClassVar[int] = 2
    _reduction: ClassVar[str] = "max"


@dataclass(eq=False)
class AveragePooling1D(_Pooling):
    """Mean over windows of steps, counting only real (unpadded) steps.

    Args:
        pool_size: Int or 1-tuple, the window length.
        strides: Int, 1-tuple or `None` (the default: `pool_size`), the step
            between windows.
        padding: "valid" (no padding) or "same" (pad so the output has
            `ceil(steps / strides)` positions; an odd padding goes at the end, as
            in Keras). With "same", a window overlapping the border is averaged
            over its real steps only, as Keras and TensorFlow do. Case-insensitive.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Input shape:
        `(batch, steps, channels)`.

    Output shape:
        `(batch, new_steps, channels)`: `(steps - pool_size) // strides + 1` for
        "valid", `ceil(steps / strides)` for "same".

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import AveragePooling1D
        >>> layer = AveragePooling1D(pool_size=2, strides=1, padding="same")
        >>> x = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
        >>> spec = jax.ShapeDtypeStruct((4, 1), jnp.float32)
        >>> params, state = layer.init(None, spec)
        >>> layer.apply(params, state, x)[0][0, :, 0].tolist()
        [1.5, 2.5, 3.5, 4.0]
    """

    pool_size: int | tuple[int, ...] = 2
    _rank: ClassVar[int] = 1
    _reduction: ClassVar[str] = "average"


@dataclass(eq=False)
class AveragePooling2D(_Pooling):
    """Mean over `pool_size` windows of height and width, counting only real elements.

    Args:
        pool_size: Int or 2-tuple `(height, width)`, the window size.
        strides: Int, 2-tuple or `None` (the default: `pool_size`), the step
            between windows.
        padding: "valid" (no padding) or "same" (pad so each axis has
            `ceil(size / stride)` positions; an odd padding goes at the end, as in
            Keras). With "same", a window overlapping the border is averaged over
            its real elements only, as Keras and TensorFlow do. Case-insensitive.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, new_height, new_width, channels)`, each new size given by the
        1-D rule of `AveragePooling1D` along its axis.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import AveragePooling2D
        >>> layer = AveragePooling2D(padding="same")
        >>> x = jnp.arange(9.0).reshape(1, 3, 3, 1)
        >>> spec = jax.ShapeDtypeStruct((3, 3, 1), jnp.float32)
        >>> params, state = layer.init(None, spec)
        >>> layer.apply(params, state, x)[0][0, :, :, 0].tolist()
        [[2.0, 3.5], [6.5, 8.0]]
    """

    pool_size: int | tuple[int, ...] = (2, 2)
    _rank: ClassVar[int] = 2
    _reduction: ClassVar[str] = "average"


@dataclass(eq=False)
class _GlobalPooling(Layer):
    """Max or mean over all `_rank` spatial axes."""

    uses_key: ClassVar[bool] = False

    data_format: str | None = None
    keepdims: bool = False

    _rank: ClassVar[int] = 0
    _reduction: ClassVar[str] = "max"

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.data_format = normalize_data_format(owner, self.data_format)
        check_bool(owner, "keepdims", self.keepdims)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Validate `input_spec`; pooling holds no params or state."""
        del key
        check_spatial_rank(
            self, tuple(check_single_spec(self, input_spec).shape), self._rank
        )
        return {}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
        sequence_mask: Array | None = None,
    ) -> tuple[Array, State]:
        """Return `(x reduced over its spatial axes, state)`.

        A `sequence_mask` (`(batch, steps)`, for the layers that consume one)
        leaves the masked steps out of the mean, as Keras does.
        """
        del params, training, key, mask
        x = jnp.asarray(x)
        check_spatial_rank(self, tuple(x.shape[1:]), self._rank)
        x = _cast_input(x, self._reduction, self.dtype)
        axes = tuple(range(1, self._rank + 1))
        if sequence_mask is not None and self.consumes_sequence_mask:
            keep = jnp.asarray(sequence_mask)
            if tuple(keep.shape) != tuple(x.shape[: self._rank + 1]):
                raise ValueError(
                    f"{layer_label(self)}: the sequence mask must have shape "
                    f"(batch, steps) = {shape_str(x.shape[: self._rank + 1])}, got "
                    f"{shape_str(keep.shape)}."
                )
            keep = keep.astype(bool)[..., None]
            total = jnp.sum(jnp.where(keep, x, 0), axis=axes, keepdims=self.keepdims)
            count = jnp.sum(keep.astype(x.dtype), axis=axes, keepdims=self.keepdims)
            # Keras divides by the count: a row with every step masked gives NaN.
            return total / count, state
        if self._reduction == "max":
            return jnp.max(x, axis=axes, keepdims=self.keepdims), state
        # jnp.mean accumulates low-precision floats in float32.
        return jnp.mean(x, axis=axes, keepdims=self.keepdims), state


@dataclass(eq=False)
class GlobalAveragePooling1D(_GlobalPooling):
    """Mean over the steps axis: `y[b, c] = mean_t x[b, t, c]`.

    With a sequence mask (from `Embedding(mask_zero=True)` or `Masking`), the
    mean is over the unmasked steps only, as in Keras; the output has no mask.

    Args:
        data_format: `None` or "channels_last"; "channels_first" is refused.
        keepdims: Keep the steps axis with size 1.

    Input shape:
        `(batch, steps, channels)`.

    Output shape:
        `(batch, channels)`, or `(batch, 1, channels)` with `keepdims=True`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import GlobalAveragePooling1D
        >>> layer = GlobalAveragePooling1D()
        >>> x = jnp.array([[[1.0, 10.0], [3.0, 30.0]]])
        >>> layer.apply({}, {}, x)[0].tolist()
        [[2.0, 20.0]]
    """

    _rank: ClassVar[int] = 1
    _reduction: ClassVar[str] = "average"
    consumes_sequence_mask: ClassVar[bool] = True


@dataclass(eq=False)
class GlobalAveragePooling2D(_GlobalPooling):
    """Mean over height and width: `y[b, c] = mean_{h, w} x[b, h, w, c]`.

    Args:
        data_format: `None` or "channels_last"; "channels_first" is refused.
        keepdims: Keep the height and width axes with size 1.

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, channels)`, or `(batch, 1, 1, channels)` with `keepdims=True`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import GlobalAveragePooling2D
        >>> layer = GlobalAveragePooling2D(keepdims=True)
        >>> y, _ = layer.apply({}, {}, jnp.arange(8.0).reshape(1, 2, 2, 2))
        >>> y.shape, y.ravel().tolist()
        ((1, 1, 1, 2), [3.0, 4.0])
    """

    _rank: ClassVar[int] = 2
    _reduction: ClassVar[str] = "average"


@dataclass(eq=False)
class GlobalMaxPooling1D(_GlobalPooling):
    """Max over the steps axis: `y[b, c] = max_t x[b, t, c]`.

    As in Keras 3, a sequence mask is not consumed: masked steps take part in
    the max, and the output has no mask.

    Args:
        data_format: `None` or "channels_last"; "channels_first" is refused.
        keepdims: Keep the steps axis with size 1.

    Input shape:
        `(batch, steps, channels)`.

    Output shape:
        `(batch, channels)`, or `(batch, 1, channels)` with `keepdims=True`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import GlobalMaxPooling1D
        >>> layer = GlobalMaxPooling1D()
        >>> x = jnp.array([[[1.0, 30.0], [3.0, 10.0]]])
        >>> layer.apply({}, {}, x)[0].tolist()
        [[3.0, 30.0]]
    """

    _rank: ClassVar[int] = 1
    _reduction: ClassVar[str] = "max"


@dataclass(eq=False)
class GlobalMaxPooling2D(_GlobalPooling):
    """Max over height and width: `y[b, c] = max_{h, w} x[b, h, w, c]`.

    Args:
        data_format: `None` or "channels_last"; "channels_first" is refused.
        keepdims: Keep the height and width axes with size 1.

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, channels)`, or `(batch, 1, 1, channels)` with `keepdims=True`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import GlobalMaxPooling2D
        >>> layer = GlobalMaxPooling2D()
        >>> y, _ = layer.apply({}, {}, jnp.arange(8.0).reshape(1, 2, 2, 2))
        >>> y.tolist()
        [[6.0, 7.0]]
    """

    _rank: ClassVar[int] = 2
    _reduction: ClassVar[str] = "max"


@dataclass(eq=False)
class MaxPooling3D(_Pooling):
    """Max over `pool_size` windows of depth, height and width, per channel.

    Args:
        pool_size: Int or 3-tuple `(depth, height, width)`, the window size.
        strides: Int, 3-tuple or `None` (the default: `pool_size`), the step
            between windows.
        padding: "valid" or "same" (padded elements never win the max; an odd
            padding goes at the end, as in Keras). Case-insensitive.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Input shape:
        `(batch, depth, height, width, channels)`.

    Output shape:
        `(batch, new_depth, new_height, new_width, channels)`, each new size given
        by the 1-D rule of `MaxPooling1D` along its axis.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import MaxPooling3D
        >>> layer = MaxPooling3D()
        >>> x = jnp.arange(8.0).reshape(1, 2, 2, 2, 1)
        >>> layer.apply({}, {}, x)[0].ravel().tolist()
        [7.0]
    """

    pool_size: int | tuple[int, ...] = (2, 2, 2)
    _rank: ClassVar[int] = 3
    _reduction: ClassVar[str] = "max"


@dataclass(eq=False)
class AveragePooling3D(_Pooling):
    """Mean over `pool_size` windows of depth, height and width, per channel.

    Args:
        pool_size: Int or 3-tuple `(depth, height, width)`, the window size.
        strides: Int, 3-tuple or `None` (the default: `pool_size`), the step
            between windows.
        padding: "valid" or "same" (a window overlapping the border is averaged
            over its real elements only, as Keras does). Case-insensitive.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Input shape:
        `(batch, depth, height, width, channels)`.

    Output shape:
        `(batch, new_depth, new_height, new_width, channels)`, each new size given
        by the 1-D rule of `AveragePooling1D` along its axis.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import AveragePooling3D
        >>> layer = AveragePooling3D()
        >>> x = jnp.arange(8.0).reshape(1, 2, 2, 2, 1)
        >>> layer.apply({}, {}, x)[0].ravel().tolist()
        [3.5]
    """

    pool_size: int | tuple[int, ...] = (2, 2, 2)
    _rank: ClassVar[int] = 3
    _reduction: ClassVar[str] = "average"


@dataclass(eq=False)
class GlobalAveragePooling3D(_GlobalPooling):
    """Mean over depth, height and width: `y[b, c] = mean_{d, h, w} x[b, d, h, w, c]`.

    Args:
        data_format: `None` or "channels_last"; "channels_first" is refused.
        keepdims: Keep the three spatial axes with size 1.

    Input shape:
        `(batch, depth, height, width, channels)`.

    Output shape:
        `(batch, channels)`, or `(batch, 1, 1, 1, channels)` with `keepdims=True`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import GlobalAveragePooling3D
        >>> layer = GlobalAveragePooling3D()
        >>> layer.apply({}, {}, jnp.arange(16.0).reshape(1, 2, 2, 2, 2))[0].tolist()
        [[7.0, 8.0]]
    """

    _rank: ClassVar[int] = 3
    _reduction: ClassVar[str] = "average"


@dataclass(eq=False)
class GlobalMaxPooling3D(_GlobalPooling):
    """Max over depth, height and width: `y[b, c] = max_{d, h, w} x[b, d, h, w, c]`.

    Args:
        data_format: `None` or "channels_last"; "channels_first" is refused.
        keepdims: Keep the three spatial axes with size 1.

    Input shape:
        `(batch, depth, height, width, channels)`.

    Output shape:
        `(batch, channels)`, or `(batch, 1, 1, 1, channels)` with `keepdims=True`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.pooling import GlobalMaxPooling3D
        >>> layer = GlobalMaxPooling3D(keepdims=True)
        >>> y, _ = layer.apply({}, {}, jnp.arange(16.0).reshape(1, 2, 2, 2, 2))
        >>> y.shape, y.ravel().tolist()
        ((1, 1, 1, 1, 2), [14.0, 15.0])
    """

    _rank: ClassVar[int] = 3
    _reduction: ClassVar[str] = "max"


# Keras' aliases: the same classes under a second name (saved by the class name).
MaxPool1D = MaxPooling1D
MaxPool2D = MaxPooling2D
MaxPool3D = MaxPooling3D
AvgPool1D = AveragePooling1D
AvgPool2D = AveragePooling2D
AvgPool3D = AveragePooling3D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalMaxPool2D = GlobalMaxPooling2D
GlobalMaxPool3D = GlobalMaxPooling3D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalAvgPool3D = GlobalAveragePooling3D
