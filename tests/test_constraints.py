"""Weight constraints: Keras' formulas (NumPy and Keras itself), lookup and
serialization, and their projection after every optimizer update."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras import constraints

os.environ.setdefault("KERAS_BACKEND", "jax")

EPS = 1e-7


def np_norms(w, axis):
    return np.sqrt(np.sum(w * w, axis=axis, keepdims=True))


W = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32) * 2.0

CASES = [
    (constraints.MaxNorm(1.5), lambda w: w * np.clip(np_norms(w, 0), 0, 1.5)
     / (EPS + np_norms(w, 0))),
    (constraints.MaxNorm(1.0, axis=1), lambda w: w * np.clip(np_norms(w, 1), 0, 1.0)
     / (EPS + np_norms(w, 1))),
    (constraints.MinMaxNorm(0.5, 1.0, rate=0.7),
     lambda w: w * (0.7 * np.clip(np_norms(w, 0), 0.5, 1.0) + 0.3 * np_norms(w, 0))
     / (EPS + np_norms(w, 0))),
    (constraints.NonNeg(), lambda w: np.maximum(w, 0)),
    (constraints.UnitNorm(axis=[0, 1]), lambda w: w / (EPS + np_norms(w, (0, 1)))),
]


@pytest.mark.parametrize("constraint,ref", CASES, ids=[repr(c) for c, _ in CASES])
def test_formula_matches_numpy(constraint, ref):
    np.testing.assert_allclose(constraint(W), ref(W), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jax.jit(constraint)(W), ref(W), rtol=1e-6, atol=1e-7)


def test_formulas_match_keras():
    keras = pytest.importorskip("keras")
    pairs = [
        (constraints.MaxNorm(1.5), keras.constraints.MaxNorm(1.5)),
        (constraints.MinMaxNorm(0.5, 1.0, 0.7),
         keras.constraints.MinMaxNorm(0.5, 1.0, 0.7)),
        (constraints.NonNeg(), keras.constraints.NonNeg()),
        (constraints.UnitNorm(1), keras.constraints.UnitNorm(1)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(W), np.asarray(theirs(W)), rtol=1e-6, atol=1e-7)
        assert ours.get_config() == pytest.approx(theirs.get_config())


def test_get_serialize_roundtrip_and_errors():
    assert constraints.get("max_norm") == constraints.MaxNorm()
    assert constraints.get("NonNeg") == constraints.NonNeg()
    assert constraints.max_norm is constraints.MaxNorm
    assert constraints.get(None) is None
    for c in (constraints.MaxNorm(3.0, axis=1), constraints.MinMaxNorm(0.1, 2.0),
              constraints.NonNeg(), constraints.UnitNorm()):
        assert constraints.get(constraints.serialize(c)) == c
    with pytest.raises(ValueError, match="non_neg"):
        constraints.get("nonneg_typo")
    with pytest.raises(ValueError, match="built-in"):
        constraints.serialize(lambda w: w)
    with pytest.raises(ValueError, match="min_value"):
        constraints.MinMaxNorm(2.0, 1.0)


class Scale(fk.layers.Layer):
    """`x * w` with a non-negative `w`, Keras-style."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones",
                                 constraint="non_neg", name="w")
        self.b = self.add_weight(shape=(input_shape[-1],), initializer="zeros",
                                 constraint=constraints.MaxNorm(0.05), name="b")

    def call(self, x):
        return x * self.w + self.b


@pytest.mark.parametrize("execution", ["jit", "eager", "layerwise"])
def test_constraint_is_applied_after_each_update(execution):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = (x * np.array([2.0, -3.0, 0.5]) + 1.0).astype(np.float32)
    model = fk.Sequential([fk.Input(shape=(3,)), Scale()], seed=0)
    model.compile(optimizer=fk.optimizers.SGD(0.3), loss="mse", execution=execution)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    # the same steps by hand in NumPy: SGD on mse, then the projections
    w, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    for _ in range(2):
        for i in range(0, 16, 8):
            xb, yb = x[i:i + 8], y[i:i + 8]
            err = xb * w + b - yb
            gw = (2 * err * xb).sum(0) / err.size
            gb = (2 * err).sum(0) / err.size
            w = np.maximum(w - 0.3 * gw, 0)
            b = b - 0.3 * gb
            n = np.sqrt((b * b).sum())
            b = b * np.clip(n, 0, 0.05) / (EPS + n)
    got_w, got_b = model.get_weights()
    np.testing.assert_allclose(got_w, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_b, b, rtol=1e-5, atol=1e-6)
    assert got_w[1] == 0.0  # the negative target drove it below zero
    assert np.linalg.norm(got_b) <= 0.05 + 1e-6


def test_constraint_is_applied_by_stateless_apply():
    model = fk.Sequential([fk.Input(shape=(3,)), Scale()], seed=0)
    model.compile(optimizer=fk.optimizers.SGD(1.0), loss="mse")
    model.make_runner()
    tv = [v.value for v in model.trainable_variables]
    grads = [jnp.array([2.0, -1.0, 0.5]), jnp.zeros(3)]
    ov = jax.tree.leaves(model.opt_state)
    new, _ = model.optimizer.stateless_apply(ov, grads, tv)
    np.testing.assert_allclose(new[0], [0.0, 2.0, 0.5], atol=1e-7)


def test_frozen_weights_are_not_projected():
    layer = Scale()
    model = fk.Sequential([fk.Input(shape=(3,)), layer], seed=0)
    model.set_weights([np.array([-1.0, 1.0, 1.0], np.float32), np.zeros(3, np.float32)])
    layer.trainable = False
    model.compile(optimizer=fk.optimizers.SGD(0.1), loss="mse")
    model.fit(np.ones((4, 3), np.float32), np.ones((4, 3), np.float32), verbose=0)
    np.testing.assert_array_equal(model.get_weights()[0], [-1.0, 1.0, 1.0])
