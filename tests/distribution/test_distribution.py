"""fk.distribution: Keras 3's distribution API on jax.sharding.

The multi-device checks run in one subprocess with 8 simulated CPU devices
(`multidevice_child.py`: data- and model-parallel fit against one device,
shardings, one compile, evaluate/predict, callbacks, saving, bad input); the
rest runs here on the suite's one CPU device.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import funkeras as fk

D = fk.distribution
HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _run(
    code_or_path: str, devices: int, timeout: int = 900
) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    args = (
        [sys.executable, code_or_path]
        if code_or_path.endswith(".py")
        else [sys.executable, "-c", code_or_path]
    )
    return subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


CHECKS = [
    "data_parallel_fit_matches_one_device",
    "step_compiles_once",
    "evaluate_predict_match",
    "fused_blocks_and_iterables",
    "batchnorm_row_mask_split",
    "model_parallel_fit_matches_one_device",
    "global_distribution_creates_sharded_weights",
    "callbacks_and_saving",
    "bad_input",
]


def test_on_eight_simulated_devices():
    proc = _run(str(HERE / "multidevice_child.py"), devices=8)
    passed = [
        line.split()[1]
        for line in proc.stdout.splitlines()
        if line.startswith("CHECK ")
    ]
    assert proc.returncode == 0 and passed == CHECKS, (
        f"passed {passed}\nstdout:\n{proc.stdout[-3000:]}\n"
        f"stderr:\n{proc.stderr[-6000:]}"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_initialize_joins_once_with_gloo_on_cpu():
    code = f"""
import jax, funkeras as fk
fk.distribution.initialize("127.0.0.1:{_free_port()}", 1, 0)
assert jax.config.jax_cpu_collectives_implementation == "gloo"
assert jax.process_count() == 1 and len(fk.distribution.list_devices()) == 2
try:
    fk.distribution.initialize("127.0.0.1:1", 1, 0)
except RuntimeError as e:
    assert "once per process" in str(e), e
    print("REFUSED")
jax.distributed.shutdown()
"""
    proc = _run(code, devices=2, timeout=300)
    assert proc.returncode == 0 and "REFUSED" in proc.stdout, proc.stderr[-4000:]


def test_initialize_after_devices_were_used_is_refused():
    jax.devices()  # this test process has used its devices
    before = jax.config.jax_cpu_collectives_implementation
    with pytest.raises(RuntimeError, match="first thing in the script"):
        D.initialize("127.0.0.1:1", 2, 0)
    assert jax.config.jax_cpu_collectives_implementation == before


def test_initialize_checks_process_id():
    with pytest.raises(ValueError, match=r"process_id.*\[0, 2\).*5"):
        D.initialize("127.0.0.1:1", 2, 5)


def test_names_and_defaults_follow_keras():
    assert D.list_devices() == [f"{d.platform}:{d.id}" for d in jax.devices()]
    assert D.list_devices("cpu")[0] == "cpu:0"
    dp = D.DataParallel()
    assert dp.batch_dim_name == "batch" and dp.device_mesh.shape == (
        len(jax.devices()),
    )
    mesh = D.DeviceMesh((1, 1), ("data", "model"), ["cpu:0"])
    layout = D.LayoutMap(mesh)
    layout["dense.*kernel"] = (None, "model")
    layout["d/bias"] = "model"  # a single name means a 1-D layout
    assert layout["dense_1/kernel"] == (None, "model") and layout["d/bias"] == (
        "model",
    )
    assert layout["other/kernel"] is None  # not matched: replicated
    assert "dense.*kernel" in layout and "dense_1/kernel" not in layout
    assert list(layout) == ["dense.*kernel", "d/bias"] and len(layout) == 2
    mp = D.ModelParallel(layout_map=layout)
    assert mp.batch_dim_name == "data"  # the mesh's first axis, as Keras
    assert D.distribution() is None
    with mp.scope():
        assert D.distribution() is mp
    assert D.distribution() is None


def test_layout_lookup_refuses_two_matching_keys():
    layout = D.LayoutMap(D.DeviceMesh((1,), ("model",)))
    layout["dense"] = (None, "model")
    layout["kernel"] = (None, "model")
    with pytest.raises(ValueError, match="matches several keys"):
        layout["dense/kernel"]


def test_bad_settings_are_refused_with_the_fix():
    mesh = D.DeviceMesh((1, 1), ("batch", "model"))
    layout = D.LayoutMap(mesh)
    with pytest.raises(
        ValueError, match=r"'data' is not in the mesh.*\('batch', 'model'\)"
    ):
        layout["dense.*kernel"] = ("data", None)
    with pytest.raises(ValueError, match="not a valid regex"):
        layout["dense(["] = (None,)
    with pytest.raises(ValueError, match="batch_dim_name='rows'"):
        D.ModelParallel(layout_map=layout, batch_dim_name="rows")
    with pytest.raises(TypeError, match="LayoutMap"):
        D.ModelParallel(layout_map={"dense": (None, "model")})
    with pytest.raises(ValueError, match="same length"):
        D.DeviceMesh((1,), ("batch", "model"))
    with pytest.raises(ValueError, match="no device 'gpu:7'"):
        D.DeviceMesh((1,), ("batch",), ["gpu:7"])
    with pytest.raises(ValueError, match="1-D"):
        D.DataParallel(device_mesh=mesh)
    with pytest.raises(TypeError, match="set_distribution"):
        D.set_distribution("data_parallel")
    model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])
    with pytest.raises(ValueError, match="execution='eager'.*DataParallel"):
        model.compile(loss="mse", run_eagerly=True, distribution=D.DataParallel())
    with pytest.raises(TypeError, match="distribution"):
        model.compile(loss="mse", distribution="auto")


def test_one_device_mesh_trains_like_no_distribution():
    # A (1, 1) mesh runs the sharded code path on the suite's device: same numbers.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    y = rng.normal(size=(20, 2)).astype(np.float32)
    layout = D.LayoutMap(D.DeviceMesh((1, 1), ("batch", "model")))
    layout["dense/kernel"] = (None, "model")

    def run(dist):
        model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)], seed=0)
        model.compile(optimizer="adam", loss="mse", distribution=dist)
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        return model

    plain, sharded = run(None), run(D.ModelParallel(layout_map=layout))
    # (JAX simplifies a spec over size-1 axes; the 8-device test checks specs.)
    assert sharded.params["dense"]["kernel"].sharding.mesh == layout.device_mesh.mesh
    for a, b in zip(plain.get_weights(), sharded.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        sharded.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=1e-6, atol=1e-7
    )


@pytest.mark.slow
def test_two_processes_of_four_devices_match_one_device():
    # Joined with fk.distribution.initialize over localhost (gloo on CPU); each
    # process feeds its half of every global batch (see multiprocess_child.py).
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    port = str(_free_port())
    script = str(HERE / "multiprocess_child.py")
    procs = [
        subprocess.Popen(
            [sys.executable, script, port, str(pid)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid in (0, 1)
    ]
    outs = []
    try:
        for proc in procs:
            outs.append(proc.communicate(timeout=600))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for pid, (proc, (out, err)) in enumerate(zip(procs, outs, strict=True)):
        assert proc.returncode == 0 and f"PROCESS {pid} OK" in out, err[-4000:]
