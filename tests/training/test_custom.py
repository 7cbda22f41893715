"""Keras' customization points: train_step / compute_loss overrides, callable
losses, Metric subclasses, regularizer penalties, progress output."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import funkeras as fk

L = fk.layers


def data(n=16):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x @ np.array([[1.0], [2.0], [-1.0]], np.float32)).astype(np.float32)


class HalfStep(fk.Model):
    """A custom train step: the default step, with the update halved."""

    def train_step(self, train_state, batch):
        new, logs = super().train_step(train_state, batch)
        params = jax.tree.map(lambda new_p, old_p: old_p + 0.5 * (new_p - old_p),
                              new.params, train_state.params)
        return new._replace(params=params), {**logs, "custom": jnp.float32(1.0)}


def test_train_step_override_runs_compiled_and_changes_the_update():
    x, y = data()
    inp = fk.Input(shape=(3,))
    custom = HalfStep(inp, L.Dense(1)(inp))
    inp2 = fk.Input(shape=(3,))
    plain = fk.Model(inp2, L.Dense(1)(inp2))
    for m in (custom, plain):
        m.compile(optimizer=optax.sgd(0.1), loss="mse")
    w0 = plain.get_weights()
    custom.set_weights(w0)
    h = custom.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    plain.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    for a, b, c in zip(w0, plain.get_weights(), custom.get_weights(), strict=True):
        np.testing.assert_allclose(c, a + 0.5 * (b - a), rtol=1e-5, atol=1e-7)
    assert h.history["custom"] == [1.0]
    assert custom.compile_stats()["train_step"]["compiles"] == 1


def test_callable_loss_returning_a_batch_mean_is_masked_exactly():
    x, y = data(n=10)
    a, b = (fk.Sequential([fk.Input(shape=(3,)), L.Dense(1)], seed=0) for _ in range(2))
    a.compile(optimizer=optax.sgd(0.1), loss=lambda t, p: jnp.mean((t - p) ** 2))
    b.compile(optimizer=optax.sgd(0.1), loss="mse")
    for m in (a, b):
        m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-5)


def test_regularizer_penalty_is_added_to_the_loss():
    x, y = data(n=8)
    model = fk.Sequential([fk.Input(shape=(3,)),
                           L.Dense(1, kernel_regularizer=fk.regularizers.L2(0.5))])
    model.compile(optimizer="sgd", loss="mse")
    got = model.evaluate(x, y, verbose=0)
    kernel, bias = model.get_weights()
    pred = x @ kernel + bias
    np.testing.assert_allclose(got, np.mean((pred - y) ** 2) + 0.5 * np.sum(kernel ** 2),
                               rtol=1e-5)


def test_progress_output_verbose_1_and_2(capsys):
    x, y = data()
    model = fk.Sequential([fk.Input(shape=(3,)), L.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "loss:" in out
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(x, y, epochs=1, verbose=1)
    captured = capsys.readouterr()
    assert "Epoch 4/4" in captured.out and "loss:" in captured.out
