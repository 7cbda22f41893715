"""`load_model` bounds the graph work a file can ask for (`max_nodes`)."""

import pytest

import funkeras as fk


def chain_model(depth):
    inp = fk.Input((3,))
    act = fk.layers.Activation("tanh")  # one layer, `depth` call nodes
    x = inp
    for _ in range(depth):
        x = act(x)
    return fk.Model(inp, fk.layers.Dense(2)(x))


def test_a_graph_over_the_node_budget_is_refused_before_it_is_built(tmp_path):
    path = str(tmp_path / "chain.fkz")
    chain_model(40).save(path)
    with pytest.raises(fk.errors.BudgetExceededError, match="max_nodes=30"):
        fk.load_model(path, max_nodes=30)
    loaded = fk.load_model(path, max_nodes=50)  # 41 calls and 3 layers listed
    assert len(loaded.get_weights()) == 2
    with pytest.raises(ValueError, match="max_nodes"):
        fk.load_model(path, max_nodes=0)
