"""Regressions found by running Keras' developer guides with `import funkeras as
keras`: each test is the smallest form of a guide step that used to fail."""

import numpy as np

import funkeras as fk
from funkeras import layers, ops


class Linear(layers.Layer):
    def __init__(self, units=2, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="ones", name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="ones", name="b")

    def call(self, inputs):
        # `ops.*` on the layer's variables (jnp's jitted functions refuse them)
        return ops.add(ops.matmul(inputs, self.w), self.b) + ops.sum(
            ops.stack([self.b, self.b]))


def test_ops_take_layer_variables_in_call():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.asarray(Linear()(x))
    np.testing.assert_allclose(y, x @ np.ones((3, 2)) + 1 + 4)


class Activity(layers.Layer):
    def call(self, inputs):
        self.add_loss(0.5 * ops.mean(inputs))
        return inputs


def test_compile_without_loss_trains_on_the_added_losses():
    inp = fk.Input(shape=(3,))
    model = fk.Model(inp, Linear()(Activity()(inp)), seed=0)
    model.compile(optimizer=fk.optimizers.SGD(0.1))
    x = np.random.default_rng(0).random((4, 3)).astype(np.float32)
    hist = model.fit(x, np.zeros((4, 2), np.float32), verbose=0).history
    np.testing.assert_allclose(hist["loss"], [0.5 * x.mean()], rtol=1e-6)


class Sampling(layers.Layer):
    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch, dim = ops.shape(z_mean)[0], ops.shape(z_mean)[1]
        eps = fk.random.normal(shape=(batch, dim), seed=1)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


class TinyVAE(fk.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mean = layers.Dense(2)
        self.log_var = layers.Dense(2)
        self.sampling = Sampling()
        self.out = layers.Dense(3)

    def call(self, x):
        z_mean, z_log_var = self.mean(x), self.log_var(x)
        z = self.sampling((z_mean, z_log_var))
        kl = -0.5 * ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1)
        self.add_loss(kl)
        return self.out(z)


def test_subclassed_model_whose_call_uses_the_batch_size_builds_and_trains():
    x = np.random.default_rng(0).random((8, 3)).astype(np.float32)
    vae = TinyVAE(seed=0)
    vae.compile(fk.optimizers.Adam(1e-3), loss=fk.losses.MeanSquaredError())
    hist = vae.fit(x, x, batch_size=4, epochs=2, verbose=0).history
    assert vae.output_spec.shape == (3,)
    assert len(hist["loss"]) == 2 and np.all(np.isfinite(hist["loss"]))


def test_a_layer_has_no_weights_before_its_first_call():
    layer = layers.Dense(3)
    assert layer.weights == [] and layer.trainable_weights == []
    assert layer.non_trainable_weights == []
    layer(np.ones((1, 4), np.float32))
    assert [w.shape for w in layer.weights] == [(4, 3), (3,)]


def test_model_from_config_takes_custom_objects():
    class Scale(layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    inp = fk.Input((3,))
    model = fk.Model(inp, Scale(3.0)(inp))
    with fk.saving.custom_object_scope({"Scale": Scale}):
        config = model.get_config()
    new = fk.Model.from_config(config, custom_objects={"Scale": Scale})
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(np.asarray(new(x)), 3.0 * x)
