"""Regularization layers: `Dropout`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from funkeras._validation import check_float, check_int
from funkeras.layers._common import autocast, check_single_spec
from funkeras.layers.base import Layer, layer_label
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = ["Dropout"]


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
