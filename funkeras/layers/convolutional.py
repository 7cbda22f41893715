"""Convolution layers: `Conv1D/2D/3D`, channels-last, with Keras' kernel layout.

All are one private class, `_Conv`, specialised by the number of spatial axes.
`Convolution1D/2D/3D` are Keras' aliases of the same classes.
The helpers here (`normalize_data_format`, `check_spatial_rank`, `same_padding`,
`padding_pairs`) are shared with the pooling layers, so convolution and pooling
split "same" padding by one formula: TensorFlow's, with the odd element of the
padding at the end of each axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from funkeras import activations, initializers, regularizers
from funkeras._validation import (
    check_bool,
    check_choice,
    check_int,
    normalize_tuple,
    shape_str,
)
from funkeras.layers._common import check_single_spec, resolve
from funkeras.layers.base import Layer, check_last_axis, check_rank, layer_label
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Convolution1D",
    "Convolution2D",
    "Convolution3D",
]

# Spatial axis letters for `lax.conv_general_dilated`'s dimension numbers, by rank.
_SPATIAL_LETTERS = {1: "W", 2: "HW", 3: "DHW"}
_SPATIAL_NAMES = {1: "steps", 2: "height, width", 3: "depth, height, width"}


def normalize_data_format(owner: str, value: Any) -> str:
    """Validate `data_format`: `None` or "channels_last" (funkeras is channels-last).

    Args:
        owner: The class name used in error messages.
        value: The `data_format` argument as given.

    Returns:
        "channels_last".

    Raises:
        ValueError: For "channels_first" (with how to convert) or any other value.
    """
    if value is None:
        return "channels_last"
    if isinstance(value, str) and value.lower() == "channels_first":
        raise ValueError(
            f"{owner}: data_format='channels_first' is not supported; funkeras "
            "layers are channels-last, inputs shaped (batch, ..., channels). Move "
            "the channel axis last (e.g. `jnp.moveaxis(x, 1, -1)`) and use "
            "data_format='channels_last' or None."
        )
    return check_choice(owner, "data_format", value, ("channels_last",))


def same_padding(
    size: int, window: int, stride: int, dilation: int = 1
) -> tuple[int, int]:
    """The `(before, after)` "same" padding of one axis, as TensorFlow and Keras pad.

    The output has `ceil(size / stride)` positions; the total padding is what the
    last window needs, and an odd total puts the extra element at the end.

    Example:
        >>> from funkeras.layers.convolutional import same_padding
        >>> same_padding(4, 2, 1)
        (0, 1)
        >>> same_padding(5, 3, 2, 1)
        (1, 1)
    """
    effective = dilation * (window - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def padding_pairs(
    padding: str,
    spatial_shape: Sequence[int],
    window: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
) -> list[tuple[int, int]]:
    """Explicit `(before, after)` padding per spatial axis for "valid"/"same"/"causal".

    "causal" (1-D convolution only) pads `dilation * (window - 1)` at the start, so
    output step `t` sees inputs up to `t` and no later.
    """
    if padding == "valid":
        return [(0, 0)] * len(window)
    if padding == "causal":
        return [(d * (k - 1), 0) for k, d in zip(window, dilation, strict=True)]
    return [
        same_padding(n, k, s, d)
        for n, k, s, d in zip(spatial_shape, window, strides, dilation, strict=True)
    ]


def check_spatial_rank(layer: Layer, shape: tuple[Any, ...], rank: int) -> None:
    """Raise unless one example's `shape` is `(*spatial, channels)` with `rank` axes."""
    check_rank(
        layer,
        jax.ShapeDtypeStruct(shape, jnp.float32),
        rank + 1,
        hint=f"{type(layer).__name__} takes inputs shaped "
        f"(batch, {_SPATIAL_NAMES[rank]}, channels).",
    )


def check_valid_extent(layer: Any, shape: tuple[Any, ...]) -> None:
    """With `padding="valid"`, refuse a spatial axis (of one example's `shape`)
    shorter than the dilated kernel: the output would be empty."""
    if layer.padding != "valid":
        return
    needed = tuple(
        d * (k - 1) + 1
        for k, d in zip(layer.kernel_size, layer.dilation_rate, strict=True)
    )
    if any(n < m for n, m in zip(shape[:-1], needed, strict=True)):
        raise ValueError(
            f"{layer_label(layer)}: with padding='valid' every spatial axis must "
            f"be at least the (dilated) kernel size {needed}, got input shape "
            f"{shape_str((None, *shape))}, which would give an empty output. Use "
            "padding='same' or a smaller `kernel_size`."
        )


@dataclass(eq=False)
class _Conv(Layer):
    """Convolution over `_rank` spatial axes (the shared body of Conv1D/2D/3D)."""

    uses_key: ClassVar[bool] = False

    filters: int
    kernel_size: int | tuple[int, ...]
    strides: int | tuple[int, ...] = 1
    padding: str = "valid"
    data_format: str | None = None
    dilation_rate: int | tuple[int, ...] = 1
    groups: int = 1
    activation: str | Callable[[Array], Array] | None = None
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None

    _rank: ClassVar[int] = 0
    _paddings: ClassVar[tuple[str, ...]] = ("valid", "same")

    def __post_init__(self) -> None:
        super().__post_init__()
        owner, rank = type(self).__name__, self._rank
        self.filters = check_int(owner, "filters", self.filters)
        self.kernel_size = normalize_tuple(owner, "kernel_size", self.kernel_size, rank)
        self.strides = normalize_tuple(owner, "strides", self.strides, rank)
        self.dilation_rate = normalize_tuple(
            owner, "dilation_rate", self.dilation_rate, rank
        )
        self.padding = check_choice(owner, "padding", self.padding, self._paddings)
        self.data_format = normalize_data_format(owner, self.data_format)
        self.groups = check_int(owner, "groups", self.groups)
        if self.filters % self.groups:
            raise ValueError(
                f"{owner}: `filters` must be divisible by `groups`, got "
                f"filters={self.filters} and groups={self.groups}. Each group makes "
                "filters // groups output channels; use a multiple of `groups`."
            )
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{owner}: `strides` > 1 cannot be combined with `dilation_rate` > 1 "
                f"(as in Keras), got strides={self.strides} and "
                f"dilation_rate={self.dilation_rate}. Use one or the other."
            )
        check_bool(owner, "use_bias", self.use_bias)
        # Keras reads a None initializer as the default one.
        if self.kernel_initializer is None:
            self.kernel_initializer = "glorot_uniform"
        if self.bias_initializer is None:
            self.bias_initializer = "zeros"
        resolve(owner, "activation", self.activation, activations.get)
        resolve(owner, "kernel_initializer", self.kernel_initializer, initializers.get)
        resolve(owner, "bias_initializer", self.bias_initializer, initializers.get)
        resolve(owner, "kernel_regularizer", self.kernel_regularizer, regularizers.get)
        resolve(owner, "bias_regularizer", self.bias_regularizer, regularizers.get)

    def _check_input(self, shape: tuple[Any, ...]) -> int:
        """Validate one example's shape (no batch axis); return its channel count."""
        label = layer_label(self)
        check_spatial_rank(self, shape, self._rank)
        channels = shape[-1]
        if channels % self.groups:
            raise ValueError(
                f"{label}: the number of input channels must be divisible by "
                f"groups={self.groups}; expected a multiple of {self.groups} channels, "
                f"got {channels} (input shape {shape_str((None, *shape))}). Change "
                "`groups` or the channel count of the previous layer."
            )
        check_valid_extent(self, shape)
        return channels

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create `kernel` `(*kernel_size, channels // groups, filters)` and `bias`."""
        spec = check_single_spec(self, input_spec)
        channels = self._check_input(tuple(spec.shape))
        kernel_key, bias_key = jax.random.split(key)
        dtype = jnp.dtype(self.dtype)
        kernel_shape = (*self.kernel_size, channels // self.groups, self.filters)
        init_kernel = initializers.get(self.kernel_initializer)
        params = {"kernel": init_kernel(kernel_key, kernel_shape, dtype)}
        if self.use_bias:
            init_bias = initializers.get(self.bias_initializer)
            params["bias"] = init_bias(bias_key, (self.filters,), dtype)
        return params, {}

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
        """Return `(activation(conv(x, kernel) + bias), state)`."""
        del training, key, mask
        x = jnp.asarray(x)
        self._check_input(tuple(x.shape[1:]))
        kernel = params["kernel"]
        check_last_axis(self, x, expected=kernel.shape[-2] * self.groups)
        # A convolution needs one dtype: integer images are cast too (as floats are).
        x = x.astype(self.dtype)
        letters = _SPATIAL_LETTERS[self._rank]
        pads = padding_pairs(
            self.padding,
            x.shape[1:-1],
            self.kernel_size,
            self.strides,
            self.dilation_rate,
        )
        y = jax.lax.conv_general_dilated(
            x,
            kernel.astype(self.dtype),
            window_strides=self.strides,
            padding=pads,
            rhs_dilation=self.dilation_rate,
            dimension_numbers=(f"N{letters}C", f"{letters}IO", f"N{letters}C"),
            feature_group_count=self.groups,
        )
        if self.use_bias:
            y = y + params["bias"].astype(self.dtype)
        return activations.get(self.activation)(y), state


@dataclass(eq=False)
class Conv1D(_Conv):
    """1-D convolution over steps: `activation(conv(x) + bias)`.

    As in Keras, `conv` slides the kernel without flipping it (a cross-correlation).

    Args:
        filters: Positive int, the number of output channels.
        kernel_size: Int or 1-tuple, the window length.
        strides: Int or 1-tuple, the step between windows. `strides > 1` cannot be
            combined with `dilation_rate > 1`.
        padding: "valid" (no padding), "same" (pad so the output has
            `ceil(steps / strides)` positions; an odd padding puts the extra step at
            the end, as in Keras) or "causal" (pad `dilation_rate * (kernel_size - 1)`
            steps at the start, so output `t` depends on inputs up to `t` only).
            Case-insensitive.
        data_format: `None` or "channels_last"; "channels_first" is refused.
        dilation_rate: Int or 1-tuple, the spacing between kernel taps.
        groups: Positive int dividing both the input channels and `filters`: the
            channels are split into `groups` groups, each convolved with its own
            `filters // groups` filters.
        activation: Activation name or callable applied to the output; `None` for
            none.
        use_bias: Whether to add a bias vector.
        kernel_initializer: Initializer for `kernel` (`None` means
            "glorot_uniform").
        bias_initializer: Initializer for `bias` (`None` means "zeros").
        kernel_regularizer: Optional regularizer of `kernel` (adds to `penalty`).
        bias_regularizer: Optional regularizer of `bias` (adds to `penalty`).

    Input shape:
        `(batch, steps, channels)`.

    Output shape:
        `(batch, new_steps, filters)`; `new_steps` is
        `(steps - dilation_rate * (kernel_size - 1) - 1) // strides + 1` for "valid"
        and `ceil(steps / strides)` for "same" and "causal".

    Params: `kernel` `(kernel_size, channels // groups, filters)`; `bias`
    `(filters,)` if `use_bias`. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.convolutional import Conv1D
        >>> layer = Conv1D(8, 3, padding="causal", activation="relu")
        >>> spec = jax.ShapeDtypeStruct((10, 4), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> params["kernel"].shape, params["bias"].shape
        ((3, 4, 8), (8,))
        >>> y, state = layer.apply(params, state, jnp.ones((2, 10, 4)))
        >>> y.shape
        (2, 10, 8)
    """

    _rank: ClassVar[int] = 1
    _paddings: ClassVar[tuple[str, ...]] = ("valid", "same", "causal")


@dataclass(eq=False)
class Conv2D(_Conv):
    """2-D convolution over height and width: `activation(conv(x) + bias)`.

    As in Keras, `conv` slides the kernel without flipping it (a cross-correlation).

    Args:
        filters: Positive int, the number of output channels.
        kernel_size: Int or 2-tuple `(height, width)`, the window size.
        strides: Int or 2-tuple, the step between windows along each axis.
            `strides > 1` cannot be combined with `dilation_rate > 1`.
        padding: "valid" (no padding) or "same" (pad so each output axis has
            `ceil(size / stride)` positions; an odd padding puts the extra row or
            column at the end, as in Keras). Case-insensitive.
        data_format: `None` or "channels_last"; "channels_first" is refused.
        dilation_rate: Int or 2-tuple, the spacing between kernel taps.
        groups: Positive int dividing both the input channels and `filters`: the
            channels are split into `groups` groups, each convolved with its own
            `filters // groups` filters.
        activation: Activation name or callable applied to the output; `None` for
            none.
        use_bias: Whether to add a bias vector.
        kernel_initializer: Initializer for `kernel` (`None` means
            "glorot_uniform").
        bias_initializer: Initializer for `bias` (`None` means "zeros").
        kernel_regularizer: Optional regularizer of `kernel` (adds to `penalty`).
        bias_regularizer: Optional regularizer of `bias` (adds to `penalty`).

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, new_height, new_width, filters)`, each new size given by the 1-D
        rule of `Conv1D` along its axis.

    Params: `kernel` `(kernel_height, kernel_width, channels // groups, filters)`;
    `bias` `(filters,)` if `use_bias`. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.convolutional import Conv2D
        >>> layer = Conv2D(4, 3, strides=2, padding="same")
        >>> spec = jax.ShapeDtypeStruct((7, 7, 3), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> params["kernel"].shape
        (3, 3, 3, 4)
        >>> y, state = layer.apply(params, state, jnp.ones((2, 7, 7, 3)))
        >>> y.shape
        (2, 4, 4, 4)
    """

    _rank: ClassVar[int] = 2


@dataclass(eq=False)
class Conv3D(_Conv):
    """3-D convolution over depth, height and width: `activation(conv(x) + bias)`.

    As in Keras, `conv` slides the kernel without flipping it (a cross-correlation).

    Args:
        filters: Positive int, the number of output channels.
        kernel_size: Int or 3-tuple `(depth, height, width)`, the window size.
        strides: Int or 3-tuple, the step between windows along each axis.
            `strides > 1` cannot be combined with `dilation_rate > 1`.
        padding: "valid" (no padding) or "same" (pad so each output axis has
            `ceil(size / stride)` positions; an odd padding puts the extra element
            at the end, as in Keras). Case-insensitive.
        data_format: `None` or "channels_last"; "channels_first" is refused.
        dilation_rate: Int or 3-tuple, the spacing between kernel taps.
        groups: Positive int dividing both the input channels and `filters`.
        activation: Activation name or callable applied to the output; `None` for
            none.
        use_bias: Whether to add a bias vector.
        kernel_initializer: Initializer for `kernel` (`None` means
            "glorot_uniform").
        bias_initializer: Initializer for `bias` (`None` means "zeros").
        kernel_regularizer: Optional regularizer of `kernel` (adds to `penalty`).
        bias_regularizer: Optional regularizer of `bias` (adds to `penalty`).

    Input shape:
        `(batch, depth, height, width, channels)`.

    Output shape:
        `(batch, new_depth, new_height, new_width, filters)`, each new size given
        by the 1-D rule of `Conv1D` along its axis.

    Params: `kernel` `(kd, kh, kw, channels // groups, filters)`; `bias`
    `(filters,)` if `use_bias`. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.convolutional import Conv3D
        >>> layer = Conv3D(4, 3, padding="same")
        >>> spec = jax.ShapeDtypeStruct((4, 5, 6, 2), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> params["kernel"].shape
        (3, 3, 3, 2, 4)
        >>> y, state = layer.apply(params, state, jnp.ones((1, 4, 5, 6, 2)))
        >>> y.shape
        (1, 4, 5, 6, 4)
    """

    _rank: ClassVar[int] = 3


# Keras' aliases: the same classes under a second name (saved by the class name).
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution3D = Conv3D
