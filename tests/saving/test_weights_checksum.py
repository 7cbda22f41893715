"""Weights files carry the SHA-256 of their data; a changed byte is refused."""

import hashlib
import json
import os
import pathlib
import warnings

import numpy as np
import pytest
import safetensors.numpy

import funkeras as fk
from funkeras.saving.safetensors_io import (
    DIGEST_KEY,
    check_data_digest,
    read_header,
    tensors_to_bytes,
    with_data_digest,
)


def model(seed=0):
    return fk.Sequential([fk.Input((8,)), fk.layers.Dense(4)], seed=seed)


def header_and_data(raw):
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def test_the_digest_is_the_sha256_of_the_data_section(tmp_path):
    path = str(tmp_path / "w.safetensors")
    model().save_weights(path)
    raw = pathlib.Path(path).read_bytes()
    header, data = header_and_data(raw)
    assert header["__metadata__"][DIGEST_KEY] == hashlib.sha256(data).hexdigest()
    assert header["__metadata__"]["format"] == "funkeras"
    assert (8 + len(raw) - len(data) - 8) % 8 == 0  # data stays 8-byte aligned
    # Any safetensors reader reads the same tensors.
    loaded = safetensors.numpy.load_file(path)
    np.testing.assert_array_equal(loaded["dense/kernel"], model().get_weights()[0])


def test_every_single_byte_flip_in_the_data_is_refused(tmp_path):
    path = str(tmp_path / "w.safetensors")
    model().save_weights(path)
    raw = pathlib.Path(path).read_bytes()
    _, data = header_and_data(raw)
    start = len(raw) - len(data)
    target = model(seed=1)
    before = [np.array(w) for w in target.get_weights()]
    positions = np.linspace(start, len(raw) - 1, 21).astype(int)
    for i in positions:
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        with open(path, "wb") as f:
            f.write(flipped)
        with pytest.raises(fk.errors.ModelLoadError, match="SHA-256"):
            target.load_weights(path)
    for a, b in zip(before, target.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with open(path, "wb") as f:
        f.write(raw)
    target.load_weights(path)
    for a, b in zip(model().get_weights(), target.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_file_without_a_digest_loads_with_a_note(tmp_path):
    path = str(tmp_path / "plain.safetensors")
    weights = model().get_weights()
    safetensors.numpy.save_file(
        {"dense/kernel": weights[0], "dense/bias": weights[1]}, path
    )
    target = model(seed=1)
    with pytest.warns(UserWarning, match="records no SHA-256"):
        target.load_weights(path)
    np.testing.assert_array_equal(target.get_weights()[0], weights[0])


def test_a_model_file_is_checked_by_its_own_hashes_without_a_note(tmp_path):
    path = os.path.join(tmp_path, "m.fkz")
    model().save(path)
    target = model(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        target.load_weights(path)


def test_with_data_digest_and_a_malformed_digest():
    data = with_data_digest(tensors_to_bytes({"w": np.arange(3, dtype="float32")}))
    _, meta = read_header(data, what="w")
    assert check_data_digest(data, meta, what="w") is True
    assert check_data_digest(data, {}, what="w") is False
    with pytest.raises(fk.errors.ModelLoadError, match="malformed"):
        check_data_digest(data, {DIGEST_KEY: "zz"}, what="w")
