"""The one graph walker: a model's `apply` and the layerwise executor drive it alike.

One functional model with a branch, a merge, a shared layer called twice, a nested
model used as a layer, Dropout and BatchNormalization (so keys and state matter):
the whole-model driver (`model.apply`, with and without `jax.jit`) and the
layerwise driver (`Walker` over a `Plan`, compiled per layer) must give the same
outputs, states, random draws and gradients.
"""

from collections import Counter

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras.errors import GraphError
from funkeras.graph import (
    Graph,
    Input,
    Schedule,
    SymbolicTensor,
    build_graph,
    match_inputs,
    node_key,
    prepare_inputs,
    walk,
)
from funkeras.layers.base import SymbolicValue
from funkeras.training.layerwise import Plan, Walker, run_plan

L = fk.layers


def make_model():
    inner = fk.Sequential(
        [fk.Input(shape=(6,)), L.Dense(5, activation="relu"), L.Dropout(0.3)],
        name="inner",
    )
    inp = Input(shape=(4,))
    shared = L.Dense(6, activation="tanh", name="shared")
    a = shared(L.Dropout(0.5)(inp))
    b = shared(L.BatchNormalization()(L.Dense(4)(inp)))
    h = L.Add()([a, b])
    h = L.Concatenate()([inner(h), L.Dense(3)(h)])
    out = L.Dense(2)(h)
    model = fk.Model(inp, out, seed=3)
    params, state = model.init(
        jax.random.key(0), jax.ShapeDtypeStruct((4,), jnp.float32)
    )
    return model, params, state


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-6)


def layerwise_forward(model, params, state, x, *, training, key, need=None):
    plan = Plan(model.graph)
    walker = Walker(plan, Counter(), Counter())
    inputs = prepare_inputs(model.graph, x, "test")
    plan.bind(params, state)  # which calls hold params: what `needs` asks
    tape = walker.forward(
        params,
        state,
        inputs,
        training=training,
        key=key,
        step=None,
        mask=None,
        need=need(plan) if need else None,
    )
    return plan, walker, tape


@pytest.mark.parametrize("training", [False, True])
def test_whole_model_and_layerwise_drivers_agree(training):
    model, params, state = make_model()
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    key = jax.random.key(7) if training else None
    y_eager, s_eager = model.apply(params, state, x, training=training, key=key)
    y_jit, s_jit = jax.jit(
        lambda p, s, x, k: model.apply(p, s, x, training=training, key=k)
    )(params, state, x, key)
    plan, _, tape = layerwise_forward(
        model, params, state, x, training=training, key=key
    )
    y_lw = plan.out_tree.unflatten([tape.values[s] for s in plan.output_slots])
    y_plan, s_plan = run_plan(
        plan, params, state, [jnp.asarray(x)], training=training, key=key
    )
    assert_trees_equal(y_eager, y_jit)
    assert_trees_equal(y_eager, y_lw)
    assert_trees_equal(y_eager, plan.out_tree.unflatten(y_plan))
    assert_trees_equal(s_eager, s_jit)
    assert_trees_equal(s_eager, tape.new_state)
    assert_trees_equal(s_eager, s_plan)
    if training:  # the batch statistics moved, and dropout drew different masks
        bn = [k for k in state if k.startswith("batch_normalization")][0]
        assert not np.allclose(s_eager[bn]["moving_mean"], state[bn]["moving_mean"])
        y_other, _ = model.apply(params, state, x, training=True, key=jax.random.key(8))
        assert not np.allclose(np.asarray(y_other), np.asarray(y_eager))


def test_layerwise_gradients_match_jax_grad_of_the_whole_apply():
    model, params, state = make_model()
    x = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32)
    w = jnp.asarray(np.random.default_rng(2).normal(size=(8, 2)), jnp.float32)
    key = jax.random.key(11)

    def loss(p):
        y, _ = model.apply(p, state, x, training=True, key=key)
        return jnp.sum(y * w)

    want = jax.grad(loss)(params)
    plan, walker, tape = layerwise_forward(
        model,
        params,
        state,
        x,
        training=True,
        key=key,
        need=lambda plan: plan.needs(False),
    )
    need = plan.needs(False)
    grads, _ = walker.backward(tape, [w], training=True, need=need)
    got = jax.tree.map(jnp.zeros_like, params)
    for op in plan.param_ops:
        g = grads[op.index]
        node = got
        for k in op.param_path[:-1]:
            node = node[k]
        node[op.param_path[-1]] = jax.tree.map(jnp.add, node[op.param_path[-1]], g)
    assert_trees_equal(want, got)
    assert float(jnp.abs(want["inner"]["dense"]["kernel"]).sum()) > 0


def test_schedule_key_paths_and_nested_walk():
    model, _, _ = make_model()
    flat = Schedule(model.graph)
    nested = Plan(model.graph)
    # The whole-model schedule has one call per node (the nested model is one).
    assert [op.key_path for op in flat.calls] == [
        (i,) for i in range(len(model.graph.nodes))
    ]
    inner_index = next(
        i for i, n in enumerate(model.graph.nodes) if n.layer.name == "inner"
    )
    inner_ops = [op for op in nested.calls if op.param_path[0] == "inner"]
    assert [op.key_path for op in inner_ops] == [(inner_index, 0), (inner_index, 1)]
    assert [op.name for op in inner_ops] == ["inner/dense", "inner/dropout"]
    key = jax.random.key(0)
    assert np.array_equal(
        jax.random.key_data(node_key(key, 5, (2, 1))),
        jax.random.key_data(
            jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, 5), 2), 1)
        ),
    )
    assert node_key(None, 5, (1,)) is None


def test_walk_feeds_each_call_its_inputs_by_slot():
    inp = Input(shape=(3,))
    d = L.Dense(2)
    out = L.Concatenate()([d(inp), d(inp)])
    graph = build_graph(inp, out)
    schedule = Schedule(graph)
    seen = []

    def call(step, xs, ms):
        seen.append((step.layer, len(xs)))
        assert ms == (None,) * len(xs)
        return ([xs[0] * 2] if step.layer is d else [jnp.concatenate(xs, -1)]), None

    values, masks = walk(schedule, [jnp.ones((1, 3))], call)
    assert masks == [None] * schedule.n_slots
    assert [layer for layer, _ in seen] == [d, d, out.node.layer]
    assert values[schedule.output_slots[0]].shape == (1, 6)


def test_symbolic_tensors_implement_the_layer_protocol_hook():
    inp = Input(shape=(2,), name="x")
    assert isinstance(inp, SymbolicValue) and isinstance(inp, SymbolicTensor)
    y = L.Dense(3)(inp)
    assert y.node.layer.name is None and y.node.inputs is inp
    assert isinstance(y.id, int) and y.id != inp.id
    with pytest.raises(AttributeError):
        y.id = 3
    graph = build_graph(inp, y)
    assert isinstance(graph, Graph) and graph.layers[0].name == "dense"
    # On arrays (no symbolic leaf) a layer computes instead of recording a node.
    assert L.Dense(3)(np.ones((1, 2))).shape == (1, 3)


def test_match_inputs_by_dict_list_and_name():
    a, b = Input(shape=(1,), name="a"), Input(shape=(2,), name="b")
    out = L.Concatenate()([a, b])
    graph = build_graph({"b": b, "a": a}, out)
    assert match_inputs(graph, {"a": 1, "b": 2}, "m") == [1, 2]
    graph = build_graph([a, b], out)
    assert match_inputs(graph, {"b": 2, "a": 1}, "m") == [1, 2]
    assert match_inputs(graph, (1, 2), "m") == [1, 2]
    with pytest.raises(ValueError, match="inputs are named"):
        match_inputs(graph, {"c": 1}, "m")
    with pytest.raises(ValueError, match="has 2 input"):
        match_inputs(graph, [1], "m")


def test_build_graph_errors_name_the_fault():
    a, b = Input(shape=(2,)), Input(shape=(2,))
    with pytest.raises(GraphError, match="never used"):
        build_graph([a, b], L.Dense(1)(a))
    with pytest.raises(GraphError, match="disconnected"):
        build_graph(a, L.Add()([a, b]))
