"""Keras-style layers: `build` + `add_weight` + `call` over the pure protocol."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk


class Linear(fk.layers.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", trainable=True, name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")

    def call(self, inputs, training=None, mask=None):
        self.add_loss(1e-3 * jnp.sum(self.w ** 2))
        return inputs @ self.w + self.b

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


class Counter(fk.layers.Layer):
    def build(self, input_shape):
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     name="count")
        self.total = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     name="total")

    def call(self, x):
        self.count.assign_add(1.0)
        self.total = self.total + jnp.sum(x)  # attribute assignment assigns
        return x


def _x(n=4, d=3, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype("float32")


def test_linear_matches_numpy_and_records_weights():
    layer = Linear(4)
    x = _x()
    y = layer(x)
    w, b = layer.get_weights()
    assert w.shape == (3, 4) and b.shape == (4,)
    np.testing.assert_allclose(np.asarray(y), x @ w + b, rtol=1e-6, atol=1e-6)
    assert layer.built
    np.testing.assert_allclose(float(layer.losses[0]), 1e-3 * np.sum(w ** 2), rtol=1e-6)
    params, state = layer.init(jax.random.key(0), jax.ShapeDtypeStruct((3,), jnp.float32))
    assert sorted(params) == ["b", "w"] and state == {}
    layer.set_weights([np.ones((3, 4)), np.full((4,), 2.0)])
    np.testing.assert_allclose(np.asarray(layer(x)), x @ np.ones((3, 4)) + 2.0, rtol=1e-6)


def test_default_weight_names_and_init_keys():
    class Two(fk.layers.Layer):
        def build(self, input_shape):
            self.a = self.add_weight(shape=(2,), initializer="random_normal")
            self.b = self.add_weight(shape=(2,), initializer="random_normal")

        def call(self, x):
            return x * self.a + self.b

    params, _ = Two().init(jax.random.key(3), jax.ShapeDtypeStruct((2,), jnp.float32))
    assert list(params) == ["variable", "variable_1"]
    own = jax.random.fold_in(jax.random.key(3), 0)
    want = fk.initializers.get("random_normal")(jax.random.fold_in(own, 1), (2,), jnp.float32)
    np.testing.assert_allclose(params["variable_1"], want)


def test_non_trainable_counter_updates_on_arrays_and_in_apply():
    layer = Counter()
    x = _x()
    layer(x)
    layer(x)
    assert float(layer.count.numpy()) == 2.0
    np.testing.assert_allclose(float(layer.total.numpy()), 2 * x.sum(), rtol=1e-5)
    params, state = layer.init(jax.random.key(0), jax.ShapeDtypeStruct((3,), jnp.float32))
    assert params == {} and float(state["count"]) == 0.0
    _, state = jax.jit(lambda s, x: layer.apply(params, s, x))(state, x)
    assert float(state["count"]) == 1.0


def test_counter_updates_during_fit():
    model = fk.Sequential([fk.Input(shape=(3,)), Counter(), fk.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(_x(12), np.zeros((12, 1), "float32"), batch_size=4, epochs=1, verbose=0)
    assert float(model.state["counter"]["count"]) == 3.0


def test_add_loss_reaches_the_training_loss():
    x, y = _x(4, 3), np.ones((4, 1), "float32")
    model = fk.Sequential([fk.Input(shape=(3,)), Linear(1)])
    model.compile(fk.optimizers.SGD(0.1), "mse")
    w, b = model.get_weights()
    logs = model.train_on_batch(x, y, return_dict=True)
    want = np.mean((x @ w + b - y) ** 2) + 1e-3 * np.sum(w ** 2)
    np.testing.assert_allclose(logs["loss"], want, rtol=1e-5)
    # evaluate includes it as well (Keras does)
    w, b = model.get_weights()
    got = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(got, np.mean((x @ w + b - y) ** 2) + 1e-3 * np.sum(w ** 2),
                               rtol=1e-5)


def test_add_weight_regularizer_counts():
    class Reg(fk.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 1), initializer="ones",
                                     regularizer=fk.regularizers.L2(0.5), name="w")

        def call(self, x):
            return x @ self.w

    layer = Reg()
    params, _ = layer.init(jax.random.key(0), jax.ShapeDtypeStruct((3,), jnp.float32))
    np.testing.assert_allclose(float(layer.penalty(params)), 0.5 * 3.0, rtol=1e-6)


def test_input_dependent_add_loss_leaves_apply_through_collect_losses():
    class Activity(fk.layers.Layer):
        def call(self, x):
            self.add_loss(jnp.mean(x ** 2))
            return x

    layer = Activity()
    params, state = layer.init(jax.random.key(0),
                               jax.ShapeDtypeStruct((3,), jnp.float32))
    # not a weight penalty: penalty(params) stays 0, each call reports its own
    assert float(layer.penalty(params)) == 0.0 and not layer.has_penalty()
    x = jnp.arange(6.0).reshape(2, 3)
    with fk.layers.subclassing.collect_losses() as added:
        layer.apply(params, state, x)
    want = np.mean(np.arange(6.0) ** 2)
    np.testing.assert_allclose([float(v) for v in added], [want])


def test_nested_layers_in_attributes_lists_and_dicts():
    class Block(fk.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.first = fk.layers.Dense(4, activation="relu")
            self.rest = [fk.layers.Dense(3), Linear(2)]
            self.heads = {"out": fk.layers.Dense(1)}

        def call(self, x, training=False):
            h = self.first(x)
            for layer in self.rest:
                h = layer(h)
            return self.heads["out"](h)

    block = Block()
    params, state = block.init(jax.random.key(0), jax.ShapeDtypeStruct((5,), jnp.float32))
    assert list(params) == ["dense", "dense_1", "linear", "dense_2"]
    assert sorted(params["linear"]) == ["b", "w"]
    x = _x(2, 5)
    y, _ = block.apply(params, state, x)
    p = params
    h = np.maximum(x @ p["dense"]["kernel"] + p["dense"]["bias"], 0)
    h = h @ p["dense_1"]["kernel"] + p["dense_1"]["bias"]
    h = h @ p["linear"]["w"] + p["linear"]["b"]
    want = h @ p["dense_2"]["kernel"] + p["dense_2"]["bias"]
    np.testing.assert_allclose(np.asarray(y), want, rtol=1e-5, atol=1e-6)
    # the nested Linear's add_loss is part of the block's penalty
    np.testing.assert_allclose(float(block.penalty(params)),
                               1e-3 * float(jnp.sum(p["linear"]["w"] ** 2)), rtol=1e-5)
    assert len(Block()(x).shape) == 2


def test_training_and_mask_passed_only_when_named():
    seen = {}

    class Plain(fk.layers.Layer):
        def call(self, x):
            return x

    class Flags(fk.layers.Layer):
        def call(self, x, training=None):
            seen["training"] = training
            return x

    Plain()(np.ones((1, 2)), training=True)
    Flags()(np.ones((1, 2)), training=True)
    assert seen["training"] is True


def test_trainable_weight_assignment_in_call_is_refused():
    class Bad(fk.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(), initializer="zeros")

        def call(self, x):
            self.w.assign(1.0)
            return x

    with pytest.raises(TypeError, match="cannot be assigned inside `call`"):
        Bad()(np.ones((1, 2)))


def test_layer_on_arrays_for_protocol_layers():
    dense = fk.layers.Dense(3)
    x = _x(2, 4)
    y = dense(x)
    k, b = dense.get_weights()
    np.testing.assert_allclose(np.asarray(y), x @ k + b, rtol=1e-6)
    assert len(dense.trainable_weights) == 2 and dense.non_trainable_weights == []
    assert fk.layers.Dense(2).weights == []  # not built yet, as Keras
    inside = fk.layers.Dense(2)
    inside(fk.Input(shape=(3,)))  # its weights live in the model it joins
    with pytest.raises(ValueError, match="called on an array"):
        inside.weights


def test_get_config_follows_keras_rule():
    config = Linear(7, name="lin").get_config()
    assert config == {"name": "lin", "trainable": True, "dtype": "float32", "units": 7}
    assert Linear.from_config(config).units == 7

    class NoConfig(fk.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

    with pytest.raises(TypeError, match="Override `get_config`"):
        NoConfig(3).get_config()
    with pytest.raises(TypeError, match="unexpected keyword"):
        Linear(3, colour="red")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own, NumPy 2
@pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "jax") != "jax", reason="Keras parity runs on JAX"
)
def test_same_layer_code_matches_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras is not on the JAX backend")

    def make(base):
        class KLinear(base):
            def __init__(self, units=3, **kwargs):
                super().__init__(**kwargs)
                self.units = units

            def build(self, input_shape):
                self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                         initializer="random_normal", name="w")
                self.b = self.add_weight(shape=(self.units,), initializer="zeros",
                                         name="b")
                self.seen = self.add_weight(shape=(), initializer="zeros",
                                            trainable=False, name="seen")

            def call(self, inputs):
                self.seen.assign(self.seen + 1.0)
                return jnp.tanh(inputs @ self.w + self.b) * 2.0

        return KLinear

    x = _x(5, 4, seed=1)
    ours, theirs = make(fk.layers.Layer)(), make(keras.layers.Layer)()
    ours(x)
    theirs(x)
    rng = np.random.default_rng(2)
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(ours.get_weights()[2], theirs.get_weights()[2])
