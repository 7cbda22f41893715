"""Activation functions with Keras 3 names, defaults and numerics.

Every activation is a plain function of an array, usable eagerly or under
`jax.jit`. Layers take an activation as a name (`"relu"`), `None` (linear) or any
callable, and resolve it with `get`; `serialize` turns a built-in back into its
name so that layer configs stay JSON.

Defaults follow `keras.activations`, which differ from `jax.nn` in places:
`leaky_relu` uses `negative_slope=0.2` (jax.nn: 0.01) and `gelu` is the exact erf
form by default (jax.nn: the tanh approximation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from funkeras._catalogue import Catalogue, module_dir
from funkeras._validation import check_float
from funkeras.typing import Array, ArrayLike

__all__ = [
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "sigmoid",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "tanh",
    "softmax",
    "log_softmax",
    "softplus",
    "softsign",
    "silu",
    "swish",
    "mish",
    "exponential",
    "linear",
    "celu",
    "glu",
    "hard_shrink",
    "hard_tanh",
    "log_sigmoid",
    "soft_shrink",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "tanh_shrink",
    "threshold",
    "get",
    "serialize",
]


def _as_array(x: ArrayLike) -> Array:
    """`x` as a JAX array; an array (or tracer) passes through with no dispatch."""
    return x if isinstance(x, jax.Array) else jnp.asarray(x)


def _static_number(
    owner: str, arg: str, value: Any, *, minimum: float | None = None
) -> float:
    """Check a hyperparameter that selects the formula in Python (so must be static)."""
    if isinstance(value, jax.Array):
        raise TypeError(
            f"{owner}: `{arg}` must be a Python number (it is fixed when the function "
            f"is traced), got a jax.Array of shape {value.shape}. Pass a float."
        )
    return check_float(owner, arg, value, low=minimum)


def relu(
    x: ArrayLike,
    negative_slope: float = 0.0,
    max_value: float | None = None,
    threshold: float = 0.0,
) -> Array:
    """Rectified linear unit: `max(x, 0)`, optionally leaky, capped and shifted.

    With the defaults this is `max(x, 0)`. In general (Keras' formula):
    `max_value` where `x >= max_value`, `x` where `threshold < x < max_value`, and
    `negative_slope * (x - threshold)` where `x <= threshold`. As in Keras, with
    `max_value` set the kept part is first clipped to `[0, max_value]`, so a
    negative `threshold` then maps `threshold < x < 0` to 0.

    Args:
        x: Input array.
        negative_slope: Slope for values below `threshold`.
        max_value: The largest value returned, or `None` for no cap.
        threshold: Values at or below it are damped (or set to 0).

    Returns:
        An array of the same shape and dtype as `x`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import relu
        >>> x = jnp.array([-10.0, -5.0, 0.0, 5.0, 10.0])
        >>> relu(x).tolist()
        [0.0, 0.0, 0.0, 5.0, 10.0]
        >>> relu(x, negative_slope=0.5).tolist()
        [-5.0, -2.5, 0.0, 5.0, 10.0]
        >>> relu(x, max_value=5.0).tolist()
        [0.0, 0.0, 0.0, 5.0, 5.0]
    """
    negative_slope = _static_number(
        "relu", "negative_slope", negative_slope, minimum=0.0
    )
    threshold = _static_number("relu", "threshold", threshold)
    if max_value is not None:
        max_value = _static_number("relu", "max_value", max_value, minimum=0.0)
    x = _as_array(x)
    # The same sequence of operations as Keras' ReLU, so edge cases (a negative
    # threshold combined with max_value, values exactly at the threshold) match.
    if negative_slope != 0.0:
        if max_value is None and threshold == 0.0:
            return jax.nn.leaky_relu(x, negative_slope=negative_slope)
        negative_part = jax.nn.relu(threshold - x)
    clip_max = max_value is not None
    if threshold != 0.0:
        x = x * (x > threshold).astype(x.dtype)
    elif max_value == 6.0:
        x = jax.nn.relu6(x)
        clip_max = False
    else:
        x = jax.nn.relu(x)
    if clip_max:
        x = jnp.clip(x, 0.0, max_value)
    if negative_slope != 0.0:
        x = x - negative_slope * negative_part
    return x


def relu6(x: ArrayLike) -> Array:
    """ReLU capped at 6: `min(max(x, 0), 6)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import relu6
        >>> relu6(jnp.array([-1.0, 3.0, 8.0])).tolist()
        [0.0, 3.0, 6.0]
    """
    return jax.nn.relu6(x)


def leaky_relu(x: ArrayLike, negative_slope: float = 0.2) -> Array:
    """Leaky ReLU: `x` for `x >= 0`, `negative_slope * x` otherwise.

    Keras' activation default `negative_slope=0.2` (the `LeakyReLU` layer uses 0.3,
    `jax.nn.leaky_relu` 0.01).

    Args:
        x: Input array.
        negative_slope: Slope for negative inputs.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import leaky_relu
        >>> leaky_relu(jnp.array([-5.0, 0.0, 2.0])).tolist()
        [-1.0, 0.0, 2.0]
    """
    negative_slope = _static_number("leaky_relu", "negative_slope", negative_slope)
    return jax.nn.leaky_relu(x, negative_slope=negative_slope)


def elu(x: ArrayLike, alpha: float = 1.0) -> Array:
    """Exponential linear unit: `x` for `x > 0`, `alpha * (exp(x) - 1)` otherwise.

    Args:
        x: Input array.
        alpha: Scale of the negative part.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import elu
        >>> elu(jnp.array([0.0, 2.0])).tolist()
        [0.0, 2.0]
    """
    alpha = _static_number("elu", "alpha", alpha)
    return jax.nn.elu(x, alpha=alpha)


def selu(x: ArrayLike) -> Array:
    """Scaled ELU: `scale * elu(x, alpha)` with the self-normalizing constants.

    `alpha = 1.67326324...`, `scale = 1.05070098...` (Klambauer et al., 2017); pair
    it with the `lecun_normal` initializer.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import selu
        >>> round(float(selu(jnp.array(1.0))), 6)
        1.050701
    """
    return jax.nn.selu(x)


def gelu(x: ArrayLike, approximate: bool = False) -> Array:
    """Gaussian error linear unit: `x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))`.

    Keras' default is the exact erf form; `approximate=True` gives the tanh
    approximation `0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))`.

    Args:
        x: Input array.
        approximate: Use the tanh approximation.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import gelu
        >>> round(float(gelu(jnp.array(1.0))), 5)
        0.84134
    """
    if not isinstance(approximate, bool):
        raise TypeError(f"gelu: `approximate` must be a bool, got {approximate!r}.")
    return jax.nn.gelu(x, approximate=approximate)


def sigmoid(x: ArrayLike) -> Array:
    """Logistic sigmoid: `1 / (1 + exp(-x))`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import sigmoid
        >>> sigmoid(jnp.array([0.0])).tolist()
        [0.5]
    """
    return jax.nn.sigmoid(x)


def hard_sigmoid(x: ArrayLike) -> Array:
    """Piecewise-linear sigmoid (Keras 3): `relu6(x + 3) / 6`.

    0 for `x <= -3`, 1 for `x >= 3`, `x / 6 + 0.5` in between.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import hard_sigmoid
        >>> hard_sigmoid(jnp.array([-4.0, 0.0, 4.0])).tolist()
        [0.0, 0.5, 1.0]
    """
    return jax.nn.hard_sigmoid(x)


def hard_silu(x: ArrayLike) -> Array:
    """Hard SiLU (hard swish): `x * relu6(x + 3) / 6`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import hard_silu
        >>> hard_silu(jnp.array([-4.0, 0.0, 4.0])).tolist()
        [-0.0, 0.0, 4.0]
    """
    return jax.nn.hard_silu(x)


hard_swish = hard_silu


def tanh(x: ArrayLike) -> Array:
    """Hyperbolic tangent: `(exp(x) - exp(-x)) / (exp(x) + exp(-x))`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import tanh
        >>> tanh(jnp.array([0.0])).tolist()
        [0.0]
    """
    return jnp.tanh(x)


def softmax(x: ArrayLike, axis: int | tuple[int, ...] = -1) -> Array:
    """Softmax along `axis`: `exp(x) / sum(exp(x), axis)`, computed stably.

    Args:
        x: Input array (logits).
        axis: Axis (or axes) along which the outputs sum to 1.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import softmax
        >>> softmax(jnp.array([[0.0, 0.0], [0.0, 0.0]])).tolist()
        [[0.5, 0.5], [0.5, 0.5]]
    """
    return jax.nn.softmax(x, axis=axis)


def log_softmax(x: ArrayLike, axis: int | tuple[int, ...] = -1) -> Array:
    """Log of the softmax along `axis`: `x - logsumexp(x, axis)`.

    Args:
        x: Input array (logits).
        axis: Axis (or axes) of the normalization.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import log_softmax
        >>> [round(v, 4) for v in log_softmax(jnp.array([0.0, 0.0])).tolist()]
        [-0.6931, -0.6931]
    """
    return jax.nn.log_softmax(x, axis=axis)


def softplus(x: ArrayLike) -> Array:
    """Softplus: `log(exp(x) + 1)`, computed without overflow.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import softplus
        >>> round(float(softplus(jnp.array(0.0))), 4)
        0.6931
    """
    return jax.nn.softplus(x)


def softsign(x: ArrayLike) -> Array:
    """Softsign: `x / (abs(x) + 1)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import softsign
        >>> softsign(jnp.array([-1.0, 0.0, 3.0])).tolist()
        [-0.5, 0.0, 0.75]
    """
    return jax.nn.soft_sign(x)


def silu(x: ArrayLike) -> Array:
    """SiLU, also called swish: `x * sigmoid(x)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import silu
        >>> silu(jnp.array([0.0])).tolist()
        [0.0]
    """
    return jax.nn.silu(x)


swish = silu


def mish(x: ArrayLike) -> Array:
    """Mish: `x * tanh(softplus(x))` (Misra, 2019).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import mish
        >>> round(float(mish(jnp.array(1.0))), 4)
        0.8651
    """
    x = _as_array(x)
    return x * jnp.tanh(jax.nn.softplus(x))


def exponential(x: ArrayLike) -> Array:
    """Exponential: `exp(x)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import exponential
        >>> exponential(jnp.array([0.0])).tolist()
        [1.0]
    """
    return jnp.exp(x)


def celu(x: ArrayLike, alpha: float = 1.0) -> Array:
    """Continuously differentiable ELU: `max(x, 0) + min(0, alpha * expm1(x / alpha))`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import celu
        >>> [round(v, 4) for v in celu(jnp.array([-1.0, 2.0]), alpha=2.0).tolist()]
        [-0.7869, 2.0]
    """
    alpha = _static_number("celu", "alpha", alpha)
    return jax.nn.celu(x, alpha=alpha)


def glu(x: ArrayLike, axis: int = -1) -> Array:
    """Gated linear unit: `a * sigmoid(b)`, `a` and `b` the two halves of `axis`.

    The output has half the size of `x` on `axis` (which must be even).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import glu
        >>> glu(jnp.array([[2.0, 4.0, 0.0, 100.0]])).tolist()
        [[1.0, 4.0]]
    """
    x = _as_array(x)
    if x.shape[axis] % 2:
        raise ValueError(
            f"glu: axis {axis} of x must have an even size (it is split in two "
            f"halves), got x.shape={x.shape}."
        )
    return jax.nn.glu(x, axis=axis)


def hard_shrink(x: ArrayLike, threshold: float = 0.5) -> Array:
    """Hard shrink: `x` where `|x| > threshold`, else 0.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import hard_shrink
        >>> hard_shrink(jnp.array([-1.0, 0.3, 0.7])).tolist()
        [-1.0, 0.0, 0.699999988079071]
    """
    x = _as_array(x)
    threshold = _static_number("hard_shrink", "threshold", threshold)
    return jnp.where(jnp.abs(x) > threshold, x, jnp.zeros_like(x))


def hard_tanh(x: ArrayLike) -> Array:
    """Hard tanh: `x` clipped to `[-1, 1]`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import hard_tanh
        >>> hard_tanh(jnp.array([-3.0, 0.5, 2.0])).tolist()
        [-1.0, 0.5, 1.0]
    """
    return jax.nn.hard_tanh(x)


def log_sigmoid(x: ArrayLike) -> Array:
    """`log(sigmoid(x)) = -softplus(-x)`, computed stably.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import log_sigmoid
        >>> round(float(log_sigmoid(jnp.array(0.0))), 4)
        -0.6931
    """
    return jax.nn.log_sigmoid(x)


def soft_shrink(x: ArrayLike, threshold: float = 0.5) -> Array:
    """Soft shrink: `x - threshold` above `threshold`, `x + threshold` below
    `-threshold`, else 0.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import soft_shrink
        >>> soft_shrink(jnp.array([-2.0, 0.25, 1.5])).tolist()
        [-1.5, 0.0, 1.0]
    """
    x = _as_array(x)
    t = _static_number("soft_shrink", "threshold", threshold)
    zero = jnp.zeros_like(x)
    return jnp.where(x > t, x - t, jnp.where(x < -t, x + t, zero))


def sparse_plus(x: ArrayLike) -> Array:
    """SparsePlus: 0 for `x <= -1`, `(x + 1)**2 / 4` for `|x| < 1`, `x` for `x >= 1`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import sparse_plus
        >>> sparse_plus(jnp.array([-2.0, 0.0, 3.0])).tolist()
        [0.0, 0.25, 3.0]
    """
    return jax.nn.sparse_plus(x)


def sparse_sigmoid(x: ArrayLike) -> Array:
    """Sparse sigmoid: 0 for `x <= -1`, `(x + 1) / 2` for `|x| < 1`, 1 for `x >= 1`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import sparse_sigmoid
        >>> sparse_sigmoid(jnp.array([-2.0, 0.0, 3.0])).tolist()
        [0.0, 0.5, 1.0]
    """
    return jax.nn.sparse_sigmoid(x)


def sparsemax(x: ArrayLike, axis: int = -1) -> Array:
    """Sparsemax (Martins and Astudillo, 2016): the Euclidean projection of `x` onto
    the probability simplex along `axis`; like softmax, but exactly 0 for small
    logits. The outputs sum to 1 (as in Keras after its fix in keras#23469;
    Keras 3.15 and earlier return wrong values when two or more logits are kept).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import sparsemax
        >>> sparsemax(jnp.array([[2.0, 1.0, -1.0]])).tolist()
        [[1.0, 0.0, 0.0]]
        >>> sparsemax(jnp.array([[0.5, 0.0]])).tolist()
        [[0.75, 0.25]]
    """
    x = _as_array(x)
    axis = axis % x.ndim
    ordered = -jnp.sort(-x, axis=axis)  # descending
    cumsum = jnp.cumsum(ordered, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = -1
    r = jnp.arange(1, x.shape[axis] + 1, dtype=x.dtype).reshape(shape)
    support = ordered - (cumsum - 1) / r > 0
    k = jnp.sum(support, axis=axis, keepdims=True).astype(x.dtype)
    # tau = (cumsum at the support's last index - 1) / k, the paper's threshold;
    # Keras up to 3.15 summed every cumulative sum in the support instead
    # (keras-team/keras#23425, fixed by #23469), which is wrong once k >= 2.
    total = jnp.sum(jnp.where(support, ordered, 0), axis=axis, keepdims=True)
    return jnp.maximum(x - (total - 1) / k, 0)


def squareplus(x: ArrayLike, b: float = 4) -> Array:
    """Squareplus: `(x + sqrt(x**2 + b)) / 2`, a smooth ReLU.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import squareplus
        >>> squareplus(jnp.array([0.0, 1.5]), b=4.0).tolist()
        [1.0, 2.0]
    """
    b = _static_number("squareplus", "b", b, minimum=0.0)
    return jax.nn.squareplus(x, b=b)


def tanh_shrink(x: ArrayLike) -> Array:
    """Tanh shrink: `x - tanh(x)`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import tanh_shrink
        >>> tanh_shrink(jnp.array([0.0])).tolist()
        [0.0]
    """
    x = _as_array(x)
    return x - jnp.tanh(x)


def threshold(x: ArrayLike, threshold: float, default_value: float) -> Array:
    """`x` where `x > threshold`, else `default_value` (Keras' `threshold`).

    Both arguments are required, as in Keras, so it is not an activation that a
    layer can take by name; call it, or wrap it (`lambda x: threshold(x, 0.5, 0)`).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import threshold
        >>> threshold(jnp.array([-1.0, 0.2, 2.0]), 0.5, -9.0).tolist()
        [-9.0, -9.0, 2.0]
    """
    x = _as_array(x)
    t = _static_number("threshold", "threshold", threshold)
    default = _static_number("threshold", "default_value", default_value)
    return jnp.where(x > t, x, jnp.asarray(default, x.dtype))


def linear(x: ArrayLike) -> Array:
    """Identity: returns `x` unchanged (the activation of `None`).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.activations import linear
        >>> linear(jnp.array([-1.0, 2.0])).tolist()
        [-1.0, 2.0]
    """
    return _as_array(x)


_CATALOGUE = Catalogue(
    "activation",
    {
        "relu": relu,
        "relu6": relu6,
        "leaky_relu": leaky_relu,
        "elu": elu,
        "selu": selu,
        "gelu": gelu,
        "sigmoid": sigmoid,
        "hard_sigmoid": hard_sigmoid,
        "hard_silu": hard_silu,
        "hard_swish": hard_silu,
        "tanh": tanh,
        "softmax": softmax,
        "log_softmax": log_softmax,
        "softplus": softplus,
        "softsign": softsign,
        "silu": silu,
        "swish": silu,
        "mish": mish,
        "exponential": exponential,
        "linear": linear,
        "celu": celu,
        "glu": glu,
        "hard_shrink": hard_shrink,
        "hard_tanh": hard_tanh,
        "log_sigmoid": log_sigmoid,
        "soft_shrink": soft_shrink,
        "sparse_plus": sparse_plus,
        "sparse_sigmoid": sparse_sigmoid,
        "sparsemax": sparsemax,
        "squareplus": squareplus,
        "tanh_shrink": tanh_shrink,
        "threshold": threshold,
    },
    fold=str.lower,
    tail="Valid names: {names}; or pass a callable.",
)


def get(identifier: str | Callable[..., Array] | None) -> Callable[..., Array]:
    """Resolve an activation given by name, `None` or callable to a function.

    Args:
        identifier: `None` (linear), a built-in name (case-insensitive, e.g.
            `"relu"`, `"swish"`), or any callable, returned as is.

    Returns:
        A function of one array.

    Raises:
        ValueError: For an unknown name (with the closest valid names).
        TypeError: For anything that is neither a name, `None` nor callable.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras import activations
        >>> activations.get("ReLU")(jnp.array([-1.0, 1.0])).tolist()
        [0.0, 1.0]
        >>> activations.get(None) is activations.linear
        True
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        return _CATALOGUE.get(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(
        "Could not interpret activation: expected a name such as 'relu', None or a "
        f"callable, got {identifier!r} ({type(identifier).__name__})."
    )


def serialize(activation: str | Callable[..., Array] | None) -> str | None:
    """The JSON-safe name of an activation, for layer configs (`get` inverts it).

    Args:
        activation: A built-in activation function, its name, or `None`.

    Returns:
        The registered name (`"silu"` for `silu`/`swish`), or `None` for `None`.

    Raises:
        ValueError: For a callable that is not a built-in activation (it cannot be
            stored as data), or an unknown name.

    Example:
        >>> from funkeras import activations
        >>> activations.serialize(activations.gelu)
        'gelu'
        >>> activations.serialize("Swish")
        'swish'
    """
    if activation is None:
        return None
    if isinstance(activation, str):
        _CATALOGUE.get(activation)
        return activation.lower()
    name = _CATALOGUE.name_of(activation)
    if name is None:
        raise ValueError(
            f"Cannot serialize activation {activation!r}: only built-in activations "
            f"can be saved as data. Use one of {sorted(_CATALOGUE.names())}, or apply "
            "the custom function in a layer of your own."
        )
    return name


__dir__ = module_dir(globals())
