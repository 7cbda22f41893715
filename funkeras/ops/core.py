"""`fk.ops`' core (`keras.ops.core`): control flow, slicing, scatter, vmap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from funkeras._catalogue import module_dir
from funkeras._validation import check_int
from funkeras.typing import Array

__all__ = [
    "cond",
    "fori_loop",
    "scan",
    "scatter",
    "scatter_update",
    "segment_max",
    "segment_sum",
    "slice",
    "slice_update",
    "stop_gradient",
    "vectorized_map",
    "while_loop",
]

stop_gradient = lax.stop_gradient


def cond(pred: Any, true_fn: Callable[[], Any], false_fn: Callable[[], Any]) -> Any:
    """`true_fn()` if `pred` else `false_fn()` (both traced under jit).

    Example:
        >>> import funkeras as fk
        >>> float(fk.ops.cond(True, lambda: fk.ops.ones(()), lambda: fk.ops.zeros(())))
        1.0
    """
    return lax.cond(pred, true_fn, false_fn)


def fori_loop(
    lower: int, upper: int, body_fun: Callable[[Any, Any], Any], init_val: Any
) -> Any:
    """`val = body_fun(i, val)` for `i` in `[lower, upper)`.

    Example:
        >>> import funkeras as fk
        >>> int(fk.ops.fori_loop(0, 4, lambda i, v: v + i, 0))
        6
    """
    return lax.fori_loop(lower, upper, body_fun, init_val)


def while_loop(
    cond: Callable[..., Any],
    body: Callable[..., Any],
    loop_vars: Any,
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
        limit = check_int(
            "while_loop", "maximum_iterations", maximum_iterations, minimum=0
        )
        out = lax.while_loop(
            lambda a: jnp.logical_and(cond(*a[:-1]), a[-1] < limit),
            lambda a: (*step(a[:-1]), a[-1] + 1),
            (*state, 0),
        )[:-1]
    return out if is_tuple else out[0]


def scan(
    f: Callable[[Any, Any], Any],
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
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
        raise ValueError(
            f"scatter: `indices` must have a last axis of coordinates, got {idx.shape}."
        )
    return tuple(jnp.moveaxis(idx, -1, 0))


def scatter(indices: Any, values: Any, shape: Any) -> Array:
    """Zeros of `shape` with `values` added at `indices` `(..., rank)`.

    Example:
        >>> import funkeras as fk
        >>> idx, val = fk.ops.array([[1], [1]]), fk.ops.array([2.0, 3.0])
        >>> fk.ops.scatter(idx, val, (3,)).tolist()
        [0.0, 5.0, 0.0]
    """
    values = jnp.asarray(values)
    return jnp.zeros(tuple(shape), values.dtype).at[_index(indices)].add(values)


def scatter_update(inputs: Any, indices: Any, updates: Any) -> Array:
    """`inputs` with the entries at `indices` `(n, rank)` set to `updates`.

    Example:
        >>> import funkeras as fk
        >>> idx, val = fk.ops.array([[2]]), fk.ops.array([1.0])
        >>> fk.ops.scatter_update(fk.ops.zeros(3), idx, val).tolist()
        [0.0, 0.0, 1.0]
    """
    inputs = jnp.asarray(inputs)
    return inputs.at[_index(indices)].set(jnp.asarray(updates, inputs.dtype))


def segment_sum(
    data: Any,
    segment_ids: Any,
    num_segments: int | None = None,
    sorted: bool = False,  # noqa: A002
) -> Array:
    """Sums of the rows of `data` grouped by `segment_ids`.

    Example:
        >>> import funkeras as fk
        >>> data, ids = fk.ops.array([1.0, 2.0, 3.0]), fk.ops.array([0, 0, 1])
        >>> fk.ops.segment_sum(data, ids).tolist()
        [3.0, 3.0]
    """
    return jax.ops.segment_sum(
        jnp.asarray(data),
        jnp.asarray(segment_ids),
        num_segments,
        indices_are_sorted=sorted,
    )


def segment_max(
    data: Any,
    segment_ids: Any,
    num_segments: int | None = None,
    sorted: bool = False,  # noqa: A002
) -> Array:
    """Maxima of the rows of `data` grouped by `segment_ids`.

    Example:
        >>> import funkeras as fk
        >>> data, ids = fk.ops.array([1.0, 2.0, 3.0]), fk.ops.array([0, 0, 1])
        >>> fk.ops.segment_max(data, ids).tolist()
        [2.0, 3.0]
    """
    return jax.ops.segment_max(
        jnp.asarray(data),
        jnp.asarray(segment_ids),
        num_segments,
        indices_are_sorted=sorted,
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
