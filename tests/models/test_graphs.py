"""Sequential and functional graphs: structure, names, sharing, nesting, errors."""

import subprocess
import sys
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras.errors import GraphError

L = fk.layers


def spec(*shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(shape, dtype)


def test_sequential_init_apply_matches_manual_numpy(key):
    model = fk.Sequential([L.Dense(4, activation="relu"), L.Dense(2)])
    params, state = model.init(key, spec(3))
    assert sorted(params) == ["dense", "dense_1"]
    assert params["dense"]["kernel"].shape == (3, 4)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    y, new_state = model.apply(params, state, x)
    p = jax.tree.map(np.asarray, params)
    h = np.maximum(x @ p["dense"]["kernel"] + p["dense"]["bias"], 0)
    ref = h @ p["dense_1"]["kernel"] + p["dense_1"]["bias"]
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-6)
    assert new_state == state


def test_sequential_add_and_input():
    model = fk.Sequential()
    model.add(fk.Input(shape=(8,)))
    model.add(L.Dense(4))
    model.add(L.Dense(1))
    assert model.built
    assert [layer.name for layer in model.layers] == ["dense", "dense_1"]
    assert model.count_params() == 8 * 4 + 4 + 4 + 1


def test_sequential_rejected_add_leaves_model_unchanged():
    model = fk.Sequential([fk.Input(shape=(4,)), L.Dense(3)])
    before = model.count_params()
    with pytest.raises(TypeError, match="list"):
        model.add(L.Concatenate())  # a merge needs a list of inputs
    assert len(model.layers) == 1
    assert model.count_params() == before


def test_branch_and_merge_model(key):
    inp = fk.Input(shape=(6,))
    a = L.Dense(4, name="left")(inp)
    b = L.Dense(4, name="right")(inp)
    out = L.Dense(1)(L.Add()([a, b]))
    model = fk.Model(inp, out)
    params, state = model.init(key, spec(6))
    x = np.ones((2, 6), np.float32)
    y, _ = model.apply(params, state, x)
    p = jax.tree.map(np.asarray, params)
    left = x @ p["left"]["kernel"] + p["left"]["bias"]
    right = x @ p["right"]["kernel"] + p["right"]["bias"]
    ref = (left + right) @ p["dense"]["kernel"] + p["dense"]["bias"]
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5)


def test_two_inputs_two_outputs(key):
    a = fk.Input(shape=(3,), name="a")
    b = fk.Input(shape=(5,), name="b")
    h = L.Concatenate()([L.Dense(4)(a), L.Dense(4)(b)])
    out1 = L.Dense(1, name="score")(h)
    out2 = L.Dense(3, name="cls")(h)
    model = fk.Model([a, b], [out1, out2])
    params, state = model.init(key, [spec(3), spec(5)])
    y1, y2 = model.apply(params, state, [np.ones((2, 3)), np.ones((2, 5))])[0]
    assert y1.shape == (2, 1) and y2.shape == (2, 3)
    # dict inputs by Input name
    z1, _ = model.apply(params, state, {"b": np.ones((2, 5)), "a": np.ones((2, 3))})[0]
    np.testing.assert_allclose(np.asarray(z1), np.asarray(y1))
    assert model.output_names == ["score", "cls"]


def test_shared_layer_one_weight_set_two_dropout_masks(key):
    inp = fk.Input(shape=(64,))
    drop = L.Dropout(0.5)
    dense = L.Dense(64, use_bias=False, kernel_initializer="identity")
    out = L.Concatenate()([dense(drop(inp)), dense(drop(inp))])
    model = fk.Model(inp, out)
    params, state = model.init(key, spec(64))
    assert list(params) == ["dropout", "dense", "concatenate"]
    y, _ = model.apply(
        params, state, np.ones((1, 64), np.float32), training=True, key=key
    )
    first, second = np.asarray(y[0, :64]), np.asarray(y[0, 64:])
    assert not np.array_equal(first == 0, second == 0)  # two different masks


def test_nested_sequential_keeps_trained_weights(key):
    encoder = fk.Sequential(
        [fk.Input(shape=(4,)), L.Dense(3), L.Dense(2)], name="encoder"
    )
    enc_params = jax.tree.map(lambda a: a + 1.0, encoder.params)
    encoder.params = enc_params
    inp = fk.Input(shape=(4,))
    out = L.Dense(1)(encoder(inp))
    model = fk.Model(inp, out)
    assert "encoder" in model.params
    # transfer learning: the nested model's trained weights carry over
    np.testing.assert_allclose(
        np.asarray(model.params["encoder"]["dense"]["kernel"]),
        np.asarray(enc_params["dense"]["kernel"]),
    )
    x = np.ones((2, 4), np.float32)
    full, _ = model.apply(model.params, model.state, x)
    mid, _ = encoder.apply(encoder.params, encoder.state, x)
    last = model.get_layer(model.layers[-1].name)
    ref, _ = last.apply(model.params[last.name], {}, mid)
    np.testing.assert_allclose(np.asarray(full), np.asarray(ref), rtol=1e-6)


@dataclass(eq=False)
class Scale(fk.layers.Layer):
    """Multiplies by a learned scalar."""

    def init(self, key, input_spec):
        return {"scale": jnp.full((), 2.0, self.dtype)}, {}

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return x * params["scale"], state


def test_custom_subclassed_layer_in_a_model(key):
    model = fk.Sequential([fk.Input(shape=(2,)), Scale()])
    y = model.predict(np.ones((3, 2), np.float32), verbose=0)
    np.testing.assert_allclose(y, 2.0 * np.ones((3, 2)))
    assert model.layers[0].name == "scale"


def test_names_unique_and_deterministic_across_processes():
    code = (
        "import funkeras as fk\n"
        "m = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2), fk.layers.Dense(2),"
        " fk.layers.BatchNormalization(), fk.layers.Dense(1)])\n"
        "print(','.join(l.name for l in m.layers))\n"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert outs == {"dense,dense_1,batch_normalization,dense_2"}


def test_duplicate_explicit_names_refused():
    inp = fk.Input(shape=(3,))
    out = L.Dense(2, name="same")(L.Dense(2, name="same")(inp))
    with pytest.raises(GraphError, match="unique"):
        fk.Model(inp, out)


def test_disconnected_output_and_unused_input():
    a = fk.Input(shape=(3,))
    b = fk.Input(shape=(3,))
    out = L.Dense(1)(b)
    with pytest.raises(GraphError, match="disconnected"):
        fk.Model(a, out)
    with pytest.raises(GraphError, match="never used"):
        fk.Model([a, b], out)


def test_input_cast_rules(key):
    model = fk.Sequential([fk.Input(shape=(2,)), L.Dense(1)])
    y64, _ = model.apply(model.params, model.state, np.ones((2, 2), np.float64))
    yint, _ = model.apply(model.params, model.state, np.ones((2, 2), np.int32))
    assert y64.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y64), np.asarray(yint))
    ids = fk.Input(shape=(4,), dtype="int32")
    emb = fk.Model(ids, L.Embedding(10, 3)(ids))
    with pytest.raises(TypeError, match="int32"):
        emb.apply(emb.params, emb.state, np.ones((2, 4), np.float32))
    with pytest.raises(TypeError):
        fk.Sequential([fk.Input(shape=(4,)), L.Embedding(10, 3)])


def test_wrong_feature_shape_is_refused_with_names():
    model = fk.Sequential([fk.Input(shape=(4,)), L.Dense(2)])
    with pytest.raises(ValueError, match=r"expects shape \(None, 4\)"):
        model.apply(model.params, model.state, np.ones((2, 5), np.float32))


def test_symbolic_batch_dimension_traces():
    model = fk.Sequential(
        [fk.Input(shape=(4,)), L.Dense(3), L.Dropout(0.1), L.Dense(1)]
    )
    (b,) = jax.export.symbolic_shape("b")
    out = jax.eval_shape(
        lambda p, s, x: model.apply(p, s, x)[0],
        model.params,
        model.state,
        jax.ShapeDtypeStruct((b, 4), jnp.float32),
    )
    assert out.shape[1:] == (1,)


def test_model_input_and_output_are_its_graph_tensors():
    # Keras' transfer-learning idiom: a new head on `base.output`.
    inp = fk.Input(shape=(4,))
    base = fk.Model(inp, fk.layers.Dense(3, name="features")(inp))
    assert base.input is inp and base.output is base.outputs
    base(fk.Input(shape=(4,)))  # a call in another graph changes neither
    assert base.input is inp
    head = fk.Model(base.input, fk.layers.Dense(2, name="head")(base.output))
    assert [layer.name for layer in head.layers][-2:] == ["features", "head"]
