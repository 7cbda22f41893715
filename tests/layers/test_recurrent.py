"""Recurrent layers, cells and wrappers against Keras 3 given the same weights.

Keras runs on its JAX backend; each test builds the Keras layer, copies its
weights into funkeras (model `set_weights`, Keras' order) and compares outputs
(1e-5), unmasked and masked, in jit and eager; then gradients, the three
execution modes, saving, and the errors.
"""

from __future__ import annotations

import copy
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funkeras as fk
from funkeras.layers.recurrent import LSTM

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

L = fk.layers
B, T, F = 3, 6, 4
TOL = dict(rtol=1e-5, atol=1e-5)


def data(seed=0, shape=(B, T, F)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def seq_mask():
    # Row 0: all real; row 1: trailing padding; row 2: a hole and leading padding.
    m = np.ones((B, T), bool)
    m[1, 4:] = False
    m[2, 0] = False
    m[2, 3] = False
    return m


def random_weights(klayer, seed=1):
    """Random (non-default) weights for a built Keras layer, so biases count."""
    rng = np.random.default_rng(seed)
    ws = [
        rng.normal(scale=0.4, size=tuple(w.shape)).astype(np.float32)
        for w in klayer.weights
    ]
    klayer.set_weights(ws)
    return ws


def build_pair(fk_layer, keras_layer, x, **call):
    """Build both on `x`; copy Keras' (randomised) weights into funkeras."""
    keras_layer(x, **call)
    ws = random_weights(keras_layer)
    fk_layer(jnp.asarray(x), **call)  # builds the funkeras layer's own weights
    fk_layer.set_weights(ws)
    return ws


def fk_apply(layer, x, *, jit, **kw):
    params, state = layer.concrete_weights()

    def f(x):
        return layer.apply(params, state, x, **kw)[0]

    return (jax.jit(f) if jit else f)(x)


def assert_close(got, want):
    got_l, want_l = jax.tree.leaves(got), jax.tree.leaves(want)
    assert len(got_l) == len(want_l)
    for g, w in zip(got_l, want_l, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), **TOL)


KINDS = {
    "simple_rnn": (
        lambda **k: L.SimpleRNN(3, **k),
        lambda **k: keras.layers.SimpleRNN(3, **k),
    ),
    "lstm": (lambda **k: L.LSTM(3, **k), lambda **k: keras.layers.LSTM(3, **k)),
    "gru": (lambda **k: L.GRU(3, **k), lambda **k: keras.layers.GRU(3, **k)),
    "gru_reset_before": (
        lambda **k: L.GRU(3, reset_after=False, **k),
        lambda **k: keras.layers.GRU(3, reset_after=False, **k),
    ),
}

OPTIONS = [
    {},
    {"return_sequences": True},
    {"return_state": True, "go_backwards": True},
    {
        "return_sequences": True,
        "return_state": True,
        "go_backwards": True,
        "unroll": True,
    },
]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(o) or "default")
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_layer_matches_keras(kind, opts, masked):
    make_fk, make_k = KINDS[kind]
    x = data()
    layer, klayer = make_fk(**opts), make_k(**opts)
    build_pair(layer, klayer, x)
    m = seq_mask() if masked else None
    want = klayer(x, mask=m)
    if not isinstance(want, list | tuple):
        want = [want]
    # Eager (op by op) once per kind and mask; jit for every option.
    for jit in (True, False) if opts == OPTIONS[-1] else (True,):
        got = fk_apply(layer, jnp.asarray(x), jit=jit, sequence_mask=m)
        got = list(got) if isinstance(got, tuple) else [got]
        assert_close(got, [np.asarray(w) for w in want])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_weights_have_keras_names_shapes_and_order(kind):
    make_fk, make_k = KINDS[kind]
    x = data()
    layer, klayer = make_fk(), make_k()
    ws = build_pair(layer, klayer, x)
    params, _ = layer.concrete_weights()
    names = [w.path.split("/")[-1] for w in klayer.weights]
    assert sorted(params) == sorted(names)
    for w in klayer.weights:
        assert params[w.path.split("/")[-1]].shape == tuple(w.shape)
    # Through a model: Keras' order in get_weights/set_weights.
    model = fk.Sequential([fk.Input(shape=(T, F)), make_fk()], seed=0)
    model.set_weights(ws)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), np.asarray(klayer(x)), **TOL
    )


def test_lstm_initial_state_and_keras_defaults():
    x = data()
    h0, c0 = data(2, (B, 3)), data(3, (B, 3))
    layer, klayer = (
        L.LSTM(3, return_state=True),
        keras.layers.LSTM(3, return_state=True),
    )
    build_pair(layer, klayer, x)
    want = klayer(x, initial_state=[h0, c0])
    got = layer(jnp.asarray(x), initial_state=[jnp.asarray(h0), jnp.asarray(c0)])
    assert_close(list(got), [np.asarray(w) for w in want])
    # Fresh weights: Keras' unit_forget_bias puts ones on the forget gate.
    params, _ = L.LSTM(2).init(
        jax.random.key(0), jax.ShapeDtypeStruct((T, F), jnp.float32)
    )
    np.testing.assert_array_equal(params["bias"], [0, 0, 1, 1, 0, 0, 0, 0])


def test_initial_state_in_the_functional_api_and_masked_with_initial_state():
    x, h0, c0 = data(), data(2, (B, 3)), data(3, (B, 3))
    klayer = keras.layers.LSTM(3, return_sequences=True)
    klayer(x)
    ws = random_weights(klayer)
    inp, hi, ci = fk.Input(shape=(T, F)), fk.Input(shape=(3,)), fk.Input(shape=(3,))
    y = L.LSTM(3, return_sequences=True, name="lstm")(inp, initial_state=[hi, ci])
    model = fk.Model([inp, hi, ci], y, seed=0)
    model.set_weights(ws)
    got = model.predict([x, h0, c0], verbose=0)
    np.testing.assert_allclose(
        got, np.asarray(klayer(x, initial_state=[h0, c0])), **TOL
    )
    # A mask given explicitly at the call (a tensor input of the node).
    mi = fk.Input(shape=(T,), dtype="bool")
    y = L.LSTM(3, name="lstm")(inp, initial_state=[hi, ci], mask=mi)
    model = fk.Model([inp, hi, ci, mi], y, seed=0)
    model.set_weights(ws)
    m = seq_mask()
    klast = keras.layers.LSTM(3)
    klast(x)
    klast.set_weights(ws)
    np.testing.assert_allclose(
        model.predict([x, h0, c0, m], verbose=0),
        np.asarray(klast(x, initial_state=[h0, c0], mask=m)),
        **TOL,
    )


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_cells_match_keras(cell):
    make = {
        "simple": (L.SimpleRNNCell, keras.layers.SimpleRNNCell, 1),
        "lstm": (L.LSTMCell, keras.layers.LSTMCell, 2),
        "gru": (L.GRUCell, keras.layers.GRUCell, 1),
    }
    fk_cls, k_cls, n_states = make[cell]
    x = data()[:, 0]
    states = [data(5 + i, (B, 3)) for i in range(n_states)]
    kcell = k_cls(3)
    kcell(x, states)
    ws = random_weights(kcell)
    fcell = fk_cls(3)
    fcell(jnp.asarray(x), [jnp.asarray(s) for s in states])
    fcell.set_weights(ws)
    want = kcell(x, states)
    got = fcell(jnp.asarray(x), [jnp.asarray(s) for s in states])
    assert_close(got, want)


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_stacked_cells_match_keras_stacked_rnn_cells(masked):
    x = data()
    m = seq_mask() if masked else None
    layer = L.RNN(
        [L.SimpleRNNCell(3), L.LSTMCell(2), L.GRUCell(4)],
        return_sequences=True,
        return_state=True,
    )
    klayer = keras.layers.RNN(
        [
            keras.layers.SimpleRNNCell(3),
            keras.layers.LSTMCell(2),
            keras.layers.GRUCell(4),
        ],
        return_sequences=True,
        return_state=True,
    )
    build_pair(layer, klayer, x)
    want = klayer(x, mask=m)
    for jit in (True, False):
        got = fk_apply(layer, jnp.asarray(x), jit=jit, sequence_mask=m)
        assert_close(got, want)
    # Keras' structure: out, then a list of states per cell.
    assert [len(s) for s in got[1:]] == [len(s) for s in want[1:]] == [1, 2, 1]


def test_rnn_of_one_cell_is_the_layer():
    x = data()
    layer, klayer = (
        L.RNN(L.GRUCell(3), go_backwards=True),
        keras.layers.RNN(keras.layers.GRUCell(3), go_backwards=True),
    )
    build_pair(layer, klayer, x)
    assert_close(fk_apply(layer, jnp.asarray(x), jit=True), klayer(x))


@pytest.mark.parametrize(
    "merge_mode, masked, seqs",
    [
        ("concat", True, True),
        ("concat", False, False),
        ("sum", True, False),
        ("ave", False, True),
        ("mul", True, True),
        (None, True, True),
        (None, False, False),
    ],
)
def test_bidirectional_matches_keras(merge_mode, masked, seqs):
    x = data()
    m = seq_mask() if masked else None
    layer = L.Bidirectional(L.LSTM(3, return_sequences=seqs), merge_mode=merge_mode)
    klayer = keras.layers.Bidirectional(
        keras.layers.LSTM(3, return_sequences=seqs), merge_mode=merge_mode
    )
    build_pair(layer, klayer, x)
    want = klayer(x, mask=m)
    for jit in (True, False):
        assert_close(fk_apply(layer, jnp.asarray(x), jit=jit, sequence_mask=m), want)


def test_bidirectional_backward_layer_return_state_and_initial_state():
    x = data()
    states = [data(7 + i, (B, 3)) for i in range(2)]
    layer = L.Bidirectional(
        L.GRU(3, return_state=True, return_sequences=True),
        backward_layer=L.SimpleRNN(
            3, go_backwards=True, return_state=True, return_sequences=True
        ),
    )
    klayer = keras.layers.Bidirectional(
        keras.layers.GRU(3, return_state=True, return_sequences=True),
        backward_layer=keras.layers.SimpleRNN(
            3, go_backwards=True, return_state=True, return_sequences=True
        ),
    )
    build_pair(layer, klayer, x)
    want = klayer(x, initial_state=states)
    got = layer(jnp.asarray(x), initial_state=[jnp.asarray(s) for s in states])
    assert len(got) == len(want) == 3
    assert_close(got, want)


@pytest.mark.parametrize("inner", ["dense", "conv1d"])
def test_time_distributed_matches_keras(inner):
    x = data(shape=(B, T, 5, 2))
    make = {
        "dense": (
            lambda: L.Dense(3, activation="relu"),
            lambda: keras.layers.Dense(3, activation="relu"),
        ),
        "conv1d": (lambda: L.Conv1D(2, 3), lambda: keras.layers.Conv1D(2, 3)),
    }[inner]
    layer, klayer = (
        L.TimeDistributed(make[0]()),
        keras.layers.TimeDistributed(make[1]()),
    )
    build_pair(layer, klayer, x)
    for jit in (True, False):
        assert_close(fk_apply(layer, jnp.asarray(x), jit=jit), klayer(x))


def test_repeat_vector_matches_keras():
    x = data(shape=(B, F))
    np.testing.assert_array_equal(
        np.asarray(L.RepeatVector(4)(jnp.asarray(x))),
        np.asarray(keras.layers.RepeatVector(4)(x)),
    )


# -- dropout: masks drawn once per call, the same at every step ----------------------


def test_dropout_masks_are_the_same_at_every_step():
    # With an identity-free setup: kernel = I, recurrent kernel = 0, no bias,
    # linear activation, the output sequence is x * input_mask: the mask must
    # be one (batch, features) draw, repeated over time.
    layer = L.SimpleRNN(
        F, activation=None, use_bias=False, dropout=0.5, return_sequences=True
    )
    x = jnp.ones((B, T, F))
    params = {"kernel": jnp.eye(F), "recurrent_kernel": jnp.zeros((F, F))}
    y, _ = layer.apply(params, {}, x, training=True, key=jax.random.key(3))
    y = np.asarray(y)
    assert set(np.unique(y)) <= {0.0, 2.0}
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))
    assert 0 < (y == 0).mean() < 1
    y2, _ = layer.apply(params, {}, x, training=True, key=jax.random.key(4))
    assert not np.array_equal(y, np.asarray(y2))  # a new key, a new mask
    y_eval, _ = layer.apply(params, {}, x, training=False)
    np.testing.assert_array_equal(np.asarray(y_eval), np.ones((B, T, F)))


def test_recurrent_dropout_mask_is_fixed_over_time():
    # kernel = 0, recurrent kernel = I, initial state ones, linear: the state
    # after t steps is h0 * mask**t (one mask reused), so entries are 0 or 2**t.
    layer = L.SimpleRNN(
        F, activation=None, use_bias=False, recurrent_dropout=0.5, return_sequences=True
    )
    params = {"kernel": jnp.zeros((F, F)), "recurrent_kernel": jnp.eye(F)}
    x = {"sequences": jnp.ones((B, T, F)), "initial_state": [jnp.ones((B, F))]}
    y, _ = layer.apply(params, {}, x, training=True, key=jax.random.key(0))
    y = np.asarray(y)
    kept = y[:, 0] > 0
    want = np.where(kept[:, None, :], 2.0 ** np.arange(1, T + 1)[None, :, None], 0.0)
    np.testing.assert_array_equal(y, want)


# -- gradients, execution modes, saving ----------------------------------------------


def sequence_model(seed=0):
    inp = fk.Input(shape=(T, F))
    h = L.Bidirectional(
        L.GRU(3, return_sequences=True, dropout=0.2, recurrent_dropout=0.2), name="bi"
    )(inp)
    out, _, c = L.LSTM(4, return_state=True, name="lstm")(h)
    y = L.Dense(1, name="head")(L.Concatenate()([out, c]))
    return fk.Model(inp, y, seed=seed)


def test_gradients_are_finite_and_nonzero_for_every_weight():
    model = sequence_model()
    x, y = jnp.asarray(data()), jnp.ones((B, 1))

    def loss(p):
        out, _ = model.apply(p, model.state, x, training=True, key=jax.random.key(0))
        return jnp.mean((out - y) ** 2)

    grads = jax.grad(loss)(model.params)
    for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
        assert np.all(np.isfinite(g)), path
        assert np.any(g != 0), path


def test_jit_eager_and_layerwise_fit_the_same():
    x, y = data(shape=(8, T, F)), np.random.default_rng(1).normal(size=(8, 1))
    built = sequence_model()
    built.params  # noqa: B018 - create the weights once
    weights = {}
    for mode in ("jit", "eager", "layerwise"):
        model = copy.deepcopy(built)
        model.compile(optimizer=optax.sgd(0.05), loss="mse", execution=mode)
        model.fit(x, y.astype(np.float32), batch_size=4, epochs=1, verbose=0, seed=1)
        weights[mode] = model.get_weights()
    assert not np.allclose(weights["jit"][0], built.get_weights()[0])
    for mode in ("eager", "layerwise"):
        for w, r in zip(weights[mode], weights["jit"], strict=True):
            np.testing.assert_allclose(w, r, rtol=2e-5, atol=2e-6)


def test_save_load_round_trip(tmp_path):
    inp = fk.Input(shape=(T, F))
    h = L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="sum")(inp)
    h = L.RNN([L.LSTMCell(2), L.GRUCell(3, reset_after=False)], return_sequences=True)(
        h
    )
    h = L.TimeDistributed(L.Dense(2))(h)
    h = L.GRU(2, go_backwards=True)(h)
    h = L.RepeatVector(2)(h)
    y = L.SimpleRNN(2, kernel_regularizer="l2")(h)
    model = fk.Model(inp, y, seed=0)
    path = tmp_path / "rnn.fkz"
    model.save(path)
    loaded = fk.load_model(path)
    x = data()
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )
    assert [type(layer).__name__ for layer in loaded.layers] == [
        type(layer).__name__ for layer in model.layers
    ]


def test_regularizers_reach_the_penalty():
    layer = L.LSTM(
        2,
        kernel_regularizer=fk.regularizers.L2(0.1),
        recurrent_regularizer="l1",
        bias_regularizer="l2",
    )
    params, _ = layer.init(jax.random.key(0), jax.ShapeDtypeStruct((T, F), jnp.float32))
    want = (
        0.1 * jnp.sum(params["kernel"] ** 2)
        + 0.01 * jnp.sum(jnp.abs(params["recurrent_kernel"]))
        + 0.01 * jnp.sum(params["bias"] ** 2)
    )
    assert layer.has_penalty()
    np.testing.assert_allclose(layer.penalty(params), want, rtol=1e-6)
    bi = L.Bidirectional(layer)
    bp, _ = bi.init(jax.random.key(0), jax.ShapeDtypeStruct((T, F), jnp.float32))
    np.testing.assert_allclose(
        bi.penalty(bp),
        layer.penalty(bp["forward_layer"]) + layer.penalty(bp["backward_layer"]),
        rtol=1e-6,
    )


def test_compute_mask_follows_keras():
    m = jnp.asarray(seq_mask())
    x = jnp.ones((B, T, F))
    assert L.LSTM(2).compute_mask(x, m) is None
    assert L.LSTM(2, return_sequences=True).compute_mask(x, m) is m
    assert L.LSTM(2, return_sequences=True, return_state=True).compute_mask(x, m)[
        1:
    ] == [
        None,
        None,
    ]
    assert L.Bidirectional(L.GRU(2)).compute_mask(x, m) is None
    assert L.TimeDistributed(L.Dense(2)).compute_mask(x, m) is m
    assert (
        L.LSTM(2).consumes_sequence_mask
        and L.Bidirectional(L.GRU(2)).consumes_sequence_mask
    )


def test_the_scan_does_not_grow_with_the_sequence():
    # One compiled loop: the program text of 8 and 256 steps has the same size.
    layer = LSTM(4)
    sizes = []
    for steps in (8, 256):
        params, state = layer.init(
            jax.random.key(0), jax.ShapeDtypeStruct((steps, 3), jnp.float32)
        )
        text = (
            jax.jit(lambda p, x: layer.apply(p, state, x)[0])
            .lower(params, jnp.ones((2, steps, 3)))
            .as_text()
        )
        sizes.append(len(text.replace(str(steps), "")))
    assert abs(sizes[0] - sizes[1]) < 200


# -- bad input ------------------------------------------------------------------------


def test_clear_errors():
    with pytest.raises(
        ValueError,
        match=r"LSTM\(name='lstm'\): expected 3D inputs.*got "
        r"shape \(None, 4\).*RepeatVector",
    ):
        L.LSTM(2, name="lstm")(fk.Input(shape=(4,)))
    with pytest.raises(
        ValueError,
        match=r"Bidirectional: `layer` must be a recurrent "
        r"layer.*Dense",
    ):
        L.Bidirectional(L.Dense(2))
    with pytest.raises(
        ValueError,
        match=r"TimeDistributed: the wrapped LSTM.*"
        r"return_state=True",
    ):
        L.TimeDistributed(L.LSTM(2, return_state=True))
    inp, h = fk.Input(shape=(T, F)), fk.Input(shape=(5,))
    with pytest.raises(ValueError, match=r"LSTM\(name='l'\): expected 2 initial state"):
        L.LSTM(3, name="l")(inp, initial_state=[h])
    with pytest.raises(
        ValueError,
        match=r"GRU\(name='g'\): initial state 0 must have "
        r"shape \(batch, 3\), got \(batch, 5\)",
    ):
        L.GRU(3, name="g")(inp, initial_state=[h])
    with pytest.raises(ValueError, match=r"sequence mask must have shape"):
        L.GRU(3).apply(
            *L.GRU(3).init(
                jax.random.key(0), jax.ShapeDtypeStruct((T, F), jnp.float32)
            ),
            jnp.ones((B, T, F)),
            sequence_mask=jnp.ones((B, T + 1), bool),
        )
    with pytest.raises(ValueError, match=r"merge_mode"):
        L.Bidirectional(L.LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match=r"opposite `go_backwards`"):
        L.Bidirectional(L.LSTM(2), backward_layer=L.LSTM(2))
    with pytest.raises(TypeError, match=r"RNN: `cell` must be a cell"):
        L.RNN(L.Dense(2))
    with pytest.raises(ValueError, match=r"LSTM: `dropout` must be in"):
        L.LSTM(2, dropout=1.5)
