"""A deterministic corpus of hostile and broken funkeras artefacts.

Nothing binary is committed: `generate()` saves a few small valid files with
funkeras itself and derives every artefact from them (hand-built zips, edited
configs, crafted safetensors headers, edited exported programs). Each artefact
names the loader it targets, the `funkeras.errors` class it must be refused with
and, for most, a fragment the message must contain (the member, key or rule).

Targets:
    "model":      funkeras.saving.load_model(path)
    "weights":    funkeras.saving.load_weights(reference_model(), path)
    "checkpoint": funkeras.saving.restore_checkpoint(path, like=checkpoint_tree(),
                                                     model_config=reference config)
    "export":     funkeras.saving.load_exported(path)
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
import random
import stat
import struct
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

import funkeras as fk
from funkeras.saving import archive, checkpoints, export
from funkeras.saving import format as fmt

MANIFEST = "manifest.json"
FLIPS = 160


@dataclass(frozen=True)
class Artefact:
    name: str
    target: str
    data: bytes
    expect: str
    match: str | None = None


# ----------------------------------------------------------------------------
# The valid starting points.
# ----------------------------------------------------------------------------


def _dense(units: int, **kwargs: Any) -> Any:
    # Constant initializers: their `init` compiles in milliseconds, which keeps
    # the corpus fast; the values do not matter to any refusal.
    return fk.layers.Dense(units, kernel_initializer="ones", **kwargs)


def reference_model() -> Any:
    """A small compiled Sequential: Input(3) -> Dense(4, relu) -> Dense(2)."""
    model = fk.Sequential(
        [fk.Input(shape=(3,)), _dense(4, activation="relu"), _dense(2)], seed=0
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def functional_model() -> Any:
    inp = fk.Input(shape=(3,))
    hidden = _dense(4, activation="relu")(inp)
    return fk.Model(inp, _dense(2)(hidden), seed=0)


def nested_model() -> Any:
    inner = fk.Sequential([fk.Input(shape=(3,)), _dense(4)], name="encoder", seed=0)
    return fk.Sequential([fk.Input(shape=(3,)), inner, _dense(2)], seed=0)


def checkpoint_tree() -> dict[str, Any]:
    return {
        "params": {"w": jnp.arange(6.0).reshape(3, 2)},
        "opt": (jnp.asarray(3, jnp.int32), {"mu": jnp.ones((3, 2))}),
        "key": jax.random.key(0),
        "step": 5,
        "lr": 0.1,
    }


def reference_config() -> dict[str, Any]:
    return reference_model().get_config()


def _export_apply(params: Any, x: Any) -> Any:
    return jnp.tanh(x @ params["w"])


def _reloaded(model: Any) -> Any:
    """`model` saved and loaded again: a compiled model comes back with its optimizer
    state created (compile itself defers that to the first training call)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.fkz")
        fmt.save_model(model, path)
        return fmt.load_model(path)


def _saved(write: Any) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f")
        write(path)
        with open(path, "rb") as f:
            return f.read()


# ----------------------------------------------------------------------------
# Building blocks.
# ----------------------------------------------------------------------------


def members_of(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [
            (i.filename, z.read(i.filename))
            for i in z.infolist()
            if i.filename != MANIFEST
        ]


def manifest_for(
    entries: list[tuple[str, bytes]],
    kind: str = "model",
    version: Any = 1,
    **changes: Any,
) -> bytes:
    import hashlib

    doc = {
        "format": "funkeras",
        "kind": kind,
        "format_version": version,
        "members": [
            {"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for n, d in entries
        ],
    }
    doc.update(changes)
    return archive.dump_json(doc)


def canonical(
    entries: list[tuple[str, bytes]],
    *,
    manifest: bytes | None = None,
    kind: str = "model",
) -> bytes:
    """A canonical zip of `entries` led by `manifest` (a correct one by default)."""
    manifest = manifest_for(entries, kind) if manifest is None else manifest
    allm = [(MANIFEST, manifest), *entries]
    local, trailer = archive._headers(
        [n for n, _ in allm],
        [len(d) for _, d in allm],
        [zlib.crc32(d) for _, d in allm],
    )
    out = b""
    for header, (_, d) in zip(local, allm, strict=True):
        out += header + d
    return out + trailer


def zip_with(infos: list[tuple[zipfile.ZipInfo, bytes]], comment: bytes = b"") -> bytes:
    """A zip built by the standard library from explicit ZipInfos."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point
        with zipfile.ZipFile(buf, "w") as z:
            for info, data in infos:
                z.writestr(info, data)
            z.comment = comment
    return buf.getvalue()


def info(
    name: str,
    *,
    mode: int = stat.S_IFREG | 0o644,
    method: int = zipfile.ZIP_STORED,
    date: tuple[int, ...] = (1980, 1, 1, 0, 0, 0),
) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=date)
    zi.external_attr = mode << 16
    zi.compress_type = method
    zi.create_system = 3
    return zi


def st(header: Any, body: bytes = b"", *, length: int | None = None) -> bytes:
    """Safetensors bytes from a header (dict or raw bytes) and a data section."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(raw) if length is None else length
    return struct.pack("<Q", n) + raw + body


def _replace(
    entries: list[tuple[str, bytes]], name: str, data: bytes
) -> list[tuple[str, bytes]]:
    return [(n, data if n == name else d) for n, d in entries]


def _header_of(data: bytes) -> tuple[dict[str, Any], bytes]:
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + n]), data[8 + n :]


PICKLE = (
    b"cos\nsystem\n(S'echo pwned > /tmp/funkeras_pwned'\ntR."  # protocol 0, by hand
)
PICKLE2 = (  # protocol 4: builtins.eval
    b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00"
    b"\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94."
)
MARSHAL = b"\xe3\x00\x00\x00\x00\x00\x00\x00\x00"  # a code-object prefix


# ----------------------------------------------------------------------------
# The corpus.
# ----------------------------------------------------------------------------


def _code_execution(
    base: list[tuple[str, bytes]], config: dict[str, Any]
) -> list[Artefact]:
    out = []
    for member in (
        "config.json",
        "weights.safetensors",
        "optimizer.safetensors",
        "train_state.json",
    ):
        for tag, payload in (
            ("pickle", PICKLE),
            ("pickle4", PICKLE2),
            ("marshal", MARSHAL),
        ):
            expect = (
                "TensorFileError" if member.endswith(".safetensors") else "ConfigError"
            )
            out.append(
                Artefact(
                    f"code/{tag}-as-{member}",
                    "model",
                    canonical(_replace(base, member, payload)),
                    expect,
                    member,
                )
            )
    out.append(
        Artefact(
            "code/pickle-as-manifest",
            "model",
            canonical(base, manifest=PICKLE),
            "ArchiveError",
            MANIFEST,
        )
    )
    for extra in ("model.pkl", "data.pkl", "__init__.py", "lambda.bytecode"):
        out.append(
            Artefact(
                f"code/extra-member-{extra}",
                "model",
                canonical([*base, (extra, PICKLE)]),
                "ArchiveError",
                extra,
            )
        )
    # Object, string and void dtypes in the weights header.
    weights = dict(base)["weights.safetensors"]
    header, body = _header_of(weights)
    first = sorted(header)[0]
    for dtype in ("O", "object", "|O", "V8", "U10", "pickle"):
        h = copy.deepcopy(header)
        h[first]["dtype"] = dtype
        out.append(
            Artefact(
                f"code/dtype-{dtype}",
                "model",
                canonical(_replace(base, "weights.safetensors", st(h, body))),
                "TensorFileError",
                "dtype",
            )
        )

    # Names that try to reach code, in every position that names a class.
    names = [
        "os.system",
        "builtins.eval",
        "builtins.exec",
        "importlib.import_module",
        "subprocess.Popen",
        "posix.system",
        "pickle.loads",
        "marshal.loads",
        "funkeras.saving.load_model",
        "funkeras.saving.format.save_model",
        "funkeras.saving.archive.atomic_write",
        "Lambda",
        "TFSMLayer",
        "Layer",
        "__main__>Evil",
        "builtins>eval",
        "Custom>Dense",
        "keras.layers.Dense",
        "dense",
        "Dense ",
        "Dense\x00",
        "D\u0435nse",
        ">Dense",
        "os>system",
    ]

    def with_config(edit: Any) -> bytes:
        doc = copy.deepcopy(config)
        edit(doc)
        return canonical(_replace(base, "config.json", archive.dump_json(doc)))

    for name in names:
        out.append(
            Artefact(
                f"code/layer-class {name!r}",
                "model",
                with_config(
                    lambda d, n=name: d["model"]["config"]["layers"][0].__setitem__(
                        "class_name", n
                    )
                ),
                "UnsafeConfigError",
                name[:4],
            )
        )
    for name in names[:12]:
        out.append(
            Artefact(
                f"code/model-class {name!r}",
                "model",
                with_config(lambda d, n=name: d["model"].__setitem__("class_name", n)),
                "UnsafeConfigError",
                "model.class_name",
            )
        )
    for position, edit in {
        "optimizer": lambda d: d["compile"].__setitem__(
            "optimizer", {"class_name": "os.system", "config": {}}
        ),
        "optimizer-name": lambda d: d["compile"].__setitem__(
            "optimizer", "builtins.eval"
        ),
        "loss": lambda d: d["compile"].__setitem__(
            "loss", {"class_name": "subprocess.Popen", "config": {}}
        ),
        "loss-name": lambda d: d["compile"].__setitem__("loss", "os.system"),
        "metric": lambda d: d["compile"].__setitem__("metrics", ["builtins.exec"]),
        "activation": lambda d: d["model"]["config"]["layers"][0]["config"].__setitem__(
            "activation", "os.system"
        ),
        "initializer": lambda d: d["model"]["config"]["layers"][0][
            "config"
        ].__setitem__(
            "kernel_initializer",
            {"class_name": "importlib.import_module", "config": {}},
        ),
        "regularizer": lambda d: d["model"]["config"]["layers"][0][
            "config"
        ].__setitem__("kernel_regularizer", "builtins.eval"),
        "execution": lambda d: d["compile"].__setitem__("execution", "os.system"),
        "safe_mode-top": lambda d: d.__setitem__("safe_mode", False),
        "safe_mode-model": lambda d: d["model"]["config"].__setitem__(
            "safe_mode", False
        ),
        "safe_mode-layer": lambda d: d["model"]["config"]["layers"][0][
            "config"
        ].__setitem__("safe_mode", False),
        "safe_mode-compile": lambda d: d["compile"].__setitem__("safe_mode", False),
        "trust-remote-code": lambda d: d["model"].__setitem__(
            "trust_remote_code", True
        ),
        "module-key": lambda d: d["model"].__setitem__("module", "os"),
    }.items():
        out.append(
            Artefact(f"code/in-{position}", "model", with_config(edit), "ConfigError")
        )
    return out


def _archive_attacks(base: list[tuple[str, bytes]], valid: bytes) -> list[Artefact]:
    out = []
    for name in (
        "../evil.json",
        "/etc/passwd",
        "C:/evil.json",
        "..\\evil.json",
        "a/../../evil.json",
        "config.json/../../x",
        "\\\\server\\share",
    ):
        out.append(
            Artefact(
                f"archive/traversal {name!r}",
                "model",
                canonical([*base, (name, b"{}")]),
                "ArchiveError",
                "traversal",
            )
        )
    cfg = dict(base)["config.json"]
    for label, mode in (
        ("symlink", stat.S_IFLNK | 0o777),
        ("directory", stat.S_IFDIR | 0o755),
        ("fifo", stat.S_IFIFO | 0o644),
        ("device", stat.S_IFCHR | 0o644),
    ):
        entries = [(info(MANIFEST), manifest_for(base))]
        entries += [
            (
                info(n, mode=mode if n == "config.json" else stat.S_IFREG | 0o644),
                b"/etc/passwd" if n == "config.json" else d,
            )
            for n, d in base
        ]
        out.append(
            Artefact(
                f"archive/{label}-entry",
                "model",
                zip_with(entries),
                "ArchiveError",
                "regular file",
            )
        )
    dup = [(info(MANIFEST), manifest_for(base))] + [(info(n), d) for n, d in base]
    out.append(
        Artefact(
            "archive/duplicate-member",
            "model",
            zip_with([*dup, (info("config.json"), b"{}")]),
            "ArchiveError",
            "twice",
        )
    )
    out.append(
        Artefact(
            "archive/duplicate-manifest",
            "model",
            zip_with([*dup, (info(MANIFEST), manifest_for(base))]),
            "ArchiveError",
            "twice",
        )
    )
    for missing in ("config.json", "weights.safetensors"):
        rest = [(n, d) for n, d in base if n != missing]
        out.append(
            Artefact(
                f"archive/missing-{missing}",
                "model",
                canonical(rest),
                "ArchiveError",
                missing,
            )
        )
    out.append(
        Artefact(
            "archive/extra-unlisted",
            "model",
            canonical([*base, ("extra.json", b"{}")], manifest=manifest_for(base)),
            "ArchiveError",
            "extra.json",
        )
    )
    out.append(
        Artefact(
            "archive/listed-absent",
            "model",
            canonical(base, manifest=manifest_for([*base, ("extra.json", b"{}")])),
            "ArchiveError",
            "extra.json",
        )
    )
    out.append(
        Artefact(
            "archive/no-manifest",
            "model",
            zip_with([(info(n), d) for n, d in base]),
            "ArchiveError",
            MANIFEST,
        )
    )
    reordered = [(info(n), d) for n, d in base] + [(info(MANIFEST), manifest_for(base))]
    out.append(
        Artefact(
            "archive/manifest-not-first",
            "model",
            zip_with(reordered),
            "ArchiveError",
            MANIFEST,
        )
    )
    swapped = [base[1], base[0], *base[2:]]
    out.append(
        Artefact(
            "archive/order-differs",
            "model",
            canonical(swapped, manifest=manifest_for(base)),
            "ArchiveError",
        )
    )
    bomb = b"\x00" * (2 << 20)
    for label, method in (
        ("deflate", zipfile.ZIP_DEFLATED),
        ("bzip2", zipfile.ZIP_BZIP2),
        ("lzma", zipfile.ZIP_LZMA),
    ):
        entries = [(info(MANIFEST), manifest_for(base))]
        entries += [
            (
                info(n, method=method if n == "config.json" else zipfile.ZIP_STORED),
                bomb if n == "config.json" else d,
            )
            for n, d in base
        ]
        out.append(
            Artefact(
                f"archive/zip-bomb-{label}",
                "model",
                zip_with(entries),
                "ArchiveError",
                "compressed",
            )
        )
    # Sizes: the manifest disagrees with the members.
    for delta in (-1, 1, 10**9):
        doc = json.loads(manifest_for(base))
        doc["members"][0]["size"] += delta
        out.append(
            Artefact(
                f"archive/size-disagrees{delta:+d}",
                "model",
                canonical(base, manifest=archive.dump_json(doc)),
                "ArchiveError",
                "config.json",
            )
        )
    doc = json.loads(manifest_for(base))
    doc["members"][1]["sha256"] = "0" * 64
    out.append(
        Artefact(
            "archive/hash-disagrees",
            "model",
            canonical(base, manifest=archive.dump_json(doc)),
            "ArchiveError",
            "SHA-256",
        )
    )
    # A stored member whose declared uncompressed size is larger (bomb-like).
    bad = bytearray(valid)
    cd = bad.rfind(b"PK\x01\x02")
    struct.pack_into("<I", bad, cd + 24, 2**31)
    out.append(
        Artefact("archive/declared-size-bomb", "model", bytes(bad), "ArchiveError")
    )
    out.append(
        Artefact(
            "archive/data-before",
            "model",
            b"MZ" + bytes(200) + valid,
            "ArchiveError",
            "precede",
        )
    )
    out.append(
        Artefact(
            "archive/data-after",
            "model",
            valid + b"trailing bytes",
            "ArchiveError",
            "follow",
        )
    )
    out.append(
        Artefact(
            "archive/data-after-large", "model", valid + bytes(70_000), "ArchiveError"
        )
    )
    out.append(
        Artefact(
            "archive/comment",
            "model",
            zip_with(
                [(info(MANIFEST), manifest_for(base))]
                + [(info(n), d) for n, d in base],
                comment=b"hi",
            ),
            "ArchiveError",
        )
    )
    out.append(
        Artefact(
            "archive/timestamps",
            "model",
            zip_with(
                [(info(MANIFEST, date=(2024, 1, 1, 0, 0, 0)), manifest_for(base))]
                + [(info(n, date=(2024, 1, 1, 0, 0, 0)), d) for n, d in base]
            ),
            "ArchiveError",
            "canonical",
        )
    )
    enc = bytearray(valid)
    struct.pack_into("<H", enc, enc.rfind(b"PK\x01\x02") + 8, 1)
    out.append(Artefact("archive/encrypted-flag", "model", bytes(enc), "ArchiveError"))
    many = [(f"m{i}.json", b"{}") for i in range(20)]
    out.append(
        Artefact(
            "archive/too-many-members",
            "model",
            canonical([*base, *many]),
            "ArchiveError",
        )
    )
    for label, data in (
        ("empty", b""),
        ("pk-only", b"PK"),
        ("random", bytes(range(256)) * 4),
        ("json", cfg),
        ("safetensors", dict(base)["weights.safetensors"]),
        ("pickle", PICKLE),
        ("eocd-only", b"PK\x05\x06" + bytes(18)),
    ):
        out.append(
            Artefact(f"archive/not-a-zip-{label}", "model", data, "ArchiveError")
        )
    # The manifest itself.
    for label, manifest, expect in (
        ("future-version", manifest_for(base, version=2), "FormatVersionError"),
        ("version-999", manifest_for(base, version=999), "FormatVersionError"),
        ("version-0", manifest_for(base, version=0), "FormatVersionError"),
        ("version-string", manifest_for(base, version="1"), "ArchiveError"),
        ("kind-checkpoint", manifest_for(base, kind="checkpoint"), "ArchiveError"),
        ("format-other", manifest_for(base, format="keras"), "ArchiveError"),
        ("extra-key", manifest_for(base, safe_mode=False), "ArchiveError"),
        ("not-json", b"{not json", "ArchiveError"),
        ("nan", b'{"format": NaN}', "ArchiveError"),
        (
            "duplicate-keys",
            b'{"format": "funkeras", "format": "funkeras"}',
            "ArchiveError",
        ),
        ("list", b"[]", "ArchiveError"),
        ("deep", b"[" * 5000 + b"]" * 5000, "ArchiveError"),
        ("huge", b" " * 70_000 + manifest_for(base), "BudgetExceededError"),
        ("bad-utf8", b'{"format": "\xff"}', "ArchiveError"),
    ):
        out.append(
            Artefact(
                f"archive/manifest-{label}",
                "model",
                canonical(base, manifest=manifest),
                expect,
                MANIFEST,
            )
        )
    return out


def _safetensors_attacks(base: list[tuple[str, bytes]]) -> list[Artefact]:
    out = []
    weights = dict(base)["weights.safetensors"]
    header, body = _header_of(weights)
    keys = sorted(header, key=lambda k: header[k]["data_offsets"][0])
    k0, k1 = keys[0], keys[1]

    def size(key: str) -> int:
        begin, end = header[key]["data_offsets"]
        return end - begin

    def edit(fn: Any) -> dict[str, Any]:
        h = copy.deepcopy(header)
        fn(h)
        return h

    cases: list[tuple[str, bytes, str, str | None]] = [
        (
            "header-length-0",
            st(b"", body, length=0),
            "TensorFileError",
            "header length",
        ),
        (
            "header-length-beyond-file",
            st(json.dumps(header).encode(), body, length=10**6),
            "TensorFileError",
            "header length",
        ),
        (
            "header-length-2^63",
            st(b"{}", body, length=2**63),
            "TensorFileError",
            "header length",
        ),
        (
            "header-length-short",
            st(json.dumps(header).encode(), body, length=5),
            "TensorFileError",
            None,
        ),
        ("too-short", b"\x01\x02", "TensorFileError", None),
        (
            "non-json-header",
            st(b"\x80\x04not json at all", body),
            "TensorFileError",
            "JSON",
        ),
        ("header-list", st([], body), "TensorFileError", None),
        ("header-deep", st(b"[" * 3000 + b"]" * 3000, body), "TensorFileError", None),
        ("header-nan", st(b'{"a": NaN}', body), "TensorFileError", None),
        (
            "header-duplicate-key",
            st(
                (
                    "{" + ",".join([f'"{k0}": ' + json.dumps(header[k0])] * 2) + "}"
                ).encode(),
                body,
            ),
            "TensorFileError",
            "duplicate",
        ),
        (
            "overlapping-offsets",
            st(edit(lambda h: h[k1].__setitem__("data_offsets", [0, size(k1)])), body),
            "TensorFileError",
            k1,
        ),
        (
            "out-of-range-offsets",
            st(
                edit(
                    lambda h: h[keys[-1]].__setitem__(
                        "data_offsets",
                        [
                            len(body) + 4,
                            len(body)
                            + 4
                            + header[keys[-1]]["data_offsets"][1]
                            - header[keys[-1]]["data_offsets"][0],
                        ],
                    )
                ),
                body,
            ),
            "TensorFileError",
            "data_offsets",
        ),
        (
            "gap-between-tensors",
            st(
                edit(
                    lambda h: [
                        h[k]["data_offsets"].__setitem__(j, v + 4)
                        for k in keys[1:]
                        for j, v in enumerate(header[k]["data_offsets"])
                    ]
                ),
                body + bytes(4),
            ),
            "TensorFileError",
            None,
        ),
        ("trailing-bytes", st(header, body + bytes(8)), "TensorFileError", None),
        ("truncated-data", st(header, body[:-3]), "TensorFileError", None),
        (
            "shape-overflow",
            st(edit(lambda h: h[k0].__setitem__("shape", [2**62, 2**62])), body),
            "TensorFileError",
            k0,
        ),
        (
            "shape-u64-overflow",
            st(edit(lambda h: h[k0].__setitem__("shape", [2**70])), body),
            "TensorFileError",
            k0,
        ),
        (
            "negative-dim",
            st(edit(lambda h: h[k0].__setitem__("shape", [-1, 4])), body),
            "TensorFileError",
            "negative",
        ),
        (
            "float-dim",
            st(edit(lambda h: h[k0].__setitem__("shape", [1.5])), body),
            "TensorFileError",
            k0,
        ),
        (
            "rank-100",
            st(edit(lambda h: h[k0].__setitem__("shape", [1] * 100)), body),
            "TensorFileError",
            k0,
        ),
        (
            "unknown-dtype",
            st(edit(lambda h: h[k0].__setitem__("dtype", "F128")), body),
            "TensorFileError",
            "F128",
        ),
        (
            "bytes-disagree-with-shape",
            st(
                edit(
                    lambda h: h[k0].__setitem__("shape", [header[k0]["shape"][0] + 1])
                ),
                body,
            ),
            "TensorFileError",
            k0,
        ),
        (
            "tiny-file-huge-tensor",
            st(
                {
                    "dense/kernel": {
                        "dtype": "F32",
                        "shape": [10**9, 10**3],
                        "data_offsets": [0, 4 * 10**12],
                    }
                },
                b"\x00" * 16,
            ),
            "TensorFileError",
            "dense/kernel",
        ),
        (
            "huge-consistent-claim",
            st(
                {
                    "dense/kernel": {
                        "dtype": "F32",
                        "shape": [2**30],
                        "data_offsets": [0, 2**32],
                    }
                }
            ),
            "TensorFileError",
            None,
        ),
        (
            "missing-tensor",
            st(
                edit(lambda h: h.pop(keys[-1])),
                body[: header[keys[-1]]["data_offsets"][0]],
            ),
            "WeightsMismatchError",
            keys[-1],
        ),
        (
            "extra-tensor",
            st(
                edit(
                    lambda h: h.__setitem__(
                        "evil",
                        {
                            "dtype": "F32",
                            "shape": [1],
                            "data_offsets": [len(body), len(body) + 4],
                        },
                    )
                ),
                body + bytes(4),
            ),
            "WeightsMismatchError",
            "evil",
        ),
        (
            "renamed-tensor",
            st({(k + "x" if k == k0 else k): v for k, v in header.items()}, body),
            "WeightsMismatchError",
            k0,
        ),
        (
            "wrong-dtype",
            st(
                edit(
                    lambda h: (
                        h[k0].__setitem__("dtype", "F16"),
                        h[k0].__setitem__(
                            "shape",
                            [
                                2 * d if i == 0 else d
                                for i, d in enumerate(header[k0]["shape"])
                            ],
                        ),
                    )
                ),
                body,
            ),
            "WeightsMismatchError",
            k0,
        ),
        (
            "metadata-not-strings",
            st(edit(lambda h: h.__setitem__("__metadata__", {"a": 1})), body),
            "TensorFileError",
            "__metadata__",
        ),
        (
            "offsets-floats",
            st(edit(lambda h: h[k0].__setitem__("data_offsets", [0.0, 16.0])), body),
            "TensorFileError",
            k0,
        ),
        (
            "entry-extra-key",
            st(edit(lambda h: h[k0].__setitem__("pickle", "x")), body),
            "TensorFileError",
            k0,
        ),
        ("empty-file", b"", "TensorFileError", None),
    ]
    for label, data, expect, match in cases:
        out.append(
            Artefact(
                f"safetensors/{label}",
                "model",
                canonical(_replace(base, "weights.safetensors", data)),
                expect,
                match,
            )
        )
    # The same attacks against a bare weights file (load_weights).
    for label, data, expect, match in cases[:16] + cases[24:28]:
        out.append(Artefact(f"weights-file/{label}", "weights", data, expect, match))
    # And against the optimizer state.
    opt = dict(base)["optimizer.safetensors"]
    oh, ob = _header_of(opt)
    ok0 = sorted(oh)[0]
    for label, data, expect in (
        ("pickle", PICKLE, "TensorFileError"),
        (
            "unknown-dtype",
            st({**oh, ok0: {**oh[ok0], "dtype": "O"}}, ob),
            "TensorFileError",
        ),
        (
            "missing",
            st({k: v for k, v in oh.items() if k != ok0}, ob),
            "WeightsMismatchError",
        ),
        (
            "renamed",
            st({(k + "_" if k == ok0 else k): v for k, v in oh.items()}, ob),
            "WeightsMismatchError",
        ),
    ):
        out.append(
            Artefact(
                f"optimizer/{label}",
                "model",
                canonical(_replace(base, "optimizer.safetensors", data)),
                expect,
                "optimizer.safetensors",
            )
        )
    return out


def _config_attacks(
    base: list[tuple[str, bytes]], config: dict[str, Any], functional: dict[str, Any]
) -> list[Artefact]:
    out = []

    def make(doc: Any, *, raw: bytes | None = None, members: Any = None) -> bytes:
        data = raw if raw is not None else archive.dump_json(doc)
        return canonical(_replace(members or base, "config.json", data))

    def edited(fn: Any, start: dict[str, Any] = config) -> dict[str, Any]:
        doc = copy.deepcopy(start)
        fn(doc)
        return doc

    def layer(i: int, key: str, value: Any) -> Any:
        return lambda d: d["model"]["config"]["layers"][i]["config"].__setitem__(
            key, value
        )

    cases: list[tuple[str, bytes, str, str | None]] = [
        (
            "unknown-class",
            make(
                edited(
                    lambda d: d["model"]["config"]["layers"][0].__setitem__(
                        "class_name", "FooBar"
                    )
                )
            ),
            "UnsafeConfigError",
            "FooBar",
        ),
        (
            "class-name-int",
            make(
                edited(
                    lambda d: d["model"]["config"]["layers"][0].__setitem__(
                        "class_name", 7
                    )
                )
            ),
            "UnsafeConfigError",
            None,
        ),
        (
            "class-name-long",
            make(
                edited(
                    lambda d: d["model"]["config"]["layers"][0].__setitem__(
                        "class_name", "A" * 5000
                    )
                )
            ),
            "UnsafeConfigError",
            None,
        ),
        ("units-string", make(edited(layer(0, "units", "4"))), "ConfigError", "units"),
        ("units-float", make(edited(layer(0, "units", 1.5))), "ConfigError", "units"),
        ("units-negative", make(edited(layer(0, "units", -1))), "ConfigError", "units"),
        ("units-bool", make(edited(layer(0, "units", True))), "ConfigError", "units"),
        ("units-list", make(edited(layer(0, "units", [4]))), "ConfigError", "units"),
        (
            "activation-int",
            make(edited(layer(0, "activation", 5))),
            "ConfigError",
            None,
        ),
        ("name-with-slash", make(edited(layer(0, "name", "a/b"))), "ConfigError", None),
        (
            "dtype-object",
            make(edited(layer(0, "dtype", "object"))),
            "ConfigError",
            None,
        ),
        (
            "layers-not-list",
            make(edited(lambda d: d["model"]["config"].__setitem__("layers", {}))),
            "ConfigError",
            None,
        ),
        (
            "model-config-list",
            make(edited(lambda d: d["model"].__setitem__("config", []))),
            "ConfigError",
            None,
        ),
        (
            "seed-string",
            make(edited(lambda d: d["model"]["config"].__setitem__("seed", "x"))),
            "ConfigError",
            None,
        ),
        (
            "dense-10^12",
            make(edited(layer(0, "units", 10**12))),
            "BudgetExceededError",
            "max_params",
        ),
        (
            "dense-2^40-last",
            make(edited(layer(1, "units", 2**40))),
            "BudgetExceededError",
            None,
        ),
        (
            "input-10^10",
            make(
                edited(
                    lambda d: d["model"]["config"]["input"].__setitem__(
                        "shape", [10**10]
                    )
                )
            ),
            "BudgetExceededError",
            "max_params",
        ),
        (
            "input-2^62",
            make(
                edited(
                    lambda d: d["model"]["config"]["input"].__setitem__(
                        "shape", [2**62]
                    )
                )
            ),
            "BudgetExceededError",
            "max_params",
        ),
        (
            "input-negative",
            make(
                edited(
                    lambda d: d["model"]["config"]["input"].__setitem__("shape", [-3])
                )
            ),
            "ConfigError",
            None,
        ),
        (
            "input-dtype-object",
            make(
                edited(
                    lambda d: d["model"]["config"]["input"].__setitem__(
                        "dtype", "object"
                    )
                )
            ),
            "ConfigError",
            None,
        ),
        (
            "weights-mismatch-after-edit",
            make(edited(layer(0, "units", 5))),
            "WeightsMismatchError",
            "weights.safetensors",
        ),
        (
            "deep-nesting",
            make(None, raw=b"[" * 100_000 + b"]" * 100_000),
            "ConfigError",
            "nested",
        ),
        (
            "deep-nesting-objects",
            make(None, raw=b'{"a":' * 500 + b"1" + b"}" * 500),
            "ConfigError",
            "nested",
        ),
        (
            "future-format-version",
            make(edited(lambda d: d.__setitem__("format_version", 2))),
            "FormatVersionError",
            "config.json",
        ),
        (
            "format-version-string",
            make(edited(lambda d: d.__setitem__("format_version", "1"))),
            "ConfigError",
            None,
        ),
        (
            "missing-model",
            make(edited(lambda d: d.pop("model"))),
            "ConfigError",
            "config.json",
        ),
        (
            "missing-compile-key",
            make(edited(lambda d: d.pop("compile"))),
            "ConfigError",
            None,
        ),
        ("not-an-object", make([1, 2, 3]), "ConfigError", None),
        ("empty", make(None, raw=b""), "ConfigError", "config.json"),
        (
            "bom",
            make(None, raw=b"\xef\xbb\xbf" + archive.dump_json(config)),
            "ConfigError",
            None,
        ),
        ("bad-utf8", make(None, raw=b'{"a": "\xc3\x28"}'), "ConfigError", None),
        (
            "nan",
            make(
                None,
                raw=archive.dump_json(config).replace(b'"seed": 0', b'"seed": NaN'),
            ),
            "ConfigError",
            None,
        ),
        (
            "float-overflow",
            make(
                None,
                raw=archive.dump_json(config).replace(b'"seed": 0', b'"seed": 1e999'),
            ),
            "ConfigError",
            None,
        ),
        (
            "int-5000-digits",
            make(
                None,
                raw=archive.dump_json(config).replace(
                    b'"seed": 0', b'"seed": ' + b"9" * 5000
                ),
            ),
            "ConfigError",
            None,
        ),
        (
            "oversized",
            make(None, raw=b" " * (17 << 20) + archive.dump_json(config)),
            "BudgetExceededError",
            "config.json",
        ),
        (
            "too-many-classes",
            make(
                edited(
                    lambda d: d.__setitem__(
                        "compile", {"x": [{"class_name": "a"}] * 25_000}
                    )
                )
            ),
            "BudgetExceededError",
            None,
        ),
        (
            "too-many-json-objects",
            make(edited(lambda d: d.__setitem__("compile", {"x": [[]] * 300_000}))),
            "BudgetExceededError",
            "JSON objects",
        ),
        (
            "optimizer-without-compile",
            make(edited(lambda d: d.__setitem__("compile", None))),
            "ConfigError",
            None,
        ),
        (
            "unknown-optimizer",
            make(edited(lambda d: d["compile"].__setitem__("optimizer", "nosuch"))),
            "ConfigError",
            None,
        ),
        (
            "compile-not-object",
            make(edited(lambda d: d.__setitem__("compile", [1]))),
            "ConfigError",
            None,
        ),
        (
            "train-state-negative",
            canonical(_replace(base, "train_state.json", b'{"epoch": -1, "step": 0}')),
            "ConfigError",
            "train_state.json",
        ),
        (
            "train-state-extra",
            canonical(
                _replace(
                    base, "train_state.json", b'{"epoch": 1, "step": 0, "exec": "x"}'
                )
            ),
            "ConfigError",
            "train_state.json",
        ),
    ]
    fbase = [("config.json", b""), ("weights.safetensors", b"")]
    fdoc = {
        "format_version": 1,
        "funkeras_version": fk.__version__,
        "model": {"class_name": "Functional", "config": functional},
        "compile": None,
    }

    def fedited(fn: Any) -> bytes:
        doc = copy.deepcopy(fdoc)
        fn(doc["model"]["config"])
        return canonical(_replace(fbase, "config.json", archive.dump_json(doc)))

    cases += [
        (
            "functional-layer-class",
            fedited(lambda c: c["layers"][0].__setitem__("class_name", "os.system")),
            "UnsafeConfigError",
            "os.system",
        ),
        (
            "functional-node-unknown-layer",
            fedited(lambda c: c["nodes"][0].__setitem__("layer", "__import__")),
            "ConfigError",
            None,
        ),
        (
            "functional-bad-ref",
            fedited(
                lambda c: c["nodes"][0].__setitem__("inputs", {"ref": ["nope", 0, 0]})
            ),
            "ConfigError",
            None,
        ),
        (
            "functional-ref-kind",
            fedited(lambda c: c.__setitem__("outputs", {"eval": "x"})),
            "ConfigError",
            None,
        ),
        (
            "functional-input-huge",
            fedited(lambda c: c["input_layers"][0].__setitem__("shape", [10**10])),
            "BudgetExceededError",
            None,
        ),
    ]
    nested = {
        "format_version": 1,
        "funkeras_version": fk.__version__,
        "model": {"class_name": "Sequential", "config": nested_model().get_config()},
        "compile": None,
    }

    def nested_edit(fn: Any) -> bytes:
        doc = copy.deepcopy(nested)
        fn(doc["model"]["config"]["layers"][0])  # the inner model's entry
        return canonical(_replace(fbase, "config.json", archive.dump_json(doc)))

    cases += [
        (
            "nested-model-class",
            nested_edit(lambda e: e.__setitem__("class_name", "builtins.eval")),
            "UnsafeConfigError",
            "builtins.eval",
        ),
        (
            "nested-layer-class",
            nested_edit(
                lambda e: e["config"]["layers"][0].__setitem__(
                    "class_name", "subprocess.Popen"
                )
            ),
            "UnsafeConfigError",
            "subprocess.Popen",
        ),
        (
            "nested-safe_mode",
            nested_edit(lambda e: e["config"].__setitem__("safe_mode", False)),
            "ConfigError",
            "safe_mode",
        ),
        (
            "nested-layer-huge",
            nested_edit(
                lambda e: e["config"]["layers"][0]["config"].__setitem__(
                    "units", 10**11
                )
            ),
            "BudgetExceededError",
            "max_params",
        ),
    ]
    for label, data, expect, match in cases:
        out.append(Artefact(f"config/{label}", "model", data, expect, match))
    return out


def _checkpoint_attacks(valid: bytes, model_file: bytes) -> list[Artefact]:
    base = members_of(valid)
    info_doc = json.loads(dict(base)["checkpoint.json"])

    def with_info(fn: Any) -> bytes:
        doc = copy.deepcopy(info_doc)
        fn(doc)
        return canonical(
            _replace(
                base, "checkpoint.json", archive.dump_json(doc, allow_nonfinite=True)
            ),
            kind="checkpoint",
        )

    arrays = dict(base)["arrays.safetensors"]
    ah, ab = _header_of(arrays)
    cases = [
        ("model-file", model_file, "ArchiveError", "checkpoint"),
        (
            "fingerprint-other-model",
            with_info(lambda d: d.__setitem__("fingerprint", "a" * 64)),
            "CheckpointMismatchError",
            "different model",
        ),
        (
            "fingerprint-missing",
            with_info(lambda d: d.__setitem__("fingerprint", None)),
            "CheckpointMismatchError",
            None,
        ),
        (
            "future-version",
            with_info(lambda d: d.__setitem__("format_version", 7)),
            "FormatVersionError",
            None,
        ),
        (
            "leaf-renamed",
            with_info(lambda d: d["leaves"][0].__setitem__("key", "evil")),
            "WeightsMismatchError",
            "evil",
        ),
        (
            "leaf-kind-unknown",
            with_info(lambda d: d["leaves"][0].__setitem__("kind", "pickle")),
            "ConfigError",
            None,
        ),
        (
            "key-type-changed",
            with_info(
                lambda d: [
                    e.__setitem__("key_type", "key<rbg>")
                    for e in d["leaves"]
                    if e["kind"] == "prng_key"
                ]
            ),
            "WeightsMismatchError",
            "key",
        ),
        (
            "scalar-type-changed",
            with_info(
                lambda d: [
                    e.update(kind="str", value="x")
                    for e in d["leaves"]
                    if e["kind"] == "int"
                ]
            ),
            "WeightsMismatchError",
            "step",
        ),
        (
            "float-not-hex",
            with_info(
                lambda d: [
                    e.__setitem__("value", "0xzz")
                    for e in d["leaves"]
                    if e["kind"] == "float"
                ]
            ),
            "ConfigError",
            None,
        ),
        (
            "metadata-list",
            with_info(lambda d: d.__setitem__("metadata", [])),
            "ConfigError",
            None,
        ),
        (
            "array-shape",
            canonical(
                _replace(
                    base,
                    "arrays.safetensors",
                    st({**ah, "params/w": {**ah["params/w"], "shape": [6, 1]}}, ab),
                ),
                kind="checkpoint",
            ),
            "WeightsMismatchError",
            "params/w",
        ),
        (
            "array-pickle",
            canonical(_replace(base, "arrays.safetensors", PICKLE), kind="checkpoint"),
            "TensorFileError",
            None,
        ),
    ]
    return [
        Artefact(f"checkpoint/{label}", "checkpoint", data, expect, match)
        for label, data, expect, match in cases
    ]


def _edited_program(exported: Any, old: str, new: str) -> bytes:
    import jax.extend.mlir as jex_mlir
    from jax._src.interpreters import mlir as jax_mlir
    from jaxlib.mlir import ir
    from jaxlib.mlir.dialects import stablehlo

    text = exported.mlir_module()
    if old not in text:
        raise AssertionError(f"{old!r} not in the exported module")
    target = stablehlo.get_version_from_compatibility_requirement(
        stablehlo.StablehloCompatibilityRequirement.WEEK_4
    )
    with jax_mlir.make_ir_context():
        module = ir.Module.parse(text.replace(old, new))
        blob = jex_mlir.serialize_portable_artifact(module, target)
    return bytes(dataclasses.replace(exported, mlir_module_serialized=blob).serialize())


def _export_attacks(valid: bytes) -> list[Artefact]:
    base = members_of(valid)
    exported = jax.export.deserialize(bytearray(dict(base)["program.jaxexport"]))

    def with_program(program: bytes) -> bytes:
        return canonical(_replace(base, "program.jaxexport", program), kind="export")

    out = []
    for target in (
        "xla_python_cpu_callback",
        "xla_ffi_python_cpu_callback",
        "xla_ffi_python_gpu_callback",
        "tpu_custom_call",
        "mosaic_gpu_v2",
        "tf.call_tf_function",
        "__gpu$xla.gpu.triton",
        "os.system",
    ):
        out.append(
            Artefact(
                f"export/custom-call-{target}",
                "export",
                with_program(
                    _edited_program(exported, "@shape_assertion", f"@{target}")
                ),
                "UnsafeExportError",
                target,
            )
        )
    for label, changes in (
        ("two-devices", {"nr_devices": 2}),
        ("platform-unknown", {"platforms": ("evil",)}),
        (
            "safety-disabled",
            {"disabled_safety_checks": (jax.export.DisabledSafetyCheck.platform(),)},
        ),
    ):
        program = bytes(dataclasses.replace(exported, **changes).serialize())
        out.append(
            Artefact(
                f"export/{label}", "export", with_program(program), "UnsafeExportError"
            )
        )
    ph, pb = _header_of(dict(base)["params.safetensors"])
    out += [
        Artefact(
            "export/program-pickle",
            "export",
            with_program(PICKLE),
            "UnsafeExportError",
            "program.jaxexport",
        ),
        Artefact(
            "export/program-garbage",
            "export",
            with_program(bytes(range(256)) * 8),
            "UnsafeExportError",
        ),
        Artefact(
            "export/program-empty", "export", with_program(b""), "UnsafeExportError"
        ),
        Artefact(
            "export/params-shape",
            "export",
            canonical(
                _replace(
                    base,
                    "params.safetensors",
                    st({"w": {**ph["w"], "shape": [2, 3]}}, pb),
                ),
                kind="export",
            ),
            "WeightsMismatchError",
            "w",
        ),
        Artefact(
            "export/params-pickle",
            "export",
            canonical(_replace(base, "params.safetensors", PICKLE), kind="export"),
            "TensorFileError",
        ),
        Artefact(
            "export/info-future",
            "export",
            canonical(
                _replace(base, "export.json", b'{"format_version": 9}'), kind="export"
            ),
            "FormatVersionError",
        ),
        Artefact(
            "export/kind-model", "export", canonical(base, kind="model"), "ArchiveError"
        ),
    ]
    return out


def _truncations_and_flips(small: bytes) -> list[Artefact]:
    """`small` (a valid model file) cut at every byte, and with random bits flipped."""
    out = [
        Artefact(f"truncated/{n}", "model", small[:n], "ArchiveError")
        for n in range(len(small))
    ]
    rng = random.Random(1234)
    for i in range(FLIPS):
        flipped = bytearray(small)
        pos = rng.randrange(len(small))
        flipped[pos] ^= 1 << rng.randrange(8)
        out.append(
            Artefact(f"bitflip/{i}@{pos}", "model", bytes(flipped), "ArchiveError")
        )
    return out


# ----------------------------------------------------------------------------
# Keras 3 files: written by Keras itself (when installed), then mutated.
# ----------------------------------------------------------------------------

KERAS_MODE = 0o600  # the mode Keras writes its members with (permission bits only)


def _keras_h5(edit: Any) -> bytes:
    """A weights file in Keras 3's layout for `reference_model()`, edited."""
    import h5py  # test-only: the h5 extra

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "w.weights.h5")
        with h5py.File(path, "w") as f:
            f.create_dataset("layers/dense/vars/0", data=jnp.ones((3, 4)).__array__())
            f.create_dataset("layers/dense/vars/1", data=jnp.zeros((4,)).__array__())
            f.create_dataset("layers/dense_1/vars/0", data=jnp.ones((4, 2)).__array__())
            f.create_dataset("layers/dense_1/vars/1", data=jnp.zeros((2,)).__array__())
            f.create_group("vars")
            edit(f, h5py)
        with open(path, "rb") as fh:
            return fh.read()


def _virtual(f: Any, h5py: Any) -> None:
    layout = h5py.VirtualLayout(shape=(2,), dtype="float32")
    layout[:] = h5py.VirtualSource("/etc/passwd.h5", "x", shape=(2,))
    del f["layers/dense_1/vars/1"]
    f.create_virtual_dataset("layers/dense_1/vars/1", layout)


def _external_storage(f: Any, h5py: Any) -> None:
    del f["layers/dense_1/vars/1"]
    f.create_dataset(
        "layers/dense_1/vars/1", shape=(2,), dtype="float32",
        external=[("/etc/passwd", 0, 8)],
    )


def _replaced(f: Any, name: str, **kwargs: Any) -> None:
    del f[name]
    f.create_dataset(name, **kwargs)


# label -> (edit, error class, message fragment)
KERAS_H5_ATTACKS: dict[str, tuple[Any, str, str]] = {
    "external-link": (
        lambda f, h5py: f.__setitem__(
            "layers/dense_2", h5py.ExternalLink("/etc/passwd", "/x")
        ),
        "TensorFileError",
        "external link",
    ),
    "soft-link": (
        lambda f, h5py: f.__setitem__("layers/alias", h5py.SoftLink("/layers/dense")),
        "TensorFileError",
        "soft link",
    ),
    "dangling-soft-link": (
        lambda f, h5py: f.__setitem__("layers/gone", h5py.SoftLink("/nowhere")),
        "TensorFileError",
        "soft link",
    ),
    "virtual-dataset": (_virtual, "TensorFileError", "virtual dataset"),
    "external-storage": (_external_storage, "TensorFileError", "external file"),
    "string-dtype": (
        lambda f, h5py: _replaced(
            f, "layers/dense/vars/1", data=[b"a", b"b", b"c", b"d"]
        ),
        "TensorFileError",
        "non-numeric dtype",
    ),
    "compound-dtype": (
        lambda f, h5py: _replaced(
            f, "layers/dense/vars/1", shape=(4,), dtype=[("a", "f4"), ("b", "i4")]
        ),
        "TensorFileError",
        "non-numeric dtype",
    ),
    "huge-shape": (
        lambda f, h5py: _replaced(
            f, "layers/dense/vars/0", shape=(10**6, 10**6), dtype="float32"
        ),
        "BudgetExceededError",
        "more than the whole file",
    ),
    "unallocated": (
        lambda f, h5py: _replaced(
            f, "layers/dense/vars/0", shape=(300,), dtype="float32"
        ),
        "TensorFileError",
        "stores 0 bytes",
    ),
    "compressed": (
        lambda f, h5py: _replaced(
            f, "layers/dense/vars/0", data=jnp.ones((3, 4)).__array__(),
            compression="gzip",
        ),
        "TensorFileError",
        "compressed or filtered",
    ),
    "wrong-shape": (
        lambda f, h5py: _replaced(
            f, "layers/dense/vars/0", data=jnp.ones((4, 3)).__array__()
        ),
        "WeightsMismatchError",
        "layers/dense/vars/0",
    ),
    "missing-weight": (
        lambda f, h5py: f.__delitem__("layers/dense_1/vars/1"),
        "WeightsMismatchError",
        "missing from the file",
    ),
    "extra-weight": (
        lambda f, h5py: f.create_dataset("layers/dense/vars/2", data=[1.0]),
        "WeightsMismatchError",
        "no such weight",
    ),
    "legacy-keras2": (
        lambda f, h5py: f.attrs.__setitem__("layer_names", [b"dense"]),
        "TensorFileError",
        "legacy Keras 2",
    ),
}


def keras_files() -> dict[str, bytes]:
    """Keras-written `.keras`/`.weights.h5` files of `reference_model()`'s
    architecture, and crafted HDF5 files; empty without keras or h5py."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import h5py  # noqa: F401  test-only
        import keras
    except ImportError:
        return {}
    if keras.backend.backend() != "jax":
        return {}
    out: dict[str, bytes] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras' own warnings while it writes
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((3,)),
                keras.layers.Dense(4, activation="relu"),
                keras.layers.Dense(2),
            ]
        )
        model.compile(optimizer="adam", loss="mse")
        out["keras_model"] = _saved(lambda p: model.save(p + ".keras") or os.replace(
            p + ".keras", p))
        out["keras_weights"] = _saved(
            lambda p: model.save_weights(p + ".weights.h5") or os.replace(
                p + ".weights.h5", p
            )
        )
        for label, (edit, _, _) in KERAS_H5_ATTACKS.items():
            out[f"keras_h5/{label}"] = _keras_h5(edit)
    return out


def _keras_zip(entries: list[tuple[Any, bytes]]) -> bytes:
    """A `.keras`-style zip (Keras' member mode), deterministic."""
    infos = []
    for name, data in entries:
        zi = name if isinstance(name, zipfile.ZipInfo) else info(
            name, mode=KERAS_MODE
        )
        infos.append((zi, data))
    return zip_with(infos)


def _keras_attacks(valid: dict[str, bytes]) -> list[Artefact]:
    if "keras_model" not in valid:
        return []
    with zipfile.ZipFile(io.BytesIO(valid["keras_model"])) as z:
        base = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    config = json.loads(dict(base)["config.json"])
    out: list[Artefact] = []

    def with_config(edit: Any) -> bytes:
        edited = copy.deepcopy(config)
        edit(edited)
        return _keras_zip(_replace(base, "config.json", json.dumps(edited).encode()))

    def layer(i: int) -> Any:
        return lambda c: c["config"]["layers"][i]

    lambda_layer = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": "lambda",
            "function": {
                "class_name": "__lambda__",
                "config": {"code": "4wEAAAAAAAAA", "defaults": None, "closure": None},
            },
            "arguments": {},
        },
        "registered_name": None,
    }
    custom = {
        "module": "my_project.layers",
        "class_name": "Twice",
        "config": {"name": "twice"},
        "registered_name": "my_project>Twice",
    }
    edits = [
        ("lambda", lambda c: c["config"]["layers"].insert(1, lambda_layer),
         "UnsafeConfigError", "'Lambda' layer"),
        ("custom-class", lambda c: c["config"]["layers"].insert(1, custom),
         "UnsafeConfigError", "custom Keras class"),
        ("unknown-class",
         lambda c: layer(1)(c).__setitem__("class_name", "NoSuchLayer"),
         "UnsafeConfigError", "'NoSuchLayer' is not in funkeras"),
        ("module-import",
         lambda c: layer(1)(c).update(module="os", class_name="system"),
         "UnsafeConfigError", "module 'os'"),
        ("function-activation",
         lambda c: layer(1)(c)["config"].__setitem__(
             "activation",
             {"module": "builtins", "class_name": "function", "config": "eval",
              "registered_name": "function"},
         ),
         "UnsafeConfigError", "Python function"),
        ("subclassed-model",
         lambda c: c.update(class_name="MyModel", module="__main__",
                            registered_name="MyModel"),
         "UnsafeConfigError", "custom Keras class"),
        ("unknown-argument",
         lambda c: layer(1)(c)["config"].__setitem__("kernel_constraint", "max_norm"),
         "ConfigError", "kernel_constraint"),
        ("wider-layer",
         lambda c: layer(1)(c)["config"].__setitem__("units", 5),
         "WeightsMismatchError", "layers/dense/vars/0"),
        ("no-input-shape",
         lambda c: (c["config"]["layers"].pop(0), c["config"].pop("build_input_shape")),
         "ConfigError", "no input shape"),
        ("dangling-layers", lambda c: c["config"].__setitem__("layers", {}),
         "ConfigError", "layers"),
    ]
    for label, edit, expect, match in edits:
        data = with_config(edit)
        out.append(Artefact(f"keras/{label}", "model", data, expect, match))
    out.append(
        Artefact(
            "keras/config-not-json",
            "model",
            _keras_zip(_replace(base, "config.json", b"{'class_name': 'Sequential'")),
            "ConfigError",
            "not valid JSON",
        )
    )
    out.append(
        Artefact(
            "keras/config-deep",
            "model",
            _keras_zip(_replace(base, "config.json", b"[" * 500 + b"]" * 500)),
            "ConfigError",
            "nested",
        )
    )
    # Zip-level attacks.
    link = info("assets", mode=stat.S_IFLNK | 0o777)
    bomb = info("config.json", mode=KERAS_MODE, method=zipfile.ZIP_DEFLATED)
    without_meta = [(n, d) for n, d in base if n != "config.json"]
    zips = [
        ("path-traversal", [*base, ("../../evil.py", b"import os")], "path traversal"),
        ("absolute-path", [*base, ("/etc/cron.d/x", b"* * * * *")], "path traversal"),
        ("symlink-member", [*base, (link, b"/etc/passwd")], "symbolic link"),
        ("zip-bomb", [(bomb, b" " * 2_000_000), *without_meta], "zip bomb"),
        ("too-many-members",
         [*base, *[(f"m{i}.json", b"{}") for i in range(20)]], "members"),
        ("pickle-member", [*base, ("model.pkl", PICKLE)], "unexpected member"),
        ("npz-weights", [*base, ("model.weights.npz", b"PK")], "unexpected member"),
        ("duplicate-member", [*base, ("config.json", b"{}")], "twice"),
        ("no-weights", [(n, d) for n, d in base if n != "model.weights.h5"],
         "no 'model.weights.h5'"),
    ]
    for label, entries, match in zips:
        out.append(
            Artefact(f"keras/{label}", "model", _keras_zip(entries), "ArchiveError",
                     match)
        )
    # A Keras archive whose weights are each crafted HDF5 file.
    for label, (_, expect, match) in KERAS_H5_ATTACKS.items():
        h5 = valid[f"keras_h5/{label}"]
        out.append(
            Artefact(
                f"keras/h5-{label}",
                "model",
                _keras_zip(_replace(base, "model.weights.h5", h5)),
                expect,
                match,
            )
        )
        out.append(Artefact(f"keras-weights/{label}", "weights", h5, expect, match))
    # Truncations and bit flips: `.keras` anywhere (the zip's CRCs cover every
    # member), `.weights.h5` by truncation (HDF5 has no checksum on data).
    model_bytes, weights = valid["keras_model"], valid["keras_weights"]
    for n in range(0, len(model_bytes), max(1, len(model_bytes) // 40)):
        out.append(
            Artefact(f"keras-truncated/model@{n}", "model", model_bytes[:n],
                     "ArchiveError")
        )
    for n in range(0, len(weights), max(1, len(weights) // 40)):
        out.append(
            Artefact(f"keras-truncated/weights@{n}", "weights", weights[:n],
                     "TensorFileError")
        )
    rng = random.Random(4321)
    spans = []
    with zipfile.ZipFile(io.BytesIO(model_bytes)) as z:
        for zi in z.infolist():
            start = zi.header_offset + 30 + len(zi.filename.encode()) + len(zi.extra)
            spans.append((start, start + zi.compress_size))
    for i in range(40):
        start, end = spans[i % len(spans)]
        flipped = bytearray(model_bytes)
        pos = rng.randrange(start, end)
        flipped[pos] ^= 1 << rng.randrange(8)
        out.append(
            Artefact(f"keras-bitflip/{i}@{pos}", "model", bytes(flipped),
                     "ArchiveError", "damaged")
        )
    return out


def valid_files() -> dict[str, bytes]:
    """The valid files every artefact starts from (and that must load)."""
    model = _reloaded(reference_model())
    params = {"w": jnp.arange(6.0, dtype=jnp.float32).reshape(3, 2)}
    return keras_files() | {
        "model": _saved(lambda p: fmt.save_model(model, p)),
        "functional": _saved(lambda p: fmt.save_model(functional_model(), p)),
        "weights": _saved(lambda p: fmt.save_weights(model, p)),
        "checkpoint": _saved(
            lambda p: checkpoints.save_checkpoint(
                p,
                checkpoint_tree(),
                {"epoch": 1, "best": float("inf")},
                step=5,
                model_config=model.get_config(),
            )
        ),
        "export": _saved(
            lambda p: export.export_model(
                _export_apply,
                p,
                jax.ShapeDtypeStruct((None, 3), jnp.float32),
                params=params,
            )
        ),
    }


def generate(valid: dict[str, bytes] | None = None) -> list[Artefact]:
    """The whole corpus, in a fixed order (the same bytes on every run)."""
    valid = valid or valid_files()
    base = members_of(valid["model"])
    config = json.loads(dict(base)["config.json"])
    functional = json.loads(dict(members_of(valid["functional"]))["config.json"])
    corpus = (
        _code_execution(base, config)
        + _archive_attacks(base, valid["model"])
        + _safetensors_attacks(base)
        + _config_attacks(base, config, functional["model"]["config"])
        + _checkpoint_attacks(valid["checkpoint"], valid["model"])
        + _export_attacks(valid["export"])
        + _truncations_and_flips(valid["functional"])
        + _keras_attacks(valid)
    )
    names = [a.name for a in corpus]
    if len(set(names)) != len(names):
        raise AssertionError("artefact names must be unique")
    return corpus
