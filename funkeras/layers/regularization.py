"""Regularization layers: `Dropout`, its Gaussian, alpha and spatial variants, and
`GaussianNoise`; all active only with `training=True`, drawing from the layer's key."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from funkeras._validation import check_float, check_int
from funkeras.layers._common import autocast, check_single_spec
from funkeras.layers.base import Layer, layer_label
from funkeras.layers.convolutional import check_spatial_rank, normalize_data_format
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "Dropout",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
]


@dataclass(eq=False)
class Dropout(Layer):
    """Inverted dropout: zeroes each unit with probability `rate` while training.

    `y = where(keep, x / (1 - rate), 0)` with `keep ~ Bernoulli(1 - rate)`, so the
    expected value of `y` is `x`; with `training=False` (or `rate=0`), `y = x`.
    The mask comes only from `key`: models derive one key per call node with
    `jax.random.fold_in`, so `fit` passes it for you and a layer used twice draws
    two masks.

    Args:
        rate: Fraction of the units to drop, in `[0, 1)`.
        noise_shape: Optional shape of the mask, batch axis included, broadcast
            against the input; `None` entries take the input's size. E.g.
            `(None, 1, None)` shares one mask over the time axis of
            `(batch, time, features)` inputs.

    Input shape:
        Any.

    Output shape:
        Same as the input.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.regularization import Dropout
        >>> layer = Dropout(0.5)
        >>> x = jnp.ones((2, 4))
        >>> y, _ = layer.apply({}, {}, x, training=True, key=jax.random.key(0))
        >>> y.tolist()  # kept units are scaled by 1 / (1 - rate)
        [[0.0, 0.0, 2.0, 2.0], [0.0, 2.0, 2.0, 0.0]]
        >>> layer.apply({}, {}, x)[0].tolist()
        [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
    """

    supports_masking: ClassVar[bool] = True

    rate: float
    noise_shape: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.rate = check_float(
            owner, "rate", self.rate, low=0.0, high=1.0, high_inclusive=False
        )
        if self.noise_shape is not None:
            if not isinstance(self.noise_shape, tuple | list):
                raise TypeError(
                    f"{owner}: `noise_shape` must be a tuple of ints (or None "
                    f"entries), got {self.noise_shape!r}."
                )
            self.noise_shape = tuple(
                None if d is None else check_int(owner, "noise_shape", d)
                for d in self.noise_shape
            )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        del key
        spec = check_single_spec(self, input_spec)
        if self.noise_shape is not None:
            self._mask_shape((None, *spec.shape))
        return {}, {}

    def _mask_shape(self, x_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """The mask shape for inputs of `x_shape` (unknown sizes: None or symbolic)."""
        if self.noise_shape is None:
            return x_shape
        shown = "(" + ", ".join(str(d) for d in x_shape) + ")"
        if len(self.noise_shape) != len(x_shape):
            raise ValueError(
                f"{layer_label(self)}: `noise_shape`={self.noise_shape} has "
                f"{len(self.noise_shape)} axes but the input has {len(x_shape)} "
                f"(x.shape={shown}). Give one entry per input axis, batch "
                "included; use None for 'same as the input'."
            )
        shape = []
        pairs = zip(self.noise_shape, x_shape, strict=True)
        for axis, (want, have) in enumerate(pairs):
            if want is None:
                shape.append(have)
                continue
            if want != 1 and isinstance(have, int) and want != have:
                raise ValueError(
                    f"{layer_label(self)}: `noise_shape`={self.noise_shape} does not "
                    f"broadcast to x.shape={shown} (axis {axis}: {want} vs "
                    f"{have}). Use 1 to share the mask over an axis, or None."
                )
            shape.append(want)
        return tuple(shape)

    def apply(
        self,
        params: Any,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        del params, mask
        x = autocast(x, self.dtype)
        if not training or self.rate == 0.0:
            return x, state
        if key is None:
            raise ValueError(
                f"{layer_label(self)}.apply(..., training=True) needs `key=`; models "
                "pass one per call node (fit does this for you)"
            )
        keep_prob = 1.0 - self.rate
        mask_shape = self._mask_shape(tuple(x.shape))
        keep = jax.random.bernoulli(key, p=keep_prob, shape=mask_shape)
        keep = jnp.broadcast_to(keep, x.shape)
        return jnp.where(keep, x / keep_prob, jnp.zeros_like(x)), state


def _need_key(layer: Layer, key: PRNGKey | None) -> PRNGKey:
    if key is None:
        raise ValueError(
            f"{layer_label(layer)}.apply(..., training=True) needs `key=`; models "
            "pass one per call node (fit does this for you)"
        )
    return key


@dataclass(eq=False)
class GaussianNoise(Layer):
    """Add zero-mean Gaussian noise while training: `x + stddev * normal()`.

    Identity at inference. The noise comes only from `key` (one per call node).

    Args:
        stddev: The noise's standard deviation, in `[0, 1]` (Keras' range).

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.regularization import GaussianNoise
        >>> layer = GaussianNoise(0.1)
        >>> x = jnp.zeros((1000, 10))
        >>> y, _ = layer.apply({}, {}, x, training=True, key=jax.random.key(0))
        >>> round(float(y.std()), 2), layer.apply({}, {}, x)[0] is not None
        (0.1, True)
    """

    uses_key: ClassVar[bool] = True
    supports_masking: ClassVar[bool] = True

    stddev: float

    def __post_init__(self) -> None:
        super().__post_init__()
        self.stddev = check_float(
            type(self).__name__, "stddev", self.stddev, low=0.0, high=1.0
        )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Validate `input_spec`; no params or state."""
        del key
        check_single_spec(self, input_spec)
        return {}, {}

    def apply(
        self,
        params: Any,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        """Return `(x + noise if training else x, state)`."""
        del params, mask
        x = autocast(x, self.dtype)
        if not training or self.stddev == 0.0:
            return x, state
        noise = jax.random.normal(_need_key(self, key), x.shape, x.dtype)
        return x + self.stddev * noise, state


@dataclass(eq=False)
class GaussianDropout(Layer):
    """Multiply by Gaussian noise of mean 1 while training (Keras' `GaussianDropout`).

    The factor is `normal(mean=1, stddev=sqrt(rate / (1 - rate)))`; identity at
    inference.

    Args:
        rate: The equivalent drop probability, in `[0, 1)`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.regularization import GaussianDropout
        >>> layer = GaussianDropout(0.5)
        >>> y, _ = layer.apply(
        ...     {}, {}, jnp.ones((2000, 10)), training=True, key=jax.random.key(0))
        >>> round(float(y.mean()), 1), round(float(y.std()), 1)
        (1.0, 1.0)
    """

    uses_key: ClassVar[bool] = True
    supports_masking: ClassVar[bool] = True

    rate: float

    def __post_init__(self) -> None:
        super().__post_init__()
        self.rate = check_float(
            type(self).__name__,
            "rate",
            self.rate,
            low=0.0,
            high=1.0,
            high_inclusive=False,
        )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Validate `input_spec`; no params or state."""
        del key
        check_single_spec(self, input_spec)
        return {}, {}

    def apply(
        self,
        params: Any,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        """Return `(x * normal(1, sqrt(rate / (1 - rate))), state)` while training."""
        del params, mask
        x = autocast(x, self.dtype)
        if not training or self.rate == 0.0:
            return x, state
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        noise = jax.random.normal(_need_key(self, key), x.shape, x.dtype)
        return x * (1.0 + stddev * noise), state


@dataclass(eq=False)
class AlphaDropout(Dropout):
    """Dropout that keeps SELU's self-normalization (Keras' `AlphaDropout`).

    While training, dropped units are set to `alpha' = -1.7581` (SELU's negative
    saturation), then everything is mapped by `a * x + b` with
    `a = ((1 - rate) * (1 + rate * alpha'**2)) ** -0.5` and `b = -a * alpha' * rate`,
    so mean and variance are kept. Identity at inference.

    Args:
        rate: Fraction of the units to drop, in `[0, 1)`.
        noise_shape: As in `Dropout`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.regularization import AlphaDropout
        >>> layer = AlphaDropout(0.2)
        >>> x = jax.random.normal(jax.random.key(1), (4000, 10))
        >>> y, _ = layer.apply({}, {}, x, training=True, key=jax.random.key(0))
        >>> abs(float(y.mean())) < 0.05, round(float(y.std()), 1)
        (True, 1.0)
    """

    def apply(
        self,
        params: Any,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        """Return `(a * where(kept, x, alpha') + b if training else x, state)`."""
        del params, mask
        x = autocast(x, self.dtype)
        if not training or self.rate == 0.0:
            return x, state
        alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
        kept = jax.random.bernoulli(
            _need_key(self, key), 1.0 - self.rate, self._mask_shape(tuple(x.shape))
        )
        kept = jnp.broadcast_to(kept, x.shape)
        a = ((1 - self.rate) * (1 + self.rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * self.rate
        return (a * jnp.where(kept, x, alpha_p) + b).astype(x.dtype), state


@dataclass(eq=False)
class _SpatialDropout(Layer):
    """Dropout of whole channels: one draw per example and channel."""

    uses_key: ClassVar[bool] = True
    _rank: ClassVar[int] = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.rate = check_float(
            owner, "rate", self.rate, low=0.0, high=1.0, high_inclusive=False
        )
        if hasattr(self, "data_format"):
            self.data_format = normalize_data_format(owner, self.data_format)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Validate `input_spec` (rank and channels-last); no params or state."""
        del key
        spec = check_single_spec(self, input_spec)
        check_spatial_rank(self, tuple(spec.shape), self._rank)
        return {}, {}

    def apply(
        self,
        params: Any,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        """Return `(x with whole channels dropped if training, state)`."""
        del params, mask
        x = autocast(x, self.dtype)
        check_spatial_rank(self, tuple(x.shape[1:]), self._rank)
        if not training or self.rate == 0.0:
            return x, state
        keep_prob = 1.0 - self.rate
        shape = (x.shape[0], *(1,) * self._rank, x.shape[-1])
        keep = jax.random.bernoulli(_need_key(self, key), keep_prob, shape)
        keep = jnp.broadcast_to(keep, x.shape)
        return jnp.where(keep, x / keep_prob, jnp.zeros_like(x)), state


_SPATIAL_DOC = """Dropout of whole feature maps: each example drops each channel
    entirely with probability `rate` (kept ones scaled by `1 / (1 - rate)`), as
    Keras' `SpatialDropout{n}D`. Identity at inference.

    Args:
        rate: Fraction of the channels to drop, in `[0, 1)`.{fmt}

    Input shape:
        `({shape})`.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.regularization import SpatialDropout{n}D
        >>> x = jnp.ones((1, {ones}3))
        >>> y, _ = SpatialDropout{n}D(0.5).apply(
        ...     {{}}, {{}}, x, training=True, key=jax.random.key(0))
        >>> y.reshape(-1, 3).min(0).tolist() == y.reshape(-1, 3).max(0).tolist()
        True
    """
_FMT_ARG = """
        data_format: `None` or "channels_last"; "channels_first" is refused."""


@dataclass(eq=False)
class SpatialDropout1D(_SpatialDropout):
    __doc__ = _SPATIAL_DOC.format(
        n=1, fmt="", shape="batch, steps, channels", ones="4, "
    )

    rate: float
    _rank: ClassVar[int] = 1


@dataclass(eq=False)
class SpatialDropout2D(_SpatialDropout):
    __doc__ = _SPATIAL_DOC.format(
        n=2, fmt=_FMT_ARG, shape="batch, height, width, channels", ones="2, 2, "
    )

    rate: float
    data_format: str | None = None
    _rank: ClassVar[int] = 2


@dataclass(eq=False)
class SpatialDropout3D(_SpatialDropout):
    __doc__ = _SPATIAL_DOC.format(
        n=3,
        fmt=_FMT_ARG,
        shape="batch, depth, height, width, channels",
        ones="2, 2, 2, ",
    )

    rate: float
    data_format: str | None = None
    _rank: ClassVar[int] = 3
