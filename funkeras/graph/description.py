"""The graph description: call nodes between inputs and outputs, in order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jax

from funkeras._validation import shape_str, to_snake_case
from funkeras.errors import GraphError
from funkeras.graph.tensor import Node, SymbolicTensor, is_symbolic, spec_tree
from funkeras.layers.base import InputLayer, Layer, layer_label
from funkeras.typing import InputSpec

__all__ = ["Graph", "build_graph", "assign_names"]


@dataclass(frozen=True, eq=False)
class Graph:
    """The graph description: nodes between inputs and outputs, in topological order.

    Attributes:
        inputs: Pytree of the graph's input tensors (from `funkeras.Input`).
        outputs: Pytree of its output tensors.
        nodes: Every non-input call node, in topological order.
        layers: The distinct non-input layers, in order of first call.
        input_layers: The `InputLayer`s, in the order of `inputs`' leaves.
    """

    inputs: Any
    outputs: Any
    nodes: tuple[Node, ...]
    layers: tuple[Layer, ...]
    input_layers: tuple[InputLayer, ...]

    @property
    def input_spec(self) -> InputSpec:
        return spec_tree(self.inputs)

    @property
    def output_spec(self) -> InputSpec:
        return spec_tree(self.outputs)

    def layer_nodes(self, layer: Layer) -> list[Node]:
        """The nodes that call `layer`, in topological order."""
        return [n for n in self.nodes if n.layer is layer]


def build_graph(inputs: Any, outputs: Any, *, owner: str = "Model") -> Graph:
    """Collect the nodes that lead from `inputs` to `outputs` and order them.

    Raises `GraphError` for an output not reachable from the given inputs, an
    input the outputs do not use, a cycle, or anything that is not a symbolic
    tensor, and names the tensor and layer at fault.
    """
    in_leaves = jax.tree.leaves(inputs, is_leaf=is_symbolic)
    out_leaves = jax.tree.leaves(outputs, is_leaf=is_symbolic)
    for what, leaves in (("inputs", in_leaves), ("outputs", out_leaves)):
        if not leaves:
            raise GraphError(f"{owner}: `{what}` is empty; pass at least one tensor.")
        for t in leaves:
            if not isinstance(t, SymbolicTensor):
                raise GraphError(
                    f"{owner}: every entry of `{what}` must be a symbolic tensor from "
                    f"`funkeras.Input` or a layer call, got {type(t).__name__}."
                )
    for t in in_leaves:
        if not isinstance(t.node.layer, InputLayer):
            raise GraphError(
                f"{owner}: `inputs` must be tensors made by `funkeras.Input(...)`, got "
                f"the output of {layer_label(t.node.layer)}."
            )
    if len({t.id for t in in_leaves}) != len(in_leaves):
        raise GraphError(f"{owner}: the same Input appears twice in `inputs`.")

    input_ids = {t.id for t in in_leaves}
    order: list[Node] = []
    state: dict[int, int] = {}  # id(node) -> 1 visiting, 2 done
    used_inputs: set[int] = set()

    # Depth-first over an explicit stack (no recursion: a chain of thousands of
    # layers builds, in time linear in the nodes).
    stack: list[tuple[Node, Iterator[SymbolicTensor]]] = []

    def enter(tensor: SymbolicTensor) -> Node | None:
        """The node to visit next for `tensor`, or None when nothing is to do."""
        if tensor.id in input_ids:
            used_inputs.add(tensor.id)
            return None
        node = tensor.node
        if isinstance(node.layer, InputLayer):
            raise GraphError(
                f"{owner}: the outputs depend on {node.layer.name or 'an Input'} "
                f"(shape {shape_str(tensor.shape)}), which is not among `inputs`: "
                "the graph is disconnected. Add that Input to `inputs`."
            )
        mark = state.get(id(node))
        if mark == 2:
            return None
        if mark == 1:
            path = " -> ".join(layer_label(n.layer) for n, _ in stack)
            raise GraphError(f"{owner}: the graph has a cycle through {path}.")
        state[id(node)] = 1
        return node

    for t in out_leaves:
        root = enter(t)
        if root is None:
            continue
        stack.append((root, iter(_dependencies(root))))
        while stack:
            node, pending = stack[-1]
            child_tensor = next(pending, None)
            if child_tensor is None:
                stack.pop()
                state[id(node)] = 2
                order.append(node)
                continue
            child = enter(child_tensor)
            if child is not None:
                stack.append((child, iter(_dependencies(child))))
    unused = [t for t in in_leaves if t.id not in used_inputs]
    if unused:
        names = ", ".join(t.node.layer.name or shape_str(t.shape) for t in unused)
        raise GraphError(
            f"{owner}: input(s) {names} are never used by the outputs. Remove them "
            "from `inputs` or connect them."
        )

    layers: list[Layer] = []
    seen: set[int] = set()
    for node in order:
        if id(node.layer) not in seen:
            seen.add(id(node.layer))
            layers.append(node.layer)
    input_layers = tuple(t.node.layer for t in in_leaves)
    assign_names([*input_layers, *layers], owner)
    return Graph(
        inputs=inputs,
        outputs=outputs,
        nodes=tuple(order),
        layers=tuple(layers),
        input_layers=input_layers,
    )


def _dependencies(node: Node) -> list[SymbolicTensor]:
    """The tensors a node reads: its inputs, then its explicit sequence masks."""
    return [*node.input_tensors, *(m for _, m in node.mask_tensors)]


def assign_names(layers: Sequence[Layer], owner: str) -> None:
    """Give unnamed layers unique names from graph order: dense, dense_1, ..."""
    taken: dict[str, Layer] = {}
    for layer in layers:
        if layer.name is not None:
            other = taken.get(layer.name)
            if other is not None and other is not layer:
                raise GraphError(
                    f"{owner}: two different layers are named {layer.name!r} "
                    f"({layer_label(other)} and a {type(layer).__name__}). "
                    "Layer names must be unique within a model."
                )
            taken[layer.name] = layer
    for layer in layers:
        if layer.name is None:
            base = to_snake_case(type(layer).__name__)
            if isinstance(layer, InputLayer):
                base = "input_layer"
            name, i = base, 0
            while name in taken:
                i += 1
                name = f"{base}_{i}"
            layer.name = name
            taken[name] = layer
