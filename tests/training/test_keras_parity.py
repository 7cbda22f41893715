"""Behaviours Keras' own guides rely on: log names, weighted metrics, the optimizer
object, callback hooks, the validation split, aliases, initializers, verbosity."""

import numpy as np
import pytest

import funkeras as fk

L = fk.layers


# -- per-output losses land on their own output's name -------------------------------


def _zeta_alpha_model():
    inp = fk.Input(shape=(3,))
    zeta = L.Dense(1, name="zeta")(inp)
    alpha = L.Dense(1, name="alpha")(inp)
    return fk.Model(inp, [zeta, alpha], seed=0)


@pytest.mark.parametrize("execution", ["jit", "eager", "layerwise"])
def test_per_output_losses_follow_output_names_not_alphabet(execution):
    model = _zeta_alpha_model()
    assert model.output_names == ["zeta", "alpha"]
    model.compile("sgd", loss=["mse", "mse"], execution=execution)
    x = np.ones((8, 3), np.float32)
    y_zeta = np.full((8, 1), 1000.0, np.float32)  # a loss near 1e6
    y_alpha = np.zeros((8, 1), np.float32)  # a loss near 1
    params0 = model.get_weights()

    # Each output's loss from the initial weights, by NumPy.
    kz, bz, ka, ba = (np.asarray(w) for w in params0)
    want_zeta = np.mean((x @ kz + bz - y_zeta) ** 2)
    want_alpha = np.mean((x @ ka + ba - y_alpha) ** 2)
    assert want_zeta > 1e5 and want_alpha < 1e2

    logs = model.train_on_batch(x, [y_zeta, y_alpha], return_dict=True)
    np.testing.assert_allclose(logs["zeta_loss"], want_zeta, rtol=1e-4)
    np.testing.assert_allclose(logs["alpha_loss"], want_alpha, rtol=1e-4)

    model.set_weights(params0)
    model.compile("sgd", loss=["mse", "mse"], execution=execution)
    history = model.fit(x, [y_zeta, y_alpha], batch_size=8, verbose=0)
    np.testing.assert_allclose(history.history["zeta_loss"][0], want_zeta, rtol=1e-4)
    np.testing.assert_allclose(history.history["alpha_loss"][0], want_alpha, rtol=1e-4)

    evaluated = model.evaluate(x, [y_zeta, y_alpha], verbose=0, return_dict=True)
    assert evaluated["zeta_loss"] > 1e3 * evaluated["alpha_loss"]
