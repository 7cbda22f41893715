"""Keras' saving names over funkeras' own functions, the file-name rule, and
clear refusals of Keras' own files."""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest

import funkeras as fk
from funkeras.callbacks import ModelCheckpoint
from funkeras.errors import (
    ArchiveError,
    ConfigError,
    ModelLoadError,
    NotSerializableError,
    TensorFileError,
    UnsafeConfigError,
)
from funkeras.layers.base import Layer
from funkeras.saving import registry

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def sequential():
    return fk.Sequential(
        [
            fk.Input(shape=(4,)),
            fk.layers.Dense(5, activation="relu"),
            fk.layers.Dense(2),
        ],
        name="seq",
    )


def functional():
    inp = fk.Input(shape=(4,), name="x")
    shared = fk.layers.Dense(3, name="shared")
    a = shared(inp)
    b = shared(fk.layers.Dense(4, name="side")(inp))
    out = fk.layers.Dense(1, name="head")(fk.layers.Add()([a, b]))
    return fk.Model(inp, out, name="fun")


def data(n=6):
    return np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)


@dataclass(eq=False)
class Scale(Layer):
    """A user layer: multiplies by a fixed factor (not registered here)."""

    factor: float = 2.0

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return self.factor * x, state

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def with_scale(factor=3.0):
    return fk.Sequential(
        [fk.Input(shape=(4,)), fk.layers.Dense(2, name="d"), Scale(factor, name="s")]
    )


# ----------------------------------------------------------------------------
# The aliases round-trip.
# ----------------------------------------------------------------------------


def test_keras_names_are_funkeras_functions():
    assert fk.models.load_model is fk.saving.load_model is fk.load_model
    assert fk.saving.register_keras_serializable is fk.saving.register_serializable
    assert fk.layers.serialize is fk.saving.serialize
    assert fk.layers.deserialize is fk.saving.deserialize


@pytest.mark.parametrize("make", [sequential, functional])
def test_clone_model_same_architecture_new_weights(make):
    model = make()
    clone = fk.models.clone_model(model)
    assert type(clone) is type(model)
    assert clone.get_config()["layers"] == model.get_config()["layers"]
    assert [w.shape for w in clone.get_weights()] == [
        w.shape for w in model.get_weights()
    ]
    assert not all(
        np.array_equal(a, b)
        for a, b in zip(clone.get_weights(), model.get_weights(), strict=True)
    )
    x = data()
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(
        clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )


def test_clone_model_keeps_a_shared_layer_shared():
    clone = fk.models.clone_model(functional())
    nodes = clone.get_config()["nodes"]
    assert [n["layer"] for n in nodes].count("shared") == 2
    assert clone.count_params() == functional().count_params()


def test_clone_function_is_applied_to_each_layer():
    model = sequential()
    seen = []

    def wider(layer):
        seen.append(layer.name)
        config = layer.get_config()
        if layer.name == "dense":
            config["units"] = 7
        return type(layer).from_config(config)

    clone = fk.models.clone_model(model, clone_function=wider)
    assert seen == ["dense", "dense_1"]
    assert clone.layers[0].units == 7
    assert clone.predict(data(), verbose=0).shape == (6, 2)

    shared = fk.models.clone_model(model, clone_function=lambda layer: layer)
    assert shared.layers[0] is model.layers[0]


def test_clone_model_on_given_input_tensors():
    model = functional()
    inp = fk.Input(shape=(4,), name="new_input")
    clone = fk.models.clone_model(model, input_tensors=inp)
    assert [e["name"] for e in clone.get_config()["input_layers"]] == ["new_input"]
    assert clone.count_params() == model.count_params()
    with pytest.raises(ValueError, match="input_tensors"):
        fk.models.clone_model(model, input_tensors=[inp, fk.Input(shape=(4,))])


def test_clone_model_refuses_bad_arguments():
    with pytest.raises(TypeError, match="expected a funkeras"):
        fk.models.clone_model(fk.layers.Dense(2))
    with pytest.raises(TypeError, match="must return a layer"):
        fk.models.clone_model(sequential(), clone_function=lambda layer: None)


@pytest.mark.parametrize("make", [sequential, functional])
def test_to_json_and_model_from_json_round_trip(make):
    model = make()
    text = model.to_json(indent=2)
    assert json.loads(text)["class_name"] == registry.registry_key(type(model))
    twin = fk.models.model_from_json(text)
    assert twin.to_json(indent=2) == text
    twin.set_weights(model.get_weights())
    x = data()
    np.testing.assert_allclose(
        twin.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )


def test_model_from_json_refuses_layers_and_unknown_classes():
    layer_json = json.dumps(fk.layers.serialize(fk.layers.Dense(2)))
    with pytest.raises(ModelLoadError, match="not a model"):
        fk.models.model_from_json(layer_json)
    hostile = json.dumps({"class_name": "os.system", "config": {}})
    with pytest.raises(UnsafeConfigError, match="never imported"):
        fk.models.model_from_json(hostile)
    with pytest.raises(ModelLoadError):
        fk.models.model_from_json('{"class_name": "Dense", "class_name": "Dense"}')


def test_layers_serialize_deserialize_round_trip():
    layer = fk.layers.Dense(3, activation="tanh", name="d")
    data_ = fk.layers.serialize(layer)
    assert data_ == {"class_name": "Dense", "config": layer.get_config()}
    again = fk.layers.deserialize(data_)
    assert type(again) is fk.layers.Dense
    assert again.get_config() == layer.get_config()
    model = fk.layers.deserialize(fk.layers.serialize(sequential()))
    assert isinstance(model, fk.Sequential) and model.count_params() == 37
    with pytest.raises(ModelLoadError, match="class_name"):
        fk.layers.deserialize({"units": 3})
    with pytest.raises(TypeError, match="funkeras layer"):
        fk.layers.serialize("Dense")


def test_custom_layer_with_custom_objects_and_scope(tmp_path):
    model = with_scale()
    with pytest.raises(NotSerializableError, match="custom_object_scope"):
        model.save(tmp_path / "m.fkz")
    path = tmp_path / "m.fkz"
    with fk.saving.custom_object_scope({"Scale": Scale}):
        model.save(path)
        assert fk.saving.get_registered_name(Scale) == "Scale"
        assert fk.saving.get_registered_object("Scale") is Scale
        text = model.to_json()
    assert fk.saving.get_registered_object("Scale") is None
    assert fk.saving.get_registered_name(Scale) == "Scale"  # Keras: __name__
    with pytest.raises(UnsafeConfigError, match="custom_objects"):
        fk.models.load_model(path)
    x = data()
    want = model.predict(x, verbose=0)
    loaded = fk.models.load_model(path, custom_objects={"Scale": Scale})
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-6)
    assert loaded.layers[1].factor == 3.0
    with fk.saving.custom_object_scope({"Scale": Scale}):
        loaded = fk.models.load_model(path, compile=False, safe_mode=True)
        twin = fk.models.model_from_json(text)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), want, rtol=1e-6)
    assert twin.layers[1].factor == 3.0
    twin = fk.models.model_from_json(text, custom_objects={"Scale": Scale})
    assert twin.layers[1].factor == 3.0
    assert (
        fk.layers.deserialize(
            {"class_name": "Scale", "config": Scale(5.0).get_config()},
            custom_objects={"Scale": Scale},
        ).factor
        == 5.0
    )


def test_register_keras_serializable_key_and_lookup(tmp_path):
    @fk.saving.register_keras_serializable(package="keras_names_test")
    @dataclass(eq=False)
    class Shift(Layer):
        amount: float = 1.0

        def apply(self, params, state, x, *, training=False, key=None, mask=None):
            return x + self.amount, state

        def get_config(self):
            return {**super().get_config(), "amount": self.amount}

    key = "keras_names_test>Shift"
    assert fk.saving.get_registered_name(Shift) == key
    assert fk.saving.get_registered_object(key) is Shift
    assert fk.saving.get_custom_objects()[key] is Shift
    assert key in dict(fk.saving.get_custom_objects())
    model = fk.Sequential([fk.Input(shape=(4,)), Shift(0.5, name="shift")])
    model.save(tmp_path / "m.fkz")
    loaded = fk.models.load_model(tmp_path / "m.fkz")
    np.testing.assert_allclose(loaded.predict(data(), verbose=0), data() + 0.5)
    del fk.saving.get_custom_objects()[key]
    assert fk.saving.get_registered_object(key) is None


def test_get_custom_objects_assignment_registers():
    @dataclass(eq=False)
    class Plain(Layer):
        def apply(self, params, state, x, *, training=False, key=None, mask=None):
            return x, state

    objects = fk.saving.get_custom_objects()
    objects["PlainKerasNamesTest"] = Plain
    try:
        assert registry.get_registered_class("PlainKerasNamesTest") is Plain
        assert fk.saving.get_registered_name(Plain) == "Custom>PlainKerasNamesTest"
    finally:
        del objects["PlainKerasNamesTest"]
        del objects["Custom>PlainKerasNamesTest"]
    with pytest.raises(UnsafeConfigError):
        registry.get_registered_class("PlainKerasNamesTest")


@pytest.mark.parametrize(
    "objects, match",
    [
        ({"Scale": lambda x: x}, "must be a class"),
        ({"os.path>a>b": Scale}, "class name"),
        ({1: Scale}, "class name"),
        (["Scale"], "must be a dict"),
    ],
)
def test_custom_objects_are_checked(objects, match):
    with pytest.raises(TypeError, match=match):
        fk.saving.custom_object_scope(objects)


def test_scopes_nest_and_unwind_on_error():
    @dataclass(eq=False)
    class Other(Scale):
        pass

    with fk.saving.custom_object_scope({"Scale": Scale}):
        with fk.saving.custom_object_scope({"Scale": Other}):
            assert registry.get_registered_class("Scale") is Other
        assert registry.get_registered_class("Scale") is Scale
    with pytest.raises(RuntimeError), fk.saving.custom_object_scope({"Scale": Scale}):
        raise RuntimeError
    assert fk.saving.get_registered_object("Scale") is None


def test_load_model_checks_its_keras_arguments(tmp_path):
    sequential().save(tmp_path / "m.fkz")
    with pytest.raises(TypeError, match="safe_mode"):
        fk.models.load_model(tmp_path / "m.fkz", safe_mode="no")
    with pytest.raises(TypeError, match="compile"):
        fk.models.load_model(tmp_path / "m.fkz", compile=1)
    assert fk.models.load_model(tmp_path / "m.fkz", None, False, False).count_params()


# ----------------------------------------------------------------------------
# One file-name rule for save, save_weights and ModelCheckpoint.
# ----------------------------------------------------------------------------

MODEL_REFUSED = [
    ("m.keras", r"`\.keras`, Keras' own archive format.*/m\.fkz'"),
    ("m.h5", r"`\.h5`, Keras' HDF5 format.*/m\.fkz'"),
    ("m.HDF5", r"`\.hdf5`"),
    ("m.weights.safetensors", r"use `save_weights`"),
    ("m.fkc", r"checkpoint"),
    ("m.fkx", r"exported program"),
]
WEIGHTS_REFUSED = [
    (
        "w.weights.h5",
        r"`\.weights\.h5`, Keras' HDF5 weights.*/w\.weights\.safetensors'",
    ),
    ("w.keras", r"`\.keras`"),
    ("w.fkz", r"funkeras' model format.*use `save`"),
]


@pytest.mark.parametrize("name, match", MODEL_REFUSED)
def test_model_names_claiming_another_format_are_refused(tmp_path, name, match):
    model = sequential()
    with pytest.raises(ValueError, match=match):
        model.save(tmp_path / name)
    with pytest.raises(ValueError, match=match):
        fk.saving.save_model(model, str(tmp_path / name))
    with pytest.raises(ValueError, match=match):
        ModelCheckpoint(str(tmp_path / name))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name, match", WEIGHTS_REFUSED)
def test_weights_names_claiming_another_format_are_refused(tmp_path, name, match):
    model = sequential()
    with pytest.raises(ValueError, match=match):
        model.save_weights(tmp_path / name)
    with pytest.raises(ValueError, match=match):
        ModelCheckpoint(str(tmp_path / name), save_weights_only=True)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["m.fkz", "m.FKZ", "m", "m.model", "m-{epoch}"])
def test_model_names_accepted_by_save_and_checkpoint_alike(tmp_path, name):
    model = sequential()
    model.compile(optimizer="sgd", loss="mse")
    saved = tmp_path / name.format(epoch=1)
    model.save(saved)  # written exactly as named: nothing appended
    assert fk.load_model(saved).count_params() == model.count_params()
    folder = tmp_path / "ckpt"
    save = ModelCheckpoint(str(folder / name))
    model.fit(data(), np.zeros((6, 2)), epochs=1, verbose=0, callbacks=[save])
    assert os.listdir(folder) == [name.format(epoch=1)]


@pytest.mark.parametrize("name", ["w.weights.safetensors", "w.safetensors", "w"])
def test_weights_names_accepted_by_save_and_checkpoint_alike(tmp_path, name):
    model = sequential()
    model.compile(optimizer="sgd", loss="mse")
    model.save_weights(tmp_path / name)
    fresh = sequential()
    fresh.load_weights(tmp_path / name)
    folder = tmp_path / "ckpt"
    save = ModelCheckpoint(str(folder / name), save_weights_only=True)
    model.fit(data(), np.zeros((6, 2)), epochs=1, verbose=0, callbacks=[save])
    assert os.listdir(folder) == [name]


def test_a_funkeras_file_saved_under_a_keras_name_earlier_still_loads(tmp_path):
    # Older funkeras wrote `.fkz` archives under any name: they load by content.
    model = sequential()
    model.save(tmp_path / "m.fkz")
    os.rename(tmp_path / "m.fkz", tmp_path / "old.keras")
    assert fk.load_model(tmp_path / "old.keras").count_params() == 37


# ----------------------------------------------------------------------------
# Keras' own files are named as such.
# ----------------------------------------------------------------------------


def keras_archive_bytes() -> bytes:
    """A zip laid out as Keras 3 writes `.keras` (contents are placeholders)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.0"}))
        z.writestr("config.json", json.dumps({"class_name": "Sequential"}))
        z.writestr("model.weights.h5", HDF5_SIGNATURE + bytes(64))
    return buffer.getvalue()


def hdf5_bytes() -> bytes:
    # A superblock start: the signature, then bytes that a safetensors reader
    # takes for an absurd header length.
    return HDF5_SIGNATURE + b"\x00\x00\x00\x00\x08\x08\x00\x04" + bytes(200)


def test_a_placeholder_keras_archive_is_refused_as_a_keras_file(tmp_path):
    # A zip laid out as `.keras` is read as one: this one's config has no model.
    pytest.importorskip("h5py")
    path = tmp_path / "m.keras"
    path.write_bytes(keras_archive_bytes())
    with pytest.raises(ConfigError, match=r"config\.json"):
        fk.models.load_model(path)
    with pytest.raises(TensorFileError, match=r"model\.weights\.h5"):
        sequential().load_weights(path)


def test_load_weights_and_load_model_name_an_hdf5_file(tmp_path):
    pytest.importorskip("h5py")
    path = tmp_path / "x.weights.h5"
    path.write_bytes(hdf5_bytes())
    with pytest.raises(TensorFileError, match="not a readable HDF5 file") as info:
        sequential().load_weights(path)
    assert "header length" not in str(info.value)
    with pytest.raises(ArchiveError, match=r"HDF5 file.*model\.load_weights"):
        fk.models.load_model(path)


def test_an_ordinary_broken_zip_keeps_its_archive_message(tmp_path):
    path = tmp_path / "m.fkz"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("config.json", "{}")
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ArchiveError) as info:
        fk.models.load_model(path)
    assert "Keras" not in str(info.value)


@pytest.fixture(scope="module")
def real_keras_files(tmp_path_factory):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras runs another backend in this process")
    folder = tmp_path_factory.mktemp("keras_files")
    with warnings.catch_warnings():
        # Keras' own NumPy-2 deprecation warning while it writes (not funkeras').
        warnings.simplefilter("ignore", DeprecationWarning)
        model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
        model.save(folder / "m.keras")
        model.save_weights(folder / "x.weights.h5")
    with zipfile.ZipFile(folder / "m.keras") as z:
        assert {"metadata.json", "config.json", "model.weights.h5"} <= set(z.namelist())
    assert (folder / "x.weights.h5").read_bytes()[:8] == HDF5_SIGNATURE
    return folder


def test_real_keras_archive_loads(real_keras_files):
    pytest.importorskip("h5py")
    assert fk.models.load_model(real_keras_files / "m.keras").count_params() == 10


def test_real_keras_weights_file_loads(real_keras_files):
    pytest.importorskip("h5py")
    model = fk.Sequential([fk.Input(shape=(4,)), fk.layers.Dense(2)])
    model.load_weights(real_keras_files / "x.weights.h5")
