"""Activation layers with their own arguments: `ReLU`, `LeakyReLU`, `PReLU`, `ELU`,
`Softmax`, as Keras 3 has them (the generic `Activation` layer is in `core`).

Each computes in the layer dtype (floating inputs are cast, as Keras autocasts)
and holds no weights except `PReLU`'s learned `alpha`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from funkeras import activations, initializers, regularizers
from funkeras._validation import check_float, check_int, shape_str
from funkeras.layers._common import autocast, check_single_spec, resolve
from funkeras.layers.base import Layer, layer_label
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = ["ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"]


@dataclass(eq=False)
class _Elementwise(Layer):
    """A weightless element-wise activation (shape in = shape out)."""

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Validate `input_spec`; no params or state."""
        del key
        check_single_spec(self, input_spec)
        return {}, {}


@dataclass(eq=False)
class ReLU(_Elementwise):
    """Rectified linear unit layer, Keras' `ReLU`.

    `max_value` where `x >= max_value`, `x` where `threshold < x < max_value`, and
    `negative_slope * (x - threshold)` where `x <= threshold` (see
    `funkeras.activations.relu`).

    Args:
        max_value: Non-negative float cap, or `None` for none.
        negative_slope: Non-negative float, the slope below `threshold`.
        threshold: Non-negative float, the threshold of the rectifier.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.activation import ReLU
        >>> x = jnp.array([-2.0, 0.5, 3.0, 8.0])
        >>> ReLU(max_value=6.0).apply({}, {}, x)[0].tolist()
        [0.0, 0.5, 3.0, 6.0]
        >>> ReLU(negative_slope=0.5, threshold=1.0).apply({}, {}, x)[0].tolist()
        [-1.5, -0.25, 3.0, 8.0]
    """

    max_value: float | None = None
    negative_slope: float = 0.0
    threshold: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if self.max_value is not None:
            self.max_value = check_float(owner, "max_value", self.max_value, low=0.0)
        self.negative_slope = check_float(
            owner, "negative_slope", self.negative_slope, low=0.0
        )
        self.threshold = check_float(owner, "threshold", self.threshold, low=0.0)

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
        """Return `(relu(x), state)`."""
        del params, training, key, mask
        y = activations.relu(
            autocast(x, self.dtype),
            negative_slope=self.negative_slope,
            max_value=self.max_value,
            threshold=self.threshold,
        )
        return y, state


@dataclass(eq=False)
class LeakyReLU(_Elementwise):
    """Leaky ReLU layer: `x` for `x >= 0`, `negative_slope * x` below.

    Args:
        negative_slope: Non-negative float; Keras' layer default is 0.3.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.activation import LeakyReLU
        >>> LeakyReLU().apply({}, {}, jnp.array([-10.0, 2.0]))[0].tolist()
        [-3.0, 2.0]
    """

    negative_slope: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        self.negative_slope = check_float(
            type(self).__name__, "negative_slope", self.negative_slope, low=0.0
        )

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
        """Return `(leaky_relu(x), state)`."""
        del params, training, key, mask
        y = jax.nn.leaky_relu(autocast(x, self.dtype), self.negative_slope)
        return y, state


@dataclass(eq=False)
class ELU(_Elementwise):
    """Exponential linear unit layer: `x` for `x > 0`, `alpha * (exp(x) - 1)` below.

    Args:
        alpha: Float, the scale of the negative part.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.activation import ELU
        >>> ELU(alpha=2.0).apply({}, {}, jnp.array([0.0, 1.0]))[0].tolist()
        [0.0, 1.0]
    """

    alpha: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.alpha = check_float(type(self).__name__, "alpha", self.alpha)

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
        """Return `(elu(x), state)`."""
        del params, training, key, mask
        return activations.elu(autocast(x, self.dtype), alpha=self.alpha), state


@dataclass(eq=False)
class Softmax(_Elementwise):
    """Softmax layer: `exp(x) / sum(exp(x))` along `axis` (an int or several).

    Args:
        axis: Int or sequence of ints (not the batch axis), the axes the outputs
            sum to 1 over.

    Differs from Keras: Keras' `Softmax` also takes a `mask` tensor at call time
    (masked positions get probability 0); funkeras' `Softmax` takes none yet.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.activation import Softmax
        >>> y, _ = Softmax().apply({}, {}, jnp.log(jnp.array([[1.0, 3.0]])))
        >>> [round(v, 4) for v in y[0].tolist()]
        [0.25, 0.75]
    """

    axis: int | tuple[int, ...] = -1

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if isinstance(self.axis, tuple | list):
            if not self.axis:
                raise ValueError(f"{owner}: `axis` must name at least one axis.")
            self.axis = tuple(
                check_int(owner, "axis", a, minimum=None) for a in self.axis
            )
        else:
            self.axis = check_int(owner, "axis", self.axis, minimum=None)

    def _axes(self, ndim: int) -> tuple[int, ...]:
        axes = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        resolved = []
        for a in axes:
            b = a + ndim if a < 0 else a
            if not 1 <= b < ndim:
                raise ValueError(
                    f"{layer_label(self)}: axis={self.axis} is out of range for "
                    f"inputs of rank {ndim} (batch included); use an axis in "
                    f"1..{ndim - 1} or -{ndim - 1}..-1 (the batch axis 0 cannot "
                    "be normalised over)."
                )
            resolved.append(b)
        return tuple(resolved)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Validate `axis` against `input_spec`; no params or state."""
        del key
        self._axes(len(check_single_spec(self, input_spec).shape) + 1)
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
        """Return `(softmax(x, axis), state)`."""
        del params, training, key, mask
        x = autocast(jnp.asarray(x), self.dtype)
        return activations.softmax(x, axis=self._axes(x.ndim)), state


@dataclass(eq=False)
class PReLU(Layer):
    """Parametric ReLU: `relu(x) - alpha * relu(-x)`, with `alpha` learned.

    Args:
        alpha_initializer: Initializer for `alpha` (Keras' default "Zeros").
        alpha_regularizer: Optional regularizer of `alpha` (adds to `penalty`).
        shared_axes: `None`, an int or a sequence of ints: the input axes
            (counting the batch axis as 0, as Keras counts) along which `alpha`
            is shared (its size there is 1), e.g. `[1, 2]` for one slope per
            channel of an image.

    Params: `alpha`, shaped like one example (no batch axis) with the shared axes
    set to 1. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.activation import PReLU
        >>> layer = PReLU(shared_axes=[1, 2])
        >>> spec = jax.ShapeDtypeStruct((4, 4, 3), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> params["alpha"].shape
        (1, 1, 3)
    """

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True

    alpha_initializer: Any = "Zeros"
    alpha_regularizer: Any = None
    shared_axes: int | tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if self.alpha_initializer is None:
            self.alpha_initializer = "Zeros"
        resolve(owner, "alpha_initializer", self.alpha_initializer, initializers.get)
        resolve(owner, "alpha_regularizer", self.alpha_regularizer, regularizers.get)
        if self.shared_axes is not None:
            axes = self.shared_axes
            if not isinstance(axes, tuple | list):
                axes = [axes]
            self.shared_axes = tuple(check_int(owner, "shared_axes", a) for a in axes)

    def _alpha_shape(self, shape: tuple[Any, ...]) -> tuple[int, ...]:
        alpha = list(shape)
        for axis in self.shared_axes or ():
            if axis > len(shape):
                raise ValueError(
                    f"{layer_label(self)}: shared_axes={self.shared_axes} names axis "
                    f"{axis}, but inputs shaped {shape_str((None, *shape))} have "
                    f"axes 1..{len(shape)} (0 is the batch axis)."
                )
            alpha[axis - 1] = 1
        if any(not isinstance(n, int) for n in alpha):
            raise ValueError(
                f"{layer_label(self)}: every non-shared axis needs a known size "
                f"for `alpha`, got input shape {shape_str((None, *shape))}; share "
                "the unknown axes with `shared_axes`."
            )
        return tuple(alpha)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create `alpha`."""
        spec = check_single_spec(self, input_spec)
        shape = self._alpha_shape(tuple(spec.shape))
        alpha = initializers.get(self.alpha_initializer)(
            key, shape, jnp.dtype(self.dtype)
        )
        return {"alpha": alpha}, {}

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
        """Return `(relu(x) - alpha * relu(-x), state)`."""
        del training, key, mask
        x = autocast(jnp.asarray(x), self.dtype)
        alpha = params["alpha"]
        expected = self._alpha_shape(tuple(x.shape[1:]))
        if tuple(alpha.shape) != expected:
            raise ValueError(
                f"{layer_label(self)}: `alpha` has shape {shape_str(alpha.shape)} "
                f"but inputs shaped {shape_str(x.shape)} need {shape_str(expected)} "
                "(from `init`). Did the previous layer's output shape change?"
            )
        alpha = alpha.astype(x.dtype)
        return jax.nn.relu(x) - alpha * jax.nn.relu(-x), state
