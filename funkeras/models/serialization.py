"""Model configs as pure data, and models rebuilt from them.

A config names layers only by registry key (`"Dense"`, `"Custom>MyLayer"`) and
refers to tensors as `[layer_name, node_index, tensor_index]`. Rebuilding looks
classes up through a `resolve(class_name) -> type` function that the caller
supplies (the saving registry by default); nothing is imported by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax

from funkeras.errors import GraphError
from funkeras.graph import Graph, Input, SymbolicTensor, is_symbolic, record_node
from funkeras.layers.base import InputLayer, Layer
from funkeras.models import model as model_module
from funkeras.saving.registry import get_registered_class, registry_key

__all__ = [
    "layer_config",
    "layer_from_config",
    "functional_config",
    "functional_from_config",
    "sequential_config",
    "sequential_from_config",
]

# `model_module` is imported as a module (its classes are looked up when a
# config is read): `model.py` imports this module while it loads.

Resolve = Callable[[str], type]


def layer_config(layer: Layer) -> dict[str, Any]:
    """`{"class_name": registry key, "config": layer.get_config()}`."""
    return {"class_name": registry_key(type(layer)), "config": layer.get_config()}


def layer_from_config(data: Mapping[str, Any], resolve: Resolve | None = None) -> Layer:
    """Rebuild one layer (or nested model) from `layer_config`'s output."""
    resolve = resolve or get_registered_class
    if (
        not isinstance(data, Mapping)
        or "class_name" not in data
        or "config" not in data
    ):
        raise GraphError(
            f"A layer entry needs `class_name` and `config`, got {data!r:.200}."
        )
    cls = resolve(data["class_name"])
    config = data["config"]
    if not isinstance(config, Mapping):
        raise GraphError(f"The config of {data['class_name']!r} must be a dict.")
    if isinstance(cls, type) and issubclass(cls, model_module.Model):
        return cls.from_config(dict(config), resolve)
    return cls.from_config(dict(config))


def _ref_tree(tree: Any, refs: dict[int, list[Any]]) -> Any:
    if tree is None:  # an absent optional input of a multi-input call
        return None
    if isinstance(tree, SymbolicTensor):
        return {"ref": refs[tree.id]}
    if isinstance(tree, Mapping):
        return {"dict": {k: _ref_tree(v, refs) for k, v in tree.items()}}
    if isinstance(tree, list | tuple):
        return {"list": [_ref_tree(v, refs) for v in tree]}
    raise GraphError(
        f"Cannot serialize a graph structure holding {type(tree).__name__}."
    )


def _from_ref_tree(
    data: Any, tensors: dict[tuple[str, int, int], SymbolicTensor]
) -> Any:
    if not isinstance(data, Mapping) or len(data) != 1:
        raise GraphError(f"Malformed tensor reference {data!r:.200}.")
    ((kind, value),) = data.items()
    if kind == "dict" and isinstance(value, Mapping):
        # None: an absent optional input of a multi-input call
        return {
            k: None if v is None else _from_ref_tree(v, tensors)
            for k, v in value.items()
        }
    if kind == "list" and isinstance(value, list):
        return [None if v is None else _from_ref_tree(v, tensors) for v in value]
    if kind == "ref":
        if not (
            isinstance(value, list)
            and len(value) == 3
            and isinstance(value[0], str)
            and all(isinstance(v, int) for v in value[1:])
        ):
            raise GraphError(f"Malformed tensor reference {value!r:.200}.")
        key = (value[0], value[1], value[2])
        if key not in tensors:
            raise GraphError(f"Tensor reference {value!r} points to no earlier tensor.")
        return tensors[key]
    raise GraphError(f"Malformed tensor reference {data!r:.200}.")


def sequential_config(
    model: Any, input_tensor: SymbolicTensor | None, layers: list[Layer]
) -> dict[str, Any]:
    """The config of a Sequential model: its Input (if any) and layers in order."""
    return {
        "name": model.name,
        "seed": model.seed,
        "trainable": model.trainable,
        "input": None
        if input_tensor is None
        else {
            "shape": list(input_tensor.node.layer.shape),
            "dtype": str(input_tensor.spec.dtype),
        },
        "layers": [layer_config(layer) for layer in layers],
    }


def functional_config(model: Any) -> dict[str, Any]:
    """The config of a functional model: its layers, nodes, inputs and outputs."""
    graph = model.require_graph("get_config")
    refs: dict[int, list[Any]] = {}
    layers_data = []
    node_counts: dict[str, int] = {}
    for layer in graph.input_layers:
        refs[layer_outputs(graph, layer).id] = [layer.name, 0, 0]
    nodes = []
    for layer in graph.layers:
        layers_data.append({"name": layer.name, **layer_config(layer)})
    for node in graph.nodes:
        idx = node_counts.get(node.layer.name, 0)
        node_counts[node.layer.name] = idx + 1
        entry = {"layer": node.layer.name, "inputs": _ref_tree(node.inputs, refs)}
        if node.options:
            entry["options"] = node.options
        if node.training is not None:
            entry["training"] = node.training
        if node.mask is not None:
            entry["mask"] = _ref_tree(node.mask, refs)
        nodes.append(entry)
        for t in node.output_tensors:
            refs[t.id] = [node.layer.name, idx, node.output_tensors.index(t)]
    return {
        "name": model.name,
        "seed": model.seed,
        "trainable": model.trainable,
        "input_layers": [
            {"name": layer.name, "shape": list(layer.shape), "dtype": layer.dtype}
            for layer in graph.input_layers
        ],
        "layers": layers_data,
        "nodes": nodes,
        "inputs": _ref_tree(graph.inputs, refs),
        "outputs": _ref_tree(graph.outputs, refs),
    }


def layer_outputs(graph: Graph, layer: InputLayer) -> SymbolicTensor:
    """The input tensor of `graph` that `layer` (one of its Inputs) makes."""
    for t in jax.tree.leaves(graph.inputs, is_leaf=is_symbolic):
        if t.node.layer is layer:
            return t
    raise GraphError(f"Input {layer.name!r} is not among the graph's inputs.")


def _expect(config: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = config.get(key)
    if not isinstance(value, kind):
        raise GraphError(
            f"Model config: `{key}` must be a {kind}, got {type(value).__name__}."
        )
    return value


def _header(config: Any) -> tuple[Any, int, bool]:
    """A model config's `name`, `seed` and `trainable`, checked."""
    if not isinstance(config, Mapping):
        raise GraphError("Model config must be a dict.")
    name = config.get("name")
    seed = config.get("seed", 0)
    trainable = config.get("trainable", True)
    if not isinstance(seed, int) or not isinstance(trainable, bool):
        raise GraphError("Model config: `seed` must be an int and `trainable` a bool.")
    return name, seed, trainable


def sequential_from_config(
    cls: type, config: Mapping[str, Any], resolve: Resolve | None = None
) -> Any:
    """Rebuild a Sequential model (class `cls`) from its config (weights fresh)."""
    resolve = resolve or get_registered_class
    name, seed, trainable = _header(config)
    layers = [layer_from_config(d, resolve) for d in _expect(config, "layers", list)]
    inp = config.get("input")
    items: list[Any] = []
    if inp is not None:
        items.append(
            Input(
                shape=tuple(_expect(inp, "shape", list)),
                dtype=_expect(inp, "dtype", str),
            )
        )
    model = cls(items + layers, name=name, seed=seed)
    if not trainable:
        model.trainable = False
    return model


def functional_from_config(
    cls: type, config: Mapping[str, Any], resolve: Resolve | None = None
) -> Any:
    """Rebuild a functional model (class `cls`) from its config (weights fresh)."""
    resolve = resolve or get_registered_class
    name, seed, trainable = _header(config)
    tensors: dict[tuple[str, int, int], SymbolicTensor] = {}
    for entry in _expect(config, "input_layers", list):
        t = Input(
            shape=tuple(_expect(entry, "shape", list)),
            dtype=_expect(entry, "dtype", str),
            name=_expect(entry, "name", str),
        )
        tensors[(entry["name"], 0, 0)] = t
    by_name: dict[str, Layer] = {}
    for entry in _expect(config, "layers", list):
        layer = layer_from_config(entry, resolve)
        lname = _expect(entry, "name", str)
        if lname in by_name:
            raise GraphError(f"Model config: two layers are named {lname!r}.")
        layer.name = lname
        by_name[lname] = layer
    counts: dict[str, int] = {}
    for entry in _expect(config, "nodes", list):
        lname = _expect(entry, "layer", str)
        if lname not in by_name:
            raise GraphError(f"Model config: a node calls unknown layer {lname!r}.")
        args = _from_ref_tree(entry.get("inputs"), tensors)
        options = entry.get("options", {})
        training = entry.get("training")
        if not isinstance(options, Mapping) or training not in (None, True, False):
            raise GraphError(
                f"Model config: a node of {lname!r} has malformed `options` or "
                "`training`."
            )
        if not jax.tree.leaves(args, is_leaf=is_symbolic):
            raise GraphError(f"Model config: a node of {lname!r} has no inputs.")
        mask = None
        if entry.get("mask") is not None:
            mask = _from_ref_tree(entry["mask"], tensors)
            if not isinstance(mask, list):
                raise GraphError(
                    f"Model config: a node of {lname!r} has a malformed `mask`."
                )
        out = record_node(
            by_name[lname], args, options=dict(options), training=training, mask=mask
        )
        idx = counts.get(lname, 0)
        counts[lname] = idx + 1
        for j, t in enumerate(jax.tree.leaves(out, is_leaf=is_symbolic)):
            tensors[(lname, idx, j)] = t
    inputs = _from_ref_tree(config.get("inputs"), tensors)
    outputs = _from_ref_tree(config.get("outputs"), tensors)
    model = cls.__new__(cls)
    model_module.Model.__init__(
        model, inputs, outputs, name=name, seed=seed, trainable=trainable
    )
    return model
