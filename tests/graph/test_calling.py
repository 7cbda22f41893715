"""Keras calling conventions in the graph: several inputs, keyword tensors, static
options, several outputs, per-call training, feature extraction, None axes."""

import copy
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funkeras as fk
from funkeras.saving import register_serializable

L = fk.layers


@register_serializable(package="test_calling")
@dataclass(eq=False)
class ScaledBlend(fk.layers.Layer):
    """y = scale * (a @ W + b) (+ c when the keyword tensor `key` is given).

    Takes two positional tensors, an optional keyword tensor named `key` (not
    the PRNG key) and a static option `scale`.
    """

    units: int = 3
    uses_key = False

    def bind_call(self, a, b, key=None, *, scale=1.0):
        return {"a": a, "b": b, "key": key}, {"scale": scale}

    def init(self, rng, input_spec):
        d = input_spec["a"].shape[-1]
        return {"kernel": jax.random.normal(rng, (d, self.units))}, {}

    def apply(
        self, params, state, x, *, training=False, key=None, mask=None, scale=1.0
    ):
        y = x["a"] @ params["kernel"] + x["b"]
        if x["key"] is not None:
            y = y + x["key"]
        return scale * y, state


@register_serializable(package="test_calling")
@dataclass(eq=False)
class Triple(fk.layers.Layer):
    """Three outputs: x, 2x and x squared (like an LSTM's `out, h, c`)."""

    uses_key = False

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return (x, 2.0 * x, x * x), state


def blend_model(seed=0):
    a = fk.Input(shape=(4,), name="a")
    b = fk.Input(shape=(3,), name="b")
    c = fk.Input(shape=(3,), name="c")
    blend = ScaledBlend(name="blend")
    b2 = L.Dense(3, name="pre")(b)
    y1 = blend(a, b2, key=c, scale=2.0)  # keyword tensor + option
    y2 = ScaledBlend(name="plain")(a, y1)  # positional only, defaults
    y3 = blend(a, y2, key=c, scale=0.5)  # the shared layer, another option
    return fk.Model([a, b, c], L.Dense(2, name="head")(y3), seed=seed)


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(n, k)).astype(np.float32) for k in (4, 3, 3)]
    return xs, rng.normal(size=(n, 2)).astype(np.float32)


def test_multi_input_keyword_tensor_and_option_match_numpy():
    model = blend_model()
    (a, b, c), _ = data()
    p = model.params
    b2 = b @ np.asarray(p["pre"]["kernel"]) + np.asarray(p["pre"]["bias"])
    y1 = 2.0 * (a @ np.asarray(p["blend"]["kernel"]) + b2 + c)
    y2 = a @ np.asarray(p["plain"]["kernel"]) + y1
    y3 = 0.5 * (a @ np.asarray(p["blend"]["kernel"]) + y2 + c)
    want = y3 @ np.asarray(p["head"]["kernel"]) + np.asarray(p["head"]["bias"])
    got = model.predict([a, b, c], verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    nodes = model.get_layer("blend").inbound_nodes
    assert [n.options for n in nodes] == [{"scale": 2.0}, {"scale": 0.5}]
    assert model.get_layer("plain").inbound_nodes[0].inputs["key"] is None


def test_fit_equal_across_executions():
    xs, y = data()
    built = blend_model()
    built.params  # noqa: B018 - create the weights once
    weights = {}
    for mode in ("jit", "eager", "layerwise"):
        model = copy.deepcopy(built)
        model.compile(optimizer=optax.sgd(0.05), loss="mse", execution=mode)
        model.fit(xs, y, batch_size=4, epochs=1, verbose=0, seed=1)
        weights[mode] = model.get_weights()
    assert not np.allclose(weights["jit"][0], built.get_weights()[0])
    for mode in ("eager", "layerwise"):
        for w, r in zip(weights[mode], weights["jit"], strict=True):
            np.testing.assert_allclose(w, r, rtol=2e-5, atol=2e-6)


def test_save_load_round_trip_keeps_options_and_none_inputs(tmp_path):
    model = blend_model()
    xs, _ = data()
    path = tmp_path / "blend.funkeras"
    fk.saving.save_model(model, path)
    loaded = fk.saving.load_model(path)
    nodes = {n["layer"]: n for n in loaded.get_config()["nodes"]}
    assert nodes["plain"]["inputs"]["dict"]["key"] is None
    assert [n.options for n in loaded.get_layer("blend").inbound_nodes] == [
        {"scale": 2.0},
        {"scale": 0.5},
    ]
    np.testing.assert_allclose(
        loaded.predict(xs, verbose=0), model.predict(xs, verbose=0), rtol=1e-6
    )


def test_config_without_options_still_loads():
    model = blend_model()
    config = model.get_config()
    for node in config["nodes"]:
        node.pop("options", None)  # a file written before options existed
    rebuilt = fk.Model.from_config(config)
    assert rebuilt.get_layer("blend").inbound_nodes[0].options == {}


def test_several_outputs_unpack_and_feed_two_heads():
    inp = fk.Input(shape=(3,))
    out, h, c = Triple()(inp)
    assert out.shape == h.shape == c.shape == (None, 3)
    model = fk.Model(inp, [L.Add()([out, h]), L.Multiply()([h, c])])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y1, y2 = model.predict(x, verbose=0)
    np.testing.assert_allclose(y1, 3 * x)
    np.testing.assert_allclose(y2, 2 * x**3)


def test_clear_errors():
    a, b = fk.Input(shape=(3,)), fk.Input(shape=(3,))
    with pytest.raises(
        TypeError,
        match=r"Dense\(name='d'\) takes one input tensor; "
        r"got 2 positional arguments.*Concatenate\(\)",
    ):
        L.Dense(2, name="d")(a, b)
    with pytest.raises(TypeError, match="unexpected keyword.*'foo'"):
        L.Dense(2)(a, foo=1)
    with pytest.raises(ValueError, match="sequence mask must be a bool tensor"):
        L.Dense(2)(a, mask=b)
    with pytest.raises(TypeError, match=r"ScaledBlend\(\).*missing.*'b'.*called as"):
        ScaledBlend()(a)
    with pytest.raises(TypeError, match="option `scale` must be a static"):
        ScaledBlend()(a, b, scale=np.float32)
    with pytest.raises(TypeError, match="mix of symbolic tensors and ndarray"):
        ScaledBlend()(a, np.ones((1, 3)))
    with pytest.raises(TypeError, match="`training` must be True, False or None"):
        L.Dense(2)(a, training="yes")
    # Arrays are not an error: the layer is built from them and computes.
    assert L.Dense(2)(np.ones((1, 3))).shape == (1, 2)


def test_training_override_keeps_dropout_active_in_predict():
    inp = fk.Input(shape=(200,))
    model = fk.Model(inp, L.Dropout(0.5)(inp, training=True))
    y = model.predict(np.ones((2, 200), np.float32), verbose=0)
    assert set(np.unique(y)) == {0.0, 2.0}  # dropped, or kept and scaled by 2
    off = fk.Model(inp, L.Dropout(0.5)(inp, training=False))
    off.compile(optimizer="sgd", loss="mse")
    # forced off: no dropout even in fit's training mode (loss of identity = 0)
    hist = off.fit(np.ones((4, 200)), np.ones((4, 200)), verbose=0)
    assert hist.history["loss"][0] == pytest.approx(0.0)


def feature_check(model, x):
    extractor = fk.Model(
        inputs=model.inputs, outputs=[layer.output for layer in model.layers]
    )
    extractor.params = {k: model.params[k] for k in extractor.params}
    extractor.state = {k: model.state[k] for k in extractor.state}
    got = extractor.predict(x, verbose=0)
    h = jnp.asarray(x)
    for layer, value in zip(model.layers, got, strict=True):
        if isinstance(layer, fk.layers.InputLayer):  # listed by functional models
            np.testing.assert_array_equal(value, x)
            continue
        h, _ = layer.apply(model.params[layer.name], model.state[layer.name], h)
        np.testing.assert_allclose(value, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[-1], model.predict(x, verbose=0), rtol=1e-6)


def test_feature_extraction_functional_and_sequential():
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    inp = fk.Input(shape=(6,))
    h = L.Dense(4, activation="relu")(inp)
    h = L.BatchNormalization()(h)
    out = L.Dense(2)(h)
    feature_check(fk.Model(inp, out), x)
    seq = fk.Sequential(
        [fk.Input(shape=(6,)), L.Dense(4, activation="tanh"), L.Dense(3), L.Dense(1)]
    )
    feature_check(seq, x)
    fresh = fk.Sequential([fk.Input(shape=(6,)), L.Dense(4), L.Dense(3), L.Dense(1)])
    fresh.pop()  # the popped graph's calls no longer count
    assert fresh.layers[-1].output.shape == (None, 3)
    assert fresh.layers[0].input is fresh.inputs


def test_layer_output_errors():
    with pytest.raises(ValueError, match="never been called"):
        _ = L.Dense(2).output
    shared = L.Dense(2, name="shared")
    a = fk.Input(shape=(2,))
    shared(shared(a))
    with pytest.raises(ValueError, match="called 2 times.*inbound_nodes"):
        _ = shared.input


def test_variable_length_input_predicts_on_two_lengths():
    inp = fk.Input(shape=(None, 4))
    assert inp.shape == (None, None, 4)
    assert fk.Input(batch_shape=(None, None, 4)).shape == (None, None, 4)
    dense = L.Dense(3)
    model = fk.Model(inp, L.GlobalAveragePooling1D()(dense(inp)))
    rng = np.random.default_rng(0)
    k = np.asarray(model.params["dense"]["kernel"])
    bias = np.asarray(model.params["dense"]["bias"])
    for length in (5, 9):
        x = rng.normal(size=(2, length, 4)).astype(np.float32)
        want = (x @ k + bias).mean(axis=1)
        np.testing.assert_allclose(
            model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6
        )
    assert fk.Input(shape=(28, 28, 1)).shape == (None, 28, 28, 1)


def test_unknown_axis_a_layer_cannot_handle_names_layer_and_axis():
    inp = fk.Input(shape=(None, 4))
    flat = L.Flatten()(inp)
    with pytest.raises(ValueError, match=r"Dense\(name='d'\).*unknown size.*axis 1"):
        L.Dense(2, name="d")(flat)


def test_training_false_on_a_nested_model_holds_in_every_execution():
    """`base(x, training=False)` (transfer learning): BatchNorm stays in inference."""
    inner_in = fk.Input(shape=(3,))
    base = fk.Model(inner_in, L.BatchNormalization(name="bn")(inner_in), name="base")
    inp = fk.Input(shape=(3,))
    built = fk.Model(inp, L.Dense(1, name="head")(base(inp, training=False)))
    built.params  # noqa: B018 - create the weights once
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(8, 3)).astype(np.float32)
    y = np.ones((8, 1), np.float32)
    for mode in ("jit", "eager", "layerwise"):
        model = copy.deepcopy(built)
        model.compile(optimizer=optax.sgd(0.1), loss="mse", execution=mode)
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        moving = model.state["base"]["bn"]["moving_mean"]
        np.testing.assert_array_equal(moving, np.zeros(3), err_msg=mode)
        assert not np.allclose(
            model.params["head"]["kernel"], built.params["head"]["kernel"]
        )


def test_saved_variable_length_and_sequential_output(tmp_path):
    seq = fk.Sequential([fk.Input(shape=(None, 2)), L.Dense(3), L.GlobalMaxPooling1D()])
    assert seq.output is seq.layers[-1].output and seq.input is seq.inputs
    path = tmp_path / "seq.funkeras"
    fk.saving.save_model(seq, path)
    loaded = fk.saving.load_model(path)
    x = np.random.default_rng(0).normal(size=(2, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), seq.predict(x, verbose=0))
    inp = fk.Input(batch_shape=(None, None, 2), name="seq")
    model = fk.Model(inp, L.Dense(1)(inp))
    rebuilt = fk.Model.from_config(model.get_config())
    assert rebuilt.inputs.shape == (None, None, 2)
