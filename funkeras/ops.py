"""Keras 3's `keras.ops` names and signatures over `jax.numpy`, `jax.nn` and `lax`.

A Keras script's `keras.ops.<name>(...)` runs as `fk.ops.<name>(...)` with the
same arguments. Where Keras and `jax.numpy` agree the name is the jax function
itself; where Keras' signature or dtype rule differs it is a thin wrapper.
Keras' dtype conventions hold: float inputs keep their dtype, and values made
from Python numbers or integer data default to float32 (`ones`, `mean`,
`floor` of an int array, ...). Everything works under `jax.jit` and `jax.grad`.

Example:
    >>> import funkeras as fk
    >>> x = fk.ops.array([[1.0, 5.0, 3.0]])
    >>> values, indices = fk.ops.top_k(x, 2)
    >>> values.tolist(), indices.tolist()
    ([[5.0, 3.0]], [[1, 2]])
    >>> fk.ops.one_hot(fk.ops.array([0, 2]), 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funkeras._catalogue import module_dir
from funkeras._validation import (
    check_choice,
    check_int,
    normalize_dtype,
    normalize_tuple,
)
from funkeras.typing import Array, ArrayLike

__all__ = [
    "abs",
    "absolute",
    "add",
    "all",
    "any",
    "arange",
    "argmax",
    "argmin",
    "argsort",
    "array",
    "average_pool",
    "binary_crossentropy",
    "broadcast_to",
    "cast",
    "categorical_crossentropy",
    "ceil",
    "clip",
    "concatenate",
    "cond",
    "conv",
    "convert_to_numpy",
    "convert_to_tensor",
    "cos",
    "cumprod",
    "cumsum",
    "diag",
    "divide",
    "dot",
    "dot_product_attention",
    "dtype",
    "einsum",
    "elu",
    "equal",
    "erf",
    "exp",
    "expand_dims",
    "eye",
    "flip",
    "floor",
    "fori_loop",
    "full",
    "full_like",
    "gelu",
    "greater",
    "greater_equal",
    "hard_sigmoid",
    "identity",
    "is_tensor",
    "isfinite",
    "isinf",
    "isnan",
    "leaky_relu",
    "less",
    "less_equal",
    "linspace",
    "log",
    "log1p",
    "log_sigmoid",
    "log_softmax",
    "logical_and",
    "logical_not",
    "logical_or",
    "logsumexp",
    "matmul",
    "max",
    "max_pool",
    "maximum",
    "mean",
    "min",
    "minimum",
    "moments",
    "moveaxis",
    "multi_hot",
    "multiply",
    "negative",
    "norm",
    "normalize",
    "not_equal",
    "one_hot",
    "ones",
    "ones_like",
    "pad",
    "power",
    "prod",
    "relu",
    "relu6",
    "repeat",
    "reshape",
    "round",
    "scan",
    "scatter",
    "scatter_update",
    "segment_max",
    "segment_sum",
    "selu",
    "shape",
    "sigmoid",
    "sign",
    "silu",
    "sin",
    "slice",
    "slice_update",
    "softmax",
    "softplus",
    "softsign",
    "sparse_categorical_crossentropy",
    "split",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
    "stop_gradient",
    "subtract",
    "sum",
    "swapaxes",
    "take",
    "take_along_axis",
    "tan",
    "tanh",
    "tile",
    "top_k",
    "transpose",
    "tril",
    "triu",
    "true_divide",
    "var",
    "vectorized_map",
    "where",
    "while_loop",
    "zeros",
    "zeros_like",
]

_EPSILON = 1e-7

# ---------------------------------------------------------------- numpy-like
# Plain aliases: Keras' signature and dtype rule are jax.numpy's.
abs = jnp.abs  # noqa: A001
absolute = jnp.absolute
add = jnp.add
all = jnp.all  # noqa: A001
any = jnp.any  # noqa: A001
argmax = jnp.argmax
argmin = jnp.argmin
broadcast_to = jnp.broadcast_to
concatenate = jnp.concatenate
cos = jnp.cos
cumprod = jnp.cumprod
cumsum = jnp.cumsum
diag = jnp.diag
divide = jnp.divide
dot = jnp.dot
einsum = jnp.einsum
equal = jnp.equal
exp = jnp.exp
expand_dims = jnp.expand_dims
greater = jnp.greater
greater_equal = jnp.greater_equal
isfinite = jnp.isfinite
isinf = jnp.isinf
isnan = jnp.isnan
less = jnp.less
less_equal = jnp.less_equal
log = jnp.log
log1p = jnp.log1p
logical_and = jnp.logical_and
logical_not = jnp.logical_not
logical_or = jnp.logical_or
matmul = jnp.matmul
maximum = jnp.maximum
minimum = jnp.minimum
moveaxis = jnp.moveaxis
multiply = jnp.multiply
negative = jnp.negative
not_equal = jnp.not_equal
power = jnp.power
reshape = jnp.reshape
sign = jnp.sign
sin = jnp.sin
sqrt = jnp.sqrt
square = jnp.square
subtract = jnp.subtract
swapaxes = jnp.swapaxes
tan = jnp.tan
tanh = jnp.tanh
tile = jnp.tile
transpose = jnp.transpose
tril = jnp.tril
triu = jnp.triu
true_divide = jnp.true_divide


def _dtype(owner: str, dtype: Any, default: Any = jnp.float32) -> Any:
    return default if dtype is None else jnp.dtype(normalize_dtype(owner, dtype))


def _float(x: Array) -> Array:
    """Keras' float promotion: float stays, int/bool become float32."""
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def convert_to_tensor(x: Any, dtype: Any = None, sparse: Any = None, ragged: Any = None) -> Array:
    """`x` as a JAX array (Python floats become float32, ints int32).

    Example:
        >>> import funkeras as fk
        >>> str(fk.ops.convert_to_tensor([1.0, 2.0]).dtype)
        'float32'
    """
    return jnp.asarray(x, dtype=None if dtype is None else _dtype("convert_to_tensor", dtype))


def convert_to_numpy(x: Any) -> np.ndarray:
    """`x` as a NumPy array on the host.

    Example:
        >>> import funkeras as fk
        >>> type(fk.ops.convert_to_numpy(fk.ops.ones((2,)))).__name__
        'ndarray'
    """
    return np.asarray(x)


def array(x: Any, dtype: Any = None) -> Array:
    """An array from `x` (as `convert_to_tensor`).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.array([1, 2]).tolist()
        [1, 2]
    """
    return convert_to_tensor(x, dtype)


def cast(x: Any, dtype: Any) -> Array:
    """`x` converted to `dtype`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.cast(fk.ops.array([1.7, -1.7]), "int32").tolist()
        [1, -1]
    """
    return jnp.asarray(x).astype(_dtype("cast", dtype))


def is_tensor(x: Any) -> bool:
    """Whether `x` is a JAX array.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> fk.ops.is_tensor(fk.ops.ones(2)), fk.ops.is_tensor(np.ones(2))
        (True, False)
    """
    return isinstance(x, jax.Array)


def dtype(x: Any) -> str:
    """The dtype of `x` as Keras' string name (`"float32"`).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.dtype(fk.ops.ones(2))
        'float32'
    """
    return jnp.asarray(x).dtype.name


def shape(x: Any) -> tuple[int, ...]:
    """The shape of `x` as a tuple.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.shape(fk.ops.zeros((2, 3)))
        (2, 3)
    """
    return tuple(np.shape(x))


def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None) -> Array:
    """Evenly spaced values in `[start, stop)` (ints give int32, floats float32).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.arange(3).tolist()
        [0, 1, 2]
    """
    if step is None:
        step = 1
    return jnp.arange(start, stop, step, dtype=None if dtype is None else _dtype("arange", dtype))


def zeros(shape: Any, dtype: Any = None) -> Array:
    """An array of zeros (float32 by default).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.zeros((2,)).tolist()
        [0.0, 0.0]
    """
    return jnp.zeros(shape, _dtype("zeros", dtype))


def ones(shape: Any, dtype: Any = None) -> Array:
    """An array of ones (float32 by default).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.ones((2,)).tolist()
        [1.0, 1.0]
    """
    return jnp.ones(shape, _dtype("ones", dtype))


def full(shape: Any, fill_value: Any, dtype: Any = None) -> Array:
    """An array filled with `fill_value` (dtype inferred from it if not given).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.full((2,), 7.0).tolist()
        [7.0, 7.0]
    """
    return jnp.full(shape, fill_value, None if dtype is None else _dtype("full", dtype))


def zeros_like(x: Any, dtype: Any = None) -> Array:
    """Zeros of `x`'s shape and dtype.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.zeros_like(fk.ops.ones((2,))).tolist()
        [0.0, 0.0]
    """
    return jnp.zeros_like(x, None if dtype is None else _dtype("zeros_like", dtype))


def ones_like(x: Any, dtype: Any = None) -> Array:
    """Ones of `x`'s shape and dtype.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.ones_like(fk.ops.zeros((2,))).tolist()
        [1.0, 1.0]
    """
    return jnp.ones_like(x, None if dtype is None else _dtype("ones_like", dtype))


def full_like(x: Any, fill_value: Any, dtype: Any = None) -> Array:
    """`fill_value` in `x`'s shape (and dtype unless given).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.full_like(fk.ops.zeros((2,)), 3).tolist()
        [3.0, 3.0]
    """
    return jnp.full_like(x, fill_value, None if dtype is None else _dtype("full_like", dtype))


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> Array:  # noqa: N803
    """A 2D array with ones on the `k`-th diagonal (float32 by default).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.eye(2).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    return jnp.eye(N, M, k, _dtype("eye", dtype))


def identity(n: int, dtype: Any = None) -> Array:
    """The `n x n` identity (float32 by default).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.identity(2).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    return jnp.identity(n, _dtype("identity", dtype))


def linspace(
    start: Any, stop: Any, num: int = 50, endpoint: bool = True, retstep: bool = False,
    dtype: Any = None, axis: int = 0,
) -> Any:
    """`num` evenly spaced values from `start` to `stop` (float32 by default).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.linspace(0, 1, 3).tolist()
        [0.0, 0.5, 1.0]
    """
    return jnp.linspace(start, stop, num, endpoint, retstep, _dtype("linspace", dtype), axis)


def clip(x: Any, x_min: Any, x_max: Any) -> Array:
    """`x` limited to `[x_min, x_max]`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.clip(fk.ops.array([-2.0, 0.5, 2.0]), -1.0, 1.0).tolist()
        [-1.0, 0.5, 1.0]
    """
    return jnp.clip(x, x_min, x_max)


def floor(x: Any) -> Array:
    """The floor of `x` (an int array gives float32, as Keras).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.floor(fk.ops.array([1.5, -1.5])).tolist()
        [1.0, -2.0]
    """
    return jnp.floor(_float(jnp.asarray(x)))


def ceil(x: Any) -> Array:
    """The ceiling of `x` (an int array gives float32, as Keras).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.ceil(fk.ops.array([1.5])).tolist()
        [2.0]
    """
    return jnp.ceil(_float(jnp.asarray(x)))


def round(x: Any, decimals: int = 0) -> Array:  # noqa: A001
    """`x` rounded half to even to `decimals` places.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.round(fk.ops.array([0.5, 1.5, 2.26]), 1).tolist()
        [0.5, 1.5, 2.299999952316284]
    """
    return jnp.round(x, decimals)


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Array:  # noqa: A001
    """The sum over `axis` (all axes if None).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.sum(fk.ops.ones((2, 3)), axis=1).tolist()
        [3.0, 3.0]
    """
    return jnp.sum(x, axis=_axis(axis), keepdims=keepdims)


def prod(x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Array:
    """The product over `axis`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.prod(fk.ops.array([2.0, 3.0])).tolist()
        6.0
    """
    return jnp.prod(x, axis=_axis(axis), keepdims=keepdims,
                    dtype=None if dtype is None else _dtype("prod", dtype))


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Array:
    """The mean over `axis` (float32 for int input).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.mean(fk.ops.array([1, 2])).tolist()
        1.5
    """
    return jnp.mean(_float(jnp.asarray(x)), axis=_axis(axis), keepdims=keepdims)


def var(x: Any, axis: Any = None, keepdims: bool = False) -> Array:
    """The (population) variance over `axis`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.var(fk.ops.array([1.0, 3.0])).tolist()
        1.0
    """
    return jnp.var(_float(jnp.asarray(x)), axis=_axis(axis), keepdims=keepdims)


def std(x: Any, axis: Any = None, keepdims: bool = False) -> Array:
    """The (population) standard deviation over `axis`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.std(fk.ops.array([1.0, 3.0])).tolist()
        1.0
    """
    return jnp.std(_float(jnp.asarray(x)), axis=_axis(axis), keepdims=keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Array:  # noqa: A001
    """The maximum over `axis`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.max(fk.ops.array([1.0, 3.0])).tolist()
        3.0
    """
    return jnp.max(x, axis=_axis(axis), keepdims=keepdims, initial=initial)


def min(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Array:  # noqa: A001
    """The minimum over `axis`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.min(fk.ops.array([1.0, 3.0])).tolist()
        1.0
    """
    return jnp.min(x, axis=_axis(axis), keepdims=keepdims, initial=initial)


def argsort(x: Any, axis: int = -1) -> Array:
    """Indices that sort `x` along `axis`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.argsort(fk.ops.array([3.0, 1.0, 2.0])).tolist()
        [1, 2, 0]
    """
    return jnp.argsort(x, axis=axis)


def flip(x: Any, axis: Any = None) -> Array:
    """`x` reversed along `axis` (all axes if None).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.flip(fk.ops.arange(3)).tolist()
        [2, 1, 0]
    """
    return jnp.flip(x, axis=_axis(axis))


def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: Any = None) -> Array:
    """`x` padded by `pad_width` (NumPy's `pad`; `constant_values` needs mode constant).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.pad(fk.ops.array([1, 2]), [[1, 1]]).tolist()
        [0, 1, 2, 0]
    """
    mode = check_choice("pad", "mode", mode, ("constant", "edge", "linear_ramp", "maximum",
                                              "mean", "median", "minimum", "reflect",
                                              "symmetric", "wrap", "empty"))
    if constant_values is not None:
        if mode != "constant":
            raise ValueError(
                f"pad: `constant_values` needs mode='constant', got mode={mode!r}."
            )
        return jnp.pad(x, pad_width, mode, constant_values=constant_values)
    return jnp.pad(x, pad_width, mode)


def repeat(x: Any, repeats: Any, axis: int | None = None) -> Array:
    """Each element of `x` repeated `repeats` times along `axis`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.repeat(fk.ops.array([1, 2]), 2).tolist()
        [1, 1, 2, 2]
    """
    return jnp.repeat(x, repeats, axis=axis)


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Array]:
    """`x` split into equal sections or at the given indices along `axis`.

    Example:
        >>> import funkeras as fk
        >>> [p.tolist() for p in fk.ops.split(fk.ops.arange(4), 2)]
        [[0, 1], [2, 3]]
    """
    return list(jnp.split(x, indices_or_sections, axis=axis))


def squeeze(x: Any, axis: Any = None) -> Array:
    """`x` without its size-1 axes (or only `axis`).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.squeeze(fk.ops.zeros((1, 2, 1))).shape
        (2,)
    """
    return jnp.squeeze(x, axis=_axis(axis))


def stack(x: Sequence[Any], axis: int = 0) -> Array:
    """The arrays of `x` stacked along a new `axis`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.stack([fk.ops.zeros(2), fk.ops.ones(2)]).shape
        (2, 2)
    """
    return jnp.stack(x, axis=axis)


def take(x: Any, indices: Any, axis: int | None = None) -> Array:
    """Elements of `x` at `indices` along `axis` (flattened `x` if None).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.take(fk.ops.array([5, 6, 7]), fk.ops.array([2, 0])).tolist()
        [7, 5]
    """
    return jnp.take(x, indices, axis=axis)


def take_along_axis(x: Any, indices: Any, axis: int | None = None) -> Array:
    """Elements of `x` picked along `axis` by matching-shape `indices`.

    Example:
        >>> import funkeras as fk
        >>> x = fk.ops.array([[1, 9], [8, 2]])
        >>> fk.ops.take_along_axis(x, fk.ops.array([[1], [0]]), axis=1).tolist()
        [[9], [8]]
    """
    return jnp.take_along_axis(x, indices, axis=axis)


def where(condition: Any, x1: Any = None, x2: Any = None) -> Any:
    """`x1` where `condition` holds, else `x2`; with one argument, its indices.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.where(fk.ops.array([True, False]), 1.0, 0.0).tolist()
        [1.0, 0.0]
    """
    if x1 is None and x2 is None:
        return jnp.nonzero(condition)
    if x1 is None or x2 is None:
        raise ValueError("where: pass both `x1` and `x2`, or neither.")
    return jnp.where(condition, x1, x2)


def top_k(x: Any, k: int, sorted: bool = True) -> tuple[Array, Array]:  # noqa: A002
    """The `k` largest values of the last axis and their indices (sorted descending).

    Example:
        >>> import funkeras as fk
        >>> v, i = fk.ops.top_k(fk.ops.array([1.0, 4.0, 2.0]), 2)
        >>> v.tolist(), i.tolist()
        ([4.0, 2.0], [1, 2])
    """
    k = check_int("top_k", "k", k)
    values, indices = lax.top_k(jnp.asarray(x), k)
    return values, indices


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Array:  # noqa: A002
    """A vector or matrix norm (`numpy.linalg.norm`; int input gives float32).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.norm(fk.ops.array([3.0, 4.0])).tolist()
        5.0
    """
    return jnp.linalg.norm(_float(jnp.asarray(x)), ord=ord, axis=_axis(axis), keepdims=keepdims)


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Array:
    """`log(sum(exp(x)))` over `axis`, computed stably.

    Example:
        >>> import funkeras as fk
        >>> print(f"{float(fk.ops.logsumexp(fk.ops.zeros(4))):.4f}")
        1.3863
    """
    return jax.nn.logsumexp(_float(jnp.asarray(x)), axis=_axis(axis), keepdims=keepdims)


def erf(x: Any) -> Array:
    """The error function, elementwise.

    Example:
        >>> import funkeras as fk
        >>> float(fk.ops.erf(fk.ops.array(0.0)))
        0.0
    """
    return jax.scipy.special.erf(_float(jnp.asarray(x)))


# ---------------------------------------------------------------- nn
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
        raise ValueError("one_hot: `sparse=True` is not supported (JAX arrays are dense).")
    return jax.nn.one_hot(jnp.asarray(x), num_classes, dtype=_dtype("one_hot", dtype), axis=axis)


def multi_hot(
    inputs: Any, num_classes: int, axis: int = -1, dtype: Any = None, sparse: bool = False
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
        >>> print(f"{float(fk.ops.binary_crossentropy(fk.ops.array(1.0), fk.ops.array(0.5))):.4f}")
        0.6931
    """
    target, output = jnp.asarray(target), jnp.asarray(output)
    if target.shape != output.shape:
        raise ValueError(
            f"binary_crossentropy: `target` {target.shape} and `output` "
            f"{output.shape} must have the same shape."
        )
    if from_logits:
        return -target * jax.nn.log_sigmoid(output) - (1.0 - target) * jax.nn.log_sigmoid(-output)
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


def moments(x: Any, axes: Any, keepdims: bool = False, synchronized: bool = False) -> tuple[Array, Array]:
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


def normalize(x: Any, axis: int = -1, order: int = 2, epsilon: float | None = None) -> Array:
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
    fmt = check_choice("ops", "data_format", data_format or "channels_last",
                       ("channels_last", "channels_first"))
    if fmt == "channels_first":
        return jnp.moveaxis(x, 1, -1), True
    return x, False


def conv(
    inputs: Any, kernel: Any, strides: Any = 1, padding: str = "valid",
    data_format: str | None = None, dilation_rate: Any = 1,
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
    spatial = "DHW"[3 - n:] if n <= 3 else None
    if spatial is None:
        raise ValueError(f"conv: 1 to 3 spatial axes are supported, got {n}.")
    groups = x.shape[-1] // kernel.shape[-2]
    out = lax.conv_general_dilated(
        x, kernel,
        window_strides=_spatial("conv", x, strides, "strides"),
        padding=padding,
        rhs_dilation=_spatial("conv", x, dilation_rate, "dilation_rate"),
        dimension_numbers=(f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"),
        feature_group_count=groups,
    )
    return jnp.moveaxis(out, -1, 1) if first else out


def _pool(
    owner: str, inputs: Any, pool_size: Any, strides: Any, padding: str,
    data_format: str | None, average: bool,
) -> Array:
    x, first = _channels_last(jnp.asarray(inputs), data_format)
    padding = check_choice(owner, "padding", padding, ("valid", "same")).upper()
    size = (1, *_spatial(owner, x, pool_size, "pool_size"), 1)
    step = (1, *_spatial(owner, x, pool_size if strides is None else strides, "strides"), 1)
    if average:
        out = lax.reduce_window(x, 0.0, lax.add, size, step, padding)
        if padding == "VALID":
            out = out / math.prod(size)
        else:
            count = lax.reduce_window(jnp.ones(x.shape[1:-1] + (1,), x.dtype)[None],
                                      0.0, lax.add, size, step, padding)
            out = out / count
    else:
        out = lax.reduce_window(x, -jnp.inf, lax.max, size, step, padding)
    return jnp.moveaxis(out, -1, 1) if first else out


def max_pool(
    inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
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
    inputs: Any, pool_size: Any, strides: Any = None, padding: str = "valid",
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
    query: Any, key: Any, value: Any, bias: Any = None, mask: Any = None,
    scale: float | None = None, is_causal: bool = False,
) -> Array:
    """Scaled dot-product attention over `(batch, seq, heads, dim)` arrays.

    Example:
        >>> import funkeras as fk
        >>> q = fk.ops.ones((1, 3, 2, 4))
        >>> fk.ops.dot_product_attention(q, q, q).shape
        (1, 3, 2, 4)
    """
    return jax.nn.dot_product_attention(
        jnp.asarray(query), jnp.asarray(key), jnp.asarray(value), bias=bias,
        mask=mask, scale=scale, is_causal=is_causal,
    )


# ---------------------------------------------------------------- core
stop_gradient = lax.stop_gradient


def cond(pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:
    """`true_fn()` if `pred` else `false_fn()` (both traced under jit).

    Example:
        >>> import funkeras as fk
        >>> float(fk.ops.cond(True, lambda: fk.ops.ones(()), lambda: fk.ops.zeros(())))
        1.0
    """
    return lax.cond(pred, true_fn, false_fn)


def fori_loop(lower: int, upper: int, body_fun: Callable[[Any, Any], Any], init_val: Any) -> Any:
    """`val = body_fun(i, val)` for `i` in `[lower, upper)`.

    Example:
        >>> import funkeras as fk
        >>> int(fk.ops.fori_loop(0, 4, lambda i, v: v + i, 0))
        6
    """
    return lax.fori_loop(lower, upper, body_fun, init_val)


def while_loop(
    cond: Callable[..., Any], body: Callable[..., Any], loop_vars: Any,
    maximum_iterations: int | None = None,
) -> Any:
    """Run `body(*loop_vars)` while `cond(*loop_vars)`; a tuple/list is unpacked.

    Example:
        >>> import funkeras as fk
        >>> int(fk.ops.while_loop(lambda i: i < 5, lambda i: i + 2, 0))
        6
    """
    is_tuple = isinstance(loop_vars, tuple | list)
    state = tuple(loop_vars) if is_tuple else (loop_vars,)

    def step(args: tuple[Any, ...]) -> tuple[Any, ...]:
        out = body(*args)
        return tuple(out) if is_tuple else (out,)

    if maximum_iterations is None:
        out = lax.while_loop(lambda a: cond(*a), step, state)
    else:
        limit = check_int("while_loop", "maximum_iterations", maximum_iterations, minimum=0)
        out = lax.while_loop(
            lambda a: jnp.logical_and(cond(*a[:-1]), a[-1] < limit),
            lambda a: (*step(a[:-1]), a[-1] + 1),
            (*state, 0),
        )[:-1]
    return out if is_tuple else out[0]


def scan(
    f: Callable[[Any, Any], Any], init: Any, xs: Any = None, length: int | None = None,
    reverse: bool = False, unroll: int | bool = 1,
) -> tuple[Any, Any]:
    """`lax.scan`: carry `init` through `f(carry, x)` over the leading axis of `xs`.

    Example:
        >>> import funkeras as fk
        >>> c, ys = fk.ops.scan(lambda c, x: (c + x, c), 0.0, fk.ops.arange(3.0))
        >>> float(c), ys.tolist()
        (3.0, [0.0, 0.0, 1.0])
    """
    return lax.scan(f, init, xs, length=length, reverse=reverse, unroll=unroll)


def slice(inputs: Any, start_indices: Any, shape: Any) -> Array:  # noqa: A001
    """The block of `shape` starting at `start_indices` (indices may be traced).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.slice(fk.ops.arange(5), (1,), (3,)).tolist()
        [1, 2, 3]
    """
    return lax.dynamic_slice(jnp.asarray(inputs), tuple(start_indices), tuple(shape))


def slice_update(inputs: Any, start_indices: Any, updates: Any) -> Array:
    """`inputs` with the block at `start_indices` replaced by `updates`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.slice_update(fk.ops.zeros(4), (1,), fk.ops.ones(2)).tolist()
        [0.0, 1.0, 1.0, 0.0]
    """
    inputs = jnp.asarray(inputs)
    return lax.dynamic_update_slice(
        inputs, jnp.asarray(updates, inputs.dtype), tuple(start_indices)
    )


def _index(indices: Any) -> tuple[Array, ...]:
    idx = jnp.asarray(indices)
    if idx.ndim < 1:
        raise ValueError(f"scatter: `indices` must have a last axis of coordinates, got {idx.shape}.")
    return tuple(jnp.moveaxis(idx, -1, 0))


def scatter(indices: Any, values: Any, shape: Any) -> Array:
    """Zeros of `shape` with `values` added at `indices` `(..., rank)`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.scatter(fk.ops.array([[1], [1]]), fk.ops.array([2.0, 3.0]), (3,)).tolist()
        [0.0, 5.0, 0.0]
    """
    values = jnp.asarray(values)
    return jnp.zeros(tuple(shape), values.dtype).at[_index(indices)].add(values)


def scatter_update(inputs: Any, indices: Any, updates: Any) -> Array:
    """`inputs` with the entries at `indices` `(n, rank)` set to `updates`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.scatter_update(fk.ops.zeros(3), fk.ops.array([[2]]), fk.ops.array([1.0])).tolist()
        [0.0, 0.0, 1.0]
    """
    inputs = jnp.asarray(inputs)
    return inputs.at[_index(indices)].set(jnp.asarray(updates, inputs.dtype))


def segment_sum(
    data: Any, segment_ids: Any, num_segments: int | None = None, sorted: bool = False  # noqa: A002
) -> Array:
    """Sums of the rows of `data` grouped by `segment_ids`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.segment_sum(fk.ops.array([1.0, 2.0, 3.0]), fk.ops.array([0, 0, 1])).tolist()
        [3.0, 3.0]
    """
    return jax.ops.segment_sum(
        jnp.asarray(data), jnp.asarray(segment_ids), num_segments, indices_are_sorted=sorted
    )


def segment_max(
    data: Any, segment_ids: Any, num_segments: int | None = None, sorted: bool = False  # noqa: A002
) -> Array:
    """Maxima of the rows of `data` grouped by `segment_ids`.

    Example:
        >>> import funkeras as fk
        >>> fk.ops.segment_max(fk.ops.array([1.0, 2.0, 3.0]), fk.ops.array([0, 0, 1])).tolist()
        [2.0, 3.0]
    """
    return jax.ops.segment_max(
        jnp.asarray(data), jnp.asarray(segment_ids), num_segments, indices_are_sorted=sorted
    )


def vectorized_map(function: Callable[[Any], Any], elements: Any) -> Any:
    """`function` mapped over the leading axis of `elements` (`jax.vmap`).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.vectorized_map(lambda r: fk.ops.sum(r), fk.ops.ones((2, 3))).tolist()
        [3.0, 3.0]
    """
    return jax.vmap(function)(elements)


__dir__ = module_dir(globals())
