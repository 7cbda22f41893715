"""Depthwise and separable convolutions, with Keras 3's weights and numerics.

- `DepthwiseConv1D/2D`: each input channel convolved with its own
  `depth_multiplier` filters; `kernel` `(*kernel_size, channels, depth_multiplier)`,
  output channels `channels * depth_multiplier` ordered channel-major (Keras').
- `SeparableConv1D/2D`: a depthwise convolution followed by a 1x1 convolution;
  `depthwise_kernel` `(*kernel_size, channels, depth_multiplier)`,
  `pointwise_kernel` `(*(1,) * rank, channels * depth_multiplier, filters)`.

"same" padding is split as the other convolutions split it (the odd element at
the end), which is XLA's and Keras' rule.
"""

from __future__ import annotations

from collections.abc import Callable
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
)
from funkeras.layers._common import check_single_spec, resolve
from funkeras.layers.base import Layer, check_last_axis
from funkeras.layers.convolutional import (
    check_spatial_rank,
    check_valid_extent,
    normalize_data_format,
    padding_pairs,
)
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    "SeparableConvolution1D",
    "SeparableConvolution2D",
]

_SPATIAL_LETTERS = {1: "W", 2: "HW", 3: "DHW"}


def _depthwise(
    layer: Any, x: Array, kernel: Array, pads: list[tuple[int, int]]
) -> Array:
    """Per-channel convolution: `kernel` `(*window, channels, multiplier)`."""
    channels = x.shape[-1]
    letters = _SPATIAL_LETTERS[layer._rank]
    # Keras' reshape: (..., channels, m) -> (..., 1, channels * m), one group each.
    kernel = kernel.reshape(*kernel.shape[:-2], 1, channels * kernel.shape[-1])
    return jax.lax.conv_general_dilated(
        x,
        kernel,
        window_strides=layer.strides,
        padding=pads,
        rhs_dilation=layer.dilation_rate,
        dimension_numbers=(f"N{letters}C", f"{letters}IO", f"N{letters}C"),
        feature_group_count=channels,
    )


class _DepthwiseBody(Layer):
    """Shared validation and the depthwise step (fields live on the subclasses)."""

    uses_key: ClassVar[bool] = False
    _rank: ClassVar[int] = 0
    _initializers: ClassVar[tuple[str, ...]] = ()
    _regularizers: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        owner, rank = type(self).__name__, self._rank
        self.kernel_size = normalize_tuple(owner, "kernel_size", self.kernel_size, rank)
        self.strides = normalize_tuple(owner, "strides", self.strides, rank)
        self.dilation_rate = normalize_tuple(
            owner, "dilation_rate", self.dilation_rate, rank
        )
        # Keras accepts no "causal" here, not even in 1-D.
        self.padding = check_choice(owner, "padding", self.padding, ("valid", "same"))
        self.data_format = normalize_data_format(owner, self.data_format)
        self.depth_multiplier = check_int(
            owner, "depth_multiplier", self.depth_multiplier
        )
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{owner}: `strides` > 1 cannot be combined with `dilation_rate` > 1 "
                f"(as in Keras), got strides={self.strides} and "
                f"dilation_rate={self.dilation_rate}. Use one or the other."
            )
        check_bool(owner, "use_bias", self.use_bias)
        for arg in self._initializers:
            if getattr(self, arg) is None:  # Keras reads None as the default
                default = "zeros" if arg == "bias_initializer" else "glorot_uniform"
                setattr(self, arg, default)
            resolve(owner, arg, getattr(self, arg), initializers.get)
        for arg in self._regularizers:
            resolve(owner, arg, getattr(self, arg), regularizers.get)
        resolve(owner, "activation", self.activation, activations.get)

    def has_penalty(self) -> bool:
        """Whether a regularizer is set (known before tracing)."""
        return any(getattr(self, arg) is not None for arg in self._regularizers)

    def _check_input(self, shape: tuple[Any, ...]) -> int:
        check_spatial_rank(self, shape, self._rank)
        check_valid_extent(self, shape)
        return shape[-1]

    def _pads(self, x: Array) -> list[tuple[int, int]]:
        return padding_pairs(
            self.padding,
            x.shape[1:-1],
            self.kernel_size,
            self.strides,
            self.dilation_rate,
        )


@dataclass(eq=False)
class _DepthwiseConv(_DepthwiseBody):
    """The fields of `DepthwiseConv1D/2D`, in Keras' order."""

    kernel_size: int | tuple[int, ...]
    strides: int | tuple[int, ...] = 1
    padding: str = "valid"
    depth_multiplier: int = 1
    data_format: str | None = None
    dilation_rate: int | tuple[int, ...] = 1
    activation: str | Callable[[Array], Array] | None = None
    use_bias: bool = True
    depthwise_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    depthwise_regularizer: Any = None
    bias_regularizer: Any = None

    _initializers: ClassVar[tuple[str, ...]] = (
        "depthwise_initializer",
        "bias_initializer",
    )
    _regularizers: ClassVar[tuple[str, ...]] = (
        "depthwise_regularizer",
        "bias_regularizer",
    )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create `kernel` `(*kernel_size, channels, depth_multiplier)` and `bias`."""
        channels = self._check_input(tuple(check_single_spec(self, input_spec).shape))
        kernel_key, bias_key = jax.random.split(key)
        dtype = jnp.dtype(self.dtype)
        shape = (*self.kernel_size, channels, self.depth_multiplier)
        params = {
            "kernel": initializers.get(self.depthwise_initializer)(
                kernel_key, shape, dtype
            )
        }
        if self.use_bias:
            params["bias"] = initializers.get(self.bias_initializer)(
                bias_key, (channels * self.depth_multiplier,), dtype
            )
        return params, {}

    def penalty(self, params: Params) -> Array:
        """The regularizers' penalty of `kernel` and `bias`."""
        total = jnp.zeros((), jnp.float32)
        pairs = (("depthwise_regularizer", "kernel"), ("bias_regularizer", "bias"))
        for arg, name in pairs:
            reg = getattr(self, arg)
            if reg is not None and name in params:
                value = regularizers.get(reg)(params[name])
                total = total + value.astype(jnp.float32)
        return total

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
        """Return `(activation(depthwise_conv(x) + bias), state)`."""
        del training, key, mask
        x = jnp.asarray(x)
        self._check_input(tuple(x.shape[1:]))
        kernel = params["kernel"]
        check_last_axis(self, x, expected=kernel.shape[-2])
        x = x.astype(self.dtype)
        y = _depthwise(self, x, kernel.astype(self.dtype), self._pads(x))
        if self.use_bias:
            y = y + params["bias"].astype(self.dtype)
        return activations.get(self.activation)(y), state


@dataclass(eq=False)
class _SeparableConv(_DepthwiseBody):
    """The fields of `SeparableConv1D/2D`, in Keras' order."""

    filters: int
    kernel_size: int | tuple[int, ...]
    strides: int | tuple[int, ...] = 1
    padding: str = "valid"
    data_format: str | None = None
    dilation_rate: int | tuple[int, ...] = 1
    depth_multiplier: int = 1
    activation: str | Callable[[Array], Array] | None = None
    use_bias: bool = True
    depthwise_initializer: Any = "glorot_uniform"
    pointwise_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    depthwise_regularizer: Any = None
    pointwise_regularizer: Any = None
    bias_regularizer: Any = None

    _initializers: ClassVar[tuple[str, ...]] = (
        "depthwise_initializer",
        "pointwise_initializer",
        "bias_initializer",
    )
    _regularizers: ClassVar[tuple[str, ...]] = (
        "depthwise_regularizer",
        "pointwise_regularizer",
        "bias_regularizer",
    )

    def __post_init__(self) -> None:
        self.filters = check_int(type(self).__name__, "filters", self.filters)
        super().__post_init__()

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create `depthwise_kernel`, `pointwise_kernel` and `bias`."""
        channels = self._check_input(tuple(check_single_spec(self, input_spec).shape))
        dkey, pkey, bkey = jax.random.split(key, 3)
        dtype = jnp.dtype(self.dtype)
        depthwise_shape = (*self.kernel_size, channels, self.depth_multiplier)
        pointwise_shape = (
            *(1,) * self._rank,
            channels * self.depth_multiplier,
            self.filters,
        )
        params = {
            "depthwise_kernel": initializers.get(self.depthwise_initializer)(
                dkey, depthwise_shape, dtype
            ),
            "pointwise_kernel": initializers.get(self.pointwise_initializer)(
                pkey, pointwise_shape, dtype
            ),
        }
        if self.use_bias:
            params["bias"] = initializers.get(self.bias_initializer)(
                bkey, (self.filters,), dtype
            )
        return params, {}

    def penalty(self, params: Params) -> Array:
        """The regularizers' penalty of the two kernels and `bias`."""
        total = jnp.zeros((), jnp.float32)
        for arg, name in (
            ("depthwise_regularizer", "depthwise_kernel"),
            ("pointwise_regularizer", "pointwise_kernel"),
            ("bias_regularizer", "bias"),
        ):
            reg = getattr(self, arg)
            if reg is not None and name in params:
                value = regularizers.get(reg)(params[name])
                total = total + value.astype(jnp.float32)
        return total

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
        """Return `(activation(pointwise(depthwise(x)) + bias), state)`."""
        del training, key, mask
        x = jnp.asarray(x)
        self._check_input(tuple(x.shape[1:]))
        depthwise = params["depthwise_kernel"]
        check_last_axis(self, x, expected=depthwise.shape[-2])
        x = x.astype(self.dtype)
        h = _depthwise(self, x, depthwise.astype(self.dtype), self._pads(x))
        pointwise = params["pointwise_kernel"].astype(self.dtype)
        letters = _SPATIAL_LETTERS[self._rank]
        y = jax.lax.conv_general_dilated(
            h,
            pointwise,
            window_strides=(1,) * self._rank,
            padding="VALID",
            dimension_numbers=(f"N{letters}C", f"{letters}IO", f"N{letters}C"),
        )
        if self.use_bias:
            y = y + params["bias"].astype(self.dtype)
        return activations.get(self.activation)(y), state


_DEPTHWISE_ARGS = """
    Args:
        kernel_size: Int or {n}-tuple, the window size.
        strides: Int or {n}-tuple, the step between windows. `strides > 1` cannot
            be combined with `dilation_rate > 1`.
        padding: "valid" or "same" (case-insensitive), as in `Conv{n}D`.
        depth_multiplier: Positive int, the filters per input channel.
        data_format: `None` or "channels_last"; "channels_first" is refused.
        dilation_rate: Int or {n}-tuple, the spacing between kernel taps.
        activation: Activation name or callable applied to the output; `None` for
            none.
        use_bias: Whether to add a bias vector.
        depthwise_initializer: Initializer for `kernel` (`None`: "glorot_uniform").
        bias_initializer: Initializer for `bias` (`None`: "zeros").
        depthwise_regularizer: Optional regularizer of `kernel` (adds to `penalty`).
        bias_regularizer: Optional regularizer of `bias` (adds to `penalty`).

    Output shape:
        The spatial sizes of `Conv{n}D` with the same settings; channels
        `channels * depth_multiplier`, output `c * depth_multiplier + m` being
        input channel `c`'s filter `m` (Keras' order).

    Params: `kernel` `(*kernel_size, channels, depth_multiplier)`; `bias`
    `(channels * depth_multiplier,)` if `use_bias`. State: none.
"""

_SEPARABLE_ARGS = """
    Args:
        filters: Positive int, the number of output channels.
        kernel_size: Int or {n}-tuple, the depthwise window size.
        strides: Int or {n}-tuple, the step between depthwise windows.
            `strides > 1` cannot be combined with `dilation_rate > 1`.
        padding: "valid" or "same" (case-insensitive), as in `Conv{n}D`.
        data_format: `None` or "channels_last"; "channels_first" is refused.
        dilation_rate: Int or {n}-tuple, the spacing between depthwise taps.
        depth_multiplier: Positive int, the depthwise filters per input channel.
        activation: Activation name or callable applied to the output; `None` for
            none.
        use_bias: Whether to add a bias vector.
        depthwise_initializer: Initializer for `depthwise_kernel`.
        pointwise_initializer: Initializer for `pointwise_kernel`.
        bias_initializer: Initializer for `bias`.
        depthwise_regularizer: Optional regularizer of `depthwise_kernel`.
        pointwise_regularizer: Optional regularizer of `pointwise_kernel`.
        bias_regularizer: Optional regularizer of `bias`.

    Output shape:
        The spatial sizes of `Conv{n}D` with the same settings; channels `filters`.

    Params: `depthwise_kernel` `(*kernel_size, channels, depth_multiplier)`,
    `pointwise_kernel` `({ones}channels * depth_multiplier, filters)`, `bias`
    `(filters,)` if `use_bias`. State: none.
"""


@dataclass(eq=False)
class DepthwiseConv1D(_DepthwiseConv):
    __doc__ = (
        """1-D depthwise convolution: each channel convolved with its own filters.

    Input shape:
        `(batch, steps, channels)`.
"""
        + _DEPTHWISE_ARGS.format(n=1)
        + """
    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.depthwise import DepthwiseConv1D
        >>> layer = DepthwiseConv1D(3, depth_multiplier=2, padding="same")
        >>> spec = jax.ShapeDtypeStruct((6, 4), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> params["kernel"].shape
        (3, 4, 2)
        >>> layer.apply(params, state, jnp.ones((1, 6, 4)))[0].shape
        (1, 6, 8)
    """
    )

    _rank: ClassVar[int] = 1


@dataclass(eq=False)
class DepthwiseConv2D(_DepthwiseConv):
    __doc__ = (
        """2-D depthwise convolution: each channel convolved with its own filters.

    Input shape:
        `(batch, height, width, channels)`.
"""
        + _DEPTHWISE_ARGS.format(n=2)
        + """
    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.depthwise import DepthwiseConv2D
        >>> layer = DepthwiseConv2D(3, strides=2, padding="same")
        >>> spec = jax.ShapeDtypeStruct((8, 8, 3), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> params["kernel"].shape
        (3, 3, 3, 1)
        >>> layer.apply(params, state, jnp.ones((1, 8, 8, 3)))[0].shape
        (1, 4, 4, 3)
    """
    )

    _rank: ClassVar[int] = 2


@dataclass(eq=False)
class SeparableConv1D(_SeparableConv):
    __doc__ = (
        """1-D separable convolution: a depthwise convolution, then a 1x1 one.

    Input shape:
        `(batch, steps, channels)`.
"""
        + _SEPARABLE_ARGS.format(n=1, ones="1, ")
        + """
    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.depthwise import SeparableConv1D
        >>> layer = SeparableConv1D(8, 3)
        >>> spec = jax.ShapeDtypeStruct((6, 4), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> params["depthwise_kernel"].shape, params["pointwise_kernel"].shape
        ((3, 4, 1), (1, 4, 8))
        >>> layer.apply(params, state, jnp.ones((1, 6, 4)))[0].shape
        (1, 4, 8)
    """
    )

    _rank: ClassVar[int] = 1


@dataclass(eq=False)
class SeparableConv2D(_SeparableConv):
    __doc__ = (
        """2-D separable convolution: a depthwise convolution, then a 1x1 one.

    Input shape:
        `(batch, height, width, channels)`.
"""
        + _SEPARABLE_ARGS.format(n=2, ones="1, 1, ")
        + """
    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.depthwise import SeparableConv2D
        >>> layer = SeparableConv2D(16, 3, padding="same", depth_multiplier=2)
        >>> spec = jax.ShapeDtypeStruct((8, 8, 3), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> params["pointwise_kernel"].shape
        (1, 1, 6, 16)
        >>> layer.apply(params, state, jnp.ones((1, 8, 8, 3)))[0].shape
        (1, 8, 8, 16)
    """
    )

    _rank: ClassVar[int] = 2


# Keras' aliases: the same classes under a second name (saved by the class name).
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D
