"""`clone_model`: a new model with the same architecture and fresh weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from funkeras.graph import Input, is_symbolic
from funkeras.layers.base import Layer
from funkeras.models.model import Model
from funkeras.models.sequential import Sequential
from funkeras.models.serialization import layer_outputs

__all__ = ["clone_model"]


def _fresh_copy(layer: Layer) -> Layer:
    """Keras' default `clone_function`: the same class from the same config."""
    return type(layer).from_config(layer.get_config())


def _clone_layer(clone_function: Callable[[Layer], Any], layer: Layer) -> Layer:
    new = clone_function(layer)
    if not isinstance(new, Layer):
        raise TypeError(
            f"clone_model: `clone_function` must return a layer; for "
            f"{layer.name!r} it returned {type(new).__name__}."
        )
    return new


def _new_inputs(model: Model, input_tensors: Any) -> list[Any]:
    graph = model.require_graph("clone_model")
    if input_tensors is None:
        return [
            Input(shape=tuple(layer.shape), dtype=layer.dtype, name=layer.name)
            for layer in graph.input_layers
        ]
    given = jax.tree.leaves(input_tensors, is_leaf=is_symbolic)
    if len(given) != len(graph.input_layers) or not all(map(is_symbolic, given)):
        raise ValueError(
            f"clone_model: `input_tensors` must be {len(graph.input_layers)} "
            "symbolic tensor(s) from `fk.Input`, one per model input; got "
            f"{input_tensors!r:.200}."
        )
    return given


def clone_model(
    model: Model,
    input_tensors: Any = None,
    clone_function: Callable[[Layer], Any] | None = None,
) -> Model:
    """A new model with `model`'s architecture and new weights (Keras' name).

    Each layer is replaced by `clone_function(layer)` (by default a new layer of
    the same class from `layer.get_config()`, as Keras does), and the calls are
    replayed in the same order, so a layer shared between calls stays shared.
    The clone is not compiled and its weights are a new draw (its seed comes
    from the process-wide seed stream, `fk.utils.set_random_seed`). Copy the weights with `clone.set_weights(model.
    get_weights())`.

    Args:
        model: A `Sequential` or functional `Model` with a known input.
        input_tensors: Optional `fk.Input` tensors to build the clone on (one
            per model input, in order).
        clone_function: Called on each layer; returns the layer to use, e.g.
            `lambda layer: layer` to share a layer, or a copy with a changed
            config.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])
        >>> clone = fk.models.clone_model(model)
        >>> clone.count_params() == model.count_params()
        True
        >>> bool(np.array_equal(clone.get_weights()[0], model.get_weights()[0]))
        False
        >>> clone.set_weights(model.get_weights())
        >>> x = np.ones((2, 3), np.float32)
        >>> bool(np.allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0)))
        True
    """
    if not isinstance(model, Model):
        raise TypeError(
            f"clone_model: expected a funkeras Sequential or Model, got "
            f"{type(model).__name__}."
        )
    clone_function = clone_function or _fresh_copy
    if not callable(clone_function):
        raise TypeError(
            f"clone_model: `clone_function` must be callable, got {clone_function!r}."
        )
    seed = None  # a fresh draw from the process-wide seed stream, as Keras
    if isinstance(model, Sequential):
        layers = [_clone_layer(clone_function, layer) for layer in model.layers]
        if not model.built and input_tensors is None:
            return Sequential(layers, name=model.name, seed=seed)
        (inp,) = _new_inputs(model, input_tensors)
        return Sequential([inp, *layers], name=model.name, seed=seed)
    graph = model.require_graph("clone_model")
    inputs = _new_inputs(model, input_tensors)
    tensors = {
        layer_outputs(graph, layer).id: t
        for layer, t in zip(graph.input_layers, inputs, strict=True)
    }
    clones: dict[int, Layer] = {}
    for node in graph.nodes:
        layer = node.layer
        if id(layer) not in clones:
            clones[id(layer)] = _clone_layer(clone_function, layer)
        args = jax.tree.map(lambda t: tensors[t.id], node.inputs, is_leaf=is_symbolic)
        out = clones[id(layer)](args)
        for old, new in zip(
            node.output_tensors, jax.tree.leaves(out, is_leaf=is_symbolic), strict=True
        ):
            tensors[old.id] = new
    new_inputs = jax.tree.map(
        lambda t: tensors[t.id], graph.inputs, is_leaf=is_symbolic
    )
    outputs = jax.tree.map(lambda t: tensors[t.id], graph.outputs, is_leaf=is_symbolic)
    return type(model)(new_inputs, outputs, name=model.name, seed=seed)
