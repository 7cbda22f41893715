"""The canonical archive: deterministic bytes, atomic writes, strict reading."""

from __future__ import annotations

import io
import json
import os
import stat
import time
import zipfile

import numpy as np
import pytest

from funkeras.errors import (
    ArchiveError,
    BudgetExceededError,
    ConfigError,
    FormatVersionError,
    NotSerializableError,
)
from funkeras.saving import archive

MEMBERS = [("config.json", b'{"a": 1}'), ("weights.safetensors", bytes(range(200)))]


def _bytes(members=MEMBERS, kind="model"):
    return b"".join(bytes(c) for c in archive.build_archive(kind, members))


def _read(data, **kw):
    return archive.read_archive(
        data,
        kind=kw.pop("kind", "model"),
        required={"config.json", "weights.safetensors"},
        **kw,
    )


def test_same_members_give_identical_bytes_readable_by_zipfile():
    data = _bytes()
    assert data == _bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        infos = z.infolist()
        assert [i.filename for i in infos] == [
            "manifest.json",
            "config.json",
            "weights.safetensors",
        ]
        for i in infos:
            assert i.compress_type == zipfile.ZIP_STORED
            assert i.date_time == (1980, 1, 1, 0, 0, 0)
            assert stat.S_ISREG(i.external_attr >> 16)
        manifest = json.loads(z.read("manifest.json"))
    assert manifest["format_version"] == archive.FORMAT_VERSION
    assert [m["name"] for m in manifest["members"]] == [
        "config.json",
        "weights.safetensors",
    ]
    assert manifest["members"][1]["size"] == 200


def test_read_returns_the_members():
    members = _read(_bytes())
    assert {k: bytes(v) for k, v in members.items()} == dict(MEMBERS)


def test_zip64_fields_round_trip(monkeypatch):
    monkeypatch.setattr(archive, "_ZIP64_LIMIT", 100)  # every size and offset above it
    data = _bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.read("weights.safetensors") == MEMBERS[1][1]
        assert z.testzip() is None
    assert bytes(_read(data)["weights.safetensors"]) == MEMBERS[1][1]


def test_optional_members_and_kind():
    data = _bytes([*MEMBERS, ("train_state.json", b"{}")])
    with pytest.raises(ArchiveError, match="unexpected member 'train_state.json'"):
        _read(data)
    assert "train_state.json" in _read(data, optional={"train_state.json"})
    with pytest.raises(ArchiveError, match="expected a 'checkpoint'"):
        _read(_bytes(), kind="checkpoint")


@pytest.mark.parametrize("cut", [0, 1, 10, 100, -1, -22, -23])
def test_truncation_is_refused(cut):
    with pytest.raises(ArchiveError):
        _read(_bytes()[:cut])


def test_every_single_bit_flip_in_a_small_archive_is_refused():
    data = _bytes([("config.json", b"{}"), ("weights.safetensors", b"xy")])
    for pos in range(len(data)):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        with pytest.raises(ArchiveError):
            _read(bytes(flipped))


def test_a_future_manifest_version_is_refused(monkeypatch):
    monkeypatch.setattr(archive, "FORMAT_VERSION", 2)
    data = _bytes()
    monkeypatch.setattr(archive, "FORMAT_VERSION", 1)
    with pytest.raises(FormatVersionError, match="upgrade funkeras"):
        _read(data)


@pytest.mark.parametrize("name", ["../x", "a/b", "CONFIG.json", "manifest.json", ""])
def test_the_writer_refuses_bad_member_names(name):
    with pytest.raises(ValueError):
        archive.build_archive("model", [(name, b"")])


# -- atomic writes ---------------------------------------------------------------------


def _listing(path):
    return sorted(os.listdir(path))


def test_atomic_write_replaces_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "m.fkz"
    archive.atomic_write(target, [b"old"])
    archive.atomic_write(target, [b"new ", memoryview(b"data")])
    assert target.read_bytes() == b"new data"
    assert _listing(tmp_path) == ["m.fkz"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def _failing_chunks():
    yield b"partial"
    raise RuntimeError("disk on fire")


@pytest.mark.parametrize("stage", ["write", "fsync", "replace"])
def test_a_failure_at_any_stage_keeps_the_previous_file(tmp_path, monkeypatch, stage):
    target = tmp_path / "m.fkz"
    archive.atomic_write(target, [b"previous"])
    chunks = [b"next"]
    if stage == "write":
        chunks = _failing_chunks()
    else:

        def fail(*args):
            raise OSError(f"injected {stage} failure")

        monkeypatch.setattr(archive.os, stage, fail)
    with pytest.raises((OSError, RuntimeError)):
        archive.atomic_write(target, chunks)
    monkeypatch.undo()
    assert target.read_bytes() == b"previous"
    assert _listing(tmp_path) == ["m.fkz"]


def test_atomic_write_refuses_a_directory_path(tmp_path):
    with pytest.raises(ValueError):
        archive.atomic_write(str(tmp_path) + os.sep, [b""])


# -- reading files ---------------------------------------------------------------------


def test_read_file_refuses_non_regular_files_and_oversized_ones(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # with no writer: reading must neither block nor be attempted
    with pytest.raises(ArchiveError, match="not a regular file"):
        archive.read_file(fifo, max_bytes=10, what="f")
    with pytest.raises(ArchiveError, match="not a regular file"):
        archive.read_file(tmp_path, max_bytes=10, what="f")
    big = tmp_path / "big"
    big.write_bytes(bytes(11))
    with pytest.raises(BudgetExceededError, match="over the limit of 10 bytes"):
        archive.read_file(big, max_bytes=10, what="f")
    assert archive.read_file(big, max_bytes=11, what="f") == bytes(11)
    with pytest.raises(FileNotFoundError):
        archive.read_file(tmp_path / "missing", max_bytes=10, what="f")


# -- JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragment",
    [
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": Infinity}', "Infinity"),
        (b'{"a": 1e400}', "overflows"),
        (b"\xff", "utf-8"),
        (b"[" * 101 + b"]" * 101, "nested 101 levels"),
        (b"{", "not valid JSON"),
    ],
)
def test_parse_json_is_strict(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        archive.parse_json(text, what="x.json", max_bytes=1000)


def test_parse_json_bounds_size_and_allows_nonfinite_on_request():
    with pytest.raises(BudgetExceededError):
        archive.parse_json(b"[1, 2]", what="x.json", max_bytes=3)
    deep = archive.parse_json(b"[" * 100 + b"]" * 100, what="x", max_bytes=1000)
    for _ in range(99):  # exactly MAX_JSON_DEPTH levels are allowed
        (deep,) = deep
    assert deep == []
    value = archive.parse_json(
        b'{"best": Infinity, "v": NaN}', what="x", max_bytes=100, allow_nonfinite=True
    )
    assert value["best"] == float("inf") and np.isnan(value["v"])
    # Brackets inside strings do not count towards the depth.
    assert archive.parse_json(b'["' + b"[" * 500 + b'"]', what="x", max_bytes=1000) == [
        "[" * 500
    ]


def test_check_json_data_names_the_path_of_a_callable():
    with pytest.raises(
        NotSerializableError, match=r"config\.layers\[1\]\.activation"
    ) as info:
        archive.check_json_data(
            {"layers": [{"units": 1}, {"activation": lambda x: x}]}, "config"
        )
    assert "<lambda>" in str(info.value) and "never code" in str(info.value)


def test_check_json_data_normalizes_and_refuses_non_data():
    value = archive.check_json_data(
        {"t": (1, 2), "n": np.float32(0.5), "i": np.int64(3)}, "c"
    )
    assert value == {"t": [1, 2], "n": 0.5, "i": 3}
    assert type(value["i"]) is int
    with pytest.raises(NotSerializableError, match="key 3"):
        archive.check_json_data({3: 1}, "c")
    with pytest.raises(NotSerializableError, match="finite"):
        archive.check_json_data({"x": float("nan")}, "c")
    with pytest.raises(NotSerializableError, match="ndarray"):
        archive.check_json_data({"x": np.zeros(2)}, "c")
    assert (
        archive.check_json_data({"x": float("inf")}, "c", allow_nonfinite=True)["x"] > 0
    )


def test_saving_into_a_missing_folder_names_the_folder(tmp_path):
    target = tmp_path / "missing" / "model.fkz"
    with pytest.raises(FileNotFoundError, match=r"folder .*missing.* does not exist"):
        archive.atomic_write(target, [b"data"])
    assert not (tmp_path / "missing").exists()


def test_temporaries_of_killed_writes_are_removed_on_the_next_save(tmp_path):
    target = tmp_path / "model.fkz"
    stale = tmp_path / ".model.fkz.0123456789ab.tmp"
    fresh = tmp_path / ".model.fkz.ba9876543210.tmp"  # a write in progress elsewhere
    other = tmp_path / ".other.fkz.0123456789ab.tmp"  # another file's temporary
    for path in (stale, fresh, other):
        path.write_bytes(b"half written")
    old = time.time() - 2 * archive.STALE_TEMPORARY_SECONDS
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    archive.atomic_write(target, [b"data"])
    assert target.read_bytes() == b"data"
    assert not stale.exists()
    assert fresh.exists() and other.exists()
