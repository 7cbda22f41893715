"""Device placement: the default device is used; accelerators when present."""

import jax
import numpy as np
import pytest

import funkeras as fk

accelerators = [d for d in jax.devices() if d.platform != "cpu"]


def _fit_predict():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    model = fk.Sequential([fk.Input(shape=(4,)), fk.layers.Dense(8, activation="relu"),
                           fk.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, x[:, :1], batch_size=8, epochs=1, verbose=0)
    return model, model.predict(x, verbose=0)


def test_training_runs_on_the_chosen_default_device():
    cpu = jax.devices("cpu")[0]
    with jax.default_device(cpu):
        model, pred = _fit_predict()
    assert model.params["dense"]["kernel"].devices() == {cpu}
    assert np.isfinite(pred).all()


@pytest.mark.gpu
@pytest.mark.skipif(not accelerators, reason="no accelerator")
def test_accelerator_matches_cpu():
    _, on_accel = _fit_predict()
    with jax.default_device(jax.devices("cpu")[0]):
        _, on_cpu = _fit_predict()
    np.testing.assert_allclose(on_accel, on_cpu, rtol=2e-3, atol=2e-4)
