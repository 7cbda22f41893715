"""Keras 3's `.keras` archives, opened without running their code.

A `.keras` file is a zip of `metadata.json` (Keras' version), `config.json`
(the model's architecture and compile arguments) and `model.weights.h5` (the
weights, see `keras_h5`). funkeras reads it as data:

- the zip is checked before anything is decompressed: at most
  `MAX_MEMBERS` members, plain names (no absolute or `..` paths), no links
  or special files, no encryption, only the members above, stored or
  deflated members within a size budget and a compression ratio of at most
  `MAX_RATIO` (no zip bombs); every member is read with a bounded read and
  its CRC checked;
- the config is strict JSON of bounded size and depth; its classes are looked
  up by name in funkeras' own catalogue (`keras_config`), never imported;
- the model's parameter count is checked against the caller's `max_params`
  (with `jax.eval_shape`, nothing allocated) before the weights are read, and
  each weight's shape is checked before its data is read.
"""

from __future__ import annotations

import io
import math
import warnings
import zipfile
from typing import Any

import jax

from funkeras._validation import short_message
from funkeras.errors import ArchiveError, BudgetExceededError, ConfigError
from funkeras.saving import archive, keras_config, keras_h5

__all__ = [
    "CONFIG",
    "METADATA",
    "WEIGHTS",
    "MAX_MEMBERS",
    "MAX_RATIO",
    "is_keras_archive",
    "read_keras_archive",
    "load_keras_model",
    "keras_weights_member",
]

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"
MEMBERS = (METADATA, CONFIG, WEIGHTS)
MAX_MEMBERS = 16
MAX_RATIO = 100
MAX_METADATA_BYTES = 64 * 1024
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_CONFIG_CLASSES = 20_000
MAX_CONFIG_CONTAINERS = 250_000


def is_keras_archive(data: bytes | memoryview) -> bool:
    """Whether `data` is a zip laid out as Keras' `.keras` (no funkeras manifest)."""
    if bytes(data[:4]) != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
            names = set(z.namelist())
    except Exception:  # not a readable zip: not a Keras archive either
        return False
    return (
        archive.MANIFEST not in names
        and CONFIG in names
        and (METADATA in names or any(n.startswith("model.weights.") for n in names))
    )


def read_keras_archive(
    data: bytes | memoryview, what: str, *, max_weights_bytes: int
) -> dict[str, bytes]:
    """The members of a `.keras` archive, every zip-level rule checked.

    Raises:
        ArchiveError: an unreadable zip, too many members, a bad name, a link,
            an unexpected member, a damaged member (CRC), or a zip bomb.
        BudgetExceededError: a member larger than its budget.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(bytes(data)))
        infos = zf.infolist()
    except Exception as e:  # zipfile raises many types on hostile input
        raise ArchiveError(
            f"{what}: not a readable zip archive ({short_message(e)})."
        ) from None
    with zf:
        if len(infos) > MAX_MEMBERS:
            raise ArchiveError(
                f"{what}: the archive has {len(infos)} members; a Keras archive "
                f"has at most {MAX_MEMBERS}."
            )
        limits = {
            METADATA: MAX_METADATA_BYTES,
            CONFIG: MAX_CONFIG_BYTES,
            WEIGHTS: max_weights_bytes,
        }
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            archive.check_member_name(name, what)
            if name in seen:
                raise ArchiveError(f"{what}: member {name!r} appears twice.")
            seen.add(name)
            archive.check_member_kind(info, what)
            if name not in limits:
                hint = (
                    " (funkeras reads weights from model.weights.h5 only)"
                    if name.startswith("model.weights.")
                    else " (assets of preprocessing layers are not read)"
                    if name.startswith("assets")
                    else ""
                )
                raise ArchiveError(
                    f"{what}: unexpected member {name!r} in a Keras archive; "
                    f"funkeras reads {list(MEMBERS)}{hint}."
                )
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ArchiveError(
                    f"{what}: member {name!r} uses compression method "
                    f"{info.compress_type}; stored or deflated members only."
                )
            if info.file_size > limits[name]:
                raise BudgetExceededError(
                    f"{what}: member {name!r} declares {info.file_size:,} bytes, "
                    f"over its limit of {limits[name]:,} bytes."
                )
            if info.compress_size > len(data):
                raise ArchiveError(
                    f"{what}: member {name!r} claims more bytes than the file holds."
                )
            if info.file_size > MAX_RATIO * max(info.compress_size, 1) + 1024:
                raise ArchiveError(
                    f"{what}: member {name!r} would expand {info.compress_size:,} "
                    f"bytes to {info.file_size:,} (compression ratio over "
                    f"{MAX_RATIO}: a zip bomb); refused."
                )
        for required in (CONFIG, WEIGHTS):
            if required not in seen:
                raise ArchiveError(
                    f"{what}: the Keras archive has no {required!r} member."
                )
        members: dict[str, bytes] = {}
        for info in infos:
            try:
                with zf.open(info) as fh:
                    body = fh.read(info.file_size + 1)
            except Exception as e:  # bad CRC, truncated data, bad header
                raise ArchiveError(
                    f"{what}: member {info.filename!r} is damaged "
                    f"({short_message(e)})."
                ) from None
            if len(body) != info.file_size:
                raise ArchiveError(
                    f"{what}: member {info.filename!r} holds {len(body)} bytes, "
                    f"not the {info.file_size} it declares."
                )
            members[info.filename] = body
    return members


def _count_config(document: Any, what: str) -> None:
    classes = containers = 0
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            classes += "class_name" in node
            containers += 1
            stack.extend(node.values())
        elif isinstance(node, list):
            containers += 1
            stack.extend(node)
    if classes > MAX_CONFIG_CLASSES or containers > MAX_CONFIG_CONTAINERS:
        raise BudgetExceededError(
            f"{what}: {CONFIG} has {classes} class entries and {containers} JSON "
            f"objects and lists; at most {MAX_CONFIG_CLASSES} and "
            f"{MAX_CONFIG_CONTAINERS} are allowed."
        )


def keras_weights_member(data: bytes | memoryview, what: str, max_bytes: int) -> bytes:
    """`model.weights.h5` of a `.keras` archive (for `load_weights`)."""
    return read_keras_archive(data, what, max_weights_bytes=max_bytes)[WEIGHTS]


def load_keras_model(
    data: bytes | memoryview, what: str, *, compile: bool, max_params: int
) -> Any:
    """Rebuild the model of a `.keras` archive, with its weights (see the module doc).

    Raises:
        ModelLoadError: (a subclass) the file is refused.
        ImportError: h5py is not installed.
    """
    members = read_keras_archive(data, what, max_weights_bytes=len(data))
    if METADATA in members:
        archive.parse_json(
            members[METADATA],
            what=f"{what}: {METADATA}",
            max_bytes=MAX_METADATA_BYTES,
            max_depth=4,
        )
    document = archive.parse_json(
        members[CONFIG], what=f"{what}: {CONFIG}", max_bytes=MAX_CONFIG_BYTES
    )
    if not isinstance(document, dict):
        raise ConfigError(f"{what}: {CONFIG} must be a JSON object.")
    _count_config(document, what)
    keras_h5.require_h5py(what)
    model = keras_config.model_from_keras_config(document, f"{what}: {CONFIG}")
    try:
        params, state = jax.eval_shape(
            lambda k: model.init(k, model.input_spec), jax.random.key(0)
        )
    except Exception as e:
        raise ConfigError(
            f"{what}: {CONFIG}: the model's weights cannot be described: "
            f"{type(e).__name__}: {short_message(e, 400)}"
        ) from None
    count = sum(
        math.prod(leaf.shape) for leaf in jax.tree.leaves((params, state))
    )
    if count > max_params:
        raise BudgetExceededError(
            f"{what}: the model in {CONFIG} has {count:,} parameters, over the "
            f"budget max_params={max_params:,} set by the caller; nothing was "
            "allocated. Pass a larger max_params to load_model if you trust this "
            "size."
        )
    expected = keras_h5.keras_weight_map(model, params, state, what)
    arrays = keras_h5.read_keras_weights(
        members[WEIGHTS], expected, f"{what}: {WEIGHTS}"
    )
    keras_h5.assign_keras_weights(model, arrays, expected, params, state)
    compile_config = document.get("compile_config")
    if compile and compile_config:
        try:
            model.compile_from_config(
                keras_config.compile_config_from_keras(compile_config)
            )
            model.make_runner()
        except Exception as e:  # any part funkeras cannot express
            warnings.warn(
                f"{what}: the model was loaded uncompiled: its Keras compile "
                f"config could not be translated ({short_message(e, 300)}). "
                "Call `model.compile(...)` before `fit`.",
                stacklevel=3,
            )
    return model
