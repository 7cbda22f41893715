"""Transposed convolutions: `Conv1DTranspose`, `Conv2DTranspose`, `Conv3DTranspose`.

The gradient of a strided convolution with respect to its input, used to grow
feature maps (decoders, U-Nets). The kernel is Keras' `(*kernel_size, filters,
in_channels)`; the padding and output sizes follow Keras 3's rules exactly:

- "valid": `out = (in - 1) * stride + k` plus `output_padding` (default
  `max(k, stride) - k`, so windows never leave gaps), `k` the dilated kernel size.
- "same": `out = in * stride` by default; with `output_padding` given,
  `out = (in - 1) * stride + k % 2 + output_padding`.

`Convolution1DTranspose/2DTranspose/3DTranspose` are Keras' aliases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from funkeras import activations, initializers, regularizers
from funkeras._validation import (
    check_bool,
    check_choice,
    check_int,
    normalize_tuple,
    shape_str,
)
from funkeras.layers._common import check_single_spec, resolve
from funkeras.layers.base import Layer, check_last_axis, layer_label
from funkeras.layers.convolutional import check_spatial_rank, normalize_data_format
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "Convolution1DTranspose",
    "Convolution2DTranspose",
    "Convolution3DTranspose",
    "transpose_padding",
]

_SPATIAL_LETTERS = {1: "W", 2: "HW", 3: "DHW"}


def transpose_padding(
    padding: str, kernel: int, stride: int, dilation: int, output_padding: int | None
) -> tuple[int, int]:
    """The `(before, after)` padding `jax.lax.conv_transpose` needs for Keras' rule.

    `conv_transpose` spreads the input `stride` apart, pads it by these amounts
    and runs a "valid" convolution of the dilated kernel over it, so one axis
    of size `n` becomes `(n - 1) * stride + before + after - k + 2`.

    Example:
        >>> from funkeras.layers.convolutional_transpose import transpose_padding
        >>> transpose_padding("same", 3, 2, 1, None)  # out = 2 * n
        (2, 1)
        >>> transpose_padding("valid", 3, 2, 1, 1)  # out = (n - 1) * 2 + 3 + 1
        (2, 3)
    """
    k = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        return k - 1, k - 1 + extra
    if output_padding is None:
        total = stride + k - 2
    else:
        total = k + k % 2 - 2 + output_padding
    before = min(total // 2 + total % 2, k - 1)
    return before, total - before


def _output_size(
    n: int, pads: tuple[int, int], kernel: int, stride: int, dil: int
) -> int:
    k = (kernel - 1) * dil + 1
    return (n - 1) * stride + pads[0] + pads[1] - k + 2


class _TransposeBody(Layer):
    """Transposed convolution over `_rank` spatial axes (the shared methods).

    The fields live on the dataclasses below: Keras orders `output_padding` and
    `data_format` differently in `Conv3DTranspose`, and positional arguments
    follow Keras.
    """

    uses_key: ClassVar[bool] = False
    _rank: ClassVar[int] = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        owner, rank = type(self).__name__, self._rank
        self.filters = check_int(owner, "filters", self.filters)
        self.kernel_size = normalize_tuple(owner, "kernel_size", self.kernel_size, rank)
        self.strides = normalize_tuple(owner, "strides", self.strides, rank)
        self.dilation_rate = normalize_tuple(
            owner, "dilation_rate", self.dilation_rate, rank
        )
        self.padding = check_choice(owner, "padding", self.padding, ("valid", "same"))
        self.data_format = normalize_data_format(owner, self.data_format)
        if self.output_padding is not None:
            value = self.output_padding
            if isinstance(value, int | np.integer) and not isinstance(value, bool):
                value = (int(value),) * rank
            if not isinstance(value, tuple | list) or len(value) != rank:
                raise ValueError(
                    f"{owner}: `output_padding` must be None, an int or a sequence "
                    f"of {rank} ints, got {self.output_padding!r}."
                )
            value = tuple(
                check_int(owner, "output_padding", v, minimum=0) for v in value
            )
            for axis, (op, s) in enumerate(zip(value, self.strides, strict=True)):
                if op >= s:
                    raise ValueError(
                        f"{owner}: each `output_padding` must be less than the "
                        f"`strides` of its axis (as in Keras); axis {axis} has "
                        f"output_padding={op} and strides={s}. Use a value below "
                        f"{s} or a larger stride."
                    )
            self.output_padding = value
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{owner}: `strides` > 1 cannot be combined with `dilation_rate` > 1 "
                f"(as in Keras), got strides={self.strides} and "
                f"dilation_rate={self.dilation_rate}. Use one or the other."
            )
        check_bool(owner, "use_bias", self.use_bias)
        if self.kernel_initializer is None:
            self.kernel_initializer = "glorot_uniform"
        if self.bias_initializer is None:
            self.bias_initializer = "zeros"
        resolve(owner, "activation", self.activation, activations.get)
        resolve(owner, "kernel_initializer", self.kernel_initializer, initializers.get)
        resolve(owner, "bias_initializer", self.bias_initializer, initializers.get)
        resolve(owner, "kernel_regularizer", self.kernel_regularizer, regularizers.get)
        resolve(owner, "bias_regularizer", self.bias_regularizer, regularizers.get)

    def _pads(self) -> list[tuple[int, int]]:
        ops: Sequence[int | None] = self.output_padding or (None,) * self._rank
        return [
            transpose_padding(self.padding, k, s, d, op)
            for k, s, d, op in zip(
                self.kernel_size, self.strides, self.dilation_rate, ops, strict=True
            )
        ]

    def _check_input(self, shape: tuple[Any, ...]) -> int:
        check_spatial_rank(self, shape, self._rank)
        sizes = [
            _output_size(n, p, k, s, d)
            for n, p, k, s, d in zip(
                shape[:-1],
                self._pads(),
                self.kernel_size,
                self.strides,
                self.dilation_rate,
                strict=True,
            )
        ]
        if any(size < 1 for size in sizes):
            raise ValueError(
                f"{layer_label(self)}: input shape {shape_str((None, *shape))} "
                f"gives an empty output (spatial sizes {tuple(sizes)}) with "
                f"kernel_size={self.kernel_size}, strides={self.strides}, "
                f"padding={self.padding!r}, output_padding={self.output_padding}. "
                "Use a larger input, padding='valid' or a larger `output_padding`."
            )
        return shape[-1]

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create `kernel` `(*kernel_size, filters, channels)` and `bias`."""
        spec = check_single_spec(self, input_spec)
        channels = self._check_input(tuple(spec.shape))
        kernel_key, bias_key = jax.random.split(key)
        dtype = jnp.dtype(self.dtype)
        kernel_shape = (*self.kernel_size, self.filters, channels)
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
        """Return `(activation(conv_transpose(x, kernel) + bias), state)`."""
        del training, key, mask
        x = jnp.asarray(x)
        self._check_input(tuple(x.shape[1:]))
        kernel = params["kernel"]
        check_last_axis(self, x, expected=kernel.shape[-1])
        x = x.astype(self.dtype)
        letters = _SPATIAL_LETTERS[self._rank]
        y = jax.lax.conv_transpose(
            x,
            kernel.astype(self.dtype),
            self.strides,
            padding=self._pads(),
            rhs_dilation=self.dilation_rate,
            dimension_numbers=(f"N{letters}C", f"{letters}IO", f"N{letters}C"),
            transpose_kernel=True,
        )
        if self.use_bias:
            y = y + params["bias"].astype(self.dtype)
        return activations.get(self.activation)(y), state


@dataclass(eq=False)
class _ConvTranspose(_TransposeBody):
    """The fields of `Conv1DTranspose` and `Conv2DTranspose`, in Keras' order."""

    filters: int
    kernel_size: int | tuple[int, ...]
    strides: int | tuple[int, ...] = 1
    padding: str = "valid"
    output_padding: int | tuple[int, ...] | None = None
    data_format: str | None = None
    dilation_rate: int | tuple[int, ...] = 1
    activation: str | Callable[[Array], Array] | None = None
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None


_ARGS = """
    Args:
        filters: Positive int, the number of output channels.
        kernel_size: Int or {n}-tuple, the window size.
        strides: Int or {n}-tuple, how far apart neighbouring inputs land in the
            output (the upsampling factor). `strides > 1` cannot be combined with
            `dilation_rate > 1`.
        padding: "valid" or "same" (case-insensitive); see the output shape.
        output_padding: `None`, an int or a {n}-tuple: extra size added at the end
            of each axis; each must be less than the axis' stride. `None` lets the
            padding rule choose (Keras' default).
        data_format: `None` or "channels_last"; "channels_first" is refused.
        dilation_rate: Int or {n}-tuple, the spacing between kernel taps.
        activation: Activation name or callable applied to the output; `None` for
            none.
        use_bias: Whether to add a bias vector.
        kernel_initializer: Initializer for `kernel` (`None` means
            "glorot_uniform").
        bias_initializer: Initializer for `bias` (`None` means "zeros").
        kernel_regularizer: Optional regularizer of `kernel` (adds to `penalty`).
        bias_regularizer: Optional regularizer of `bias` (adds to `penalty`).

    Output shape:
        Per spatial axis of size `n`, `k` the dilated kernel size and `s` the
        stride: with "valid", `(n - 1) * s + max(k, s)` (or
        `(n - 1) * s + k + output_padding`); with "same", `n * s` (or
        `(n - 1) * s + k % 2 + output_padding`). Channels: `filters`.

    Params: `kernel` `(*kernel_size, filters, in_channels)` (Keras' layout: the
    output channels come before the input channels); `bias` `(filters,)` if
    `use_bias`. State: none.
"""


@dataclass(eq=False)
class Conv1DTranspose(_ConvTranspose):
    __doc__ = (
        """1-D transposed convolution (a learned upsampling of steps).

    Input shape:
        `(batch, steps, channels)`.
"""
        + _ARGS.format(n=1)
        + """
    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.convolutional_transpose import Conv1DTranspose
        >>> layer = Conv1DTranspose(4, 3, strides=2, padding="same")
        >>> spec = jax.ShapeDtypeStruct((5, 2), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> params["kernel"].shape
        (3, 4, 2)
        >>> layer.apply(params, state, jnp.ones((1, 5, 2)))[0].shape
        (1, 10, 4)
    """
    )

    _rank: ClassVar[int] = 1


@dataclass(eq=False)
class Conv2DTranspose(_ConvTranspose):
    __doc__ = (
        """2-D transposed convolution (a learned upsampling of height and width).

    Input shape:
        `(batch, height, width, channels)`.
"""
        + _ARGS.format(n=2)
        + """
    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.convolutional_transpose import Conv2DTranspose
        >>> layer = Conv2DTranspose(8, 2, strides=2)
        >>> spec = jax.ShapeDtypeStruct((4, 4, 3), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> params["kernel"].shape
        (2, 2, 8, 3)
        >>> layer.apply(params, state, jnp.ones((1, 4, 4, 3)))[0].shape
        (1, 8, 8, 8)
    """
    )

    _rank: ClassVar[int] = 2


@dataclass(eq=False)
class Conv3DTranspose(_TransposeBody):
    __doc__ = (
        """3-D transposed convolution (a learned upsampling of volumes).

    Input shape:
        `(batch, depth, height, width, channels)`.
"""
        + _ARGS.format(n=3)
        + """
    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.convolutional_transpose import Conv3DTranspose
        >>> layer = Conv3DTranspose(2, 3, strides=2, padding="same")
        >>> spec = jax.ShapeDtypeStruct((2, 3, 3, 1), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> layer.apply(params, state, jnp.ones((1, 2, 3, 3, 1)))[0].shape
        (1, 4, 6, 6, 2)
    """
    )

    filters: int
    kernel_size: int | tuple[int, ...]
    strides: int | tuple[int, ...] = 1
    padding: str = "valid"
    data_format: str | None = None
    output_padding: int | tuple[int, ...] | None = None
    dilation_rate: int | tuple[int, ...] = 1
    activation: str | Callable[[Array], Array] | None = None
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None

    _rank: ClassVar[int] = 3


# Keras' aliases: the same classes under a second name (saved by the class name).
Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
