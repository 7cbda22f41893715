"""Keras 3 files opened in funkeras: `.keras` archives and `.weights.h5` weights.

Models are built and trained in Keras here (skipped without keras or h5py),
saved with Keras' own `save`/`save_weights`, opened in funkeras, and must
predict Keras' numbers (1e-5) and keep training with `fit`. Refusals (Lambda,
custom classes, unknown layers, mismatched weights, unsafe HDF5 and zip
structures, other kinds of file) are checked with files made here.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

import funkeras as fk  # noqa: E402
from funkeras.errors import (  # noqa: E402
    ArchiveError,
    BudgetExceededError,
    ConfigError,
    TensorFileError,
    UnsafeConfigError,
    WeightsMismatchError,
)
from funkeras.saving import keras_config  # noqa: E402

h5py = pytest.importorskip("h5py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def keras():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras runs another backend in this process")
    return keras


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        # Keras' own deprecation warnings while it builds and writes.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------
# The four models, built and trained in Keras, and their funkeras twins.
# ----------------------------------------------------------------------------


def keras_mlp(keras):
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="mlp",
    )


def fk_mlp():
    return fk.Sequential(
        [
            fk.Input(shape=(6,)),
            fk.layers.Dense(8, activation="relu", name="first"),
            fk.layers.Dense(8, activation="tanh", name="second"),
            fk.layers.Dense(3, activation="softmax", name="third"),
        ]
    )


def keras_cnn(keras):
    inp = keras.Input((8, 8, 2))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(4, 3)(h)
    h = keras.layers.Dropout(0.2)(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))


def fk_cnn():
    inp = fk.Input(shape=(8, 8, 2))
    h = fk.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    h = fk.layers.BatchNormalization()(h)
    h = fk.layers.MaxPooling2D()(h)
    h = fk.layers.Conv2D(4, 3)(h)
    h = fk.layers.Dropout(0.2)(h)
    h = fk.layers.Flatten()(h)
    return fk.Model(inp, fk.layers.Dense(3, activation="softmax")(h))


def keras_two_inputs(keras):
    a, b = keras.Input((5,), name="a"), keras.Input((3,), name="b")
    h = keras.layers.Dense(4, activation="relu")(a)
    h = keras.layers.Concatenate()([h, b])
    return keras.Model([a, b], keras.layers.Dense(3, activation="softmax")(h))


def fk_two_inputs():
    a, b = fk.Input(shape=(5,), name="a"), fk.Input(shape=(3,), name="b")
    h = fk.layers.Dense(4, activation="relu")(a)
    h = fk.layers.Concatenate()([h, b])
    return fk.Model([a, b], fk.layers.Dense(3, activation="softmax")(h))


def keras_nested(keras):
    encoder = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, activation="relu"),
         keras.layers.LayerNormalization()],
        name="encoder",
    )
    inp = keras.Input((6,))
    h = keras.layers.Dense(4)(encoder(inp))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))


def fk_nested():
    encoder = fk.Sequential(
        [fk.Input(shape=(6,)), fk.layers.Dense(5, activation="relu"),
         fk.layers.LayerNormalization()],
        name="encoder",
    )
    inp = fk.Input(shape=(6,))
    h = fk.layers.Dense(4)(encoder(inp))
    return fk.Model(inp, fk.layers.Dense(3, activation="softmax")(h))


def data(kind, n=24):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    if kind == "cnn":
        return rng.normal(size=(n, 8, 8, 2)).astype("float32"), y
    if kind == "two_inputs":
        return [
            rng.normal(size=(n, 5)).astype("float32"),
            rng.normal(size=(n, 3)).astype("float32"),
        ], y
    return rng.normal(size=(n, 6)).astype("float32"), y


CASES = {
    "mlp": (keras_mlp, fk_mlp),
    "cnn": (keras_cnn, fk_cnn),
    "two_inputs": (keras_two_inputs, fk_two_inputs),
    "nested": (keras_nested, fk_nested),
}


@pytest.fixture(scope="module")
def trained(keras, tmp_path_factory):
    """Each Keras model trained a little, saved both ways, with its predictions."""
    folder = tmp_path_factory.mktemp("keras_files")
    out = {}
    keras.utils.set_random_seed(0)
    for name, (build, _) in CASES.items():
        model = _quiet(build, keras)
        model.compile(
            optimizer="adam",
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        x, y = data(name)
        _quiet(model.fit, x, y, epochs=2, batch_size=8, verbose=0)
        _quiet(model.save, folder / f"{name}.keras")
        _quiet(model.save_weights, folder / f"{name}.weights.h5")
        out[name] = (
            folder / f"{name}.keras",
            folder / f"{name}.weights.h5",
            x,
            y,
            np.asarray(_quiet(model.predict, x, verbose=0)),
        )
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_keras_archive_predicts_keras_numbers_and_keeps_training(trained, name):
    path, _, x, y, expected = trained[name]
    model = fk.load_model(path)
    assert model.compiled
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)
    eager = fk.load_model(path, compile=False)
    eager.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  execution="eager")
    np.testing.assert_allclose(eager.predict(x, verbose=0), expected, atol=1e-5)
    before = model.get_weights()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0] * 1.5
    assert "accuracy" in history.history
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("name", list(CASES))
def test_keras_weights_file_loads_into_the_same_architecture(trained, name):
    _, path, x, y, expected = trained[name]
    model = CASES[name][1]()
    model.load_weights(path)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert np.isfinite(model.fit(x, y, epochs=1, verbose=0).history["loss"]).all()


def test_load_weights_reads_the_weights_of_a_keras_archive(trained):
    path, _, x, _, expected = trained["cnn"]
    model = fk_cnn()
    model.load_weights(path)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def test_layerwise_execution_predicts_the_same(trained):
    path, _, x, _, expected = trained["nested"]
    model = fk.load_model(path, compile=False)
    model.compile(optimizer="sgd", loss="mse", execution="layerwise")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def test_the_compile_config_carries_over(trained):
    model = fk.load_model(trained["mlp"][0])
    config = model.get_compile_config()
    assert config["loss"] == "sparse_categorical_crossentropy"
    assert config["metrics"] == ["accuracy"]
    assert config["optimizer"]["class_name"] == "Adam"
    assert not fk.load_model(trained["mlp"][0], compile=False).compiled


def test_layer_names_come_from_the_keras_config(trained, keras):
    model = fk.load_model(trained["two_inputs"][0])
    kmodel = _quiet(keras.saving.load_model, trained["two_inputs"][0])
    assert [layer.name for layer in model.layers if layer.name not in ("a", "b")] == [
        layer.name for layer in kmodel.layers if layer.name not in ("a", "b")
    ]


# ----------------------------------------------------------------------------
# Mismatches.
# ----------------------------------------------------------------------------


def test_a_weights_file_of_another_architecture_names_every_difference(trained):
    wider = fk.Sequential(
        [fk.Input(shape=(6,)), fk.layers.Dense(9, activation="relu"),
         fk.layers.Dense(8), fk.layers.Dense(3)]
    )
    before = wider.get_weights()
    with pytest.raises(WeightsMismatchError) as info:
        wider.load_weights(trained["mlp"][1])
    message = str(info.value)
    assert "layers/dense/vars/0 (funkeras 'dense/kernel'): expected float32[6, 9]" in (
        message
    )
    assert "the file has float32[6, 8]" in message
    assert all(np.array_equal(a, b) for a, b in zip(before, wider.get_weights()))


def test_missing_and_unexpected_layers_are_named(trained):
    short = fk.Sequential([fk.Input(shape=(6,)), fk.layers.Dense(8)])
    with pytest.raises(WeightsMismatchError, match=r"layers/dense_1/vars/0.*no such"):
        short.load_weights(trained["mlp"][1])
    longer = fk.Sequential(
        [fk.Input(shape=(6,)), fk.layers.Dense(8), fk.layers.Dense(8),
         fk.layers.Dense(3), fk.layers.Dense(3)]
    )
    with pytest.raises(WeightsMismatchError, match=r"layers/dense_3/vars/0.*missing"):
        longer.load_weights(trained["mlp"][1])


def test_skip_mismatch_loads_the_layers_that_match(trained):
    _, path, x, _, _ = trained["mlp"]
    model = fk.Sequential(
        [fk.Input(shape=(6,)), fk.layers.Dense(8, activation="relu"),
         fk.layers.Dense(8, activation="tanh"), fk.layers.Dense(4)]
    )
    old_last = model.get_weights()[4]
    with pytest.warns(UserWarning, match="layers/dense_2"):
        model.load_weights(path, skip_mismatch=True)
    reference = fk_mlp()
    reference.load_weights(path)
    np.testing.assert_array_equal(model.get_weights()[0], reference.get_weights()[0])
    np.testing.assert_array_equal(model.get_weights()[4], old_last)


# ----------------------------------------------------------------------------
# Refused configs: Lambda, custom classes, unknown layers, unknown arguments.
# ----------------------------------------------------------------------------


def _rewrite(path, tmp_path, edit, name="edited.keras"):
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    out = tmp_path / name
    with zipfile.ZipFile(out, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
    return out


def test_a_keras_lambda_layer_is_refused_by_name(keras, tmp_path):
    inp = keras.Input((3,))
    out = keras.layers.Dense(2)(keras.layers.Lambda(lambda t: t * 2)(inp))
    model = _quiet(keras.Model, inp, out)
    _quiet(model.save, tmp_path / "lam.keras")
    with pytest.raises(UnsafeConfigError, match="'Lambda' layer"):
        fk.load_model(tmp_path / "lam.keras")


def test_a_custom_keras_class_is_refused_by_name(keras, tmp_path):
    @keras.saving.register_keras_serializable(package="mine")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inp = keras.Input((3,))
    model = _quiet(keras.Model, inp, keras.layers.Dense(2)(Twice()(inp)))
    _quiet(model.save, tmp_path / "custom.keras")
    with pytest.raises(UnsafeConfigError, match="'Twice' is a custom Keras class"):
        fk.load_model(tmp_path / "custom.keras")


def test_unknown_layers_and_arguments_are_refused(trained, tmp_path):
    def unknown_layer(config):
        config["config"]["layers"][1]["class_name"] = "NoSuchLayer"

    path = _rewrite(trained["mlp"][0], tmp_path, unknown_layer)
    with pytest.raises(UnsafeConfigError, match="'NoSuchLayer' is not in funkeras"):
        fk.load_model(path)

    def renorm(config):
        config["config"]["layers"][2]["config"]["renorm"] = True

    path = _rewrite(trained["cnn"][0], tmp_path, renorm, "renorm.keras")
    with pytest.raises(ConfigError, match="BatchNormalization argument `renorm`=True"):
        fk.load_model(path)

    def module(config):
        config["config"]["layers"][1]["module"] = "os"

    path = _rewrite(trained["mlp"][0], tmp_path, module, "module.keras")
    with pytest.raises(UnsafeConfigError, match="module 'os'"):
        fk.load_model(path)


def test_a_subclassed_keras_model_is_refused():
    spec = {"class_name": "MyModel", "module": "my_project.models",
            "registered_name": "my_project>MyModel", "config": {}}
    with pytest.raises(UnsafeConfigError, match="'MyModel' is a custom Keras class"):
        keras_config.model_from_keras_config(spec)


def test_neutral_keras_arguments_are_dropped_and_others_kept():
    spec = {"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 3],
                                                 "sparse": False}},
        {"class_name": "Dense", "module": "keras.layers", "registered_name": None,
         "config": {"units": 2, "kernel_constraint": None,
                    "kernel_initializer": {"module": "keras.initializers",
                                           "class_name": "GlorotUniform",
                                           "config": {"seed": None},
                                           "registered_name": None},
                    "dtype": {"module": "keras", "class_name": "DTypePolicy",
                              "config": {"name": "float32"}}}}]}}
    model = keras_config.model_from_keras_config(spec)
    dense = model.layers[-1]
    assert dense.units == 2 and dense.dtype == "float32"
    assert dense.kernel_initializer == {"class_name": "GlorotUniform", "config": {}}


# ----------------------------------------------------------------------------
# HDF5 safety.
# ----------------------------------------------------------------------------


def mlp_h5(tmp_path, edit, name="w.weights.h5", **kwargs):
    """A Keras-layout weights file for Input(3) -> Dense(2), edited by `edit`."""
    path = tmp_path / name
    with h5py.File(path, "w", **kwargs) as f:
        f.create_dataset("layers/dense/vars/0", data=np.ones((3, 2), "float32"))
        f.create_dataset("layers/dense/vars/1", data=np.zeros((2,), "float32"))
        f.create_group("vars")
        edit(f)
    return path


def small():
    return fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])


def test_a_plain_h5_in_keras_layout_loads(tmp_path):
    model = small()
    model.load_weights(mlp_h5(tmp_path, lambda f: None))
    np.testing.assert_array_equal(model.get_weights()[0], np.ones((3, 2)))


@pytest.mark.parametrize(
    "label, edit, error, match",
    [
        ("external link",
         lambda f: f.__setitem__("layers/extra", h5py.ExternalLink("/etc/x.h5", "/")),
         TensorFileError, "external link"),
        ("soft link",
         lambda f: f.__setitem__("layers/alias", h5py.SoftLink("/layers/dense")),
         TensorFileError, "soft link"),
        ("string dtype",
         lambda f: f.create_dataset("layers/dense_1/vars/0", data=np.array([b"x"])),
         TensorFileError, "non-numeric dtype"),
        ("huge declared shape",
         lambda f: f.create_dataset("layers/dense_1/vars/0", shape=(10**12,),
                                    dtype="float32"),
         BudgetExceededError, "more than the whole file"),
        ("unallocated data",
         lambda f: f.create_dataset("layers/dense_1/vars/0", shape=(1000,),
                                    dtype="float32"),
         TensorFileError, "stores 0 bytes"),
        ("compressed",
         lambda f: f.create_dataset("layers/dense_1/vars/0", data=np.zeros(100),
                                    compression="gzip"),
         TensorFileError, "compressed or filtered"),
        ("legacy keras 2",
         lambda f: f.attrs.__setitem__("layer_names", [b"dense"]),
         TensorFileError, "legacy Keras 2"),
    ],
)
def test_unsafe_hdf5_structures_are_refused(tmp_path, label, edit, error, match):
    model = small()
    before = model.get_weights()
    with pytest.raises(error, match=match):
        model.load_weights(mlp_h5(tmp_path, edit))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_a_virtual_dataset_is_refused(tmp_path):
    source = tmp_path / "source.h5"
    with h5py.File(source, "w") as f:
        f.create_dataset("x", data=np.ones((2,), "float32"))

    def virtual(f):
        layout = h5py.VirtualLayout(shape=(2,), dtype="float32")
        layout[:] = h5py.VirtualSource(str(source), "x", shape=(2,))
        del f["layers/dense/vars/1"]
        f.create_virtual_dataset("layers/dense/vars/1", layout)

    with pytest.raises(TensorFileError, match="virtual dataset"):
        small().load_weights(mlp_h5(tmp_path, virtual))


def test_a_truncated_h5_is_refused(tmp_path):
    data = mlp_h5(tmp_path, lambda f: None).read_bytes()
    for cut in (8, 100, len(data) // 2, len(data) - 10):
        path = tmp_path / f"cut{cut}.weights.h5"
        path.write_bytes(data[:cut])
        with pytest.raises(TensorFileError):
            small().load_weights(path)


# ----------------------------------------------------------------------------
# Zip safety of .keras archives.
# ----------------------------------------------------------------------------


def _zip(tmp_path, entries, name="z.keras"):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for info, body in entries:
            z.writestr(info, body)
    path = tmp_path / name
    path.write_bytes(buffer.getvalue())
    return path


def _members(path):
    with zipfile.ZipFile(path) as z:
        return [(i, z.read(i.filename)) for i in z.infolist()]


def test_zip_level_attacks_are_refused(trained, tmp_path):
    good = _members(trained["mlp"][0])
    traversal = [*good, (zipfile.ZipInfo("../../evil.py"), b"import os")]
    with pytest.raises(ArchiveError, match="path traversal"):
        fk.load_model(_zip(tmp_path, traversal))
    link = zipfile.ZipInfo("assets")
    link.external_attr = (0o120777) << 16
    with pytest.raises(ArchiveError, match="symbolic link"):
        fk.load_model(_zip(tmp_path, [*good, (link, b"/etc/passwd")]))
    extra = [*good, (zipfile.ZipInfo("model.pkl"), b"\x80\x04.")]
    with pytest.raises(ArchiveError, match="unexpected member 'model.pkl'"):
        fk.load_model(_zip(tmp_path, extra))
    bomb = zipfile.ZipInfo("metadata.json")
    bomb.compress_type = zipfile.ZIP_DEFLATED
    rest = [e for e in good if e[0].filename != bomb.filename]
    entries = [(bomb, b" " * 60_000), *rest]
    with pytest.raises(ArchiveError, match="zip bomb"):
        fk.load_model(_zip(tmp_path, entries))
    many = [*good] + [(zipfile.ZipInfo(f"m{i}"), b"") for i in range(20)]
    with pytest.raises(ArchiveError, match="members"):
        fk.load_model(_zip(tmp_path, many))
    data = trained["mlp"][0].read_bytes()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[: len(data) - 40])
    with pytest.raises(ArchiveError):
        fk.load_model(cut)


def test_keras_written_member_modes_are_regular_files(trained):
    with zipfile.ZipFile(trained["mlp"][0]) as z:
        assert {i.external_attr >> 16 for i in z.infolist()} == {0o600}
    assert fk.load_model(trained["mlp"][0]).count_params() > 0


# ----------------------------------------------------------------------------
# Other files given to load_model; h5py missing.
# ----------------------------------------------------------------------------


def test_load_model_names_other_kinds_of_file(tmp_path):
    model = small()
    model.save_weights(tmp_path / "w.weights.safetensors")
    with pytest.raises(ArchiveError, match=r"safetensors weights file.*load_weights"):
        fk.load_model(tmp_path / "w.weights.safetensors")
    with pytest.raises(ArchiveError, match=r"HDF5 file.*load_weights"):
        fk.load_model(mlp_h5(tmp_path, lambda f: None))
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ArchiveError, match="NumPy `.npy`"):
        fk.load_model(tmp_path / "a.npy")
    (tmp_path / "p.pkl").write_bytes(b"\x80\x04\x95\x00")
    with pytest.raises(ArchiveError, match="pickle"):
        fk.load_model(tmp_path / "p.pkl")
    (tmp_path / "c.json").write_text(model.to_json())
    with pytest.raises(ArchiveError, match="model_from_json"):
        fk.load_model(tmp_path / "c.json")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ArchiveError, match="empty"):
        fk.load_model(tmp_path / "empty")
    fk.saving.save_checkpoint(tmp_path / "c.fkc", {"w": np.zeros(2, "float32")}, {})
    with pytest.raises(ArchiveError, match="restore_checkpoint"):
        fk.load_model(tmp_path / "c.fkc")


def test_funkeras_imports_without_h5py_and_says_what_to_install(tmp_path):
    path = mlp_h5(tmp_path, lambda f: None)
    code = (
        "import sys; sys.modules['h5py'] = None\n"
        "import funkeras as fk\n"
        "m = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])\n"
        "try:\n"
        f"    m.load_weights({str(path)!r})\n"
        "except ImportError as e:\n"
        "    print('IMPORT-ERROR', e)\n"
    )
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env,
        timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "IMPORT-ERROR" in proc.stdout
    assert "pip install 'funkeras[h5]'" in proc.stdout


def test_an_untranslatable_compile_config_loads_uncompiled_with_a_note(
    trained, tmp_path
):
    def bad_loss(config):
        config["compile_config"]["loss"] = "no_such_loss"

    path = _rewrite(trained["mlp"][0], tmp_path, bad_loss)
    with pytest.warns(UserWarning, match="loaded uncompiled.*no_such_loss"):
        model = fk.load_model(path)
    assert not model.compiled
    _, _, x, _, expected = trained["mlp"]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def test_the_parameter_budget_applies_to_keras_files(trained):
    with pytest.raises(BudgetExceededError, match="max_params=10"):
        fk.load_model(trained["mlp"][0], max_params=10)
