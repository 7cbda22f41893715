"""Layer variables as arguments of `fk.ops`, as Keras' ops take them.

Inside a Keras-style `call`, `self.w` is a `Variable` handle that converts to its
array through `__jax_array__`; JAX's jitted `jax.numpy` functions no longer
accept such objects, so every `fk.ops` function reads them first.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

__all__ = ["value_of", "reads_variables"]


def value_of(a: Any) -> Any:
    """A layer variable (an object with `__jax_array__`, not an array) as its
    array; a list or tuple holding some, with them replaced; anything else as
    it is.

    Example:
        >>> import jax.numpy as jnp
        >>> class Box:
        ...     def __jax_array__(self):
        ...         return jnp.ones(2)
        >>> value_of([Box(), 3])[0].tolist()
        [1.0, 1.0]
    """
    if isinstance(a, jax.Array | np.ndarray):
        return a
    if hasattr(a, "__jax_array__"):
        return a.__jax_array__()
    if isinstance(a, list | tuple) and any(hasattr(v, "__jax_array__") for v in a):
        return type(a)(value_of(v) for v in a)
    return a


def reads_variables(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with its arguments read through `value_of` (name and docstring kept).

    Example:
        >>> import jax.numpy as jnp
        >>> class Box:
        ...     def __jax_array__(self):
        ...         return jnp.ones(2)
        >>> reads_variables(jnp.matmul)(Box(), Box()).tolist()
        2.0
    """

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Any:
        kwargs = {k: value_of(v) for k, v in kwargs.items()}
        return fn(*map(value_of, args), **kwargs)

    return op
