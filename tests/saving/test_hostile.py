"""The hostile-artefact corpus: every file refused with the right error, safely.

The corpus (tests/saving/hostile.py) is generated here, written to a temporary
directory, and loaded by a worker subprocess (hostile_worker.py) under an audit
hook and a memory bound; see those files for what is checked.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import subprocess
import sys

import hostile
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MAX_RSS_GROWTH_KB = 600 * 1024
PWNED = "/tmp/funkeras_pwned"


@pytest.fixture(scope="module")
def valid():
    return hostile.valid_files()


@pytest.fixture(scope="module")
def corpus(valid):
    return hostile.generate(valid)


def _run_worker(index_path: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE, env.get("PYTHONPATH", "")])
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "hostile_worker.py"), index_path],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def report(corpus, valid, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    items = []
    for i, artefact in enumerate(corpus):
        path = root / f"a{i:05d}"
        path.write_bytes(artefact.data)
        items.append(
            {
                "name": artefact.name,
                "target": artefact.target,
                "file": str(path),
                "expect": artefact.expect,
                "match": artefact.match,
            }
        )
    valid_dir = root / "valid"
    valid_dir.mkdir()
    valid_paths = {}
    for target, key in (
        ("model", "model"),
        ("weights", "weights"),
        ("checkpoint", "checkpoint"),
        ("export", "export"),
        ("keras_model", "keras_model"),
        ("keras_weights", "keras_weights"),
    ):
        if key not in valid:  # Keras files need keras and h5py
            continue
        path = valid_dir / target
        path.write_bytes(valid[key])
        valid_paths[target] = str(path)
    index = root / "index.json"
    index.write_text(json.dumps({"items": items, "valid": valid_paths}))
    listing = sorted(os.listdir(root))
    out = _run_worker(str(index))
    out["listing_unchanged"] = sorted(os.listdir(root)) == listing
    return out


def test_corpus_is_large_and_covers_every_class(corpus):
    by_category = collections.Counter(a.name.split("/")[0] for a in corpus)
    crafted = sum(
        n for c, n in by_category.items() if c not in ("truncated", "bitflip")
    )
    assert crafted >= 120, by_category
    for category in (
        "code",
        "archive",
        "safetensors",
        "weights-file",
        "optimizer",
        "config",
        "checkpoint",
        "export",
        "truncated",
        "bitflip",
    ):
        assert by_category[category] > 0, category

    expected = collections.Counter(a.expect for a in corpus)
    for name in (
        "ArchiveError",
        "FormatVersionError",
        "ConfigError",
        "UnsafeConfigError",
        "TensorFileError",
        "WeightsMismatchError",
        "BudgetExceededError",
        "CheckpointMismatchError",
        "UnsafeExportError",
    ):
        assert expected[name] > 0, name


def test_keras_written_files_join_the_corpus(valid, corpus):
    if "keras_model" not in valid:
        pytest.skip("Keras-written files need keras (jax backend) and h5py")
    by_category = collections.Counter(a.name.split("/")[0] for a in corpus)
    for category in ("keras", "keras-weights", "keras-truncated", "keras-bitflip"):
        assert by_category[category] > 0, category
    assert by_category["keras"] >= 30, by_category


def test_generator_is_deterministic(valid, corpus):
    again = hostile.generate(valid)
    digest = lambda c: [(a.name, hashlib.sha256(a.data).hexdigest()) for a in c]  # noqa: E731
    assert digest(again) == digest(corpus)


def test_valid_files_load(report, valid):
    expected = {"model": "ok", "weights": "ok", "checkpoint": "ok", "export": "ok"}
    if "keras_model" in valid:
        expected |= {"keras_model": "ok", "keras_weights": "ok"}
    assert report["warm"] == expected


def test_every_artefact_is_refused_with_the_right_error(report):
    bad = [
        r
        for r in report["results"]
        if r["outcome"] in ("accepted",) or r["outcome"].startswith("wrong:")
    ]
    assert not bad, "\n".join(
        f"{r['name']}: {r['outcome']} (expected {r['expect']}): {r['message'][:300]}"
        for r in bad
    )


def test_messages_name_the_member_key_or_rule(report):
    bad = [r for r in report["results"] if not r["matched"]]
    assert not bad, "\n".join(
        f"{r['name']}: expected {r['match']!r} in: {r['message'][:300]}" for r in bad
    )


def test_no_side_effects_and_bounded_memory(report):
    violations = [
        (r["name"], r["violations"]) for r in report["results"] if r["violations"]
    ]
    assert not violations, violations[:10]
    assert report["listing_unchanged"]
    assert not os.path.exists(PWNED)
    growth = report["peak_rss_kb"] - report["base_rss_kb"]
    assert growth < MAX_RSS_GROWTH_KB, f"peak memory grew by {growth} KB"


def test_corpus_runs_in_seconds(report):
    slow = sorted(report["results"], key=lambda r: -r["seconds"])[:5]
    assert report["seconds"] < 60, slow
