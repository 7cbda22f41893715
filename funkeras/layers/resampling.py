"""Resampling and spatial reshaping: upsampling, zero padding, cropping, resizing.

`UpSampling1D/2D/3D`, `ZeroPadding1D/2D/3D` and `Cropping1D/2D/3D` are Keras'
reshaping layers; `Resizing`, `CenterCrop` and `Rescaling` are Keras' stateless
image preprocessing layers. All are channels-last, hold no weights, and compute
the numbers Keras 3 computes on its JAX backend (interpolation by
`jax.image.resize`, as Keras' `ops.image.resize` does there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    normalize_tuple,
    shape_str,
)
from funkeras.layers._common import autocast, check_single_spec
from funkeras.layers.base import Layer, check_rank, layer_label
from funkeras.layers.convolutional import check_spatial_rank, normalize_data_format
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "Resizing",
    "CenterCrop",
    "Rescaling",
]

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5")


def _pairs(owner: str, arg: str, value: Any, rank: int) -> tuple[tuple[int, int], ...]:
    """Keras' padding/cropping argument as `rank` `(before, after)` pairs.

    An int is the same amount on both sides of every axis; in 1-D a pair is
    `(before, after)`; in 2-D and 3-D a sequence holds one entry per axis, an int
    (symmetric) or a pair.
    """

    def amount(v: Any) -> int:
        return check_int(owner, arg, v, minimum=0)

    def pair(v: Any) -> tuple[int, int]:
        if isinstance(v, tuple | list):
            if len(v) != 2:
                raise ValueError(
                    f"{owner}: each entry of `{arg}` must be an int or a pair "
                    f"(before, after), got {v!r}."
                )
            return amount(v[0]), amount(v[1])
        return amount(v), amount(v)

    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return (pair(value),) * rank
    if rank == 1:
        return (pair(value),)
    if not isinstance(value, tuple | list) or len(value) != rank:
        raise ValueError(
            f"{owner}: `{arg}` must be an int or a sequence of {rank} entries (an "
            f"int or a (before, after) pair per spatial axis), got {value!r}."
        )
    return tuple(pair(v) for v in value)


@dataclass(eq=False)
class _Stateless(Layer):
    """A weightless layer over channels-last inputs with `_rank` spatial axes."""

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = False
    _rank: ClassVar[int] = 0

    def _check(self, shape: tuple[Any, ...]) -> None:
        check_spatial_rank(self, shape, self._rank)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Validate `input_spec`; these layers hold no params or state."""
        del key
        self._check(tuple(check_single_spec(self, input_spec).shape))
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
        """Return `(the resampled x, state)` (`_forward` is each family's own)."""
        del params, training, key, mask
        x = jnp.asarray(x)
        self._check(tuple(x.shape[1:]))
        return self._forward(x), state


# -- upsampling ----------------------------------------------------------------------


@dataclass(eq=False)
class _UpSampling(_Stateless):
    def _forward(self, x: Array) -> Array:
        x = autocast(x, self.dtype)
        method = getattr(self, "interpolation", "nearest")
        if method == "nearest":
            for axis, factor in enumerate(self.size, start=1):
                x = jnp.repeat(x, factor, axis=axis)
            return x
        shape = (
            x.shape[0],
            *(n * f for n, f in zip(x.shape[1:-1], self.size, strict=True)),
            x.shape[-1],
        )
        return jax.image.resize(x, shape, method=method, antialias=False)


@dataclass(eq=False)
class UpSampling1D(_UpSampling):
    """Repeat each step `size` times: `(batch, steps, c) -> (batch, steps * size, c)`.

    Args:
        size: Positive int, the upsampling factor.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import UpSampling1D
        >>> y, _ = UpSampling1D(2).apply({}, {}, jnp.array([[[1.0], [2.0]]]))
        >>> y[0, :, 0].tolist()
        [1.0, 1.0, 2.0, 2.0]
    """

    size: int = 2
    _rank: ClassVar[int] = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        self.size = check_int(type(self).__name__, "size", self.size)

    def _forward(self, x: Array) -> Array:
        return jnp.repeat(autocast(x, self.dtype), self.size, axis=1)


@dataclass(eq=False)
class UpSampling2D(_UpSampling):
    """Upsample height and width by integer factors.

    With "nearest" each row and column is repeated (Keras' `ops.repeat`); the other
    interpolations resize to `(height * size[0], width * size[1])` with
    `jax.image.resize` and no antialiasing, as Keras does on JAX.

    Args:
        size: Int or 2-tuple `(height_factor, width_factor)`.
        data_format: `None` or "channels_last"; "channels_first" is refused.
        interpolation: "nearest" (default), "bilinear", "bicubic", "lanczos3" or
            "lanczos5".

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, height * size[0], width * size[1], channels)`.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import UpSampling2D
        >>> x = jnp.array([[0.0, 1.0]]).reshape(1, 1, 2, 1)
        >>> y, _ = UpSampling2D((1, 2), interpolation="bilinear").apply({}, {}, x)
        >>> y[0, 0, :, 0].tolist()
        [0.0, 0.25, 0.75, 1.0]
    """

    size: int | tuple[int, int] = (2, 2)
    data_format: str | None = None
    interpolation: str = "nearest"
    _rank: ClassVar[int] = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.size = normalize_tuple(owner, "size", self.size, 2)
        self.data_format = normalize_data_format(owner, self.data_format)
        self.interpolation = check_choice(
            owner, "interpolation", self.interpolation, _INTERPOLATIONS
        )


@dataclass(eq=False)
class UpSampling3D(_UpSampling):
    """Repeat each element `size` times along depth, height and width.

    Args:
        size: Int or 3-tuple of factors.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Input shape:
        `(batch, depth, height, width, channels)`.

    Output shape:
        `(batch, depth * size[0], height * size[1], width * size[2], channels)`.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import UpSampling3D
        >>> UpSampling3D(2).apply({}, {}, jnp.ones((1, 1, 2, 3, 4)))[0].shape
        (1, 2, 4, 6, 4)
    """

    size: int | tuple[int, int, int] = (2, 2, 2)
    data_format: str | None = None
    _rank: ClassVar[int] = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.size = normalize_tuple(owner, "size", self.size, 3)
        self.data_format = normalize_data_format(owner, self.data_format)


# -- zero padding and cropping -------------------------------------------------------


@dataclass(eq=False)
class _ZeroPadding(_Stateless):
    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        pairs = _pairs(owner, "padding", self.padding, self._rank)
        # 1-D keeps Keras' one pair `(left, right)`; 2-D and 3-D a pair per axis.
        self.padding = pairs[0] if self._rank == 1 else pairs
        self.data_format = normalize_data_format(owner, self.data_format)

    def _forward(self, x: Array) -> Array:
        return jnp.pad(autocast(x, self.dtype), ((0, 0), *self.padding, (0, 0)))


@dataclass(eq=False)
class ZeroPadding1D(_ZeroPadding):
    """Pad the steps axis with zeros.

    Args:
        padding: Int (both ends) or pair `(before, after)`.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Output shape:
        `(batch, steps + before + after, channels)`.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import ZeroPadding1D
        >>> y, _ = ZeroPadding1D((1, 2)).apply({}, {}, jnp.ones((1, 2, 1)))
        >>> y[0, :, 0].tolist()
        [0.0, 1.0, 1.0, 0.0, 0.0]
    """

    padding: int | tuple[int, int] = 1
    data_format: str | None = None
    _rank: ClassVar[int] = 1

    def _forward(self, x: Array) -> Array:
        return jnp.pad(autocast(x, self.dtype), ((0, 0), self.padding, (0, 0)))


@dataclass(eq=False)
class ZeroPadding2D(_ZeroPadding):
    """Pad height and width with zeros.

    Args:
        padding: An int (every side), a pair of ints (symmetric height and width
            padding) or a pair of pairs `((top, bottom), (left, right))`.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Output shape:
        `(batch, height + top + bottom, width + left + right, channels)`.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import ZeroPadding2D
        >>> layer = ZeroPadding2D(((1, 0), (2, 1)))
        >>> layer.apply({}, {}, jnp.ones((1, 2, 2, 3)))[0].shape
        (1, 3, 5, 3)
    """

    padding: Any = (1, 1)
    data_format: str | None = None
    _rank: ClassVar[int] = 2


@dataclass(eq=False)
class ZeroPadding3D(_ZeroPadding):
    """Pad depth, height and width with zeros.

    Args:
        padding: An int (every side), 3 ints (symmetric per axis) or 3 pairs
            `((front, back), (top, bottom), (left, right))`.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import ZeroPadding3D
        >>> ZeroPadding3D(1).apply({}, {}, jnp.ones((1, 2, 2, 2, 1)))[0].shape
        (1, 4, 4, 4, 1)
    """

    padding: Any = ((1, 1), (1, 1), (1, 1))
    data_format: str | None = None
    _rank: ClassVar[int] = 3


@dataclass(eq=False)
class _Cropping(_Stateless):
    def _crops(self) -> tuple[tuple[int, int], ...]:
        return self.cropping

    def _check(self, shape: tuple[Any, ...]) -> None:
        check_spatial_rank(self, shape, self._rank)
        for n, (before, after) in zip(shape[:-1], self._crops(), strict=True):
            if isinstance(n, int) and before + after >= n:
                raise ValueError(
                    f"{layer_label(self)}: cropping={self.cropping} removes every "
                    f"element of an axis of input shape {shape_str((None, *shape))}; "
                    "each axis must keep at least one. Crop less."
                )

    def _forward(self, x: Array) -> Array:
        index = tuple(
            slice(before, n - after)
            for n, (before, after) in zip(x.shape[1:-1], self._crops(), strict=True)
        )
        return autocast(x, self.dtype)[(slice(None), *index, slice(None))]


@dataclass(eq=False)
class Cropping1D(_Cropping):
    """Remove steps at the start and end of the steps axis.

    Args:
        cropping: Int (both ends) or pair `(before, after)`.

    Output shape:
        `(batch, steps - before - after, channels)`.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import Cropping1D
        >>> x = jnp.arange(5.0).reshape(1, 5, 1)
        >>> Cropping1D((1, 2)).apply({}, {}, x)[0][0, :, 0].tolist()
        [1.0, 2.0]
    """

    cropping: int | tuple[int, int] = (1, 1)
    _rank: ClassVar[int] = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cropping = _pairs(type(self).__name__, "cropping", self.cropping, 1)[0]

    def _crops(self) -> tuple[tuple[int, int], ...]:
        return (self.cropping,)


@dataclass(eq=False)
class Cropping2D(_Cropping):
    """Remove rows and columns at the borders of height and width.

    Args:
        cropping: An int (every side), a pair of ints (symmetric height and width
            cropping) or a pair of pairs `((top, bottom), (left, right))`.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import Cropping2D
        >>> Cropping2D(((1, 0), (1, 1))).apply({}, {}, jnp.ones((1, 4, 5, 2)))[0].shape
        (1, 3, 3, 2)
    """

    cropping: Any = ((0, 0), (0, 0))
    data_format: str | None = None
    _rank: ClassVar[int] = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.cropping = _pairs(owner, "cropping", self.cropping, 2)
        self.data_format = normalize_data_format(owner, self.data_format)


@dataclass(eq=False)
class Cropping3D(_Cropping):
    """Remove elements at the borders of depth, height and width.

    Args:
        cropping: An int (every side), 3 ints (symmetric per axis) or 3 pairs.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import Cropping3D
        >>> Cropping3D(1).apply({}, {}, jnp.ones((1, 3, 4, 5, 2)))[0].shape
        (1, 1, 2, 3, 2)
    """

    cropping: Any = ((1, 1), (1, 1), (1, 1))
    data_format: str | None = None
    _rank: ClassVar[int] = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.cropping = _pairs(owner, "cropping", self.cropping, 3)
        self.data_format = normalize_data_format(owner, self.data_format)


# -- image preprocessing -------------------------------------------------------------


def _aspect_crop(
    height: int, width: int, target_height: int, target_width: int
) -> tuple[int, int, int, int]:
    """Keras' centred crop to the target aspect ratio: `(top, left, h, w)`."""
    crop_h = max(min(height, int(float(width * target_height) / target_width)), 1)
    crop_w = max(min(width, int(float(height * target_width) / target_height)), 1)
    return (
        int(float(height - crop_h) / 2),
        int(float(width - crop_w) / 2),
        crop_h,
        crop_w,
    )


def _to_dtype(y: Array, dtype: Any) -> Array:
    """Keras' cast back to an integer input dtype: round, then saturate."""
    if jnp.issubdtype(dtype, jnp.integer):
        info = jnp.iinfo(dtype)
        y = jnp.clip(jnp.round(y), info.min, info.max)
    return y.astype(dtype)


@dataclass(eq=False)
class _Image(Layer):
    """A weightless image layer over `(batch, height, width, channels)`."""

    uses_key: ClassVar[bool] = False

    def _check(self, shape: tuple[Any, ...]) -> None:
        check_rank(
            self,
            jax.ShapeDtypeStruct(shape, jnp.float32),
            3,
            hint=f"{type(self).__name__} takes images shaped "
            "(batch, height, width, channels).",
        )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Validate `input_spec`; no params or state."""
        del key
        self._check(tuple(check_single_spec(self, input_spec).shape))
        return {}, {}


@dataclass(eq=False)
class Resizing(_Image):
    """Resize images to `(height, width)`, as Keras' `Resizing` layer.

    Args:
        height: Positive int, the output height.
        width: Positive int, the output width.
        interpolation: "bilinear" (default), "nearest", "bicubic", "lanczos3" or
            "lanczos5".
        crop_to_aspect_ratio: Crop the largest centred window with the target
            aspect ratio first (no distortion).
        pad_to_aspect_ratio: Pad the images with `fill_value` evenly to the target
            aspect ratio first. At most one of the two.
        fill_mode: "constant" (the only mode Keras has).
        fill_value: The value padding fills with.
        antialias: Antialias when downsampling (`jax.image.resize`'s antialias).
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Integer images are resized in float and rounded back to their dtype
    (saturating), as Keras does; floating images come back in the layer dtype.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import Resizing
        >>> Resizing(2, 3).apply({}, {}, jnp.ones((1, 4, 6, 3)))[0].shape
        (1, 2, 3, 3)
    """

    height: int
    width: int
    interpolation: str = "bilinear"
    crop_to_aspect_ratio: bool = False
    pad_to_aspect_ratio: bool = False
    fill_mode: str = "constant"
    fill_value: float = 0.0
    antialias: bool = False
    data_format: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.height = check_int(owner, "height", self.height)
        self.width = check_int(owner, "width", self.width)
        self.interpolation = check_choice(
            owner, "interpolation", self.interpolation, _INTERPOLATIONS
        )
        check_bool(owner, "crop_to_aspect_ratio", self.crop_to_aspect_ratio)
        check_bool(owner, "pad_to_aspect_ratio", self.pad_to_aspect_ratio)
        check_bool(owner, "antialias", self.antialias)
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError(
                f"{owner}: only one of `crop_to_aspect_ratio` and "
                "`pad_to_aspect_ratio` can be True (as in Keras)."
            )
        self.fill_mode = check_choice(owner, "fill_mode", self.fill_mode, ("constant",))
        self.fill_value = check_float(owner, "fill_value", self.fill_value)
        self.data_format = normalize_data_format(owner, self.data_format)

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
        """Return `(the resized images, state)`."""
        del params, training, key, mask
        x = jnp.asarray(x)
        self._check(tuple(x.shape[1:]))
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.integer) else self.dtype
        images = x.astype(jnp.promote_types(self.dtype, jnp.float32))
        height, width = x.shape[1], x.shape[2]
        if self.crop_to_aspect_ratio:
            top, left, h, w = _aspect_crop(height, width, self.height, self.width)
            images = images[:, top : top + h, left : left + w, :]
        elif self.pad_to_aspect_ratio:
            pad_h = max(height, int(float(width * self.height) / self.width))
            pad_w = max(width, int(float(height * self.width) / self.height))
            top, left = int(float(pad_h - height) / 2), int(float(pad_w - width) / 2)
            # Keras pads `top` on both sides (and `left` on both sides), not to pad_h.
            images = jnp.pad(
                images,
                ((0, 0), (top, top), (left, left), (0, 0)),
                constant_values=self.fill_value,
            )
        shape = (x.shape[0], self.height, self.width, x.shape[-1])
        y = jax.image.resize(
            images, shape, method=self.interpolation, antialias=self.antialias
        )
        return _to_dtype(y, dtype), state


@dataclass(eq=False)
class CenterCrop(_Image):
    """Crop the centre `(height, width)` of images, as Keras' `CenterCrop`.

    An image smaller than the target on either axis is instead cropped to the
    target aspect ratio and resized (bilinear), as Keras' `smart_resize` does.
    The output is in the layer dtype (Keras casts to its compute dtype).

    Args:
        height: Positive int, the output height.
        width: Positive int, the output width.
        data_format: `None` or "channels_last"; "channels_first" is refused.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import CenterCrop
        >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
        >>> CenterCrop(2, 2).apply({}, {}, x)[0][0, :, :, 0].tolist()
        [[5.0, 6.0], [9.0, 10.0]]
    """

    height: int
    width: int
    data_format: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.height = check_int(owner, "height", self.height)
        self.width = check_int(owner, "width", self.width)
        self.data_format = normalize_data_format(owner, self.data_format)

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
        """Return `(the centre crop, state)`."""
        del params, training, key, mask
        x = jnp.asarray(x)
        self._check(tuple(x.shape[1:]))
        x = x.astype(self.dtype)
        height, width = x.shape[1], x.shape[2]
        if height >= self.height and width >= self.width:
            top, left = (height - self.height) // 2, (width - self.width) // 2
            return x[:, top : top + self.height, left : left + self.width, :], state
        top, left, h, w = _aspect_crop(height, width, self.height, self.width)
        x = x[:, top : top + h, left : left + w, :]
        shape = (x.shape[0], self.height, self.width, x.shape[-1])
        return jax.image.resize(x, shape, method="bilinear", antialias=False), state


@dataclass(eq=False)
class Rescaling(Layer):
    """`x * scale + offset`, computed in the layer dtype (Keras' `Rescaling`).

    Args:
        scale: A float, or a sequence of floats broadcast against the last axes
            (e.g. one per channel).
        offset: A float, or a sequence of floats, likewise.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.resampling import Rescaling
        >>> y, _ = Rescaling(1 / 127.5, offset=-1).apply({}, {}, jnp.array([0, 255]))
        >>> y.tolist()
        [-1.0, 1.0]
    """

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True

    scale: float | Sequence[float]
    offset: float | Sequence[float] = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        for arg in ("scale", "offset"):
            value = getattr(self, arg)
            if isinstance(value, tuple | list | np.ndarray):
                value = [check_float(owner, arg, float(v)) for v in np.ravel(value)]
            else:
                value = check_float(owner, arg, value)
            setattr(self, arg, value)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Validate `input_spec`; no params or state."""
        del key
        check_single_spec(self, input_spec)
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
        """Return `(x * scale + offset, state)` in the layer dtype."""
        del params, training, key, mask
        dtype = self.dtype
        scale = jnp.asarray(self.scale, dtype)
        offset = jnp.asarray(self.offset, dtype)
        return jnp.asarray(x).astype(dtype) * scale + offset, state
