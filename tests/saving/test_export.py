"""Exported programs: run without model code at any batch size; unsafe ones refused."""

from __future__ import annotations

import os
import zipfile

import hostile
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras.errors import ArchiveError, UnsafeExportError
from funkeras.saving.export import ALLOWED_CUSTOM_CALLS, export_model, load_exported
from funkeras.saving.format import load_model

SIG = jax.ShapeDtypeStruct((None, 3), jnp.float32)


def _apply(params, x):
    return jnp.tanh(x @ params["w"]) @ jnp.linalg.inv(params["m"])


PARAMS = {"w": jnp.arange(6.0).reshape(3, 2) / 10, "m": jnp.eye(2) * 2}


@pytest.fixture(scope="module")
def exported_fn(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "f.fkx"
    export_model(_apply, path, SIG, params=PARAMS, platforms=("cpu", "cuda"))
    return path


def test_a_model_exports_and_matches_predict(tmp_path):
    model = fk.Sequential(
        [
            fk.Input(shape=(3,)),
            fk.layers.Dense(4, activation="relu"),
            fk.layers.BatchNormalization(),
            fk.layers.Dense(2),
        ]
    )
    path = tmp_path / "m.fkx"
    export_model(model, path, SIG)
    served = load_exported(path)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(served(x)), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6
    )
    assert served.platforms == ("cpu",)
    with zipfile.ZipFile(path) as z:
        assert z.namelist() == [
            "manifest.json",
            "export.json",
            "program.jaxexport",
            "params.safetensors",
        ]


def test_any_batch_size_and_under_jit(exported_fn):
    served = load_exported(exported_fn)
    assert served.platforms == ("cpu", "cuda")
    assert str(served.input_signature.shape[0]) == "batch"
    for batch in (1, 7):
        x = np.linspace(-1, 1, batch * 3, dtype=np.float32).reshape(batch, 3)
        np.testing.assert_allclose(np.asarray(served(x)), _apply(PARAMS, x), rtol=1e-6)
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(
        np.asarray(jax.jit(served)(x)), _apply(PARAMS, x), rtol=1e-6
    )


def test_params_ship_beside_the_program(exported_fn):
    served = load_exported(exported_fn)
    np.testing.assert_array_equal(served.params["w"], PARAMS["w"])
    with zipfile.ZipFile(exported_fn) as z:
        program = z.read("program.jaxexport")
    # Weights are not baked in as constants, and no local file path leaks.
    assert np.asarray(PARAMS["w"]).tobytes() not in program
    assert os.path.abspath(__file__).encode() not in program


def test_export_is_deterministic_and_atomic(exported_fn, tmp_path):
    path = tmp_path / "f.fkx"
    export_model(_apply, path, SIG, params=PARAMS, platforms=("cpu", "cuda"))
    assert path.read_bytes() == exported_fn.read_bytes()
    assert os.listdir(tmp_path) == ["f.fkx"]


@pytest.mark.parametrize(
    "target", ["xla_ffi_python_cpu_callback", "tpu_custom_call", "evil"]
)
def test_unsafe_programs_are_refused(exported_fn, tmp_path, target):
    data = exported_fn.read_bytes()
    members = hostile.members_of(data)
    program = jax.export.deserialize(bytearray(dict(members)["program.jaxexport"]))
    edited = hostile._edited_program(program, "@shape_assertion", f"@{target}")
    path = tmp_path / "bad.fkx"
    path.write_bytes(
        hostile.canonical(
            [(n, edited if n == "program.jaxexport" else d) for n, d in members],
            kind="export",
        )
    )
    with pytest.raises(UnsafeExportError, match=f"custom call '{target}'"):
        load_exported(path)


def test_the_allow_list_has_no_callbacks_or_kernels():
    assert not any("callback" in t for t in ALLOWED_CUSTOM_CALLS)
    assert (
        not {"tpu_custom_call", "mosaic_gpu_v2", "tf.call_tf_function"}
        & ALLOWED_CUSTOM_CALLS
    )
    from jax._src.export import _export

    stable = getattr(_export, "_CUSTOM_CALL_TARGETS_GUARANTEED_STABLE", None)
    if stable is not None:
        assert ALLOWED_CUSTOM_CALLS <= set(stable) | {
            "hipsolver_gesdd_ffi",
            "cusolver_gesdd_ffi",
        }


def test_bad_arguments():
    with pytest.raises(ValueError, match="platforms"):
        export_model(_apply, "x.fkx", SIG, params=PARAMS, platforms=("gpu",))
    with pytest.raises(TypeError, match="params="):
        export_model(_apply, "x.fkx", SIG)
    with pytest.raises(TypeError, match="ShapeDtypeStruct"):
        export_model(_apply, "x.fkx", (None, 3), params=PARAMS)
    assert not os.path.exists("x.fkx")


def test_an_export_file_is_not_a_model_file(exported_fn):
    with pytest.raises(ArchiveError, match="exported program.*load_exported"):
        load_model(exported_fn)
