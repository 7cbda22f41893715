"""Attention layers and EinsumDense against Keras 3 given the same weights, in
jit, eager and layerwise; masks, gradients, saving and bad input."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import funkeras as fk
from funkeras.layers.attention import (
    AdditiveAttention,
    Attention,
    GroupQueryAttention,
    MultiHeadAttention,
)
from funkeras.layers.einsum_dense import EinsumDense

L = fk.layers
TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def kweights(layer):
    """A Keras layer's weights as NumPy arrays (Keras' order)."""
    return [np.asarray(v.value) for v in layer.weights]


def twin(ours, theirs, *args, **kwargs):
    """Build both layers on the same call, copy Keras' weights into ours."""
    theirs(*args, **kwargs)
    ours(*args, **kwargs)
    names = [w.path.split("/", 1)[1] for w in theirs.weights]
    ours.set_weights(kweights(theirs))
    return names


def apply_both(layer, x, **options):
    """`apply` on the layer's own weights, eagerly and under jit (must agree)."""
    params, state = layer.concrete_weights()
    eager = layer.apply(params, state, x, **options)[0]
    jitted = jax.jit(lambda p, x: layer.apply(p, state, x, **options)[0])(params, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), eager, jitted)
    return eager


def mha_x(q, v, k=None, attention_mask=None):
    return {"query": q, "value": v, "key": k, "attention_mask": attention_mask}


# ----------------------------------------------------------------------------
# EinsumDense
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "equation, output_shape, bias_axes, in_shape, activation",
    [
        ("ab,bc->ac", 4, "c", (3, 5), None),
        ("abc,cd->abd", (None, 6), "d", (2, 3, 5), "relu"),
        ("abc,cde->abde", (None, 2, 3), "de", (2, 4, 5), None),
        ("abc,cde->abde", (None, 2, 3), "e", (2, 4, 5), None),
        ("...b,bc->...c", 4, None, (2, 3, 5), "tanh"),
        ("abcd,cde->abe", (3, 6), "e", (2, 3, 4, 5), None),
        ("ab...,bc->ac...", 4, "c", (2, 5, 3), None),
    ],
)
def test_einsum_dense_matches_keras(
    keras, equation, output_shape, bias_axes, in_shape, activation
):
    x = rand(*in_shape)
    theirs = keras.layers.EinsumDense(
        equation, output_shape, activation=activation, bias_axes=bias_axes
    )
    ours = EinsumDense(
        equation, output_shape, activation=activation, bias_axes=bias_axes
    )
    names = twin(ours, theirs, x)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in kweights(theirs)]
    assert names == (["kernel", "bias"] if bias_axes else ["kernel"])
    np.testing.assert_allclose(apply_both(ours, x), theirs(x), **TOL)
    spec = ours.compute_output_spec(jax.ShapeDtypeStruct(in_shape[1:], jnp.float32))
    assert spec.shape == theirs(x).shape[1:]


def test_einsum_dense_kernel_fans_follow_keras():
    # 'abc,cde->abde': fan_in = 64 (c), fan_out = 2 * 32 (d, e): glorot's limit
    # sqrt(6 / (64 + 64)); a plain (64, 2, 32) draw would use another limit.
    layer = EinsumDense("abc,cde->abde", (None, 2, 32))
    params, _ = layer.init(
        jax.random.key(0), jax.ShapeDtypeStruct((3, 64), jnp.float32)
    )
    limit = np.sqrt(6 / 128)
    k = np.asarray(params["kernel"])
    assert k.shape == (64, 2, 32) and np.abs(k).max() <= limit
    assert np.abs(k).max() > 0.9 * limit


@pytest.mark.parametrize(
    "kwargs, spec, match",
    [
        (dict(equation="ab->b", output_shape=3), (4,), "invalid einsum"),
        (dict(equation="ab,bc->ac", output_shape=(3, 4)), (4,), "output_shape"),
        (dict(equation="ab,bc->ac", output_shape=3, bias_axes="x"), (4,), "bias axis"),
        (dict(equation="abc,cd->abd", output_shape=(None, 3)), (4,), "rank"),
    ],
)
def test_einsum_dense_bad_equations(kwargs, spec, match):
    layer = EinsumDense(**kwargs)
    with pytest.raises(ValueError, match=match):
        layer.init(jax.random.key(0), jax.ShapeDtypeStruct(spec, jnp.float32))


# ----------------------------------------------------------------------------
# MultiHeadAttention against Keras
# ----------------------------------------------------------------------------


MHA_CASES = {
    "self": (dict(num_heads=2, key_dim=3), dict()),
    "self_scores": (dict(num_heads=2, key_dim=3), dict(return_attention_scores=True)),
    "cross_key": (dict(num_heads=3, key_dim=2), dict(cross=True, key=True)),
    "value_dim_scores": (
        dict(num_heads=3, key_dim=2, value_dim=4),
        dict(cross=True, key=True, return_attention_scores=True),
    ),
    "causal": (dict(num_heads=2, key_dim=3), dict(use_causal_mask=True)),
    "causal_scores": (
        dict(num_heads=2, key_dim=3),
        dict(use_causal_mask=True, return_attention_scores=True),
    ),
    "attention_mask": (
        dict(num_heads=2, key_dim=3),
        dict(cross=True, attention_mask=True),
    ),
    "attention_mask_causal_scores": (
        dict(num_heads=2, key_dim=3),
        dict(attention_mask=True, use_causal_mask=True, return_attention_scores=True),
    ),
    "output_shape_nobias": (
        dict(num_heads=2, key_dim=3, output_shape=(2, 5), use_bias=False),
        dict(),
    ),
    "dropout_inference": (dict(num_heads=2, key_dim=3, dropout=0.3), dict()),
    "sliding_window_causal": (
        dict(num_heads=2, key_dim=3, sliding_window=2),
        dict(use_causal_mask=True),
    ),
    "gate": (dict(num_heads=2, key_dim=3, use_gate=True), dict(cross=True)),
}


@pytest.mark.parametrize("case", sorted(MHA_CASES))
def test_mha_matches_keras(keras, case):
    config, call = MHA_CASES[case]
    call = dict(call)
    q = rand(2, 4, 6)
    v = rand(2, 5, 6, seed=1) if call.pop("cross", False) else q
    kwargs = {}
    if call.pop("key", False):
        kwargs["key"] = rand(2, 5, 7, seed=2)
    if call.pop("attention_mask", False):
        am = np.random.default_rng(3).random((2, 4, v.shape[1])) > 0.4
        am[:, :, 0] = True
        kwargs["attention_mask"] = am
    theirs = keras.layers.MultiHeadAttention(**config)
    ours = MultiHeadAttention(**config)
    names = twin(ours, theirs, q, v, **kwargs, **call)
    order = ["query", "key", "gate", "value", "attention_output"]
    want = [
        f"{n}/{w}"
        for n in order
        for w in ("kernel", "bias")
        if (n != "gate" or config.get("use_gate"))
        and (w == "kernel" or config.get("use_bias", True))
    ]
    assert names == want
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in kweights(theirs)]
    expected = theirs(q, v, **kwargs, **call)
    got = apply_both(
        ours, mha_x(q, v, kwargs.get("key"), kwargs.get("attention_mask")), **call
    )
    if call.get("return_attention_scores"):
        assert isinstance(got, tuple) and len(got) == 2
        np.testing.assert_allclose(got[1], expected[1], **TOL)
        got, expected = got[0], expected[0]
    np.testing.assert_allclose(got, expected, **TOL)


@pytest.mark.parametrize(
    "axes, shape",
    [(None, (2, 3, 4, 5)), ((2,), (2, 3, 4, 5)), ((1, 2), (2, 2, 3, 2, 4))],
)
def test_mha_attention_axes_match_keras(keras, axes, shape):
    q = rand(*shape)
    theirs = keras.layers.MultiHeadAttention(2, 3, attention_axes=axes)
    ours = MultiHeadAttention(2, 3, attention_axes=axes)
    twin(ours, theirs, q, q)
    for scores in (False, True):
        expected = theirs(q, q, return_attention_scores=scores)
        got = apply_both(ours, mha_x(q, q), return_attention_scores=scores)
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, **TOL),
            got,
            tuple(expected) if scores else expected,
        )


def masked_keras_mha(keras, layer, q, v, k=None, **call):
    """Keras' functional route for sequence masks: Masking on all-zero rows."""
    qi, vi = keras.Input(q.shape[1:]), keras.Input(v.shape[1:])
    ins, args = [qi, vi], [keras.layers.Masking()(qi), keras.layers.Masking()(vi)]
    if k is not None:
        ki = keras.Input(k.shape[1:])
        ins.append(ki)
        args.append(keras.layers.Masking()(ki))
    kw = {"key": args[2]} if k is not None else {}
    out = layer(args[0], args[1], **kw, **call)
    model = keras.Model(ins, out)
    with warnings.catch_warnings():  # Keras' GQA warns that its EinsumDense drops masks
        warnings.simplefilter("ignore", UserWarning)
        return model([q, v] + ([k] if k is not None else []))


@pytest.mark.parametrize("cls_name", ["MultiHeadAttention", "GroupQueryAttention"])
@pytest.mark.parametrize("scores", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_sequence_masks_match_keras(keras, cls_name, scores, causal):
    q, v = rand(2, 4, 6), rand(2, 5, 6, seed=1)
    q[0, 3:] = 0.0  # masked query rows (Masking: all-zero rows)
    v[0, 2:] = 0.0
    v[1, 4:] = 0.0
    qm, vm = np.any(q != 0, -1), np.any(v != 0, -1)
    if cls_name == "MultiHeadAttention":
        theirs, ours = keras.layers.MultiHeadAttention(2, 3), MultiHeadAttention(2, 3)
    else:
        theirs = keras.layers.GroupQueryAttention(3, 4, 2)
        ours = GroupQueryAttention(3, 4, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        twin(ours, theirs, q, v)
    call = dict(return_attention_scores=scores, use_causal_mask=causal)
    expected = masked_keras_mha(keras, theirs, q, v, **call)
    seq = {
        "query": jnp.asarray(qm),
        "value": jnp.asarray(vm),
        "key": None,
        "attention_mask": None,
    }
    got = apply_both(ours, mha_x(q, v), sequence_mask=seq, **call)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, **TOL),
        got,
        tuple(expected) if scores else expected,
    )
    # explicit value_mask= is the same as the value's sequence mask
    params, state = ours.concrete_weights()
    explicit = ours.apply(
        params,
        state,
        {**mha_x(q, v), "value_mask": vm},
        sequence_mask={"query": jnp.asarray(qm)},
        **call,
    )[0]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), explicit, got)
    assert ours.compute_mask(mha_x(q, v), seq) is seq["query"]


def test_key_mask_applies_only_with_a_separate_key(keras):
    q, v, k = rand(2, 4, 6), rand(2, 5, 6, seed=1), rand(2, 5, 6, seed=2)
    k[0, 3:] = 0.0
    theirs, ours = keras.layers.MultiHeadAttention(2, 3), MultiHeadAttention(2, 3)
    twin(ours, theirs, q, v, key=k)
    expected = masked_keras_mha(keras, theirs, q, v, k)
    seq = {"query": None, "value": None, "key": jnp.asarray(np.any(k != 0, -1))}
    got = apply_both(ours, mha_x(q, v, k), sequence_mask=seq)
    np.testing.assert_allclose(got, expected, **TOL)


# ----------------------------------------------------------------------------
# GroupQueryAttention
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heads, call",
    [
        ((4, 2), dict()),
        ((4, 1), dict(use_causal_mask=True)),
        ((2, 2), dict(return_attention_scores=True)),
        ((4, 2), dict(use_causal_mask=True, return_attention_scores=True)),
    ],
)
def test_gqa_matches_keras(keras, heads, call):
    q, v = rand(2, 4, 6), rand(2, 5, 6, seed=1)
    theirs = keras.layers.GroupQueryAttention(3, *heads)
    ours = GroupQueryAttention(3, *heads)
    names = twin(ours, theirs, q, v, **call)
    assert names[::2] == [
        "query/kernel",
        "key/kernel",
        "value/kernel",
        "attention_output/kernel",
    ]
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in kweights(theirs)]
    expected = theirs(q, v, **call)
    got = apply_both(ours, mha_x(q, v), **call)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, **TOL),
        got,
        tuple(expected) if call.get("return_attention_scores") else expected,
    )


def test_mha_value_dim_differs_without_scores(keras):
    # Keras' fused path cannot take value_dim != key_dim; its einsum path can,
    # and ours takes that path whenever the head sizes differ.
    q, v = rand(2, 4, 6), rand(2, 5, 6, seed=1)
    theirs = keras.layers.MultiHeadAttention(2, 3, value_dim=5)
    ours = MultiHeadAttention(2, 3, value_dim=5)
    twin(ours, theirs, q, v, return_attention_scores=True)
    expected = theirs(q, v, return_attention_scores=True)[0]
    np.testing.assert_allclose(apply_both(ours, mha_x(q, v)), expected, **TOL)


def test_gqa_keras_name():
    assert L.GroupQueryAttention is GroupQueryAttention
    assert "GroupQueryAttention" in L.__all__
    with pytest.raises(ValueError, match="divisible"):
        GroupQueryAttention(4, 4, 3)


# ----------------------------------------------------------------------------
# Attention and AdditiveAttention
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, config",
    [
        ("Attention", dict()),
        ("Attention", dict(use_scale=True)),
        ("Attention", dict(score_mode="concat")),
        ("Attention", dict(score_mode="concat", use_scale=True)),
        ("AdditiveAttention", dict()),
        ("AdditiveAttention", dict(use_scale=False)),
    ],
)
@pytest.mark.parametrize(
    "call",
    [
        dict(use_causal_mask=True, return_attention_scores=True),
        dict(key=True),
        dict(masks=True, use_causal_mask=True, return_attention_scores=True),
    ],
)
def test_score_attention_matches_keras(keras, kind, config, call):
    call = dict(call)
    q, v = rand(2, 4, 3), rand(2, 4, 3, seed=1)
    inputs = [q, v] + ([rand(2, 4, 3, seed=2)] if call.pop("key", False) else [])
    masks = None
    if call.pop("masks", False):
        masks = [
            np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool),
            np.array([[1, 1, 0, 0], [1, 1, 1, 0]], bool),
        ]
    theirs = getattr(keras.layers, kind)(**config)
    ours = {"Attention": Attention, "AdditiveAttention": AdditiveAttention}[kind](
        **config
    )
    names = twin(ours, theirs, inputs)
    want = ["scale"] if config.get("use_scale", kind == "AdditiveAttention") else []
    want += ["concat_score_weight"] if config.get("score_mode") == "concat" else []
    assert names == want
    # non-default weights, so that `scale` matters
    ours.set_weights([w + 0.3 for w in kweights(theirs)])
    theirs.set_weights([np.asarray(w) for w in ours.get_weights()])
    expected = theirs(inputs, mask=masks, **call)
    x = inputs if masks is None else {"inputs": inputs, "mask": masks}
    got = apply_both(ours, x, **call)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, **TOL),
        got,
        tuple(expected) if call.get("return_attention_scores") else expected,
    )
    if masks is not None:  # the graph's sequence masks give the same numbers
        via_seq = apply_both(
            ours, inputs, sequence_mask=[jnp.asarray(m) for m in masks], **call
        )
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOL), via_seq, got)
        assert ours.compute_mask(inputs, masks) is masks[0]


def test_attention_dropout_in_training_only():
    q = rand(2, 4, 3)
    layer = Attention(dropout=0.5)
    layer([q, q])
    params, state = layer.concrete_weights()
    infer = layer.apply(params, state, [q, q])[0]
    k = jax.random.key(1)
    t1 = layer.apply(params, state, [q, q], training=True, key=k)[0]
    t2 = layer.apply(params, state, [q, q], training=True, key=k)[0]
    np.testing.assert_array_equal(t1, t2)
    assert not np.allclose(t1, infer)
    with pytest.raises(ValueError, match="PRNG key"):
        layer.apply(params, state, [q, q], training=True)


def test_mha_dropout_falls_on_scores_in_training():
    q = rand(2, 4, 6)
    layer = MultiHeadAttention(2, 3, dropout=0.5)
    layer(q, q)
    params, state = layer.concrete_weights()
    x = mha_x(q, q)
    infer, scores = layer.apply(params, state, x, return_attention_scores=True)[0]
    trained, tscores = layer.apply(
        params,
        state,
        x,
        training=True,
        key=jax.random.key(0),
        return_attention_scores=True,
    )[0]
    np.testing.assert_allclose(tscores, scores, **TOL)  # scores before dropout (Keras)
    assert not np.allclose(trained, infer)


# ----------------------------------------------------------------------------
# Models: jit = eager = layerwise, gradients, save/load
# ----------------------------------------------------------------------------


def attention_model(seed=0):
    tok = fk.Input(shape=(6,), dtype="int32", name="tokens")
    ctx = fk.Input(shape=(5, 8), name="context")
    h = L.Embedding(20, 8)(tok)
    h = L.Add()(
        [h, MultiHeadAttention(2, 4, name="self_attn")(h, h, use_causal_mask=True)]
    )
    h = L.LayerNormalization()(h)
    cross, scores = MultiHeadAttention(2, 4, value_dim=3, name="cross")(
        h, ctx, return_attention_scores=True
    )
    h = L.Add()([h, cross])
    h = GroupQueryAttention(2, 4, 2, name="gqa")(h, h, use_causal_mask=True)
    h = Attention(use_scale=True, name="luong")([h, ctx])
    h = AdditiveAttention(name="bahdanau")([h, h])
    h = EinsumDense("abc,cd->abd", (None, 3), bias_axes="d", name="proj")(h)
    pooled = L.GlobalAveragePooling1D()(h)
    return fk.Model([tok, ctx], [pooled, L.Flatten()(scores)], seed=seed)


def model_data(n=8):
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 20, size=(n, 6)).astype(np.int32),
        rng.normal(size=(n, 5, 8)).astype(np.float32),
    ]


def test_model_executions_agree_and_train():
    xs = model_data()
    ys = [np.ones((8, 3), np.float32), np.zeros((8, 2 * 6 * 5), np.float32)]
    outs, weights = {}, {}
    for mode in ("jit", "eager", "layerwise"):
        model = attention_model()
        model.compile(optimizer="adam", loss="mse", execution=mode)
        outs[mode] = model.predict(xs, verbose=0)
        model.fit(xs, ys, batch_size=4, epochs=1, verbose=0, seed=1)
        weights[mode] = model.get_weights()
    for mode in ("eager", "layerwise"):
        for a, b in zip(outs[mode], outs["jit"], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        for a, b in zip(weights[mode], weights["jit"], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=5e-5)
    assert all(np.isfinite(w).all() for w in weights["jit"])


def test_weight_order_and_save_load_round_trip(tmp_path):
    model = attention_model()
    xs = model_data()
    path = tmp_path / "attn.fkz"
    model.save(path)
    loaded = fk.load_model(path)
    for a, b in zip(
        loaded.predict(xs, verbose=0), model.predict(xs, verbose=0), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    # Keras' order inside MultiHeadAttention: query, key, value, attention_output
    shapes = [w.shape for w in model.get_weights()]
    i = shapes.index((8, 2, 4))  # the first query kernel
    assert shapes[i : i + 8] == [
        (8, 2, 4),
        (2, 4),
        (8, 2, 4),
        (2, 4),
        (8, 2, 4),
        (2, 4),
        (2, 4, 8),
        (8,),
    ]
    loaded.set_weights(model.get_weights())
    cfg = loaded.get_layer("cross").get_config()
    assert cfg["value_dim"] == 3 and cfg["num_heads"] == 2


def test_mha_gradients_finite_and_correct():
    q = rand(2, 3, 4)
    layer = MultiHeadAttention(2, 2)
    layer(q, q)
    params, state = layer.concrete_weights()

    def f(p, x):
        return layer.apply(p, state, mha_x(x, x), use_causal_mask=True)[0]

    grads = jax.grad(lambda p: jnp.sum(f(p, q) ** 2))(params)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    check_grads(
        lambda x: f(params, x),
        (jnp.asarray(q, jnp.float32),),
        order=1,
        modes=["rev"],
        atol=1e-2,
        rtol=1e-2,
    )

    def g(p):
        return layer.apply(p, state, mha_x(q, q), return_attention_scores=True)[0][0]

    check_grads(g, (params,), order=1, modes=["rev"], atol=1e-2, rtol=1e-2)


def test_attention_gradients_finite():
    q = rand(2, 3, 4)
    for layer in (Attention(use_scale=True, score_mode="concat"), AdditiveAttention()):
        layer([q, q])
        params, state = layer.concrete_weights()
        check_grads(
            lambda p, layer=layer, state=state: layer.apply(
                p, state, [q, q], use_causal_mask=True
            )[0],
            (params,),
            order=1,
            modes=["rev"],
            atol=1e-2,
            rtol=1e-2,
        )


# ----------------------------------------------------------------------------
# Bad input: clear errors at build time, naming the layer
# ----------------------------------------------------------------------------


def test_mha_key_dim_missing():
    with pytest.raises(TypeError, match=r"MultiHeadAttention: `key_dim` is required"):
        MultiHeadAttention(num_heads=2)


def test_mha_mismatched_value_and_key_shapes():
    q, v, k = fk.Input(shape=(4, 6)), fk.Input(shape=(5, 6)), fk.Input(shape=(3, 6))
    with pytest.raises(
        ValueError, match=r"MultiHeadAttention\(name=.*`value` and `key`"
    ):
        MultiHeadAttention(2, 3, name="mha")(q, v, key=k)
    with pytest.raises(ValueError, match=r"same rank"):
        MultiHeadAttention(2, 3)(q, fk.Input(shape=(2, 5, 6)))


def test_mha_attention_mask_wrong_shape():
    q, v = fk.Input(shape=(4, 6)), fk.Input(shape=(5, 6))
    bad = fk.Input(shape=(4, 4), dtype="bool")
    with pytest.raises(
        ValueError,
        match=r"MultiHeadAttention.*`attention_mask` has shape "
        r"\(None, 4, 4\).*\(None, 4, 5\)",
    ):
        MultiHeadAttention(2, 3)(q, v, attention_mask=bad)
    ok = fk.Input(shape=(4, 5), dtype="bool")
    y = MultiHeadAttention(2, 3)(q, v, attention_mask=ok)
    assert y.shape == (None, 4, 6)


def test_attention_bad_inputs():
    q = fk.Input(shape=(4, 3))
    with pytest.raises(ValueError, match=r"Attention\(\) .*\[query, value\]"):
        Attention()([q])
    with pytest.raises(ValueError, match="last dimension of query and key"):
        Attention()([q, fk.Input(shape=(4, 5))])
    with pytest.raises(ValueError, match="score_mode"):
        Attention(score_mode="sum")


def test_symbolic_calls_give_keras_shapes():
    q, v = fk.Input(shape=(4, 6)), fk.Input(shape=(5, 7))
    out, scores = MultiHeadAttention(3, 2, output_shape=9)(
        q, v, return_attention_scores=True
    )
    assert out.shape == (None, 4, 9) and scores.shape == (None, 3, 4, 5)
    out, scores = Attention()([q, fk.Input(shape=(5, 6))], return_attention_scores=True)
    assert out.shape == (None, 4, 6) and scores.shape == (None, 4, 5)


def test_regularizers_reach_every_projection():
    q = rand(2, 3, 4)
    layer = MultiHeadAttention(2, 2, kernel_regularizer="l2", bias_regularizer="l1")
    layer(q, q)
    params, _ = layer.concrete_weights()
    assert layer.has_penalty()
    want = sum(
        0.01 * np.sum(np.square(params[n]["kernel"]))
        + 0.01 * np.sum(np.abs(params[n]["bias"]))
        for n in ("query", "key", "value", "attention_output")
    )
    np.testing.assert_allclose(layer.penalty(params), want, rtol=1e-6)
    dense = EinsumDense("ab,bc->ac", 3, bias_axes="c", kernel_regularizer="l2")
    dense(rand(2, 4))
    p, _ = dense.concrete_weights()
    np.testing.assert_allclose(
        dense.penalty(p), 0.01 * np.sum(np.square(p["kernel"])), rtol=1e-6
    )
