"""Helpers shared by the layer families of this package (private to `layers`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from funkeras.layers.base import Layer, layer_label

__all__ = ["autocast", "check_single_spec", "resolve"]



def autocast(x: Any, dtype: str) -> Any:
    """Cast floating arrays in `x` (a pytree) to `dtype`; leave others alone (Keras)."""

    def cast(a: Any) -> Any:
        if not isinstance(a, jax.Array):  # arrays pass through with no dispatch
            a = jnp.asarray(a)
        if jnp.issubdtype(a.dtype, jnp.floating) and a.dtype != dtype:
            return a.astype(dtype)
        return a

    return jax.tree.map(cast, x)


def check_single_spec(layer: Layer, input_spec: Any) -> jax.ShapeDtypeStruct:
    """The one input spec of a single-input layer, or a clear TypeError."""
    if not (hasattr(input_spec, "shape") and hasattr(input_spec, "dtype")):
        raise TypeError(
            f"{layer_label(layer)}: expected one input spec "
            f"(a jax.ShapeDtypeStruct without the batch axis), got "
            f"{type(input_spec).__name__}. This layer takes a single input; "
            "merge several inputs first (e.g. with `Concatenate`)."
        )
    return input_spec


def resolve(owner: str, arg: str, value: Any, getter: Callable[[Any], Any]) -> None:
    """Check at construction that `getter` (e.g. `activations.get`) accepts `value`."""
    if value is None:
        return
    if not isinstance(value, str | dict) and not callable(value):
        raise TypeError(
            f"{owner}: `{arg}` must be a name, a config dict, a callable or None, "
            f"got {value!r} ({type(value).__name__})."
        )
    try:
        getter(value)
    except TypeError as e:
        raise TypeError(f"{owner}: invalid `{arg}`={value!r}: {e}") from e
    except (ValueError, KeyError) as e:
        raise ValueError(f"{owner}: invalid `{arg}`={value!r}: {e}") from e
