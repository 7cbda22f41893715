"""Keras-style Metric subclasses: add_variable / update_state / result / reset_state."""

from __future__ import annotations

import numpy as np
import pytest

import jax.numpy as jnp

import funkeras as fk


class BinaryTruePositives(fk.metrics.Metric):
    def __init__(self, name="binary_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), initializer="zeros",
                                                name="true_positives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = jnp.asarray(y_true) > 0.5
        y_pred = jnp.asarray(y_pred) >= 0.5
        values = jnp.logical_and(y_true, y_pred).astype("float32")[:, 0]
        if sample_weight is not None:
            values = values * sample_weight
        self.true_positives.assign(self.true_positives + jnp.sum(values))

    def result(self):
        return self.true_positives


class WeightedMeanError(fk.metrics.Metric):
    def __init__(self, name="wme", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), name="total")
        self.count = self.add_variable(shape=(), name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        err = jnp.abs(y_pred - y_true)[:, 0]
        w = jnp.ones_like(err) if sample_weight is None else sample_weight
        self.total.assign_add(jnp.sum(err * w))
        self.count.assign_add(jnp.sum(w))

    def result(self):
        return self.total / self.count


def _data(n=21, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (rng.random((n, 1)) > 0.5).astype("float32")
    return x, y


@pytest.mark.parametrize("execution", ["jit", "eager"])
def test_result_equals_numpy_formula_in_evaluate(execution):
    x, y = _data()  # 21 rows, batch 8: the padded last batch must not count
    model = fk.Sequential([fk.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy", execution=execution,
                  metrics=[BinaryTruePositives(), WeightedMeanError()])
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    assert logs["binary_true_positives"] == float(((p >= 0.5) & (y > 0.5)).sum())
    np.testing.assert_allclose(logs["wme"], np.abs(p - y).mean(), rtol=1e-5)
    hist = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert "wme" in hist.history


def test_standalone_update_result_reset():
    m = WeightedMeanError()
    y_true = np.array([[0.0], [1.0], [2.0]], "float32")
    y_pred = np.array([[1.0], [1.0], [0.0]], "float32")
    m.update_state(y_true, y_pred, sample_weight=np.array([1.0, 1.0, 2.0], "float32"))
    np.testing.assert_allclose(float(m.result()), (1 + 0 + 4) / 4)
    m.reset_state()
    assert float(m.count.numpy()) == 0.0
    state = m.update(m.init(), y_true, y_pred, mask=np.array([True, True, False]))
    np.testing.assert_allclose(float(m.result(state)), 0.5)
