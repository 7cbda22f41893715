"""`fk.ops`' NumPy-like ops (`keras.ops.numpy`): arrays, math, reductions, shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from funkeras._catalogue import module_dir
from funkeras._validation import check_choice, check_int, normalize_dtype
from funkeras.typing import Array

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
    "broadcast_to",
    "cast",
    "ceil",
    "clip",
    "concatenate",
    "convert_to_numpy",
    "convert_to_tensor",
    "cos",
    "cumprod",
    "cumsum",
    "diag",
    "divide",
    "dot",
    "dtype",
    "einsum",
    "equal",
    "erf",
    "exp",
    "expand_dims",
    "eye",
    "flip",
    "floor",
    "full",
    "full_like",
    "greater",
    "greater_equal",
    "identity",
    "is_tensor",
    "isfinite",
    "isinf",
    "isnan",
    "less",
    "less_equal",
    "linspace",
    "log",
    "log1p",
    "logical_and",
    "logical_not",
    "logical_or",
    "logsumexp",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "moveaxis",
    "multiply",
    "negative",
    "norm",
    "not_equal",
    "ones",
    "ones_like",
    "pad",
    "power",
    "prod",
    "repeat",
    "reshape",
    "round",
    "shape",
    "sign",
    "sin",
    "split",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "std",
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
    "where",
    "zeros",
    "zeros_like",
]

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


def convert_to_tensor(
    x: Any, dtype: Any = None, sparse: Any = None, ragged: Any = None
) -> Array:
    """`x` as a JAX array (Python floats become float32, ints int32).

    Example:
        >>> import funkeras as fk
        >>> str(fk.ops.convert_to_tensor([1.0, 2.0]).dtype)
        'float32'
    """
    return jnp.asarray(
        x, dtype=None if dtype is None else _dtype("convert_to_tensor", dtype)
    )


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
    return jnp.arange(
        start, stop, step, dtype=None if dtype is None else _dtype("arange", dtype)
    )


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
    return jnp.full_like(
        x, fill_value, None if dtype is None else _dtype("full_like", dtype)
    )


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
    start: Any,
    stop: Any,
    num: int = 50,
    endpoint: bool = True,
    retstep: bool = False,
    dtype: Any = None,
    axis: int = 0,
) -> Any:
    """`num` evenly spaced values from `start` to `stop` (float32 by default).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.linspace(0, 1, 3).tolist()
        [0.0, 0.5, 1.0]
    """
    return jnp.linspace(
        start, stop, num, endpoint, retstep, _dtype("linspace", dtype), axis
    )


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
    return jnp.prod(
        x,
        axis=_axis(axis),
        keepdims=keepdims,
        dtype=None if dtype is None else _dtype("prod", dtype),
    )


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


def pad(
    x: Any, pad_width: Any, mode: str = "constant", constant_values: Any = None
) -> Array:
    """`x` padded by `pad_width` (NumPy's `pad`; `constant_values` needs mode constant).

    Example:
        >>> import funkeras as fk
        >>> fk.ops.pad(fk.ops.array([1, 2]), [[1, 1]]).tolist()
        [0, 1, 2, 0]
    """
    mode = check_choice(
        "pad",
        "mode",
        mode,
        (
            "constant",
            "edge",
            "linear_ramp",
            "maximum",
            "mean",
            "median",
            "minimum",
            "reflect",
            "symmetric",
            "wrap",
            "empty",
        ),
    )
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
    return jnp.linalg.norm(
        _float(jnp.asarray(x)), ord=ord, axis=_axis(axis), keepdims=keepdims
    )


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


__dir__ = module_dir(globals())
