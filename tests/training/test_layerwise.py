"""The layerwise executor: parity with jit and eager, no retrace, hooks, probes, gates."""

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


# -- models ------------------------------------------------------------------------


def conv_branch_model(seed=0):
    """Conv2D, pooling, BatchNormalization, Dropout, branches (Concatenate, Add), a shared Dense."""
    inp = fk.Input(shape=(5, 5, 2))
    h = L.Conv2D(3, 3, padding="same", activation="relu")(inp)
    h = L.BatchNormalization()(h)
    p = L.Flatten()(L.MaxPooling2D(2)(h))
    g = L.GlobalAveragePooling2D()(L.AveragePooling2D(1)(h))
    f = L.Concatenate()([p, g])
    shared = L.Dense(6, activation="tanh", name="shared")
    h = L.Add()([shared(L.Dropout(0.4)(f)), shared(f)])
    out = L.Dense(3)(L.Dropout(0.2)(h))
    return fk.Model(inp, out, seed=seed)


def conv_data(n=10, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 5, 5, 2)).astype(np.float32),
            rng.integers(0, 3, size=(n,)).astype(np.int32))


class StepRecorder(Callback):
    """Weights and loss after every batch."""

    def on_train_begin(self, logs=None):
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append((logs["loss"], self.model.get_weights()))


def assert_trees_close(a, b, rtol=2e-5, atol=2e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


# -- parity ------------------------------------------------------------------------


def test_short_fit_matches_jit_and_eager_step_by_step():
    x, y = conv_data(n=10)  # batch 4: the third step of each epoch is padded
    runs = {}
    for mode in MODES:
        model = conv_branch_model()
        model.compile(optimizer=optax.adam(0.01), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], execution=mode)
        rec = StepRecorder()
        history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[rec], seed=3)
        runs[mode] = (rec.steps, history.history, model.state)
    ref_steps, ref_history, ref_state = runs["jit"]
    assert len(ref_steps) == 6
    for mode in ("eager", "layerwise"):
        steps, history, state = runs[mode]
        assert len(steps) == len(ref_steps)
        for (loss, weights), (ref_loss, ref_weights) in zip(steps, ref_steps, strict=True):
            np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
            assert_trees_close(weights, ref_weights)
        for k in ref_history:
            np.testing.assert_allclose(history[k], ref_history[k], rtol=1e-5)
        assert_trees_close(state, ref_state)  # BatchNorm's moving statistics


def _families():
    """One small model per layer family (with `conv_branch_model`, every layer)."""
    def conv1d():
        inp = fk.Input(shape=(8, 3))
        h = L.Conv1D(4, 3, activation="tanh")(inp)
        h = L.MaxPooling1D(2)(h)
        h = L.AveragePooling1D(1)(h)
        h = L.LayerNormalization()(h)
        a = L.GlobalMaxPooling1D()(h)
        b = L.GlobalAveragePooling1D()(h)
        return fk.Model(inp, L.Dense(2)(L.Concatenate()([a, b]))), (8, 3), "float32"

    def embedding_reshape():
        inp = fk.Input(shape=(4,), dtype="int32")
        h = L.Embedding(10, 3)(inp)
        h = L.Reshape((3, 4))(h)
        h = L.Permute((2, 1))(h)
        h = L.Flatten()(h)
        h = L.Dropout(0.3)(L.Activation("relu")(L.Dense(5)(h)))
        return fk.Model(inp, L.Dense(2)(L.Identity()(h))), (4,), "int32"

    def merging():
        a_in, b_in = fk.Input(shape=(3,)), fk.Input(shape=(3,))
        a = L.Dense(4, activation="sigmoid")(a_in)
        b = L.Dense(4)(b_in)
        merged = [L.Multiply()([a, b]), L.Subtract()([a, b]), L.Average()([a, b]),
                  L.Maximum()([a, b]), L.Minimum()([a, b])]
        h = L.Add()(merged)
        c = L.GlobalMaxPooling2D()(L.Reshape((2, 2, 1))(h))
        return fk.Model([a_in, b_in], L.Dense(2)(L.Concatenate()([h, c]))), None, "float32"

    return {"conv1d": conv1d, "embedding_reshape": embedding_reshape, "merging": merging}


@pytest.mark.parametrize("family", sorted(_families()))
def test_layer_families_match_jit(family):
    """Two steps per family; eager's parity with jit is the same code (graph_apply)."""
    build = _families()[family]
    results = {}
    for mode in ("jit", "layerwise"):
        rng = np.random.default_rng(0)
        model, shape, dtype = build()
        if family == "merging":
            x = [rng.normal(size=(5, 3)).astype(np.float32) for _ in range(2)]
        elif dtype == "int32":
            x = rng.integers(0, 10, size=(5, *shape)).astype(np.int32)
        else:
            x = rng.normal(size=(5, *shape)).astype(np.float32)
        y = rng.normal(size=(5, 2)).astype(np.float32)
        # SGD: Adam would turn float noise in a near-zero gradient into a full step.
        model.compile(optimizer=optax.sgd(0.1), loss="mse", execution=mode)
        losses = [model.train_on_batch(x, y) for _ in range(2)]
        results[mode] = (losses, model.get_weights())
    np.testing.assert_allclose(results["layerwise"][0], results["jit"][0], rtol=1e-5)
    assert_trees_close(results["layerwise"][1], results["jit"][1])


def test_nested_models_regularizers_and_casts_match_jit():
    """Nested models (keys folded per level), an int Input feeding a float one."""
    inner = fk.Sequential([fk.Input(shape=(6,)), L.Dense(6, activation="relu"),
                           L.Dropout(0.5)], name="encoder")
    ids_in = fk.Input(shape=(3,), dtype="int32")
    float_in = fk.Input(shape=(3,))
    as_float = fk.Model(float_in, L.Dense(2, name="from_ids")(float_in), name="as_float")

    def build():
        inp = fk.Input(shape=(4,))
        h = L.Dense(6, kernel_regularizer="l2", name="reg")(inp)
        e1 = inner(h)
        e2 = inner(L.Dropout(0.5)(h))  # the nested model called twice
        f = as_float(ids_in)  # int32 values cast to the nested float32 Input
        out = L.Dense(2)(L.Concatenate()([L.Add()([e1, e2]), f]))
        return fk.Model([inp, ids_in], out, seed=1)

    rng = np.random.default_rng(0)
    x = [rng.normal(size=(6, 4)).astype(np.float32),
         rng.integers(0, 5, size=(6, 3)).astype(np.int32)]
    y = rng.normal(size=(6, 2)).astype(np.float32)
    results = {}
    for mode in ("jit", "layerwise"):
        model = build()
        model.compile(optimizer=optax.sgd(0.1), loss="mse", execution=mode)
        h = model.fit(x, y, batch_size=4, epochs=2, verbose=0, seed=5)
        results[mode] = (h.history["loss"], model.get_weights())
    np.testing.assert_allclose(results["layerwise"][0], results["jit"][0], rtol=1e-5)
    assert_trees_close(results["layerwise"][1], results["jit"][1])


def test_multi_output_loss_weights_and_custom_compute_loss_match_jit():
    class Custom(fk.Model):
        def compute_loss(self, x, y, y_pred, sample_weight=None):
            err = (y_pred - y) ** 2
            return jnp.sum(err * sample_weight[:, None]) / jnp.sum(sample_weight) + 0.1

    def two_heads():
        inp = fk.Input(shape=(3,))
        h = L.Dense(4, activation="relu")(inp)
        return fk.Model(inp, [L.Dense(1, name="a")(h), L.Dense(2, name="b")(h)], seed=2)

    def custom():
        inp = fk.Input(shape=(3,))
        return Custom(inp, L.Dense(2)(L.Dense(4, activation="relu")(inp)), seed=2)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3)).astype(np.float32)
    ya, yb = rng.normal(size=(7, 1)).astype(np.float32), rng.normal(size=(7, 2)).astype(np.float32)
    for build, kwargs, y in (
        (two_heads, dict(loss=["mse", "mae"], loss_weights=[1.0, 0.5], metrics=[["mae"], []]),
         [ya, yb]),
        (custom, dict(loss="mse"), yb),
    ):
        results = {}
        for mode in ("jit", "layerwise"):
            model = build()
            model.compile(optimizer="adam", execution=mode, **kwargs)
            h = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
            results[mode] = (h.history, model.get_weights())
        for k in results["jit"][0]:
            np.testing.assert_allclose(results["layerwise"][0][k], results["jit"][0][k], rtol=1e-5)
        assert_trees_close(results["layerwise"][1], results["jit"][1])


def bn_model(seed=0):
    """Dense, BatchNormalization, Dropout and a layer called twice."""
    inp = fk.Input(shape=(3,))
    h = L.BatchNormalization()(L.Dense(4)(inp))
    shared = L.Dense(4, activation="relu", name="shared")
    h = L.Add()([shared(h), shared(L.Dropout(0.5)(h))])
    return fk.Model(inp, L.Dense(2)(h), seed=seed)


def test_frozen_layers_and_steps_per_execution_match_jit():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 3)).astype(np.float32), rng.normal(size=(9, 2)).astype(np.float32)
    results = {}
    for mode in ("jit", "layerwise"):
        model = bn_model()
        model.get_layer("batch_normalization").trainable = False
        model.compile(optimizer="adam", loss="mse", execution=mode, steps_per_execution=2)
        model.fit(x, y, batch_size=2, epochs=1, verbose=0)
        results[mode] = (model.get_weights(), model.count_params())
    assert_trees_close(results["layerwise"][0], results["jit"][0])


# -- compiles -------------------------------------------------------------------------


def test_no_retrace_after_the_first_step():
    from funkeras.inspect import compile_events

    model = bn_model()
    model.compile(optimizer="adam", loss="mse", execution="layerwise")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 3)).astype(np.float32), rng.normal(size=(10, 2)).astype(np.float32)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    first = {k: v["compiles"] for k, v in model.compile_stats().items()}
    assert first["forward[shared:0]"] == 1 and first["backward[shared:1]"] == 1
    assert all(v <= 1 for v in first.values())
    with compile_events() as events:
        model.fit(x, y, batch_size=4, epochs=2, verbose=0)
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    again = {k: v["compiles"] for k, v in model.compile_stats().items()}
    assert again == first
    assert events.count("trace") == 0 and events.count("compile") == 0
    assert model.compile_stats()["forward[dense]"]["calls"] == 12


# -- values between layers ----------------------------------------------------------------


def mlp(seed=0, **dense):
    return fk.Sequential([fk.Input(shape=(3,)), L.Dense(4, activation="tanh", **dense),
                          L.Dense(2)], seed=seed)


def xy(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32)


def test_hooks_see_concrete_values_and_records_match_independent_math():
    model = mlp(kernel_regularizer="l2")
    model.compile(optimizer=optax.sgd(0.1), loss="mse", execution="layerwise")
    x, y = xy()
    before = jax.tree.map(np.asarray, model.params)
    ex = model._ensure_runner().executor
    seen_fwd, seen_bwd = [], []
    ex.forward_hooks.append(lambda name, out: seen_fwd.append((name, type(out))))
    ex.backward_hooks.append(lambda name, ct, g: seen_bwd.append((name, type(ct), type(g))))
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert [n for n, _ in seen_fwd] == ["dense", "dense_1"]
    assert [n for n, *_ in seen_bwd] == ["dense_1", "dense"]
    assert all(issubclass(t, jax.Array) and not issubclass(t, jax.core.Tracer)
               for _, t in seen_fwd)

    def loss_fn(params):
        y_pred, _ = model.apply(params, model.state, x)
        return jnp.mean((y_pred - y) ** 2) + model.penalty(params)

    grads = jax.grad(loss_fn)(before)
    h = np.tanh(x @ before["dense"]["kernel"] + before["dense"]["bias"])
    np.testing.assert_allclose(ex.activations["dense"], h, rtol=1e-5, atol=1e-6)
    out = h @ before["dense_1"]["kernel"] + before["dense_1"]["bias"]
    np.testing.assert_allclose(ex.output_grads["dense_1"], 2 * (out - y) / out.size,
                               rtol=1e-4, atol=1e-7)
    for name in ("dense", "dense_1"):
        assert_trees_close(ex.grads[name], grads[name])  # l2 penalty included
        assert_trees_close(ex.updates[name], jax.tree.map(lambda g: -0.1 * g, grads[name]))
        assert_trees_close(jax.tree.map(lambda a, b: a - b, model.params[name], before[name]),
                           ex.updates[name])


def test_replacement_from_a_hook_is_used_and_a_bad_one_is_refused():
    model = mlp()
    model.compile(optimizer=optax.sgd(0.0), loss="mse", metrics=["mae"], execution="layerwise")
    x, y = xy()
    ex = model._ensure_runner().executor
    ex.forward_hooks.append(lambda name, out: jnp.zeros_like(out) if name == "dense_1" else None)
    logs = model.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["mae"], np.mean(np.abs(y)), rtol=1e-6)
    ex.forward_hooks[:] = [lambda name, out: out[:, :1] if name == "dense" else None]
    with pytest.raises(ValueError, match=r"forward hook on layer 'dense'.*shape \(8, 4\)"):
        model.train_on_batch(x, y)


class Probe(Callback):
    probe_every = 2

    def on_train_begin(self, logs=None):
        self.probes = []

    def on_train_batch_begin(self, batch, logs=None):
        self.before = jax.tree.map(np.array, self.model.params)

    def on_train_batch_end(self, batch, logs=None):
        self.probes.append((self.before, jax.tree.map(np.array, self.model.params), logs.probes))


def test_per_layer_probes_equal_independent_norms():
    model = mlp()
    model.compile(optimizer=optax.sgd(0.1), loss="mse", execution="layerwise")
    x, y = xy(n=12)
    probe = Probe()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[probe])
    assert len(probe.probes) == 3
    for i, (before, after, probes) in enumerate(probe.probes):
        if i % 2:  # steps 1: skipped by probe_every=2
            assert all(np.isnan(v) for v in jax.tree.leaves(probes))
            continue
        xb, yb = x[4 * i:4 * i + 4], y[4 * i:4 * i + 4]
        grads = jax.grad(lambda p: jnp.mean((model.apply(p, {"dense": {}, "dense_1": {}}, xb)[0]
                                            - yb) ** 2))(before)
        for name in ("dense", "dense_1"):
            for var in ("kernel", "bias"):
                np.testing.assert_allclose(probes["param_norm"][name][var],
                                           np.linalg.norm(after[name][var]), rtol=1e-5)
                np.testing.assert_allclose(probes["grad_norm"][name][var],
                                           np.linalg.norm(grads[name][var]), rtol=1e-5)
                np.testing.assert_allclose(probes["update_norm"][name][var],
                                           np.linalg.norm(after[name][var] - before[name][var]),
                                           rtol=1e-4)


class Gate(Callback):
    finite_gate = True

    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


@pytest.mark.parametrize("mode", ["jit", "layerwise"])
def test_finite_gate_keeps_the_last_finite_weights(mode):
    x, y = xy(n=8)
    y[5, 0] = 1e30  # the second batch of 4 overflows the loss: a non-finite step
    model = mlp()
    model.compile(optimizer=optax.sgd(0.1), loss="mse", execution=mode)
    gate = Gate()
    model.fit(x[:4], y[:4], batch_size=4, epochs=1, verbose=0, shuffle=False)
    after_first = model.get_weights()
    model = mlp()
    model.compile(optimizer=optax.sgd(0.1), loss="mse", execution=mode)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[gate])
    assert np.isfinite(gate.losses[0]) and np.isnan(gate.losses[1])
    assert_trees_close(model.get_weights(), after_first, rtol=0, atol=0)
    assert int(model._train_step_count) == 1


def test_skip_empty_batch_and_graphless_runner_refusal():
    model = mlp()
    model.compile(optimizer=optax.sgd(0.1), loss="mse", execution="layerwise")
    runner = model._ensure_runner()
    step = runner.train_step(skip_empty=True)
    x, y = xy(n=4)
    ts = TrainState.create(copy_tree(model.params), copy_tree(model.state),
                           copy_tree(model.opt_state), runner.init_metrics(), jax.random.key(0))
    new, _ = step(ts, Batch(jnp.asarray(x), jnp.asarray(y), None, jnp.zeros((4,), bool)))
    assert_trees_close(new.params, ts.params, rtol=0, atol=0)
    assert int(new.step) == 0
    with pytest.raises(ValueError, match="graph description"):
        LayerwiseExecutor().make_train_step(None, graph=None, objective=runner.objective,
                                            optimizer=runner.optimizer)
