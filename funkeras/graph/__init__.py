"""Symbolic tensors, call nodes, the graph description, input matching, and the
one graph walker that both a model's `apply` and the layerwise executor drive."""

from funkeras.graph.description import Graph, assign_names, build_graph
from funkeras.graph.inputs import (
    cast_input,
    check_input_spec,
    match_inputs,
    prepare_inputs,
)
from funkeras.graph.tensor import (
    Input,
    Node,
    SymbolicTensor,
    is_symbolic,
    record_node,
    spec_tree,
)
from funkeras.graph.walker import (
    CallStep,
    CastStep,
    GroupStep,
    Schedule,
    apply_call,
    get_path,
    node_key,
    set_path,
    walk,
)

__all__ = [
    "SymbolicTensor",
    "Node",
    "Input",
    "is_symbolic",
    "spec_tree",
    "record_node",
    "Graph",
    "build_graph",
    "assign_names",
    "match_inputs",
    "prepare_inputs",
    "cast_input",
    "check_input_spec",
    "Schedule",
    "CallStep",
    "CastStep",
    "GroupStep",
    "walk",
    "apply_call",
    "node_key",
    "get_path",
    "set_path",
]
