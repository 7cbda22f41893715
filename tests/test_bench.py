"""The benchmark harness: the CLI end to end at tiny sizes, its outputs, its errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from funkeras.bench import cli, distributed, peers, report
from funkeras.bench.runner import Result
from funkeras.bench.workloads import WORKLOADS, get_workload

ROW_FIELDS = {
    "model",
    "impl",
    "mode",
    "label",
    "status",
    "batch_size",
    "steps_per_round",
    "first_step_s",
    "xla_compiles",
    "step_ms",
    "samples_per_s",
    "ratio_hand_jit",
    "ratio_funkeras_jit",
    "compiles",
    "recompiles",
    "held_mb",
    "samples_ms",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    paths = {k: str(out / f"run.{k}") for k in ("json", "csv", "md")}
    argv = [
        "--quick",
        "--models",
        "tiny",
        "--modes",
        "jit,eager,layerwise",
        "--json",
        paths["json"],
        "--csv",
        paths["csv"],
        "--markdown",
        paths["md"],
        "--quiet",
    ]
    assert cli.main(argv) == 0
    return paths


def test_cli_json_has_every_row_and_field(quick_run):
    with open(quick_run["json"]) as f:
        payload = json.load(f)
    assert {"environment", "settings", "workloads", "results", "targets"} <= set(
        payload
    )
    env = payload["environment"]
    assert (
        env["device"]
        and env["versions"]["jax"]
        and env["command"].startswith("python -m funkeras.bench --quick")
    )
    rows = {(r["impl"], r["mode"]): r for r in payload["results"]}
    assert set(rows) == {
        ("funkeras", "jit"),
        ("funkeras", "eager"),
        ("funkeras", "layerwise"),
        ("hand-written", "jit"),
        ("hand-written", "eager"),
    }
    for key, row in rows.items():
        assert ROW_FIELDS <= set(row), key
    for key in [
        ("funkeras", "jit"),
        ("funkeras", "eager"),
        ("hand-written", "jit"),
        ("hand-written", "eager"),
    ]:
        row = rows[key]
        assert row["status"] == "ok", row
        assert row["step_ms"] > 0 and row["samples_per_s"] > 0
        assert len(row["samples_ms"]) == payload["settings"]["repeats"]
        assert row["first_step_s"] > 0
        assert row["recompiles"] == 0, key
    assert rows[("hand-written", "jit")]["ratio_hand_jit"] == pytest.approx(1.0)
    assert rows[("funkeras", "jit")]["ratio_funkeras_jit"] == pytest.approx(1.0)
    # One compile of the train step, for funkeras and the hand-written loop alike.
    assert rows[("funkeras", "jit")]["compiles"] == 1
    assert rows[("hand-written", "jit")]["compiles"] == 1
    # The layerwise mode is either measured or reported unavailable with a reason.
    layerwise = rows[("funkeras", "layerwise")]
    assert layerwise["status"] in ("ok", "unavailable")
    if layerwise["status"] == "unavailable":
        assert layerwise["reason"]
    names = {t["target"] for t in payload["targets"]}
    assert "tiny: funkeras jit / hand-written jit" in names
    assert "tiny: funkeras eager / hand-written op by op" in names


def test_cli_csv_and_markdown(quick_run):
    with open(quick_run["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    assert set(rows[0]) == set(report.CSV_FIELDS)
    assert {r["mode"] for r in rows} == {"jit", "eager", "layerwise"}
    with open(quick_run["md"]) as f:
        text = f.read()
    assert "Command: `python -m funkeras.bench --quick" in text
    assert "| tiny | funkeras | jit |" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--models", "tiny,resnet"], "valid models: linear, mlp, cnn, tiny"),
        (["--modes", "jit,turbo"], "valid modes: jit, jit-spe, eager, layerwise"),
        (["--peers", "jax2"], "valid peers: keras-jit"),
        (["--steps", "0"], "--steps must be >= 1"),
    ],
)
def test_cli_rejects_unknown_names_listing_the_valid_ones(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_module_entry_point_reports_an_unknown_model():
    proc = subprocess.run(
        [sys.executable, "-m", "funkeras.bench", "--models", "vgg"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "unknown model 'vgg'" in proc.stderr and "valid models:" in proc.stderr


def test_get_workload_error_lists_models():
    with pytest.raises(ValueError, match="valid models: linear, mlp, cnn, tiny"):
        get_workload("gpt")
    assert WORKLOADS["mlp"].layers == (784, 512, 512, 10)


def test_missing_peer_is_reported_not_raised(monkeypatch):
    monkeypatch.setattr(peers.importlib.util, "find_spec", lambda name: None)
    rows = peers.run_peers(
        ["torch-eager", "keras-jit"],
        ["tiny", "mlp"],
        batch_size=None,
        quick=True,
        repeats=1,
        log=lambda s: None,
    )
    assert [(r["peer"], r["model"], r["status"]) for r in rows] == [
        ("torch-eager", "tiny", "not installed"),
        ("torch-eager", "mlp", "not installed"),
        ("keras-jit", "tiny", "not installed"),
        ("keras-jit", "mlp", "not installed"),
    ]
    assert "not installed" in peers.format_peers(rows)


def test_png_without_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    with pytest.raises(SystemExit, match="--png needs matplotlib"):
        cli.main(["--png", "out.png", "--models", "tiny"])


def _row(model, impl, mode, step_ms):
    r = Result(model, impl, mode, mode, 32, samples_ms=[step_ms])
    r.finish(1)
    return r


def test_targets_are_checked_against_the_limits():
    rows = [
        _row("tiny", "hand-written", "jit", 0.02),
        _row("tiny", "funkeras", "jit", 0.04),
        _row("tiny", "funkeras", "jit-spe", 0.005),
        _row("tiny", "funkeras", "eager", 4.0),
        _row("tiny", "hand-written", "eager", 4.2),
        _row("mlp", "hand-written", "jit", 1.0),
        _row("mlp", "funkeras", "jit", 1.04),
    ]
    for r in rows:
        ref = next(
            x
            for x in rows
            if x.model == r.model and x.impl == "hand-written" and x.mode == "jit"
        )
        r.ratio_hand_jit = r.step_ms / ref.step_ms
    got = {
        t["target"]: (t["value"], t["met"]) for t in report.evaluate_targets(rows, 32)
    }
    assert got == {
        "mlp: funkeras jit / hand-written jit": (1.04, True),
        "tiny: funkeras jit / hand-written jit": (2.0, False),
        "tiny: hand-written jit step / funkeras spe=32 step": (4.0, True),
        "tiny: funkeras eager / hand-written op by op": (
            pytest.approx(0.9524, abs=1e-4),
            True,
        ),
    }
    text = report.format_targets(report.evaluate_targets(rows, 32))
    assert "MISSED  tiny: funkeras jit / hand-written jit: 2.00 (target <= 1.5)" in text


def test_distributed_bench_on_two_simulated_devices():
    result = distributed.run_distributed(2, "tiny", rounds=1, steps=2)
    assert "error" not in result, result
    assert (result["devices"], result["batch_size"], result["per_device_batch"]) == (
        2, 32, 16,
    )
    assert result["compiles"] == {"funkeras": 1, "hand-written": 1}
    expected = result["step_ms"]["funkeras"] / result["step_ms"]["hand-written"]
    assert result["ratio"] == pytest.approx(expected)
    text = distributed.format_distributed(result)
    assert "ratio funkeras / hand-written" in text and "2 cpu devices" in text
    assert cli.build_parser().parse_args(["--distributed"]).distributed == 8
