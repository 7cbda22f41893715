"""`fk.ops`' neural-network ops (`keras.ops.nn`): activations, losses, conv, pooling."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from funkeras._catalogue import module_dir
from funkeras._validation import (
    check_choice,
    check_int,
    normalize_dtype,
    normalize_tuple,
)
from funkeras.typing import Array

_EPSILON = 1e-7


def _dtype(owner: str, dtype: Any, default: Any = jnp.float32) -> Any:
    return default if dtype is None else jnp.dtype(normalize_dtype(owner, dtype))


__all__ = [
    "average_pool",
    "binary_crossentropy",
    "categorical_crossentropy",
    "conv",
    "dot_product_attention",
    "elu",
    "gelu",
    "hard_sigmoid",
    "leaky_relu",
    "log_sigmoid",
    "log_softmax",
    "max_pool",
    "moments",
    "multi_hot",
    "normalize",
    "one_hot",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "softsign",
    "sparse_categorical_crossentropy",
]

relu = jax.nn.relu
relu6 = jax.nn.relu6
sigmoid = jax.nn.sigmoid
softplus = jax.nn.softplus
softsign = jax.nn.soft_sign
silu = jax.nn.silu
selu = jax.nn.selu
hard_sigmoid = jax.nn.hard_sigmoid
log_sigmoid = jax.nn.log_sigmoid


def softmax(x: Any, axis: int = -1) -> Array:
    """Softmax over `axis`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.softmax(fk.ops.zeros(2)).tolist()
        [0.5, 0.5]
    """
    return jax.nn.softmax(x, axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Array:
    """Log-softmax over `axis`.

    Example:
        >>> import funkeras as fk
        >>> print(f"{float(fk.ops.log_softmax(fk.ops.zeros(2))[0]):.4f}")
        -0.6931
    """
    return jax.nn.log_softmax(x, axis=axis)


def gelu(x: Any, approximate: bool = True) -> Array:
    """GELU; `keras.ops.gelu` defaults to the tanh approximation.

    Example:
        >>> import funkeras as fk
        >>> float(fk.ops.gelu(fk.ops.array(0.0)))
        0.0
    """
    return jax.nn.gelu(x, approximate=approximate)


def elu(x: Any, alpha: float = 1.0) -> Array:
    """ELU: `x` if positive, else `alpha * (exp(x) - 1)`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.elu(fk.ops.array([1.0])).tolist()
        [1.0]
    """
    return jax.nn.elu(x, alpha)


def leaky_relu(x: Any, negative_slope: float = 0.2) -> Array:
    """Leaky ReLU with Keras' default slope 0.2 (jax.nn: 0.01).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.leaky_relu(fk.ops.array([-1.0])).tolist()
        [-0.20000000298023224]
    """
    return jax.nn.leaky_relu(x, negative_slope)


def one_hot(
    x: Any, num_classes: int, axis: int = -1, dtype: Any = None, sparse: bool = False
) -> Array:
    """Integer labels as one-hot vectors along `axis` (float32 by default).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.one_hot(fk.ops.array([1]), 3).tolist()
        [[0.0, 1.0, 0.0]]
    """
    num_classes = check_int("one_hot", "num_classes", num_classes)
    if sparse:
        raise ValueError(
            "one_hot: `sparse=True` is not supported (JAX arrays are dense)."
        )
    return jax.nn.one_hot(
        jnp.asarray(x), num_classes, dtype=_dtype("one_hot", dtype), axis=axis
    )


def multi_hot(
    inputs: Any,
    num_classes: int,
    axis: int = -1,
    dtype: Any = None,
    sparse: bool = False,
) -> Array:
    """Each row of integer labels as one vector with a 1 at every label.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.multi_hot(fk.ops.array([[0, 2]]), 3).tolist()
        [[1.0, 0.0, 1.0]]
    """
    x = jnp.asarray(inputs).astype(jnp.int32)
    hot = one_hot(x, num_classes, axis=axis, dtype=dtype, sparse=sparse)
    return jnp.max(hot, axis=1 if x.ndim > 1 else 0)


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Array:
    """Elementwise binary crossentropy (probabilities clipped to `[1e-7, 1 - 1e-7]`).

    Example:
        >>> import funkeras as fk
        >>> t, p = fk.ops.array(1.0), fk.ops.array(0.5)
        >>> print(f"{float(fk.ops.binary_crossentropy(t, p)):.4f}")
        0.6931
    """
    target, output = jnp.asarray(target), jnp.asarray(output)
    if target.shape != output.shape:
        raise ValueError(
            f"binary_crossentropy: `target` {target.shape} and `output` "
            f"{output.shape} must have the same shape."
        )
    if from_logits:
        return -target * jax.nn.log_sigmoid(output) - (
            1.0 - target
        ) * jax.nn.log_sigmoid(-output)
    output = jnp.clip(output, _EPSILON, 1.0 - _EPSILON)
    return -(target * jnp.log(output) + (1.0 - target) * jnp.log(1.0 - output))


def categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> Array:
    """Crossentropy of one-hot `target` against `output` along `axis`.

    Example:
        >>> import funkeras as fk
        >>> t, p = fk.ops.array([[0.0, 1.0]]), fk.ops.array([[0.5, 0.5]])
        >>> print(f"{float(fk.ops.categorical_crossentropy(t, p)[0]):.4f}")
        0.6931
    """
    target, output = jnp.asarray(target), jnp.asarray(output)
    if target.shape != output.shape or target.ndim < 1:
        raise ValueError(
            f"categorical_crossentropy: `target` {target.shape} and `output` "
            f"{output.shape} must have the same shape, of rank >= 1."
        )
    return -jnp.sum(target * _log_prob(output, from_logits, axis), axis=axis)


def _log_prob(output: Array, from_logits: bool, axis: int) -> Array:
    if from_logits:
        return jax.nn.log_softmax(output, axis=axis)
    output = output / jnp.sum(output, axis, keepdims=True)
    return jnp.log(jnp.clip(output, _EPSILON, 1.0 - _EPSILON))


def sparse_categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> Array:
    """Crossentropy of integer `target` against `output` along `axis`.

    Example:
        >>> import funkeras as fk
        >>> t, p = fk.ops.array([1]), fk.ops.array([[0.5, 0.5]])
        >>> print(f"{float(fk.ops.sparse_categorical_crossentropy(t, p)[0]):.4f}")
        0.6931
    """
    target = jnp.asarray(target, dtype=jnp.int32)
    output = jnp.asarray(output)
    if target.ndim == output.ndim and target.shape[-1] == 1:
        target = jnp.squeeze(target, -1)
    if output.ndim < 1 or target.shape != output.shape[:-1]:
        raise ValueError(
            f"sparse_categorical_crossentropy: `target` {target.shape} must be "
            f"`output` {output.shape} without its last axis."
        )
    hot = jax.nn.one_hot(target, output.shape[axis], axis=axis, dtype=output.dtype)
    return -jnp.sum(hot * _log_prob(output, from_logits, axis), axis=axis)


def moments(
    x: Any, axes: Any, keepdims: bool = False, synchronized: bool = False
) -> tuple[Array, Array]:
    """Mean and variance of `x` over `axes` (float16/bfloat16 computed in float32).

    Example:
        >>> import funkeras as fk
        >>> m, v = fk.ops.moments(fk.ops.array([1.0, 3.0]), axes=[0])
        >>> float(m), float(v)
        (2.0, 1.0)
    """
    if synchronized:
        raise ValueError("moments: `synchronized=True` is not supported on JAX.")
    x = jnp.asarray(x)
    axes = tuple(axes) if isinstance(axes, list | tuple) else axes
    low = x.dtype in (jnp.float16, jnp.bfloat16)
    xf = x.astype(jnp.float32) if low else x
    m = jnp.mean(xf, axes, keepdims=keepdims)
    v = jnp.var(xf, axes, keepdims=keepdims)
    if low:
        m, v = m.astype(x.dtype), v.astype(x.dtype)
    return m, v


def normalize(
    x: Any, axis: int = -1, order: int = 2, epsilon: float | None = None
) -> Array:
    """`x` divided by its `order`-norm along `axis` (at least `epsilon`).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.normalize(fk.ops.array([3.0, 4.0])).tolist()
        [0.6000000238418579, 0.800000011920929]
    """
    order = check_int("normalize", "order", order)
    x = jnp.asarray(x)
    if x.ndim == 0:
        x = x[None]
    eps = _EPSILON if epsilon is None else epsilon
    if order == 2:
        inv = lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
        return x * jnp.minimum(inv, 1.0 / eps)
    n = jnp.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / jnp.maximum(n, eps)


def _spatial(owner: str, x: Array, value: Any, name: str) -> tuple[int, ...]:
    return normalize_tuple(owner, name, value, x.ndim - 2)


def _channels_last(x: Array, data_format: str | None) -> tuple[Array, bool]:
    fmt = check_choice(
        "ops",
        "data_format",
        data_format or "channels_last",
        ("channels_last", "channels_first"),
    )
    if fmt == "channels_first":
        return jnp.moveaxis(x, 1, -1), True
    return x, False


def conv(
    inputs: Any,
    kernel: Any,
    strides: Any = 1,
    padding: str = "valid",
    data_format: str | None = None,
    dilation_rate: Any = 1,
) -> Array:
    """N-D convolution (`keras.ops.conv`): kernel `(*spatial, in/groups, out)`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.conv(fk.ops.ones((1, 5, 2)), fk.ops.ones((3, 2, 4))).shape
        (1, 3, 4)
    """
    x, first = _channels_last(jnp.asarray(inputs), data_format)
    kernel = jnp.asarray(kernel)
    padding = check_choice("conv", "padding", padding, ("valid", "same")).upper()
    n = x.ndim - 2
    if kernel.ndim != n + 2:
        raise ValueError(
            f"conv: `kernel` needs rank {n + 2} for inputs of rank {x.ndim}, got "
            f"shape {kernel.shape}."
        )
    spatial = "DHW"[3 - n :] if n <= 3 else None
    if spatial is None:
        raise ValueError(f"conv: 1 to 3 spatial axes are supported, got {n}.")
    groups = x.shape[-1] // kernel.shape[-2]
    out = lax.conv_general_dilated(
        x,
        kernel,
        window_strides=_spatial("conv", x, strides, "strides"),
        padding=padding,
        rhs_dilation=_spatial("conv", x, dilation_rate, "dilation_rate"),
        dimension_numbers=(f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"),
        feature_group_count=groups,
    )
    return jnp.moveaxis(out, -1, 1) if first else out


def _pool(
    owner: str,
    inputs: Any,
    pool_size: Any,
    strides: Any,
    padding: str,
    data_format: str | None,
    average: bool,
) -> Array:
    x, first = _channels_last(jnp.asarray(inputs), data_format)
    padding = check_choice(owner, "padding", padding, ("valid", "same")).upper()
    size = (1, *_spatial(owner, x, pool_size, "pool_size"), 1)
    step = (
        1,
        *_spatial(owner, x, pool_size if strides is None else strides, "strides"),
        1,
    )
    if average:
        out = lax.reduce_window(x, 0.0, lax.add, size, step, padding)
        if padding == "VALID":
            out = out / math.prod(size)
        else:
            count = lax.reduce_window(
                jnp.ones(x.shape[1:-1] + (1,), x.dtype)[None],
                0.0,
                lax.add,
                size,
                step,
                padding,
            )
            out = out / count
    else:
        out = lax.reduce_window(x, -jnp.inf, lax.max, size, step, padding)
    return jnp.moveaxis(out, -1, 1) if first else out


def max_pool(
    inputs: Any,
    pool_size: Any,
    strides: Any = None,
    padding: str = "valid",
    data_format: str | None = None,
) -> Array:
    """Max pooling over the spatial axes (strides default to `pool_size`).

    Example:
        >>> import funkeras as fk
        >>> x = fk.ops.reshape(fk.ops.arange(4.0), (1, 4, 1))
        >>> fk.ops.max_pool(x, 2)[0, :, 0].tolist()
        [1.0, 3.0]
    """
    return _pool("max_pool", inputs, pool_size, strides, padding, data_format, False)


def average_pool(
    inputs: Any,
    pool_size: Any,
    strides: Any = None,
    padding: str = "valid",
    data_format: str | None = None,
) -> Array:
    """Average pooling; with `"same"` padding only real entries are averaged.

    Example:
        >>> import funkeras as fk
        >>> x = fk.ops.reshape(fk.ops.arange(4.0), (1, 4, 1))
        >>> fk.ops.average_pool(x, 2)[0, :, 0].tolist()
        [0.5, 2.5]
    """
    return _pool("average_pool", inputs, pool_size, strides, padding, data_format, True)


def dot_product_attention(
    query: Any,
    key: Any,
    value: Any,
    bias: Any = None,
    mask: Any = None,
    scale: float | None = None,
    is_causal: bool = False,
) -> Array:
    """Scaled dot-product attention over `(batch, seq, heads, dim)` arrays.

    Example:
        >>> import funkeras as fk
        >>> q = fk.ops.ones((1, 3, 2, 4))
        >>> fk.ops.dot_product_attention(q, q, q).shape
        (1, 3, 2, 4)
    """
    return jax.nn.dot_product_attention(
        jnp.asarray(query),
        jnp.asarray(key),
        jnp.asarray(value),
        bias=bias,
        mask=mask,
        scale=scale,
        is_causal=is_causal,
    )


__dir__ = module_dir(globals())
