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

import builtins
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from funkeras.ops.core import (  # noqa: A004
    cond,
    fori_loop,
    scan,
    scatter,
    scatter_update,
    segment_max,
    segment_sum,
    slice,
    slice_update,
    stop_gradient,
    vectorized_map,
    while_loop,
)
from funkeras.ops.nn import (  # noqa: A004
    average_pool,
    binary_crossentropy,
    categorical_crossentropy,
    conv,
    dot_product_attention,
    elu,
    gelu,
    hard_sigmoid,
    leaky_relu,
    log_sigmoid,
    log_softmax,
    max_pool,
    moments,
    multi_hot,
    normalize,
    one_hot,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    softsign,
    sparse_categorical_crossentropy,
)
from funkeras.ops.numpy import (  # noqa: A004
    abs,
    absolute,
    add,
    all,
    any,
    arange,
    argmax,
    argmin,
    argsort,
    array,
    broadcast_to,
    cast,
    ceil,
    clip,
    concatenate,
    convert_to_numpy,
    convert_to_tensor,
    cos,
    cumprod,
    cumsum,
    diag,
    divide,
    dot,
    dtype,
    einsum,
    equal,
    erf,
    exp,
    expand_dims,
    eye,
    flip,
    floor,
    full,
    full_like,
    greater,
    greater_equal,
    identity,
    is_tensor,
    isfinite,
    isinf,
    isnan,
    less,
    less_equal,
    linspace,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    moveaxis,
    multiply,
    negative,
    norm,
    not_equal,
    ones,
    ones_like,
    pad,
    power,
    prod,
    repeat,
    reshape,
    round,
    shape,
    sign,
    sin,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    subtract,
    sum,
    swapaxes,
    take,
    take_along_axis,
    tan,
    tanh,
    tile,
    top_k,
    transpose,
    tril,
    triu,
    true_divide,
    var,
    where,
    zeros,
    zeros_like,
)

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


def _value(a: Any) -> Any:
    """A layer variable (an object with `__jax_array__`, not an array) as its
    array; lists and tuples of them too."""
    if isinstance(a, jax.Array | np.ndarray):
        return a
    if hasattr(a, "__jax_array__"):
        return a.__jax_array__()
    if isinstance(a, list | tuple) and builtins.any(
        hasattr(v, "__jax_array__") for v in a
    ):
        return type(a)(_value(v) for v in a)
    return a


def _reads_variables(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` taking layer variables (`self.w` in a Keras-style `call`) as Keras'
    ops do: JAX's jitted functions no longer convert `__jax_array__` objects."""

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Any:
        kwargs = {k: _value(v) for k, v in kwargs.items()}
        return fn(*builtins.map(_value, args), **kwargs)

    return op


for _name in __all__:
    globals()[_name] = _reads_variables(globals()[_name])
del _name
