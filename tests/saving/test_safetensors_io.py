"""Safetensors bytes <-> arrays: exact round trips, own dtypes, checks before data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.numpy

from funkeras.errors import TensorFileError, WeightsMismatchError
from funkeras.saving.safetensors_io import (
    flatten_dict,
    read_header,
    tensors_from_bytes,
    tensors_to_bytes,
    unflatten_like,
)

DTYPES = [
    "bool",
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "int64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "float8_e4m3fn",
    "float8_e5m2",
]


def _spec(a):
    return jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype)


def _sample(dtype, shape=(2, 3)):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(*shape, np.dtype(dtype).itemsize), dtype=np.uint8)
    if dtype == "bool":
        return raw[..., 0] % 2 == 1
    return raw.view(np.dtype(dtype)).reshape(shape)  # every bit pattern, NaNs included


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_bit_for_bit(dtype):
    tensors = {
        "a/b": _sample(dtype),
        "scalar": _sample(dtype, ())[()] if dtype != "bool" else np.bool_(True),
        "empty": np.zeros((0, 4), dtype),
    }
    data = tensors_to_bytes(tensors)
    out = tensors_from_bytes(
        data, what="w", expected={k: _spec(v) for k, v in tensors.items()}
    )
    for key, value in tensors.items():
        got = out[key]
        assert got.dtype == np.asarray(value).dtype and got.shape == np.shape(value)
        assert got.tobytes() == np.asarray(value).tobytes()


def test_bfloat16_from_jax_and_the_written_dtype_code():
    x = jnp.arange(5, dtype=jnp.bfloat16) / 3
    data = tensors_to_bytes({"x": x})
    ((name, entry),) = safetensors.deserialize(data)
    assert name == "x" and entry["dtype"] == "BF16" and entry["shape"] == [5]
    out = tensors_from_bytes(data, what="w", expected={"x": _spec(x)})["x"]
    assert out.dtype == ml_dtypes.bfloat16
    assert out.tobytes() == np.asarray(x).tobytes()


def test_files_are_readable_by_the_safetensors_tools(tmp_path):
    tensors = {
        "dense/kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
        "dense/bias": np.ones(3, np.int32),
    }
    path = tmp_path / "w.safetensors"
    path.write_bytes(tensors_to_bytes(tensors, {"format": "funkeras"}))
    loaded = safetensors.numpy.load_file(str(path))
    assert sorted(loaded) == sorted(tensors)
    for key, value in tensors.items():
        np.testing.assert_array_equal(loaded[key], value)
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == {"format": "funkeras"}


def test_serialization_is_deterministic_and_non_contiguous_input_is_fine():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert tensors_to_bytes({"a": a.T, "b": a}) == tensors_to_bytes(
        {"a": a.T.copy(), "b": a}
    )


@pytest.mark.parametrize(
    "value, fragment",
    [
        (jax.random.key(0), "PRNG key"),
        (np.array([object()]), "object"),
        (np.zeros(2, np.dtype("U3")), "cannot be stored"),
    ],
)
def test_unstorable_values_are_refused(value, fragment):
    with pytest.raises(TypeError, match=fragment):
        tensors_to_bytes({"x": value})


def test_flatten_and_unflatten_nested_dicts():
    tree = {
        "dense": {"kernel": 1, "bias": 2},
        "flatten": {},
        "encoder": {"dense": {"kernel": 3}},
    }
    flat = flatten_dict(tree)
    assert flat == {"dense/kernel": 1, "dense/bias": 2, "encoder/dense/kernel": 3}
    assert unflatten_like(flat, tree) == tree
    with pytest.raises(TypeError, match="without '/'"):
        flatten_dict({"a/b": 1})
    with pytest.raises(TypeError, match="non-empty str"):
        flatten_dict({3: 1})


def test_a_mismatch_report_lists_every_disagreement():
    data = tensors_to_bytes(
        {
            "dense/kernel": np.zeros((3, 4), np.float32),
            "dense/bias": np.zeros(4, np.float16),
            "extra/w": np.zeros(1, np.float32),
        }
    )
    expected = {
        "dense/kernel": jax.ShapeDtypeStruct((3, 5), jnp.float32),
        "dense/bias": jax.ShapeDtypeStruct((4,), jnp.float32),
        "dense_1/kernel": jax.ShapeDtypeStruct((5, 1), jnp.float32),
    }
    with pytest.raises(WeightsMismatchError) as info:
        tensors_from_bytes(data, what="w.safetensors", expected=expected)
    message = str(info.value)
    assert "w.safetensors" in message
    assert "missing in the file: 'dense_1/kernel'" in message
    assert "unexpected in the file: 'extra/w'" in message
    assert (
        "'dense/kernel': expected float32[3, 5], the file has float32[3, 4]" in message
    )
    assert "'dense/bias': expected float32[4], the file has float16[4]" in message
    skipped = tensors_from_bytes(
        data,
        what="w",
        expected=expected,
        skip={"dense/kernel", "dense/bias", "dense_1/kernel", "extra/w"},
    )
    assert skipped == {}


def test_the_header_is_checked_before_the_data_is_read():
    data = tensors_to_bytes({"x": np.zeros(4, np.float32)})
    infos, metadata = read_header(data, what="w")
    assert infos["x"].shape == (4,) and infos["x"].code == "F32" and metadata == {}
    with pytest.raises(TensorFileError, match="header length"):
        read_header(data[:8] + b"{}", what="w")
    with pytest.raises(TensorFileError, match="header length .* limit 10"):
        read_header(data, what="w", max_header_bytes=10)
    with pytest.raises(TensorFileError, match="data_offsets"):
        read_header(data[:-4], what="w")
