"""The layerwise executor: parity with jit and eager, no retrace, hooks, probes."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funkeras as fk
from funkeras.callbacks.callback import Callback
from funkeras.training.layerwise import LayerwiseExecutor
from funkeras.training.state import Batch, TrainState, copy_tree

L = fk.layers
MODES = ("jit", "eager", "layerwise")


def assert_trees_close(a, b, rtol=2e-5, atol=2e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


# -- parity ------------------------------------------------------------------------


def conv_branch_model(seed=0):
    """Conv2D, BatchNormalization, Dropout, a branch merged by Add, a shared Dense."""
    inp = fk.Input(shape=(4, 4, 2))
    h = L.Flatten()(
        L.BatchNormalization()(L.Conv2D(2, 3, padding="same", activation="relu")(inp))
    )
    shared = L.Dense(6, activation="tanh", name="shared")
    h = L.Add()([shared(L.Dropout(0.4)(h)), shared(h)])
    return fk.Model(inp, L.Dense(3)(h), seed=seed)


class StepRecorder(Callback):
    """Weights and loss after every batch."""

    def on_train_begin(self, logs=None):
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append((logs["loss"], self.model.get_weights()))


def test_short_fit_matches_jit_and_eager_step_by_step():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 4, 4, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=(10,)).astype(np.int32)
    runs = {}
    built = conv_branch_model()
    for mode in MODES:
        model = copy.deepcopy(built)  # the same weights, without initialising again
        model.compile(
            optimizer=optax.sgd(0.02),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            execution=mode,
        )
        rec = StepRecorder()
        # batch 4: the third step of each epoch is padded (row mask, masked moments)
        history = model.fit(
            x, y, batch_size=4, epochs=2, verbose=0, callbacks=[rec], seed=3
        )
        runs[mode] = (rec.steps, history.history, model.state)
    ref_steps, ref_history, ref_state = runs["jit"]
    assert len(ref_steps) == 6
    for mode in ("eager", "layerwise"):
        steps, history, state = runs[mode]
        assert len(steps) == len(ref_steps)
        for (loss, weights), (ref_loss, ref_weights) in zip(
            steps, ref_steps, strict=True
        ):
            np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
            assert_trees_close(weights, ref_weights)
        for k in ref_history:
            np.testing.assert_allclose(history[k], ref_history[k], rtol=1e-5)
        assert_trees_close(state, ref_state)  # BatchNorm's moving statistics


def families_model():
    """With `conv_branch_model`, every layer of the catalogue: one branch per family."""
    seq = fk.Input(shape=(8, 3))
    h = L.Conv1D(4, 3, activation="tanh")(seq)
    h = L.AveragePooling1D(1)(L.MaxPooling1D(2)(h))
    h = L.LayerNormalization()(h)
    conv1d = L.Concatenate()([L.GlobalMaxPooling1D()(h), L.GlobalAveragePooling1D()(h)])

    image = fk.Input(shape=(4, 4, 2))
    h = L.AveragePooling2D(1)(L.MaxPooling2D(2)(image))
    pooled2d = L.Concatenate()(
        [L.GlobalAveragePooling2D()(h), L.GlobalMaxPooling2D()(h)]
    )

    ids = fk.Input(shape=(4,), dtype="int32")
    h = L.Permute((2, 1))(L.Reshape((3, 4))(L.Embedding(10, 3)(ids)))
    embedded = L.Identity()(L.Activation("relu")(L.Dense(4)(L.Flatten()(h))))

    a = L.Dense(4, activation="sigmoid")(L.Concatenate()([conv1d, pooled2d]))
    b = embedded
    merged = L.Add()(
        [
            L.Multiply()([a, b]),
            L.Subtract()([a, b]),
            L.Average()([a, b]),
            L.Maximum()([a, b]),
            L.Minimum()([a, b]),
        ]
    )
    return fk.Model([seq, image, ids], L.Dense(2)(merged), seed=4)


def test_layer_families_match_jit():
    """Two steps; eager's parity with jit is the same code (`graph_apply`)."""
    rng = np.random.default_rng(0)
    x = [
        rng.normal(size=(5, 8, 3)).astype(np.float32),
        rng.normal(size=(5, 4, 4, 2)).astype(np.float32),
        rng.integers(0, 10, size=(5, 4)).astype(np.int32),
    ]
    y = rng.normal(size=(5, 2)).astype(np.float32)
    results = {}
    built = families_model()
    for mode in ("jit", "layerwise"):
        model = copy.deepcopy(built)
        # SGD: Adam would turn float noise in a near-zero gradient into a full step.
        model.compile(optimizer=optax.sgd(0.1), loss="mse", execution=mode)
        losses = [model.train_on_batch(x, y) for _ in range(2)]
        results[mode] = (losses, model.get_weights())
    np.testing.assert_allclose(results["layerwise"][0], results["jit"][0], rtol=1e-5)
    assert_trees_close(results["layerwise"][1], results["jit"][1])


def test_nested_models_regularizers_and_casts_match_jit():
    """A nested model called twice (keys folded per level), an int Input cast."""
    inner = fk.Sequential(
        [fk.Input(shape=(6,)), L.Dense(6, activation="relu"), L.Dropout(0.5)],
        name="encoder",
    )
    float_in = fk.Input(shape=(3,))
    as_float = fk.Model(
        float_in, L.Dense(2, name="from_ids")(float_in), name="as_float"
    )
    inp, ids = fk.Input(shape=(4,)), fk.Input(shape=(3,), dtype="int32")
    h = L.Dense(6, kernel_regularizer="l2", name="reg")(inp)
    merged = L.Add()([inner(h), inner(L.Activation("tanh")(h))])
    out = L.Dense(2)(L.Concatenate()([merged, as_float(ids)]))

    rng = np.random.default_rng(0)
    x = [
        rng.normal(size=(6, 4)).astype(np.float32),
        rng.integers(0, 5, size=(6, 3)).astype(np.int32),
    ]
    y = rng.normal(size=(6, 2)).astype(np.float32)
    results = {}
    built = fk.Model([inp, ids], out, seed=1)
    weights = built.get_weights()
    for mode in ("jit", "layerwise"):
        model = copy.deepcopy(built)
        model.compile(optimizer=optax.sgd(0.1), loss="mse", execution=mode)
        h = model.fit(x, y, batch_size=4, epochs=2, verbose=0, seed=5)
        results[mode] = (h.history["loss"], model.get_weights())
    np.testing.assert_allclose(results["layerwise"][0], results["jit"][0], rtol=1e-5)
    assert_trees_close(results["layerwise"][1], results["jit"][1])
    assert not np.allclose(results["jit"][1][0], weights[0])


def test_multi_output_loss_weights_match_jit():
    inp = fk.Input(shape=(3,))
    h = L.Dense(4, activation="relu")(inp)
    outputs = [L.Dense(1, name="a")(h), L.Dense(2, name="b")(h)]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3)).astype(np.float32)
    y = [
        rng.normal(size=(7, 1)).astype(np.float32),
        rng.normal(size=(7, 2)).astype(np.float32),
    ]
    results = {}
    built = fk.Model(inp, outputs, seed=2)
    for mode in ("jit", "layerwise"):
        model = copy.deepcopy(built)
        model.compile(
            optimizer=optax.sgd(0.1),
            loss=["mse", "mae"],
            loss_weights=[1.0, 0.5],
            metrics=[["mae"], []],
            execution=mode,
        )
        h = model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
        results[mode] = (h.history, model.get_weights())
    assert set(results["jit"][0]) == {"loss", "a_loss", "b_loss", "a_mae"}
    for k in results["jit"][0]:
        np.testing.assert_allclose(
            results["layerwise"][0][k], results["jit"][0][k], rtol=1e-5
        )
    assert_trees_close(results["layerwise"][1], results["jit"][1])


class CustomLoss(fk.Model):
    def compute_loss(self, x, y, y_pred, sample_weight=None):
        err = jnp.sum((y_pred - y) ** 2, axis=-1)
        return jnp.sum(err * sample_weight) / jnp.sum(sample_weight) + 0.1


def bn_model(seed=0, dropout=True, cls=fk.Model):
    """Dense, BatchNormalization, Dropout (or tanh) and a layer called twice."""
    inp = fk.Input(shape=(3,))
    h = L.BatchNormalization()(L.Dense(4)(inp))
    shared = L.Dense(4, activation="relu", name="shared")
    g = L.Dropout(0.5)(h) if dropout else L.Activation("tanh")(h)
    h = L.Add()([shared(h), shared(g)])
    return cls(inp, L.Dense(2)(h), seed=seed)


def test_custom_compute_loss_frozen_layer_and_steps_per_execution_match_jit():
    rng = np.random.default_rng(0)
    x, y = (
        rng.normal(size=(9, 3)).astype(np.float32),
        rng.normal(size=(9, 2)).astype(np.float32),
    )
    results = {}
    built = bn_model(dropout=False, cls=CustomLoss)
    built.get_layer("batch_normalization").trainable = False
    for mode in ("jit", "layerwise"):
        model = copy.deepcopy(built)
        model.compile(
            optimizer=optax.sgd(0.1), loss="mse", execution=mode, steps_per_execution=2
        )
        h = model.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False)
        results[mode] = (h.history["loss"], model.get_weights())
    np.testing.assert_allclose(results["layerwise"][0], results["jit"][0], rtol=1e-5)
    assert_trees_close(results["layerwise"][1], results["jit"][1])


# -- compiles -------------------------------------------------------------------------


def test_no_retrace_after_the_first_step():
    from funkeras.inspect import compile_events

    model = bn_model()
    model.compile(optimizer=optax.sgd(0.1), loss="mse", execution="layerwise")
    rng = np.random.default_rng(0)
    x, y = (
        rng.normal(size=(10, 3)).astype(np.float32),
        rng.normal(size=(10, 2)).astype(np.float32),
    )
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    first = {k: v["compiles"] for k, v in model.compile_stats().items()}
    assert first["forward[shared]"] == 1 and first["backward[shared]"] == 1
    assert first["forward[dropout]"] == 1
    assert all(v <= 1 for v in first.values())
    with compile_events() as events:
        model.fit(x, y, batch_size=4, epochs=2, verbose=0)
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    again = {k: v["compiles"] for k, v in model.compile_stats().items()}
    assert again == first
    assert events.count("trace") == 0 and events.count("compile") == 0
    assert model.compile_stats()["forward[dense]"]["calls"] == 12


# -- values between layers -------------------------------------------------------------


def mlp(seed=0, **dense):
    return fk.Sequential(
        [fk.Input(shape=(3,)), L.Dense(4, activation="tanh", **dense), L.Dense(2)],
        seed=seed,
    )


def xy(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=(n, 2)).astype(
        np.float32
    )


def test_hooks_see_concrete_values_and_records_match_independent_math():
    model = mlp(kernel_regularizer="l2")
    model.compile(optimizer=optax.sgd(0.1), loss="mse", execution="layerwise")
    x, y = xy()
    before = jax.tree.map(np.asarray, model.params)
    ex = model.make_runner().executor
    seen_fwd, seen_bwd = [], []
    ex.forward_hooks.append(lambda name, out: seen_fwd.append((name, type(out))))
    ex.backward_hooks.append(
        lambda name, ct, g: seen_bwd.append((name, type(ct), type(g)))
    )
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert [n for n, _ in seen_fwd] == ["dense", "dense_1"]
    assert [n for n, *_ in seen_bwd] == ["dense_1", "dense"]
    assert all(
        issubclass(t, jax.Array) and not issubclass(t, jax.core.Tracer)
        for _, t in seen_fwd
    )

    def loss_fn(params):
        y_pred, _ = model.apply(params, model.state, x)
        return jnp.mean((y_pred - y) ** 2) + model.penalty(params)

    grads = jax.grad(loss_fn)(before)
    h = np.tanh(x @ before["dense"]["kernel"] + before["dense"]["bias"])
    np.testing.assert_allclose(ex.activations["dense"], h, rtol=1e-5, atol=1e-6)
    out = h @ before["dense_1"]["kernel"] + before["dense_1"]["bias"]
    np.testing.assert_allclose(
        ex.output_grads["dense_1"], 2 * (out - y) / out.size, rtol=1e-4, atol=1e-7
    )
    for name in ("dense", "dense_1"):
        assert_trees_close(ex.grads[name], grads[name])  # l2 penalty included
        assert_trees_close(
            ex.updates[name], jax.tree.map(lambda g: -0.1 * g, grads[name])
        )
        assert_trees_close(
            jax.tree.map(lambda a, b: a - b, model.params[name], before[name]),
            ex.updates[name],
        )


def test_replacement_from_a_hook_is_used_and_a_bad_one_is_refused():
    model = mlp()
    model.compile(
        optimizer=optax.sgd(0.0), loss="mse", metrics=["mae"], execution="layerwise"
    )
    x, y = xy()
    ex = model.make_runner().executor
    ex.forward_hooks.append(
        lambda name, out: jnp.zeros_like(out) if name == "dense_1" else None
    )
    logs = model.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["mae"], np.mean(np.abs(y)), rtol=1e-6)
    ex.forward_hooks[:] = [lambda name, out: out[:, :1] if name == "dense" else None]
    with pytest.raises(
        ValueError, match=r"forward hook on layer 'dense'.*shape \(8, 4\)"
    ):
        model.train_on_batch(x, y)


class Probe(Callback):
    probe_every = 2

    def on_train_begin(self, logs=None):
        self.probes = []

    def on_train_batch_begin(self, batch, logs=None):
        self.before = jax.tree.map(np.array, self.model.params)

    def on_train_batch_end(self, batch, logs=None):
        self.probes.append(
            (self.before, jax.tree.map(np.array, self.model.params), logs.probes)
        )


def test_per_layer_probes_equal_independent_norms():
    model = mlp()
    model.compile(optimizer=optax.sgd(0.1), loss="mse", execution="layerwise")
    x, y = xy(n=12)
    probe = Probe()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[probe])
    assert len(probe.probes) == 3
    for i, (before, after, probes) in enumerate(probe.probes):
        if i != 1:  # probes come on the last step of every `probe_every` steps
            assert all(np.isnan(v) for v in jax.tree.leaves(probes))
            continue
        xb, yb = x[4 * i : 4 * i + 4], y[4 * i : 4 * i + 4]
        grads = jax.grad(
            lambda p: jnp.mean(
                (model.apply(p, {"dense": {}, "dense_1": {}}, xb)[0] - yb) ** 2
            )
        )(before)
        for name in ("dense", "dense_1"):
            for var in ("kernel", "bias"):
                np.testing.assert_allclose(
                    probes["param_norm"][name][var],
                    np.linalg.norm(after[name][var]),
                    rtol=1e-5,
                )
                np.testing.assert_allclose(
                    probes["grad_norm"][name][var],
                    np.linalg.norm(grads[name][var]),
                    rtol=1e-5,
                )
                np.testing.assert_allclose(
                    probes["update_norm"][name][var],
                    np.linalg.norm(after[name][var] - before[name][var]),
                    rtol=1e-4,
                )


class Gate(Callback):
    finite_gate = True

    def on_train_begin(self, logs=None):
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append((logs["loss"], self.model.get_weights()))


def test_finite_gate_keeps_the_last_finite_weights():
    x, y = xy(n=12)
    y[5, 0] = 1e30  # the second batch of 4 overflows the loss: a non-finite step
    model = mlp()
    model.compile(optimizer=optax.sgd(0.1), loss="mse", execution="layerwise")
    gate = Gate()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[gate])
    (first_loss, first), (second_loss, second), (third_loss, third) = gate.steps
    assert np.isfinite(first_loss) and np.isnan(second_loss) and np.isfinite(third_loss)
    assert_trees_close(
        second, first, rtol=0, atol=0
    )  # the poisoned step was not committed
    assert all(np.isfinite(w).all() for w in third)
    assert not np.allclose(third[0], first[0])
    assert int(model.progress.step) == 2


def test_skip_empty_batch_and_graphless_runner_refusal():
    model = mlp()
    model.compile(optimizer=optax.sgd(0.1), loss="mse", execution="layerwise")
    runner = model.make_runner()
    step = runner.train_step(skip_empty=True)
    x, y = xy(n=4)
    ts = TrainState.create(
        copy_tree(model.params),
        copy_tree(model.state),
        copy_tree(model.opt_state),
        runner.init_metrics(),
        jax.random.key(0),
    )
    new, _ = step(
        ts, Batch(jnp.asarray(x), jnp.asarray(y), None, jnp.zeros((4,), bool))
    )
    assert_trees_close(new.params, ts.params, rtol=0, atol=0)
    assert int(new.step) == 0
    with pytest.raises(ValueError, match="graph description"):
        LayerwiseExecutor().make_train_step(
            None, graph=None, objective=runner.objective, optimizer=runner.optimizer
        )
