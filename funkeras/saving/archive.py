"""The funkeras archive: a canonical zip of data members, written atomically.

Every funkeras file (model, checkpoint, exported program) is a zip whose members
are stored, never compressed, in a fixed order with fixed timestamps, led by
`manifest.json`, which lists every other member with its size and SHA-256::

    {"format": "funkeras", "kind": "model", "format_version": 1,
     "members": [{"name": "config.json", "size": 812, "sha256": "..."}, ...]}

Writing the same members twice gives the same bytes. The reader accepts only that
canonical form: besides the manifest's checks it rebuilds every zip header the
writer would have written and compares them with the file, so a byte changed
anywhere (data, header, timestamp, data before or after the archive) is refused
with an `ArchiveError` naming the member and the rule. Nothing in a member is
decompressed, followed, or interpreted as code.

Writes are atomic: the bytes go to a temporary file in the target's directory,
which is flushed, `fsync`-ed and moved over the target with `os.replace`, and
the directory is `fsync`-ed; a process killed at any point leaves either the
previous file or the new one.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import secrets
import stat
import struct
import time
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from funkeras._validation import short_message
from funkeras.errors import (
    ArchiveError,
    BudgetExceededError,
    ConfigError,
    FormatVersionError,
    ModelLoadError,
    NotSerializableError,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "MAX_JSON_DEPTH",
    "atomic_write",
    "STALE_TEMPORARY_SECONDS",
    "temporary_files",
    "remove_stale_temporaries",
    "build_archive",
    "write_archive",
    "read_file",
    "read_archive",
    "parse_json",
    "dump_json",
    "check_json_data",
    "check_member_name",
    "check_member_kind",
]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 * 1024
MAX_MEMBERS = 16
MAX_JSON_DEPTH = 100
_MEMBER_NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9]+)?")

# Zip constants (PKWARE APPNOTE 6.3). Members are stored (method 0), carry no
# extra field below the Zip64 limit, and all share one fixed DOS timestamp
# (1980-01-01 00:00:00) and Unix regular-file mode 0644.
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_SIG_LOCAL, _SIG_CENTRAL, _SIG_END = 0x04034B50, 0x02014B50, 0x06054B50
_SIG_END64, _SIG_LOCATOR64 = 0x06064B50, 0x07064B50
_DOS_TIME, _DOS_DATE = 0, (1 << 5) | 1
_MADE_BY = (3 << 8) | 20  # Unix, spec 2.0
_EXTERNAL_ATTR = (stat.S_IFREG | 0o644) << 16
# What opens each kind of funkeras archive (named when the wrong loader is used).
_LOADERS = {
    "model": "`fk.load_model`",
    "checkpoint": "`fk.saving.restore_checkpoint`",
    "export": "`fk.saving.load_exported`",
}
_ZIP64_LIMIT = 0xFFFFFFFF  # sizes and offsets at or above this use Zip64 fields


# ----------------------------------------------------------------------------
# JSON members: canonical dumps, bounded parses.
# ----------------------------------------------------------------------------


def dump_json(
    obj: Any, *, sort_keys: bool = False, allow_nonfinite: bool = False
) -> bytes:
    """Serialize JSON data deterministically (ASCII, stable layout).

    `NaN`/`Infinity` are written (as Python's `json` spells them) only when
    `allow_nonfinite` is set: checkpoint metadata needs them (an EarlyStopping
    best value starts at infinity); configs and manifests never do.
    """
    return json.dumps(
        obj, sort_keys=sort_keys, indent=1, ensure_ascii=True, allow_nan=allow_nonfinite
    ).encode("ascii")


def check_json_data(obj: Any, where: str, *, allow_nonfinite: bool = False) -> Any:
    """Return `obj` as plain JSON data, or say exactly which part cannot be saved.

    Accepts dicts with string keys, lists, tuples (stored as lists), strings,
    bools, ints, floats, `None` and NumPy scalars (stored as Python numbers).

    Raises:
        NotSerializableError: a Python function or other object (named with its
            path, e.g. `config.layers[1].config.activation`), a non-string key,
            or a non-finite float where none is allowed.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.generic) and not isinstance(obj, np.object_):
        obj = obj.item()
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if not allow_nonfinite and not math.isfinite(obj):
            raise NotSerializableError(
                f"{where} is {obj!r}; a saved config holds finite numbers only."
            )
        return float(obj)
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise NotSerializableError(
                    f"{where} has the key {key!r} ({type(key).__name__}); JSON keys "
                    "are strings."
                )
            out[key] = check_json_data(
                value, f"{where}.{key}", allow_nonfinite=allow_nonfinite
            )
        return out
    if isinstance(obj, list | tuple):
        return [
            check_json_data(v, f"{where}[{i}]", allow_nonfinite=allow_nonfinite)
            for i, v in enumerate(obj)
        ]
    if callable(obj):
        label = getattr(obj, "__qualname__", None) or type(obj).__name__
        raise NotSerializableError(
            f"{where} is the Python callable {label!r}, which cannot be saved: a "
            "funkeras file holds data, never code. Use a built-in name (for example "
            'activation="relu") or a layer class registered with '
            "@fk.saving.register_serializable()."
        )
    raise NotSerializableError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}, which is not "
        "JSON data (dict, list, str, number, bool or None) and cannot be saved."
    )


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _json_depth(data: bytes) -> int:
    brackets = _JSON_STRING.sub(b'""', data).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for b in brackets:
        depth += 1 if b in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_json(
    data: bytes | memoryview,
    *,
    what: str,
    max_bytes: int,
    error: type[ModelLoadError] = ConfigError,
    max_depth: int = MAX_JSON_DEPTH,
    allow_nonfinite: bool = False,
) -> Any:
    """Parse a JSON member strictly, bounding its size and nesting depth first.

    Refuses invalid UTF-8, duplicate object keys, `NaN`/`Infinity` and floats
    that overflow (`NaN`/`Infinity` are accepted with `allow_nonfinite`, for
    checkpoint metadata); `what` names the member in messages.

    Raises:
        BudgetExceededError: more than `max_bytes` bytes.
        ModelLoadError: (`error`) not JSON, or nested deeper than `max_depth`.
    """
    if len(data) > max_bytes:
        raise BudgetExceededError(
            f"{what}: {len(data)} bytes exceeds the limit of {max_bytes} bytes for "
            "this member."
        )
    raw = bytes(data)
    depth = _json_depth(raw)
    if depth > max_depth:
        raise error(
            f"{what}: JSON nested {depth} levels deep; at most {max_depth} are allowed."
        )

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"duplicate key {key!r}")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        if allow_nonfinite:
            return float(name)
        raise ValueError(f"{name} is not allowed")

    def number(text: str) -> float:
        value = float(text)
        if math.isinf(value):
            raise ValueError(f"number {text[:40]!r} overflows a float")
        return value

    try:
        text = raw.decode("utf-8")
        return json.loads(
            text, object_pairs_hook=pairs, parse_constant=constant, parse_float=number
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise error(f"{what}: not valid JSON ({short_message(e)}).") from None


# ----------------------------------------------------------------------------
# Writing.
# ----------------------------------------------------------------------------


def _headers(
    names: Sequence[str], sizes: Sequence[int], crcs: Sequence[int]
) -> tuple[list[bytes], bytes]:
    """The canonical local headers and the central directory + end records."""
    local: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    for name, size, crc in zip(names, sizes, crcs, strict=True):
        encoded = name.encode("ascii")
        big_size = size >= _ZIP64_LIMIT
        big_offset = offset >= _ZIP64_LIMIT
        version = 45 if big_size or big_offset else 20
        size32 = 0xFFFFFFFF if big_size else size
        extra = struct.pack("<HHQQ", 1, 16, size, size) if big_size else b""
        local.append(
            _LOCAL.pack(
                _SIG_LOCAL,
                version,
                0,
                0,
                _DOS_TIME,
                _DOS_DATE,
                crc,
                size32,
                size32,
                len(encoded),
                len(extra),
            )
            + encoded
            + extra
        )
        fields = (struct.pack("<QQ", size, size) if big_size else b"") + (
            struct.pack("<Q", offset) if big_offset else b""
        )
        cextra = struct.pack("<HH", 1, len(fields)) + fields if fields else b""
        central.append(
            _CENTRAL.pack(
                _SIG_CENTRAL,
                _MADE_BY,
                version,
                0,
                0,
                _DOS_TIME,
                _DOS_DATE,
                crc,
                size32,
                size32,
                len(encoded),
                len(cextra),
                0,
                0,
                0,
                _EXTERNAL_ATTR,
                0xFFFFFFFF if big_offset else offset,
            )
            + encoded
            + cextra
        )
        offset += len(local[-1]) + size
    directory = b"".join(central)
    count = len(names)
    tail = b""
    if offset >= _ZIP64_LIMIT or len(directory) >= _ZIP64_LIMIT or count >= 0xFFFF:
        end64_at = offset + len(directory)
        tail = _END64.pack(
            _SIG_END64, 44, _MADE_BY, 45, 0, 0, count, count, len(directory), offset
        ) + _LOCATOR64.pack(_SIG_LOCATOR64, 0, end64_at, 1)
        end = _END.pack(_SIG_END, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        end = _END.pack(_SIG_END, 0, 0, count, count, len(directory), offset, 0)
    return local, directory + tail + end


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def build_archive(
    kind: str, members: Sequence[tuple[str, bytes | memoryview]]
) -> list[bytes | memoryview]:
    """The canonical archive bytes for `members`, as chunks (manifest first).

    Args:
        kind: What the archive holds ("model", "checkpoint", "export").
        members: `(name, data)` pairs in the order they are stored.
    """
    names = [name for name, _ in members]
    if len(set(names)) != len(names) or MANIFEST in names:
        raise ValueError(
            f"archive members must be unique and not {MANIFEST!r}: {names}"
        )
    for name in names:
        if not _MEMBER_NAME.fullmatch(name):
            raise ValueError(f"invalid archive member name {name!r}")
    manifest = dump_json(
        {
            "format": "funkeras",
            "kind": kind,
            "format_version": FORMAT_VERSION,
            "members": [
                {"name": name, "size": len(data), "sha256": _sha256(data)}
                for name, data in members
            ],
        }
    )
    all_members = [(MANIFEST, manifest), *members]
    local, trailer = _headers(
        [n for n, _ in all_members],
        [len(d) for _, d in all_members],
        [zlib.crc32(d) for _, d in all_members],
    )
    chunks: list[bytes | memoryview] = []
    for header, (_, data) in zip(local, all_members, strict=True):
        chunks += [header, data]
    chunks.append(trailer)
    return chunks


def _fsync_directory(directory: str) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# A temporary file untouched this long belongs to a write that was killed: a
# live write keeps touching its file as the chunks go out.
STALE_TEMPORARY_SECONDS = 600.0


def temporary_files(directory: str, base: str) -> list[str]:
    """The temporary files `atomic_write` names for `base` in `directory`."""
    prefix, out = f".{base}.", []
    try:
        names = os.listdir(directory)
    except OSError:
        return out
    for name in names:
        middle = name[len(prefix) : -len(".tmp")]
        if (
            name.startswith(prefix)
            and name.endswith(".tmp")
            and len(middle) == 12
            and all(c in "0123456789abcdef" for c in middle)
        ):
            out.append(os.path.join(directory, name))
    return out


def remove_stale_temporaries(
    directory: str, base: str, *, older_than: float = STALE_TEMPORARY_SECONDS
) -> int:
    """Delete the temporary files of killed writes of `base`; return how many.

    Only files of `atomic_write`'s own naming (`.<base>.<12 hex>.tmp`) not
    modified for `older_than` seconds are removed, so a write in progress in
    another process is left alone.
    """
    removed, now = 0, time.time()
    for tmp in temporary_files(directory, base):
        try:
            if now - os.stat(tmp).st_mtime >= older_than:
                os.unlink(tmp)
                removed += 1
        except OSError:
            pass  # gone already, or not ours to remove
    return removed


def atomic_write(
    path: str | os.PathLike[str], chunks: Iterable[bytes | memoryview]
) -> None:
    """Write `chunks` to `path` so that a crash leaves the old file or the new one.

    The data goes to a fresh temporary file beside `path` (same directory, hence
    same file system), which is flushed and `fsync`-ed, then renamed over `path`
    with `os.replace` (atomic on POSIX and Windows); the directory is `fsync`-ed
    so the rename itself survives a power loss. On any error the temporary file
    is removed and `path` is untouched. Temporary files left by killed writes of
    the same name (untouched for `STALE_TEMPORARY_SECONDS`) are removed first;
    a missing folder is named in a `FileNotFoundError`.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    if not base:
        raise ValueError(f"atomic_write: {path!r} names a directory, not a file.")
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"Cannot save {path!r}: the folder {directory!r} does not exist. "
            "Create it first (os.makedirs)."
        )
    remove_stale_temporaries(directory, base)
    tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def write_archive(
    path: str | os.PathLike[str],
    kind: str,
    members: Sequence[tuple[str, bytes | memoryview]],
) -> None:
    """Write a canonical archive of `members` to `path` atomically."""
    atomic_write(path, build_archive(kind, members))


# ----------------------------------------------------------------------------
# Reading.
# ----------------------------------------------------------------------------


def read_file(path: str | os.PathLike[str], *, max_bytes: int, what: str) -> bytes:
    """Read a whole regular file, refusing devices, FIFOs and files over `max_bytes`.

    Raises:
        FileNotFoundError: (and other `OSError`s) from the file system.
        BudgetExceededError: the file is larger than `max_bytes`.
        ArchiveError: `path` is not a regular file.
    """
    # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(os.fspath(path), flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArchiveError(f"{what}: {os.fspath(path)!r} is not a regular file.")
        if info.st_size > max_bytes:
            raise BudgetExceededError(
                f"{what}: the file is {info.st_size} bytes, over the limit of "
                f"{max_bytes} bytes set by the caller."
            )
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        data = f.read(info.st_size + 1)
    if len(data) != info.st_size:
        raise ArchiveError(f"{what}: the file changed size while it was read.")
    return data


def _zip_listing(data: bytes, what: str) -> list[zipfile.ZipInfo]:
    if data[:4] != b"PK\x03\x04":
        found = data.find(b"PK\x03\x04", 0, 1 << 20)
        if found > 0:
            raise ArchiveError(
                f"{what}: {found} bytes of data precede the zip archive."
            )
        raise ArchiveError(f"{what}: not a funkeras archive (no zip header at byte 0).")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.infolist()
    except Exception as e:  # zipfile raises many types on hostile input
        raise ArchiveError(
            f"{what}: not a readable zip archive ({short_message(e)})."
        ) from None


def check_member_name(name: str, what: str) -> None:
    """Refuse a zip member name that is absolute or climbs out (path traversal).

    The one name rule of every zip funkeras reads (its own archives and Keras'
    `.keras` files).

    Raises:
        ArchiveError: the name starts with `/`, `\\` or a drive letter, or has a
            `..` part.

    Example:
        >>> check_member_name("config.json", "m.keras")
        >>> check_member_name("../evil.py", "m.keras")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        funkeras.errors.ArchiveError: m.keras: member '../evil.py' has an absolute...
    """
    if (
        not name
        or name.startswith(("/", "\\"))
        or re.match(r"[A-Za-z]:", name)
        or ".." in re.split(r"[/\\]", name)
        or "\0" in name
    ):
        raise ArchiveError(
            f"{what}: member {name!r} has an absolute or parent-relative path "
            "(path traversal); members are plain names."
        )


def check_member_kind(info: zipfile.ZipInfo, what: str) -> None:
    """Refuse a zip member that is a link or a special file, or is encrypted.

    A member's Unix mode (the high 16 bits of its external attributes) may carry
    permission bits only (`0o600`, as Keras and Python's `zipfile.writestr`
    write them) or a file type; a file type other than a regular file
    (symbolic link, directory, device, FIFO) is refused.

    Raises:
        ArchiveError: a link, special file or encrypted member.
    """
    name = info.filename
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind not in (0, stat.S_IFREG):
        label = (
            "a symbolic link, not a regular file"
            if stat.S_ISLNK(mode)
            else "not a regular file"
        )
        raise ArchiveError(
            f"{what}: member {name!r} is {label} (mode {mode:#o}: links and "
            "special files are refused)."
        )
    if info.flag_bits & 0x1:
        raise ArchiveError(f"{what}: member {name!r} is encrypted.")


def _check_listing(
    infos: list[zipfile.ZipInfo], what: str, allowed: set[str]
) -> list[str]:
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(
            f"{what}: the archive has {len(infos)} members; at most {MAX_MEMBERS}."
        )
    names: list[str] = []
    for info in infos:
        name = info.filename
        check_member_name(name, what)
        if name in names:
            raise ArchiveError(f"{what}: member {name!r} appears twice in the archive.")
        check_member_kind(info, what)
        if info.compress_type != zipfile.ZIP_STORED:
            raise ArchiveError(
                f"{what}: member {name!r} is compressed (method {info.compress_type});"
                " members must be stored, which also rules out zip bombs."
            )
        if info.file_size != info.compress_size:
            raise ArchiveError(
                f"{what}: member {name!r} declares {info.compress_size} stored bytes "
                f"but {info.file_size} bytes uncompressed."
            )
        if name not in allowed and name != MANIFEST:
            raise ArchiveError(
                f"{what}: unexpected member {name!r}; this archive may hold only "
                f"{sorted({MANIFEST, *allowed})}."
            )
        names.append(name)
    if not names or names[0] != MANIFEST:
        raise ArchiveError(
            f"{what}: the first member must be {MANIFEST!r}, got {names[:1]}."
        )
    return names


def _check_manifest(manifest: Any, what: str, kind: str) -> list[dict[str, Any]]:
    where = f"{what}: {MANIFEST}"
    if not isinstance(manifest, dict):
        raise ArchiveError(f"{where} must be a JSON object.")
    keys = {"format", "kind", "format_version", "members"}
    if set(manifest) != keys:
        raise ArchiveError(
            f"{where} must have exactly the keys {sorted(keys)}, got "
            f"{sorted(manifest)}."
        )
    if manifest["format"] != "funkeras":
        raise ArchiveError(
            f"{where}: `format` must be 'funkeras', got {manifest['format']!r}."
        )
    version = manifest["format_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ArchiveError(
            f"{where}: `format_version` must be an int, got {version!r}."
        )
    if version > FORMAT_VERSION or version < 1:
        raise FormatVersionError(
            f"{where}: format version {version} is not supported (this funkeras "
            f"reads version {FORMAT_VERSION}); upgrade funkeras to load it."
        )
    if manifest["kind"] != kind:
        loader = _LOADERS.get(manifest["kind"]) if isinstance(
            manifest["kind"], str
        ) else None
        hint = f" (open it with {loader})" if loader else ""
        raise ArchiveError(
            f"{where}: the archive holds a {manifest['kind']!r}, expected a "
            f"{kind!r}{hint}."
        )
    members = manifest["members"]
    if not isinstance(members, list) or len(members) > MAX_MEMBERS:
        raise ArchiveError(
            f"{where}: `members` must be a list of at most {MAX_MEMBERS}."
        )
    for i, entry in enumerate(members):
        ok = (
            isinstance(entry, dict)
            and set(entry) == {"name", "size", "sha256"}
            and isinstance(entry["name"], str)
            and isinstance(entry["size"], int)
            and not isinstance(entry["size"], bool)
            and entry["size"] >= 0
            and isinstance(entry["sha256"], str)
            and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) is not None
        )
        if not ok:
            raise ArchiveError(
                f"{where}: members[{i}] must be {{'name': str, 'size': int >= 0, "
                f"'sha256': 64 hex digits}}, got {str(entry)[:200]}."
            )
    return members


def read_archive(
    data: bytes,
    *,
    kind: str,
    required: Iterable[str],
    optional: Iterable[str] = (),
    what: str = "archive",
) -> dict[str, memoryview]:
    """Validate a funkeras archive and return its members (manifest excluded).

    Checks, in order: the zip listing (plain names, no duplicates, no links, no
    compression, only the allowed members, manifest first); the manifest (bounded
    size, schema, format version, kind); the member list, order and sizes against
    the manifest; the exact canonical bytes of every zip header and of the end
    records, so no byte may precede, follow or hide in the archive; CRC-32s; and
    the SHA-256 of every member. No member data is interpreted here.

    Args:
        data: The whole file.
        kind: The archive kind the caller expects ("model", ...).
        required: Member names that must be present.
        optional: Member names that may be present.
        what: How messages name the file.

    Returns:
        `{name: memoryview}` for every member but the manifest.

    Raises:
        ArchiveError, FormatVersionError, BudgetExceededError.
    """
    required, optional = set(required), set(optional)
    allowed = required | optional
    infos = _zip_listing(data, what)
    names = _check_listing(infos, what, allowed)
    view = memoryview(data)

    # The manifest is read first, from where the canonical layout puts it.
    first = infos[0]
    if first.header_offset != 0:
        raise ArchiveError(f"{what}: {first.header_offset} bytes precede the archive.")
    if first.file_size > len(data):
        raise ArchiveError(f"{what}: {MANIFEST} claims more bytes than the file holds.")
    if first.file_size > MAX_MANIFEST_BYTES:
        raise BudgetExceededError(
            f"{what}: {MANIFEST} is {first.file_size} bytes; at most "
            f"{MAX_MANIFEST_BYTES} are allowed."
        )
    start = (
        _LOCAL.size
        + len(MANIFEST.encode())
        + (20 if first.file_size >= _ZIP64_LIMIT else 0)
    )
    manifest_bytes = view[start : start + first.file_size]
    if (
        len(manifest_bytes) != first.file_size
        or zlib.crc32(manifest_bytes) != first.CRC
    ):
        raise ArchiveError(
            f"{what}: {MANIFEST} is truncated or corrupted (CRC mismatch)."
        )
    manifest = parse_json(
        manifest_bytes,
        what=f"{what}: {MANIFEST}",
        max_bytes=MAX_MANIFEST_BYTES,
        error=ArchiveError,
        max_depth=4,
    )
    entries = _check_manifest(manifest, what, kind)

    listed = [e["name"] for e in entries]
    if listed != names[1:]:
        missing = [n for n in listed if n not in names]
        extra = [n for n in names[1:] if n not in listed]
        raise ArchiveError(
            f"{what}: the archive's members {names[1:]} disagree with {MANIFEST} "
            f"{listed} (missing: {missing}, not listed: {extra}, or out of order)."
        )
    absent = sorted(required - set(listed))
    if absent:
        raise ArchiveError(f"{what}: required member(s) {absent} are missing.")
    for entry, info in zip(entries, infos[1:], strict=True):
        if info.file_size != entry["size"]:
            raise ArchiveError(
                f"{what}: member {entry['name']!r} holds {info.file_size} bytes but "
                f"{MANIFEST} says {entry['size']}."
            )

    # Rebuild the canonical headers and compare them with the file, byte for byte.
    sizes = [info.file_size for info in infos]
    local, trailer = _headers(names, sizes, [info.CRC for info in infos])
    members: dict[str, memoryview] = {}
    offset = 0
    for name, header, size, info in zip(names, local, sizes, infos, strict=True):
        if view[offset : offset + len(header)] != header:
            raise ArchiveError(
                f"{what}: the zip header of member {name!r} at byte {offset} is not "
                "in canonical form (stored, fixed timestamp, no extra fields, "
                "contiguous layout)."
            )
        offset += len(header)
        body = view[offset : offset + size]
        if len(body) != size or zlib.crc32(body) != info.CRC:
            raise ArchiveError(
                f"{what}: member {name!r} is truncated or corrupted (CRC mismatch)."
            )
        members[name] = body
        offset += size
    if view[offset:] != trailer:
        extra = len(data) - offset - len(trailer)
        detail = (
            f"{extra} bytes of data follow the archive"
            if extra > 0 and view[offset : offset + len(trailer)] == trailer
            else "the central directory is not in canonical form"
        )
        raise ArchiveError(f"{what}: {detail}.")
    for entry in entries:
        if _sha256(members[entry["name"]]) != entry["sha256"]:
            raise ArchiveError(
                f"{what}: member {entry['name']!r} does not match its SHA-256 in "
                f"{MANIFEST} (corrupted or altered)."
            )
    del members[MANIFEST]
    return members
