"""Model and weights files: exact round trips, clear refusals, no partial writes."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import safetensors.numpy

import funkeras as fk
from funkeras.errors import (
    BudgetExceededError,
    ModelLoadError,
    NotSerializableError,
    WeightsMismatchError,
)
from funkeras.layers.base import Layer
from funkeras.saving.format import load_model, load_weights, save_model, save_weights
from funkeras.saving.registry import register_serializable

X = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
Y = np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32)


@register_serializable(package="test_format")
@dataclass(eq=False)
class Scale(Layer):
    """Multiplies by a learned per-feature scale (a user layer)."""

    factor: float = 2.0

    def init(self, key, input_spec):
        del key
        return {"scale": jnp.full(input_spec.shape[-1:], self.factor, jnp.float32)}, {}

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return x * params["scale"], state


@pytest.fixture(scope="module")
def trained():
    model = fk.Sequential(
        [
            fk.Input(shape=(4,)),
            fk.layers.Dense(8, activation="relu"),
            fk.layers.BatchNormalization(),
            fk.layers.Dropout(0.1),
            Scale(0.5),
            fk.layers.Dense(3),
        ]
    )
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(X, Y, epochs=2, batch_size=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "m.fkz"
    save_model(trained, path)
    return path


def _functional():
    inp = fk.Input(shape=(4,))
    a = fk.layers.Dense(5, activation="tanh")(inp)
    b = fk.layers.Dense(5)(inp)
    out = fk.layers.Dense(2)(fk.layers.Concatenate()([a, b]))
    return fk.Model(inp, out)


def _nested():
    inner = fk.Sequential([fk.Input(shape=(4,)), fk.layers.Dense(6)], name="encoder")
    inp = fk.Input(shape=(4,))
    return fk.Model(inp, fk.layers.Dense(2)(inner(inp)))


def _predict(model):
    return np.asarray(model.predict(X, verbose=0))


def _out(model):
    """The model's output on X, op by op (cheap for every new model of known shapes)."""
    with jax.disable_jit():
        return np.asarray(model.apply(model.params, model.state, X)[0])


def _same_tree(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(la, lb, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def test_trained_model_round_trip_is_exact(trained, saved):
    loaded = load_model(saved)
    assert type(loaded) is type(trained)
    np.testing.assert_array_equal(_predict(loaded), _predict(trained))
    _same_tree(loaded.params, trained.params)
    _same_tree(loaded.state, trained.state)  # BatchNorm's moving statistics
    _same_tree(loaded.opt_state, trained.opt_state)
    assert loaded.get_compile_config() == trained.get_compile_config()
    assert loaded.progress.epoch == trained.progress.epoch == 2


def test_saving_is_deterministic_and_stable_through_a_load(trained, saved, tmp_path):
    save_model(trained, tmp_path / "b.fkz")
    first = saved.read_bytes()
    assert first == (tmp_path / "b.fkz").read_bytes()
    save_model(load_model(saved), tmp_path / "c.fkz")
    assert (tmp_path / "c.fkz").read_bytes() == first


def test_file_layout(saved):
    with zipfile.ZipFile(saved) as z:
        names = z.namelist()
        config = json.loads(z.read("config.json"))
        weights = safetensors.numpy.load(z.read("weights.safetensors"))
    assert names == [
        "manifest.json",
        "config.json",
        "weights.safetensors",
        "optimizer.safetensors",
        "train_state.json",
    ]
    assert set(config) == {"format_version", "funkeras_version", "model", "compile"}
    assert config["model"]["class_name"] == "Sequential"
    classes = [layer["class_name"] for layer in config["model"]["config"]["layers"]]
    assert classes == [
        "Dense",
        "BatchNormalization",
        "Dropout",
        "test_format>Scale",
        "Dense",
    ]
    assert "batch_normalization/moving_mean" in weights and "dense/kernel" in weights


@pytest.mark.parametrize("build", [_functional, _nested], ids=["functional", "nested"])
def test_functional_and_nested_models_round_trip(build, tmp_path):
    model = build()
    expected = _out(model)
    path = tmp_path / "m.fkz"
    save_model(model, path)
    loaded = load_model(path)
    np.testing.assert_array_equal(_out(loaded), expected)
    assert loaded.get_config() == model.get_config()
    assert loaded.compiled is False
    with zipfile.ZipFile(path) as z:
        keys = set(safetensors.numpy.load(z.read("weights.safetensors")))
    if build is _nested:  # a nested model's weights are keyed outer/inner/variable
        assert keys == {
            "encoder/dense/kernel",
            "encoder/dense/bias",
            "dense/kernel",
            "dense/bias",
        }


def test_include_optimizer_false_saves_an_uncompiled_model(trained, tmp_path):
    path = tmp_path / "m.fkz"
    save_model(trained, path, include_optimizer=False)
    with zipfile.ZipFile(path) as z:
        assert z.namelist() == ["manifest.json", "config.json", "weights.safetensors"]
    loaded = load_model(path)
    assert not loaded.compiled
    _same_tree(loaded.params, trained.params)
    _same_tree(loaded.state, trained.state)


def test_compile_false_skips_the_training_setup(saved):
    loaded = load_model(saved, compile=False)
    assert not loaded.compiled and loaded.opt_state is None


def test_bfloat16_weights_round_trip(tmp_path):
    model = fk.Sequential([fk.Input(shape=(4,)), fk.layers.Dense(3, dtype="bfloat16")])
    path = tmp_path / "m.fkz"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.params["dense"]["kernel"].dtype == jnp.bfloat16
    _same_tree(loaded.params, model.params)


def test_an_unbuilt_model_round_trips_without_weights(tmp_path):
    model = fk.Sequential([fk.layers.Dense(2)])
    path = tmp_path / "m.fkz"
    save_model(model, path)
    loaded = load_model(path)
    assert not loaded.built
    loaded.build((None, 3))
    assert loaded.params["dense"]["kernel"].shape == (3, 2)


def test_a_python_function_cannot_be_saved_and_nothing_is_written(saved, tmp_path):
    path = tmp_path / "m.fkz"
    path.write_bytes(saved.read_bytes())
    before = path.read_bytes()
    model = fk.Sequential(
        [fk.Input(shape=(4,)), fk.layers.Dense(2, activation=lambda x: x)]
    )
    with pytest.raises(
        NotSerializableError, match=r"layers\[0\]\.config\.activation.*lambda"
    ):
        save_model(model, path)
    assert path.read_bytes() == before
    with pytest.raises(NotSerializableError):
        save_model(model, tmp_path / "new.fkz")
    assert sorted(os.listdir(tmp_path)) == ["m.fkz"]


def test_an_unregistered_layer_cannot_be_saved(tmp_path):
    @dataclass(eq=False)
    class Local(Layer):
        def apply(self, params, state, x, *, training=False, key=None, mask=None):
            return x, state

    model = fk.Sequential([fk.Input(shape=(4,)), Local()])
    with pytest.raises(NotSerializableError, match="register_serializable"):
        save_model(model, tmp_path / "m.fkz")
    assert os.listdir(tmp_path) == []


def test_an_unsaveable_training_setup_says_how_to_save_without_it(tmp_path):
    model = fk.Sequential([fk.Input(shape=(4,)), fk.layers.Dense(2)])
    model.compile(optimizer=optax.sgd(0.1), loss="mse")  # a raw optax transformation
    with pytest.raises(NotSerializableError, match="include_optimizer=False"):
        save_model(model, tmp_path / "m.fkz")
    save_model(model, tmp_path / "m.fkz", include_optimizer=False)
    assert not load_model(tmp_path / "m.fkz").compiled


def test_the_parameter_budget_is_checked_before_any_weight_exists(trained, saved):
    path = saved
    count = trained.count_params()
    with pytest.raises(
        BudgetExceededError, match=f"{count:,} parameters.*max_params={count - 1}"
    ):
        load_model(path, max_params=count - 1)
    assert load_model(path, max_params=count).count_params() == count
    with pytest.raises(ValueError, match="max_params"):
        load_model(path, max_params=-1)


def test_load_model_documents_its_threat_model():
    doc = load_model.__doc__
    assert "Threat model" in doc and "No code from the file ever runs" in doc
    assert "wrong" in doc and "max_params" in doc


# -- weights files ---------------------------------------------------------------


def test_weights_round_trip_into_a_fresh_model(trained, tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(trained, path)
    fresh = load_model_from_config(trained)
    load_weights(fresh, path)
    _same_tree(fresh.params, trained.params)
    _same_tree(fresh.state, trained.state)
    stored = safetensors.numpy.load_file(str(path))
    np.testing.assert_array_equal(
        stored["dense/kernel"], trained.params["dense"]["kernel"]
    )
    np.testing.assert_array_equal(
        stored["batch_normalization/moving_variance"],
        trained.state["batch_normalization"]["moving_variance"],
    )


def load_model_from_config(model):
    return type(model).from_config(model.get_config())


def test_load_weights_reads_a_model_file_too(trained, saved):
    fresh = load_model_from_config(trained)
    load_weights(fresh, saved)
    _same_tree(fresh.params, trained.params)
    _same_tree(fresh.state, trained.state)


def _other_model():
    """The trained architecture with a wider last layer (constant init: fast)."""
    return fk.Sequential(
        [
            fk.Input(shape=(4,)),
            fk.layers.Dense(8, activation="relu", kernel_initializer="zeros"),
            fk.layers.BatchNormalization(),
            fk.layers.Dropout(0.1),
            Scale(0.5),
            fk.layers.Dense(4, kernel_initializer="ones"),
        ]
    )


def test_a_mismatch_is_reported_exactly_and_changes_nothing(trained, tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(trained, path)
    other = _other_model()
    before = jax.tree.map(np.asarray, (other.params, other.state))
    with pytest.raises(WeightsMismatchError) as info:
        load_weights(other, path)
    message = str(info.value)
    assert (
        "'dense_1/kernel': expected float32[8, 4], the file has float32[8, 3]"
        in message
    )
    assert "'dense_1/bias': expected float32[4], the file has float32[3]" in message
    assert "'dense/kernel'" not in message
    assert isinstance(info.value, ModelLoadError)
    _same_tree((other.params, other.state), before)


def test_skip_mismatch_loads_the_layers_that_agree(trained, tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(trained, path)
    other = _other_model()
    old_kernel = np.asarray(other.params["dense_1"]["kernel"])
    with pytest.warns(UserWarning, match=r"skipped layer\(s\) \['dense_1'\]"):
        load_weights(other, path, skip_mismatch=True)
    np.testing.assert_array_equal(other.params["dense_1"]["kernel"], old_kernel)
    _same_tree(other.params["dense"], trained.params["dense"])
    _same_tree(other.state, trained.state)
    _same_tree(other.params["scale"], trained.params["scale"])


def test_load_weights_needs_a_built_model(trained, tmp_path):
    save_weights(trained, tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="build the model first"):
        load_weights(fk.Sequential([fk.layers.Dense(2)]), tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="no weights yet"):
        save_weights(fk.Sequential([fk.layers.Dense(2)]), tmp_path / "x.safetensors")
