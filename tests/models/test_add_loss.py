"""`add_loss` of a term that depends on the inputs (Keras' activity
regularization) joins the loss of the batch it was computed on: in `fit`,
`evaluate`, Keras-style train steps and `model.losses`."""

import jax
import numpy as np
import pytest

import funkeras as fk
from funkeras import layers, ops


class ActivityRegularization(layers.Layer):
    """Keras' guide layer: `add_loss(rate * mean(inputs))`."""

    def __init__(self, rate=1e-2, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * ops.mean(inputs))
        return inputs


class ActLinear(layers.Layer):
    """`x @ w` with an activity penalty on its outputs: the term has a gradient."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 2), initializer="ones",
                                 name="w")

    def call(self, x):
        y = x @ self.w
        self.add_loss(0.1 * ops.mean(y ** 2))
        return y


def data(n=8):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32) + 0.5
    t = rng.normal(size=(n, 2)).astype(np.float32)
    return x, t


@pytest.mark.parametrize("execution", ["jit", "eager"])
def test_activity_loss_is_in_the_logged_loss_and_the_gradient(execution):
    x, t = data()
    model = fk.Sequential([fk.Input(shape=(3,)), ActLinear()], seed=0)
    model.compile(optimizer=fk.optimizers.SGD(0.1), loss="mse", execution=execution)
    hist = model.fit(x, t, batch_size=8, epochs=1, verbose=0).history
    w = np.ones((3, 2), np.float32)
    y = x @ w
    want_loss = np.mean((y - t) ** 2) + 0.1 * np.mean(y ** 2)
    np.testing.assert_allclose(hist["loss"], [want_loss], rtol=1e-5)
    grad = x.T @ (2 * (y - t) / y.size + 0.1 * 2 * y / y.size)
    np.testing.assert_allclose(model.get_weights()[0], w - 0.1 * grad, rtol=1e-5)
    w1 = model.get_weights()[0]
    y1 = x @ w1
    got = model.evaluate(x, t, verbose=0)
    np.testing.assert_allclose(got, np.mean((y1 - t) ** 2) + 0.1 * np.mean(y1 ** 2),
                               rtol=1e-5)


def test_guide_layer_in_a_functional_model_and_model_losses():
    x, t = data()
    inp = fk.Input(shape=(3,))
    out = layers.Dense(2)(ActivityRegularization(0.5)(inp))
    model = fk.Model(inp, out, seed=0)
    y = np.asarray(model(x))
    np.testing.assert_allclose([float(v) for v in model.losses], [0.5 * x.mean()],
                               rtol=1e-6)
    model.compile(optimizer="sgd", loss="mse")
    np.testing.assert_allclose(model.evaluate(x, t, verbose=0),
                               np.mean((y - t) ** 2) + 0.5 * x.mean(), rtol=1e-5)


def test_subclassed_model_with_activity_layer_and_keras_train_step():
    class Outer(fk.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.act = ActivityRegularization(0.5)
            self.dense = layers.Dense(2, kernel_initializer="ones")

        def call(self, x):
            return self.dense(self.act(x))

        def train_step(self, state, data):
            tv, ntv, ov, mv = state
            x, y = data

            def loss_fn(tv):
                y_pred, new = self.stateless_call(tv, ntv, x, training=True)
                return self.compute_loss(x, y, y_pred), new

            (loss, ntv), grads = jax.value_and_grad(loss_fn, has_aux=True)(tv)
            tv, ov = self.optimizer.stateless_apply(ov, grads, tv)
            return {"loss": loss}, (tv, ntv, ov, mv)

    x, t = data()
    model = Outer(seed=0)
    model.compile(optimizer=fk.optimizers.SGD(0.0), loss="mse")
    hist = model.fit(x, t, batch_size=8, epochs=1, verbose=0).history
    y = x @ np.ones((3, 2), np.float32)
    np.testing.assert_allclose(hist["loss"], [np.mean((y - t) ** 2) + 0.5 * x.mean()],
                               rtol=1e-5)
    model(x)
    np.testing.assert_allclose(float(model.losses[0]), 0.5 * x.mean(), rtol=1e-6)


def test_layerwise_refuses_activity_losses_clearly():
    model = fk.Sequential([fk.Input(shape=(3,)), ActLinear()], seed=0)
    model.compile(optimizer="sgd", loss="mse", execution="layerwise")
    x, t = data()
    with pytest.raises(ValueError, match="depends on its inputs"):
        model.fit(x, t, verbose=0)
