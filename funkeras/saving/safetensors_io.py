"""Pytrees of arrays <-> safetensors bytes, validated before anything is allocated.

Nested dicts of arrays are stored flat under `"a/b/c"` key paths (a model's
weights as `"dense/kernel"`, a nested model's as `"encoder/dense/kernel"`), so
the files are readable by any safetensors tool. The byte format is handled by the
`safetensors` package's core `serialize`/`deserialize` (its Rust parser refuses
bad header lengths, out-of-range or overlapping offsets and truncation); the
dtype mapping is funkeras' own, so `bfloat16` round-trips through `ml_dtypes`.

Reading checks the header first: its length against a bound, then every name,
dtype and shape against what the caller expects, so a tiny file declaring a huge
tensor, an object dtype or a missing weight is refused before any tensor data is
copied. Every refusal is a `ModelLoadError` subclass naming the member, the key
and the rule.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import ml_dtypes
import numpy as np
import safetensors

from funkeras.errors import TensorFileError, WeightsMismatchError
from funkeras.saving.archive import parse_json

__all__ = [
    "SEPARATOR",
    "MAX_HEADER_BYTES",
    "flatten_dict",
    "unflatten_like",
    "tensors_to_bytes",
    "read_header",
    "compare_to_expected",
    "tensors_from_bytes",
    "DIGEST_KEY",
    "with_data_digest",
    "check_data_digest",
    "Mismatch",
]

SEPARATOR = "/"
MAX_HEADER_BYTES = 32 * 1024 * 1024
MAX_RANK = 32

# safetensors dtype code -> (NumPy dtype, name `safetensors.TensorSpec` accepts).
_CODES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype("<u1"),
    "I8": np.dtype("<i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "C64": np.dtype("<c8"),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}
_CODE_OF: dict[str, str] = {dt.name: code for code, dt in _CODES.items()}
_SPEC_NAME: dict[str, str] = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "U32": "uint32",
    "I32": "int32",
    "U64": "uint64",
    "I64": "int64",
    "F16": "float16",
    "BF16": "bfloat16",
    "F32": "float32",
    "F64": "float64",
    "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}


def dtype_code(dtype: Any) -> str:
    """The safetensors code of a dtype ("F32", "BF16"); TypeError if unsupported."""
    name = np.dtype(dtype).name
    if name not in _CODE_OF:
        raise TypeError(
            f"dtype {name} cannot be stored in safetensors; supported: "
            f"{sorted(_CODE_OF)}."
        )
    return _CODE_OF[name]


# ----------------------------------------------------------------------------
# Key paths.
# ----------------------------------------------------------------------------


def flatten_dict(tree: Mapping[str, Any], *, what: str = "tree") -> dict[str, Any]:
    """Flatten nested dicts into `{"a/b/c": leaf}` (empty dicts leave no key).

    Raises:
        TypeError: a key is not a non-empty string without '/', or a node is not
            a dict.
    """
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if not isinstance(key, str) or not key or SEPARATOR in key:
                    raise TypeError(
                        f"{what}: key {key!r} under {prefix or 'the root'!r} must be a "
                        f"non-empty str without {SEPARATOR!r}."
                    )
                walk(value, f"{prefix}{SEPARATOR}{key}" if prefix else key)
        elif prefix:
            flat[prefix] = node
        else:
            raise TypeError(
                f"{what}: expected a dict of arrays, got {type(node).__name__}."
            )

    walk(tree, "")
    return flat


def unflatten_like(flat: Mapping[str, Any], like: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild the nested-dict structure of `like`, taking leaves from `flat`."""

    def build(node: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            path = f"{prefix}{SEPARATOR}{key}" if prefix else key
            out[key] = build(value, path) if isinstance(value, Mapping) else flat[path]
        return out

    return build(like, "")


# ----------------------------------------------------------------------------
# Writing.
# ----------------------------------------------------------------------------


def _as_host_array(value: Any, key: str) -> np.ndarray:
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(
        value.dtype, jax.dtypes.prng_key
    ):
        raise TypeError(
            f"{key!r} is a PRNG key array; store `jax.random.key_data(key)` instead."
        )
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise TypeError(f"{key!r} has an object dtype; only numeric arrays are stored.")
    dtype_code(array.dtype)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return array if array.flags.c_contiguous else array.copy(order="C")


def tensors_to_bytes(
    tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None
) -> bytes:
    """Serialize `{key: array}` to safetensors bytes (deterministic for equal input).

    Raises:
        TypeError: a value is not a storable array (object dtype, PRNG key, an
            unsupported dtype).
    """
    arrays = {key: _as_host_array(value, key) for key, value in tensors.items()}
    specs = {
        key: safetensors.TensorSpec(
            dtype=_SPEC_NAME[dtype_code(a.dtype)],
            shape=list(a.shape),
            data_ptr=a.ctypes.data,
            data_len=a.nbytes,
        )
        for key, a in arrays.items()
    }
    data = safetensors.serialize(specs, metadata=dict(metadata) if metadata else None)
    del arrays  # kept alive until serialize returned: the specs hold raw pointers
    return bytes(data)


DIGEST_KEY = "sha256"
"""Metadata key of the SHA-256 (hex) of a file's data section (after the header)."""


def _data_section(data: bytes | memoryview) -> memoryview:
    length = int.from_bytes(bytes(data[:8]), "little")
    return memoryview(data)[8 + length :]


def with_data_digest(data: bytes) -> bytes:
    """Safetensors bytes with the SHA-256 of their data section in `__metadata__`.

    Only the header changes (tensor offsets are relative to the data section),
    so any safetensors reader reads the same tensors.

    Example:
        >>> import numpy as np
        >>> data = with_data_digest(tensors_to_bytes({"w": np.zeros(2, "float32")}))
        >>> _, meta = read_header(data, what="w")
        >>> check_data_digest(data, meta, what="w")
        True
    """
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    meta = dict(header.pop("__metadata__", None) or {})
    meta[DIGEST_KEY] = hashlib.sha256(_data_section(data)).hexdigest()
    encoded = json.dumps(
        {"__metadata__": meta, **header}, separators=(",", ":")
    ).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data section stays 8-byte aligned
    return len(encoded).to_bytes(8, "little") + encoded + data[8 + length :]


def check_data_digest(
    data: bytes | memoryview, metadata: Mapping[str, str], *, what: str
) -> bool:
    """Verify the data section against the recorded SHA-256.

    Returns True when it matches, False when the file records none.

    Raises:
        TensorFileError: the recorded digest is malformed or does not match (the
            data was changed after it was written).
    """
    want = metadata.get(DIGEST_KEY)
    if want is None:
        return False
    if len(want) != 64 or any(c not in "0123456789abcdef" for c in want):
        raise TensorFileError(f"{what}: the recorded SHA-256 is malformed.")
    got = hashlib.sha256(_data_section(data)).hexdigest()
    if got != want:
        raise TensorFileError(
            f"{what}: the weights' data does not match the SHA-256 recorded when "
            "it was written; the file is corrupted or was modified."
        )
    return True


# ----------------------------------------------------------------------------
# Reading.
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorInfo:
    """One header entry: dtype code, shape, and byte offsets in the data section."""

    code: str
    shape: tuple[int, ...]
    offsets: tuple[int, int]

    @property
    def dtype(self) -> np.dtype:
        return _CODES[self.code]


def _describe(code: str, shape: tuple[int, ...]) -> str:
    return f"{_CODES[code].name}{list(shape)}"


def read_header(
    data: bytes | memoryview,
    *,
    what: str,
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_tensors: int | None = None,
) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Parse and check a safetensors header: bounded length, known dtypes, sane shapes.

    Only the header is read (the data is not touched). Offsets are checked for
    range and size here and again by the safetensors parser in `tensors_from_bytes`.

    Returns:
        `({key: TensorInfo}, metadata)`.

    Raises:
        TensorFileError: the rule broken, naming `what` and the key.
    """
    if len(data) < 8:
        raise TensorFileError(
            f"{what}: {len(data)} bytes is shorter than the 8-byte header length."
        )
    length = int.from_bytes(bytes(data[:8]), "little")
    body = len(data) - 8
    if length == 0 or length > body or length > max_header_bytes:
        raise TensorFileError(
            f"{what}: header length {length} is out of range (file body {body} "
            f"bytes, limit {max_header_bytes})."
        )
    header = parse_json(
        data[8 : 8 + length],
        what=f"{what} header",
        max_bytes=max_header_bytes,
        error=TensorFileError,
        max_depth=3,
    )
    if not isinstance(header, dict):
        raise TensorFileError(f"{what}: the header must be a JSON object.")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TensorFileError(f"{what}: `__metadata__` must map strings to strings.")
    if max_tensors is not None and len(header) > max_tensors:
        raise TensorFileError(
            f"{what}: the header lists {len(header)} tensors; at most {max_tensors} "
            "are expected."
        )
    data_size = body - length
    infos: dict[str, TensorInfo] = {}
    for key, entry in header.items():
        where = f"{what}: tensor {key[:200]!r}"
        if not isinstance(entry, dict) or set(entry) != {
            "dtype",
            "shape",
            "data_offsets",
        }:
            raise TensorFileError(
                f"{where}: an entry must have exactly 'dtype', 'shape', 'data_offsets'."
            )
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(code, str) or code not in _CODES:
            raise TensorFileError(
                f"{where}: unknown dtype {str(code)[:40]!r}; allowed {sorted(_CODES)} "
                "(object arrays and pickles are never loaded)."
            )
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_RANK
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
        ):
            raise TensorFileError(
                f"{where}: shape must be a list of at most {MAX_RANK} ints."
            )
        if any(d < 0 for d in shape):
            raise TensorFileError(f"{where}: negative dimension in shape {shape}.")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise TensorFileError(f"{where}: data_offsets must be two ints.")
        begin, end = offsets
        nbytes = math.prod(shape) * _CODES[code].itemsize
        if not 0 <= begin <= end <= data_size:
            raise TensorFileError(
                f"{where}: data_offsets {offsets} fall outside the {data_size}-byte "
                "data section."
            )
        if end - begin != nbytes:
            raise TensorFileError(
                f"{where}: shape {shape} of {code} needs {nbytes} bytes but its "
                f"data_offsets span {end - begin}."
            )
        infos[key] = TensorInfo(code, tuple(shape), (begin, end))
    return infos, metadata


@dataclass
class Mismatch:
    """How stored tensors disagree with the expected ones."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    wrong: list[tuple[str, str, str]] = field(default_factory=list)  # key, want, got

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.wrong)

    @property
    def bad_keys(self) -> set[str]:
        return {*self.missing, *self.unexpected, *(k for k, _, _ in self.wrong)}

    def describe(self, limit: int = 20) -> str:
        lines = []
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                shown = ", ".join(repr(k[:200]) for k in keys[:limit])
                more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
                lines.append(f"  {label} in the file: {shown}{more}")
        for key, want, got in self.wrong[:limit]:
            lines.append(f"  {key[:200]!r}: expected {want}, the file has {got}")
        if len(self.wrong) > limit:
            lines.append(
                f"  ... and {len(self.wrong) - limit} more shape/dtype mismatches"
            )
        return "\n".join(lines)


def compare_to_expected(
    infos: Mapping[str, TensorInfo], expected: Mapping[str, Any]
) -> Mismatch:
    """Compare a header with `{key: ShapeDtypeStruct-like}`: names, shapes, dtypes."""
    result = Mismatch()
    result.missing = [k for k in expected if k not in infos]
    result.unexpected = [k for k in infos if k not in expected]
    for key, spec in expected.items():
        info = infos.get(key)
        if info is None:
            continue
        want_shape = tuple(int(d) for d in spec.shape)
        want_dtype = np.dtype(spec.dtype)
        if info.shape != want_shape or info.dtype != want_dtype:
            want = f"{want_dtype.name}{list(want_shape)}"
            result.wrong.append((key, want, _describe(info.code, info.shape)))
    return result


def tensors_from_bytes(
    data: bytes | memoryview,
    *,
    what: str,
    expected: Mapping[str, Any],
    skip: Iterable[str] = (),
    max_header_bytes: int = MAX_HEADER_BYTES,
) -> dict[str, np.ndarray]:
    """Read the tensors of a safetensors file after checking them against `expected`.

    Args:
        data: The file's bytes.
        what: The member or file, for messages.
        expected: `{key: spec}` (anything with `.shape` and `.dtype`) of the
            tensors the caller will accept.
        skip: Keys known to disagree that the caller chose to ignore
            (`skip_mismatch`); every other disagreement is refused.
        max_header_bytes: Bound on the header length.

    Returns:
        `{key: np.ndarray}` for every expected key not skipped.

    Raises:
        TensorFileError: the file is malformed.
        WeightsMismatchError: names, shapes or dtypes disagree with `expected`.
    """
    skip = set(skip)
    infos, _ = read_header(data, what=what, max_header_bytes=max_header_bytes)
    mismatch = compare_to_expected(infos, expected)
    if mismatch.bad_keys - skip:
        raise WeightsMismatchError(
            f"{what}: the stored tensors disagree with the model:\n"
            + mismatch.describe()
        )
    try:
        entries = safetensors.deserialize(bytes(data))
    except Exception as e:  # SafetensorError, and anything else the parser raises
        raise TensorFileError(
            f"{what}: refused by the safetensors parser: {e}"
        ) from None
    out: dict[str, np.ndarray] = {}
    for key, entry in entries:
        info = infos.get(key)
        if (
            info is None
            or entry["dtype"] != info.code
            or tuple(entry["shape"]) != info.shape
        ):
            raise TensorFileError(
                f"{what}: tensor {key[:200]!r} reads differently from its header."
            )
        if key in skip or key not in expected:
            continue
        array = np.frombuffer(entry["data"], dtype=info.dtype).reshape(info.shape)
        out[key] = array
    if len(entries) != len(infos):
        raise TensorFileError(f"{what}: the parser found a different set of tensors.")
    return out
