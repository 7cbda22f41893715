"""Keras' Model subclassing: layers as attributes, a `call`, compile/fit/predict."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk


class MLP(fk.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = fk.layers.Dense(6, activation="relu")
        self.blocks = [fk.layers.Dense(4), fk.layers.Dense(3)]
        self.heads = {"out": fk.layers.Dense(1)}

    def call(self, x, training=False):
        h = self.hidden(x)
        for block in self.blocks:
            h = block(h)
        return self.heads["out"](h)


def _data(n=20, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)).astype("float32"),
            rng.normal(size=(n, 1)).astype("float32"))


def _numpy_forward(params, x):
    p = params["mlp"]
    h = np.maximum(x @ p["dense"]["kernel"] + p["dense"]["bias"], 0)
    for name in ("dense_1", "dense_2", "dense_3"):
        h = h @ p[name]["kernel"] + p[name]["bias"]
    return h


def test_tracks_sublayers_and_matches_numpy():
    x, _ = _data()
    model = MLP()
    y = model(x)  # builds from the array
    assert [layer.name for layer in model.layers] == ["dense", "dense_1", "dense_2", "dense_3"]
    params = jax.tree.map(np.asarray, model.params)
    np.testing.assert_allclose(np.asarray(y), _numpy_forward(params, x), rtol=1e-5,
                               atol=1e-6)
    assert [w.shape for w in model.get_weights()] == [
        (5, 6), (6,), (6, 4), (4,), (4, 3), (3,), (3, 1), (1,)
    ]
    assert model.count_params() == 6 * 5 + 6 + 6 * 4 + 4 + 4 * 3 + 3 + 3 + 1


def test_build_then_predict_and_summary(capsys):
    x, _ = _data()
    model = MLP()
    model.build((None, 5))
    np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(model(x)),
                               rtol=1e-6)
    model.summary()
    assert "mlp" in capsys.readouterr().out


@pytest.mark.parametrize("execution", ["eager", "layerwise"])
def test_fit_same_numbers_under_every_execution(execution):
    x, y = _data()
    runs = {}
    for ex in ("jit", execution):
        fk.utils.set_random_seed(0)  # both models draw the same initial weights
        model = MLP()
        model.compile(fk.optimizers.SGD(0.05), "mse", metrics=["mae"], execution=ex)
        hist = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        runs[ex] = (hist.history["loss"], model.get_weights(),
                    model.evaluate(x, y, verbose=0))
    np.testing.assert_allclose(runs["jit"][0], runs[execution][0], rtol=1e-5)
    for a, b in zip(runs["jit"][1], runs[execution][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(runs["jit"][2], runs[execution][2], rtol=1e-5)


def test_one_sgd_step_matches_hand_computation():
    x, y = _data(8)

    class Affine(fk.Model):
        def __init__(self):
            super().__init__()
            self.dense = fk.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    model = Affine()
    model.compile(fk.optimizers.SGD(0.1), "mse")
    model.build((None, 5))
    k, b = model.get_weights()
    loss = model.train_on_batch(x, y)
    err = x @ k + b - y
    np.testing.assert_allclose(loss, np.mean(err ** 2), rtol=1e-5)
    k2, b2 = model.get_weights()
    np.testing.assert_allclose(k2, k - 0.1 * 2 * x.T @ err / len(x), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(b2, b - 0.1 * 2 * err.mean(0), rtol=1e-4, atol=1e-6)


def test_model_own_weights_add_loss_and_dropout():
    class Scaled(fk.Model):
        def __init__(self):
            super().__init__()
            self.dense = fk.layers.Dense(2)
            self.drop = fk.layers.Dropout(0.5)

        def build(self, input_shape):
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

        def call(self, x, training=False):
            self.add_loss(0.1 * self.scale ** 2)
            return self.drop(self.dense(x), training=training) * self.scale

    x, _ = _data(6)
    model = Scaled()
    model.compile("sgd", "mse")
    y = np.zeros((6, 2), "float32")
    model.build((None, 5))
    k, b, = model.get_weights()[1:]
    got = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(got, np.mean((x @ k + b) ** 2) + 0.1, rtol=1e-5)
    model.fit(x, y, epochs=1, verbose=0)
    assert sorted(model.params["scaled"]) == ["dense", "dropout", "scale"]


def test_save_and_load_weights_round_trip(tmp_path):
    x, y = _data()
    model = MLP()
    model.compile("adam", "mse")
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "mlp.weights.safetensors"
    model.save_weights(path)
    other = MLP()
    other.build((None, 5))
    other.load_weights(path)
    np.testing.assert_allclose(other.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)


def test_nested_inside_a_functional_model_and_config_rule():
    inner = MLP(name="inner")
    inp = fk.Input(shape=(5,))
    outer = fk.Model(inp, fk.layers.Dense(2)(inner(inp)))
    x, _ = _data(3)
    assert outer.predict(x, verbose=0).shape == (3, 2)
    assert MLP(name="m").get_config() == {"name": "m", "trainable": True,
                                          "dtype": "float32"}

    class Wide(fk.Model):
        def __init__(self, units):
            super().__init__()
            self.dense = fk.layers.Dense(units)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(TypeError, match="Override `get_config`"):
        Wide(3).get_config()


def test_model_call_with_training_updates_batchnorm_state():
    class Norm(fk.Model):
        def __init__(self):
            super().__init__()
            self.bn = fk.layers.BatchNormalization()

        def call(self, x, training=False):
            return self.bn(x, training=training)

    x, _ = _data(16, 3)
    model = Norm()
    model(x)
    before = np.asarray(model.state["norm"]["batch_normalization"]["moving_mean"])
    model(x, training=True)
    after = np.asarray(model.state["norm"]["batch_normalization"]["moving_mean"])
    np.testing.assert_allclose(after, 0.99 * before + 0.01 * x.mean(0), rtol=1e-4,
                               atol=1e-6)
    assert jnp.allclose(before, 0.0)


@fk.saving.register_serializable(package="test_subclassed")
class Registered(fk.Model):
    def __init__(self, units=2, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = fk.layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


@fk.saving.register_serializable(package="test_subclassed")
class Shift(fk.layers.Layer):
    def __init__(self, by=1.0, **kwargs):
        super().__init__(**kwargs)
        self.by = by

    def build(self, input_shape):
        self.b = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="b")

    def call(self, x):
        return x + self.by * self.b

    def get_config(self):
        config = super().get_config()
        config.update(by=self.by)
        return config


def test_registered_subclasses_save_and_load_whole(tmp_path):
    x, y = _data(6, 3)
    model = Registered(3)
    model.compile("sgd", "mse")
    model.fit(x, np.ones((6, 3), "float32"), epochs=1, verbose=0)
    model.save(tmp_path / "m.fkz")
    loaded = fk.load_model(tmp_path / "m.fkz")
    assert type(loaded) is Registered and loaded.units == 3
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)

    seq = fk.Sequential([fk.Input(shape=(3,)), Shift(2.0)])
    seq.save(tmp_path / "s.fkz")
    again = fk.load_model(tmp_path / "s.fkz")
    np.testing.assert_allclose(again.predict(x, verbose=0), x + 2.0, rtol=1e-6)


def test_frozen_sublayer_is_not_trained():
    x, y = _data()
    model = MLP()
    model.build((None, 5))
    model.hidden.trainable = False
    before = model.get_weights()
    model.compile(fk.optimizers.SGD(0.1), "mse")
    model.fit(x, y, epochs=1, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert not np.allclose(before[2], after[2])
