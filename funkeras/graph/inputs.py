"""Matching what a caller feeds to a graph's inputs, and casting it as Keras does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._validation import shape_str
from funkeras.graph.description import Graph
from funkeras.layers.base import InputLayer, is_known_dim, public_shape
from funkeras.typing import Array, InputSpec

__all__ = ["match_inputs", "prepare_inputs", "cast_input", "check_input_spec"]


def check_input_spec(graph: Graph, input_spec: InputSpec, owner: str) -> None:
    """Check that `input_spec` (no batch axis) fits the graph's inputs."""
    want = jax.tree.leaves(graph.input_spec)
    got = jax.tree.leaves(input_spec)
    if len(got) != len(want):
        raise ValueError(
            f"{owner}: expected {len(want)} input(s), got {len(got)} in the input spec."
        )
    for layer, w, g in zip(graph.input_layers, want, got, strict=True):
        if len(g.shape) != len(w.shape) or any(
            is_known_dim(wd) and (not is_known_dim(gd) or gd != wd)
            for gd, wd in zip(g.shape, w.shape, strict=True)
        ):
            raise ValueError(
                f"{owner}: input {layer.name!r} expects examples of shape "
                f"{shape_str(public_shape(w.shape))} (batch axis excluded), got "
                f"{shape_str(public_shape(g.shape))}."
            )


def match_inputs(graph: Graph, x: Any, owner: str) -> list[Any]:
    """What `x` feeds to each of the graph's Inputs, in `input_layers` order.

    `x` is one value, a list/tuple (in order), or a dict keyed as the graph's
    inputs dict (or by Input name). The values may be arrays or symbolic tensors
    (a nested model's call).
    """
    layers = graph.input_layers
    if isinstance(x, Mapping):
        if isinstance(graph.inputs, Mapping):
            keys = list(graph.inputs.keys())
            flat = [x[k] for k in sorted(keys)] if set(keys) <= set(x) else None
        else:
            names = [layer.name for layer in layers]
            flat = [x[n] for n in names] if set(names) <= set(x) else None
        if flat is None:
            raise ValueError(
                f"{owner}: got a dict of inputs with keys {sorted(x)}, but the model's "
                f"inputs are named {[layer.name for layer in layers]}."
            )
    elif isinstance(x, list | tuple):
        flat = list(x)
    else:
        flat = [x]
    if len(flat) != len(layers):
        raise ValueError(
            f"{owner}: the model has {len(layers)} input(s) "
            f"({[layer.name for layer in layers]}), got {len(flat)}."
        )
    return flat


def cast_input(
    layer: InputLayer, x: Any, want: jax.ShapeDtypeStruct, owner: str
) -> Array:
    """Check `x`'s shape against the Input's and cast integer/float64 data to its dtype.

    Floats fed to an integer Input are refused.
    """
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    got_dtype = jnp.dtype(x.dtype)
    shape = tuple(np.shape(x))
    if len(shape) != len(want.shape) + 1 or any(
        isinstance(g, int) and is_known_dim(w) and g != w
        for g, w in zip(shape[1:], want.shape, strict=True)
    ):
        raise ValueError(
            f"{owner}: input {layer.name!r} expects shape "
            f"{shape_str((None, *public_shape(want.shape)))}, got {shape_str(shape)}. "
            "Check the data's feature axes (or the model's Input shape)."
        )
    if got_dtype == want.dtype:
        return x
    want_float = jnp.issubdtype(want.dtype, jnp.floating)
    got_int = jnp.issubdtype(got_dtype, jnp.integer) or got_dtype == jnp.bool_
    if not want_float and not got_int:
        raise TypeError(
            f"{owner}: input {layer.name!r} expects {want.dtype} values (e.g. token "
            f"ids for an Embedding), got {got_dtype}. Cast the data to integers, or "
            "declare the Input with a float dtype."
        )
    return jnp.asarray(x).astype(want.dtype)


def prepare_inputs(graph: Graph, x: Any, owner: str) -> list[Array]:
    """Match `x` to the graph's inputs (array, list, or dict by Input name) and cast.

    Integer and float64 data are cast to each Input's dtype, as Keras casts them;
    floats fed to an integer Input are refused.
    """
    specs = jax.tree.leaves(graph.input_spec)
    return [
        cast_input(layer, value, spec, owner)
        for layer, value, spec in zip(
            graph.input_layers, match_inputs(graph, x, owner), specs, strict=True
        )
    ]
