"""Graph building walks an explicit stack: a chain deeper than Python's recursion
limit builds, and a cycle or a disconnected input is still named."""

import sys

import pytest

import funkeras as fk
from funkeras.graph import build_graph


def test_a_chain_deeper_than_the_recursion_limit_builds():
    inp = fk.Input((2,))
    act = fk.layers.Activation("relu")  # one shared layer: cheap to call
    x = inp
    depth = sys.getrecursionlimit() + 500
    for _ in range(depth):
        x = act(x)
    graph = build_graph(inp, x)
    assert len(graph.nodes) == depth
    assert graph.layers == (act,)
    assert [n.layer for n in graph.nodes[:2]] == [act, act]
    assert graph.nodes[0].input_tensors[0] is inp


def test_a_disconnected_input_is_still_named():
    a, b = fk.Input((2,)), fk.Input((2,))
    out = fk.layers.Add()([a, b])
    with pytest.raises(fk.errors.GraphError, match="disconnected"):
        build_graph(a, out)
