"""Keras' JAX customization API: `train_step(self, state, data)` over four lists
of variables, `test_step`/`predict_step(self, state, data)`, `stateless_call`,
`stateless_compute_loss`, `optimizer.stateless_apply` and the metrics'
`stateless_*` methods, against funkeras' own `fit`/`evaluate`."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk

L = fk.layers


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ rng.normal(size=(4, 1)) + 0.1).astype(np.float32)
    return x, y


def build(cls, seed=0, dropout=True):
    inp = fk.Input(shape=(4,))
    h = L.Dense(8, activation="relu")(inp)
    h = L.BatchNormalization()(h)
    if dropout:
        h = L.Dropout(0.25)(h)
    return cls(inp, L.Dense(1)(h), seed=seed)


class GuideStep(fk.Model):
    """The train step of Keras' "customizing fit() with JAX" guide, as written."""

    def compute_loss_and_updates(self, trainable_variables, non_trainable_variables,
                                 metrics_variables, x, y, sample_weight,
                                 training=False):
        y_pred, non_trainable_variables = self.stateless_call(
            trainable_variables, non_trainable_variables, x, training=training)
        loss, (trainable_variables, non_trainable_variables, metrics_variables) = (
            self.stateless_compute_loss(
                trainable_variables, non_trainable_variables, metrics_variables,
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                training=training))
        return loss, (y_pred, non_trainable_variables, metrics_variables)

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_vars, metrics_vars = state
        x, y, sample_weight = fk.utils.unpack_x_y_sample_weight(data)
        grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
        (loss, (y_pred, non_trainable, metrics_vars)), grads = grad_fn(
            trainable, non_trainable, metrics_vars, x, y, sample_weight,
            training=True)
        trainable, optimizer_vars = self.optimizer.stateless_apply(
            optimizer_vars, grads, trainable)
        new_vars, logs = [], {}
        for metric in self.metrics:
            these = metrics_vars[len(new_vars):len(new_vars) + len(metric.variables)]
            if metric.name == "loss":
                these = metric.stateless_update_state(these, loss)
            else:
                these = metric.stateless_update_state(these, y, y_pred)
            logs[metric.name] = metric.stateless_result(these)
            new_vars += these
        return logs, (trainable, non_trainable, optimizer_vars, new_vars)


class GuideTest(fk.Model):
    """Keras' `test_step(self, state, data)` form."""

    def test_step(self, state, data):
        x, y, sample_weight = fk.utils.unpack_x_y_sample_weight(data)
        trainable, non_trainable, metrics_vars = state
        y_pred, non_trainable = self.stateless_call(trainable, non_trainable, x)
        loss, (trainable, non_trainable, metrics_vars) = self.stateless_compute_loss(
            trainable, non_trainable, metrics_vars, x=x, y=y, y_pred=y_pred,
            sample_weight=sample_weight, training=False)
        new_vars, logs = [], {}
        for metric in self.metrics:
            these = metrics_vars[len(new_vars):len(new_vars) + len(metric.variables)]
            if metric.name == "loss":
                these = metric.stateless_update_state(these, loss)
            else:
                these = metric.stateless_update_state(these, y, y_pred)
            logs[metric.name] = metric.stateless_result(these)
            new_vars += these
        return logs, (trainable, non_trainable, new_vars)


def fit_pair(cls, *, n=32, batch_size=8, epochs=2, execution="jit", **compile_kw):
    x, y = data(n)
    models = [build(cls), build(fk.Model)]
    models[1].set_weights(models[0].get_weights())
    hist = []
    for m in models:
        m.compile(optimizer=fk.optimizers.SGD(0.05), loss="mse", metrics=["mae"],
                  execution=execution, **compile_kw)
        hist.append(m.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0,
                          seed=3).history)
    return models, hist


@pytest.mark.parametrize("execution", ["jit", "eager", "layerwise"])
def test_keras_train_step_equals_funkeras_fit(execution):
    (keras_style, plain), (hk, hp) = fit_pair(GuideStep, execution=execution)
    for a, b in zip(keras_style.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    # full batches: a per-batch mean of the loss is the per-row mean
    np.testing.assert_allclose(hk["loss"], hp["loss"], rtol=2e-5)
    np.testing.assert_allclose(hk["mae"], hp["mae"], rtol=2e-5)
    if execution == "jit":
        assert keras_style.compile_stats()["train_step"]["compiles"] == 1


def test_keras_train_step_pads_a_short_batch_like_funkeras():
    # 36 rows at batch 8: the last batch holds 4 real rows and 4 padding rows;
    # `stateless_call` passes the row mask (BatchNorm) and `compute_loss`
    # reduces over the real rows, so the weights equal funkeras' fit.
    (keras_style, plain), (hk, hp) = fit_pair(GuideStep, n=36, epochs=2)
    for a, b in zip(keras_style.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(hk["mae"], hp["mae"], rtol=2e-5)
    assert keras_style.compile_stats()["train_step"]["compiles"] == 1


def test_steps_per_execution_runs_the_keras_step_in_a_fused_block():
    (keras_style, plain), _ = fit_pair(GuideStep, steps_per_execution=2)
    for a, b in zip(keras_style.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_keras_test_step_equals_built_in_evaluate_and_default_train_step():
    # Only `test_step` is Keras-style: fit runs the built-in step in Keras' form.
    (keras_style, plain), (hk, hp) = fit_pair(GuideTest, n=36)
    for a, b in zip(keras_style.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(hk["loss"], hp["loss"], rtol=2e-5)
    x, y = data(20, seed=1)
    got = keras_style.evaluate(x, y, batch_size=8, return_dict=True, verbose=0)
    want = plain.evaluate(x, y, batch_size=8, return_dict=True, verbose=0)
    assert set(got) == {"loss", "mae"}
    # the guide's loss tracker counts each batch once (no sample weights):
    # mean of the per-batch losses over batches of 8, 8, 4 real rows
    y_pred = plain.predict(x, verbose=0)
    per_row = ((y_pred - y) ** 2).mean(axis=1)
    batches = [per_row[:8].mean(), per_row[8:16].mean(), per_row[16:].mean()]
    np.testing.assert_allclose(got["loss"], np.mean(batches), rtol=1e-5)
    np.testing.assert_allclose(got["mae"], want["mae"], rtol=1e-5)
    np.testing.assert_allclose(want["mae"], np.abs(y_pred - y).mean(), rtol=1e-5)


def test_stateless_call_equals_apply_and_returns_new_state():
    model = build(fk.Model, dropout=False)
    x, _ = data(8)
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    assert [v.path for v in model.non_trainable_variables] == [
        "batch_normalization/moving_mean", "batch_normalization/moving_variance"]
    y, ntv2 = model.stateless_call(tv, ntv, x)
    want, _ = model.apply(model.params, model.state, x)
    np.testing.assert_allclose(y, want, rtol=1e-6)
    _, ntv3 = model.stateless_call(tv, ntv, x, training=True)
    _, state = model.apply(model.params, model.state, x, training=True)
    np.testing.assert_allclose(ntv3[0], state["batch_normalization"]["moving_mean"],
                               rtol=1e-6)
    np.testing.assert_allclose(ntv2[0], ntv[0])
    with pytest.raises(ValueError, match="trainable_variables"):
        model.stateless_call(tv[:-1], ntv, x)


def test_stateless_call_under_jit_and_grad():
    model = build(fk.Model, dropout=False)
    x, y = data(8)
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    @jax.jit
    def loss(tv):
        p, _ = model.stateless_call(tv, ntv, x)
        return jnp.mean((p - y) ** 2)

    grads = jax.grad(loss)(tv)

    def ref(params):
        p, _ = model.apply(params, model.state, x)
        return jnp.mean((p - y) ** 2)

    want = jax.grad(ref)(model.params)
    np.testing.assert_allclose(grads[0], want["dense"]["kernel"], rtol=1e-5)


def test_optimizer_stateless_apply_is_one_sgd_step():
    model = fk.Sequential([fk.Input(shape=(3,)), L.Dense(2)], seed=0)
    model.compile(optimizer=fk.optimizers.SGD(0.1), loss="mse")
    model.make_runner()
    tv = [v.value for v in model.trainable_variables]
    ov = jax.tree.leaves(model.opt_state)
    grads = [np.full(v.shape, 2.0, np.float32) for v in tv]
    new_tv, new_ov = model.optimizer.stateless_apply(ov, grads, tv)
    for a, b in zip(new_tv, tv, strict=True):
        np.testing.assert_allclose(a, np.asarray(b) - 0.2, rtol=1e-6)
    assert len(new_ov) == len(ov)
    with pytest.raises(AttributeError, match="compiled model"):
        fk.optimizers.SGD(0.1).stateless_apply(ov, grads, tv)


def test_keras_predict_step():
    class Doubled(fk.Model):
        def predict_step(self, state, data):
            trainable, non_trainable = state
            x, _, _ = fk.utils.unpack_x_y_sample_weight(data)
            y, non_trainable = self.stateless_call(trainable, non_trainable, x)
            return 2.0 * y, non_trainable

    inp = fk.Input(shape=(4,))
    model = Doubled(inp, L.Dense(1)(inp), seed=0)
    plain = fk.Model(inp, model.layers[-1](inp))
    plain.set_weights(model.get_weights())
    x, _ = data(10)
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               2.0 * plain.predict(x, verbose=0), rtol=1e-6)


def test_metrics_stateless_methods_against_numpy():
    rng = np.random.default_rng(0)
    t, p = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    m = fk.metrics.MeanAbsoluteError()
    v = m.stateless_reset_state()
    assert len(v) == len(m.variables) == 2
    v = m.stateless_update_state(v, t[:3], p[:3])
    v = m.stateless_update_state(v, t[3:], p[3:])
    np.testing.assert_allclose(m.stateless_result(v), np.abs(t - p).mean(), rtol=1e-6)
    mean = fk.metrics.Mean()
    v = mean.stateless_update_state(mean.stateless_reset_state(), 2.0,
                                    sample_weight=np.array([1.0, 1.0, 1.0]))
    v = mean.stateless_update_state(v, 4.0)
    # Keras: a scalar value spread over 3 weighted rows, then one more count
    np.testing.assert_allclose(mean.stateless_result(v), (2 * 3 + 4) / 4, rtol=1e-6)
    with pytest.raises(ValueError, match="expected 2 variables"):
        m.stateless_update_state([v[0]], t, p)


def test_model_metrics_and_variables_lists():
    class WithTracker(fk.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.tracker = fk.metrics.Mean(name="tracked")

    inp = fk.Input(shape=(4,))
    model = WithTracker(inp, L.Dense(1)(inp), seed=0)
    assert [m.name for m in model.metrics] == ["tracked"]
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    model.make_runner()
    assert [m.name for m in model.metrics] == ["loss", "compile_metrics", "tracked"]
    v = model.trainable_variables[0]
    v.assign(np.zeros(v.shape, np.float32))
    np.testing.assert_array_equal(model.params["dense"]["kernel"], 0.0)


def test_keras_state_of_the_wrong_shape_is_refused():
    class Bad(fk.Model):
        def train_step(self, state, data):
            return {}, state[:3]

    inp = fk.Input(shape=(4,))
    model = Bad(inp, L.Dense(1)(inp), seed=0)
    model.compile(optimizer="sgd", loss="mse")
    x, y = data(8)
    with pytest.raises(ValueError, match="optimizer_variables"):
        model.fit(x, y, verbose=0)


def test_funkeras_train_step_signature_still_wins():
    class Own(fk.Model):
        def train_step(self, train_state, batch):
            return super().train_step(train_state, batch)

    x, y = data(16)
    a = build(Own, dropout=False)
    b = build(fk.Model, dropout=False)
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(optimizer=fk.optimizers.SGD(0.05), loss="mse")
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside Keras
def test_the_guide_step_matches_keras_on_jax():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras runs on another backend")

    class KerasStep(keras.Model):
        def train_step(self, state, data):
            trainable, non_trainable, optimizer_vars, metrics_vars = state
            x, y = data

            def loss_fn(trainable, non_trainable, metrics_vars):
                y_pred, non_trainable = self.stateless_call(
                    trainable, non_trainable, x, training=True)
                loss, (_, non_trainable, metrics_vars) = self.stateless_compute_loss(
                    trainable, non_trainable, metrics_vars, x=x, y=y, y_pred=y_pred,
                    training=True)
                return loss, (y_pred, non_trainable, metrics_vars)

            (loss, (y_pred, non_trainable, metrics_vars)), grads = jax.value_and_grad(
                loss_fn, has_aux=True)(trainable, non_trainable, metrics_vars)
            trainable, optimizer_vars = self.optimizer.stateless_apply(
                optimizer_vars, grads, trainable)
            new_vars, logs = [], {}
            for metric in self.metrics:
                n = len(new_vars)
                these = metrics_vars[n:n + len(metric.variables)]
                if metric.name == "loss":
                    these = metric.stateless_update_state(these, loss)
                else:
                    these = metric.stateless_update_state(these, y, y_pred)
                logs[metric.name] = metric.stateless_result(these)
                new_vars += these
            return logs, (trainable, non_trainable, optimizer_vars, new_vars)

    x, y = data(32)
    inp = keras.Input(shape=(4,))
    theirs = KerasStep(inp, keras.layers.Dense(1)(
        keras.layers.Dense(8, activation="relu")(inp)))
    finp = fk.Input(shape=(4,))
    ours = GuideStep(finp, L.Dense(1)(L.Dense(8, activation="relu")(finp)), seed=0)
    theirs.set_weights(ours.get_weights())
    theirs.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    ours.compile(optimizer=fk.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    hk = theirs.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    hf = ours.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    for name in ("loss", "mae"):
        np.testing.assert_allclose(hf[name], hk[name], rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
