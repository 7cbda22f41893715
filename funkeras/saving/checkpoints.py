"""Train-state checkpoints: any pytree by key path, restored bit for bit.

A checkpoint stores an arbitrary pytree (dicts, lists, tuples, NamedTuples such
as optax states, dataclass pytrees) leaf by leaf under its key path
(`"opt_state/0/mu/dense/kernel"`), plus JSON metadata (step, epoch, the data
position, callback states) and the versions of jax, jaxlib, optax, NumPy and
funkeras that wrote it. Arrays are stored in `arrays.safetensors` with their exact
bytes; typed PRNG keys as `jax.random.key_data` with their key type; Python
scalars and strings in the JSON. Restoring goes into a `like=` template of the
same structure (arrays, `jax.ShapeDtypeStruct`s or Python scalars), whose key
paths, shapes and dtypes must match the file exactly.

A checkpoint can carry a fingerprint of the model config; restoring with another
model's config is refused with `CheckpointMismatchError`.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._version import __version__
from funkeras.errors import (
    CheckpointMismatchError,
    ConfigError,
    FormatVersionError,
    NotSerializableError,
    WeightsMismatchError,
)
from funkeras.saving import archive
from funkeras.saving.safetensors_io import (
    MAX_HEADER_BYTES,
    tensors_from_bytes,
    tensors_to_bytes,
)

__all__ = [
    "Checkpoint",
    "CheckpointManager",
    "save_checkpoint",
    "restore_checkpoint",
    "config_fingerprint",
    "library_versions",
]

KIND = "checkpoint"
INFO = "checkpoint.json"
ARRAYS = "arrays.safetensors"
MAX_INFO_BYTES = 64 * 1024 * 1024


class Checkpoint(NamedTuple):
    """What `restore_checkpoint` returns.

    Attributes:
        tree: The restored pytree, structured like the `like=` template.
        metadata: The JSON metadata given to `save`.
        step: The step given to `save` (or `None`).
        versions: The library versions that wrote the checkpoint.

    Example:
        >>> import os, tempfile, jax.numpy as jnp
        >>> path = os.path.join(tempfile.mkdtemp(), "c.fkc")
        >>> save_checkpoint(path, {"w": jnp.zeros(2)}, {"epoch": 1}, step=3)
        >>> restored = restore_checkpoint(path, {"w": jnp.ones(2)})
        >>> tree, metadata, step, versions = restored
        >>> step, metadata, "jax" in versions
        (3, {'epoch': 1}, True)
    """

    tree: Any
    metadata: dict[str, Any]
    step: int | None
    versions: dict[str, str]


def library_versions() -> dict[str, str]:
    """The versions a bit-exact resume depends on (jax, jaxlib, optax, NumPy, ...)."""
    import jaxlib
    import optax

    return {
        "funkeras": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def config_fingerprint(config: Mapping[str, Any]) -> str:
    """SHA-256 of a model config in canonical JSON (key order does not matter).

    Example:
        >>> config_fingerprint({"a": 1, "b": 2}) == config_fingerprint({"b": 2, "a": 1})
        True
    """
    data = archive.check_json_data(dict(config), "config")
    return hashlib.sha256(archive.dump_json(data, sort_keys=True)).hexdigest()


# ----------------------------------------------------------------------------
# Pytrees <-> leaves by key path.
# ----------------------------------------------------------------------------


def _key_part(entry: Any) -> str:
    if isinstance(entry, jax.tree_util.DictKey):
        return str(entry.key)
    if isinstance(entry, jax.tree_util.SequenceKey):
        return str(entry.idx)
    if isinstance(entry, jax.tree_util.GetAttrKey):
        return entry.name
    if isinstance(entry, jax.tree_util.FlattenedIndexKey):
        return str(entry.key)
    return str(entry)


def _leaves_by_key(tree: Any, what: str) -> tuple[list[tuple[str, Any]], Any]:
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    out: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for path, leaf in flat:
        key = "/".join(_key_part(p) for p in path) or "."
        if key in seen:
            raise ValueError(
                f"{what}: two leaves share the key path {key!r} (a dict key containing "
                "'/'?); rename the key."
            )
        seen.add(key)
        out.append((key, leaf))
    return out, treedef


def _is_key_array(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _scalar_kind(x: Any) -> str | None:
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int"
    if isinstance(x, float):
        return "float"
    if isinstance(x, str):
        return "str"
    return None


def _describe_leaf(key: str, leaf: Any) -> tuple[dict[str, Any], Any]:
    """The JSON entry for one leaf, and the array to store (or None)."""
    kind = _scalar_kind(leaf)
    if kind == "float":
        return {"key": key, "kind": kind, "value": float.hex(leaf)}, None
    if kind is not None:
        return {"key": key, "kind": kind, "value": leaf}, None
    if _is_key_array(leaf):
        return (
            {"key": key, "kind": "prng_key", "key_type": str(leaf.dtype)},
            jax.random.key_data(leaf),
        )
    if isinstance(leaf, jax.Array | np.ndarray | np.generic):
        return {"key": key, "kind": "array"}, leaf
    raise NotSerializableError(
        f"checkpoint leaf {key!r} is a "
        f"{type(leaf).__module__}.{type(leaf).__qualname__}"
        "; a checkpoint stores arrays, PRNG key arrays, and Python bool/int/float/str."
    )


def save_checkpoint(
    path: str | os.PathLike[str],
    tree: Any,
    metadata: Mapping[str, Any] | None = None,
    *,
    step: int | None = None,
    model_config: Mapping[str, Any] | None = None,
) -> None:
    """Write `tree` and `metadata` to one checkpoint file, atomically.

    Args:
        path: The file to write (conventionally `*.fkc`).
        tree: Any pytree of arrays, PRNG key arrays and Python scalars/strings.
        metadata: JSON data: epoch, data position, callback states...
            (`NaN`/`inf` floats are allowed here).
        step: The training step, recorded in the file.
        model_config: The model's `get_config()`; its fingerprint is stored so
            that restoring with another model's config is refused.

    Raises:
        NotSerializableError: a leaf or a metadata value cannot be stored.

    Example:
        >>> import os, tempfile, optax, jax.numpy as jnp
        >>> params = {"w": jnp.ones(2)}
        >>> state = {"params": params, "opt": optax.adam(1e-3).init(params)}
        >>> path = os.path.join(tempfile.mkdtemp(), "c.fkc")
        >>> save_checkpoint(path, state, {"epoch": 2, "best": float("inf")}, step=40)
        >>> restored = restore_checkpoint(path, like=state)
        >>> restored.step, restored.metadata
        (40, {'epoch': 2, 'best': inf})
    """
    leaves, _ = _leaves_by_key(tree, "checkpoint")
    entries, arrays = [], {}
    for key, leaf in leaves:
        entry, array = _describe_leaf(key, leaf)
        entries.append(entry)
        if array is not None:
            arrays[key] = array
    if step is not None and (
        isinstance(step, bool) or not isinstance(step, int | np.integer)
    ):
        raise TypeError(f"save_checkpoint: `step` must be an int, got {step!r}.")
    info = {
        "format_version": archive.FORMAT_VERSION,
        "step": None if step is None else int(step),
        "fingerprint": None
        if model_config is None
        else config_fingerprint(model_config),
        "versions": library_versions(),
        "leaves": entries,
        "metadata": archive.check_json_data(
            dict(metadata or {}), "checkpoint metadata", allow_nonfinite=True
        ),
    }
    archive.write_archive(
        path,
        KIND,
        [
            (INFO, archive.dump_json(info, allow_nonfinite=True)),
            (ARRAYS, tensors_to_bytes(arrays)),
        ],
    )


def _template_entries(like: Any) -> list[tuple[str, Any]]:
    leaves, _ = _leaves_by_key(like, "like")
    return leaves


def _key_impl(like: Any) -> Any:
    """The PRNG implementation of a key array or of a key-typed `ShapeDtypeStruct`."""
    if isinstance(like, jax.Array):
        return jax.random.key_impl(like)
    found: list[Any] = []

    def probe(key: Any) -> Any:
        found.append(jax.random.key_impl(key))
        return key

    jax.eval_shape(probe, like)  # traced abstractly: nothing is allocated
    return found[0]


def _check_info(info: Any, what: str) -> dict[str, Any]:
    keys = {"format_version", "step", "fingerprint", "versions", "leaves", "metadata"}
    if not isinstance(info, dict) or set(info) != keys:
        raise ConfigError(f"{what}: {INFO} must be an object with keys {sorted(keys)}.")
    version = info["format_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise ConfigError(f"{what}: `format_version` must be an int.")
    if version > archive.FORMAT_VERSION or version < 1:
        raise FormatVersionError(
            f"{what}: checkpoint format version {version} is not supported (this "
            f"funkeras reads version {archive.FORMAT_VERSION})."
        )
    step = info["step"]
    if step is not None and (not isinstance(step, int) or isinstance(step, bool)):
        raise ConfigError(f"{what}: `step` must be an int or null.")
    if info["fingerprint"] is not None and not (
        isinstance(info["fingerprint"], str)
        and re.fullmatch(r"[0-9a-f]{64}", info["fingerprint"])
    ):
        raise ConfigError(f"{what}: `fingerprint` must be 64 hex digits or null.")
    versions = info["versions"]
    if not isinstance(versions, dict) or not all(
        isinstance(v, str) for v in versions.values()
    ):
        raise ConfigError(f"{what}: `versions` must map names to strings.")
    if not isinstance(info["metadata"], dict):
        raise ConfigError(f"{what}: `metadata` must be an object.")
    if not isinstance(info["leaves"], list):
        raise ConfigError(f"{what}: `leaves` must be a list.")
    for i, entry in enumerate(info["leaves"]):
        ok = isinstance(entry, dict) and isinstance(entry.get("key"), str)
        kind = entry.get("kind") if ok else None
        if kind in ("array",):
            ok = set(entry) == {"key", "kind"}
        elif kind == "prng_key":
            ok = set(entry) == {"key", "kind", "key_type"} and isinstance(
                entry["key_type"], str
            )
        elif kind in ("bool", "int", "float", "str"):
            value = entry.get("value")
            ok = set(entry) == {"key", "kind", "value"} and (
                (kind == "bool" and isinstance(value, bool))
                or (
                    kind == "int"
                    and isinstance(value, int)
                    and not isinstance(value, bool)
                )
                or (kind in ("float", "str") and isinstance(value, str))
            )
        else:
            ok = False
        if not ok:
            raise ConfigError(
                f"{what}: {INFO} leaves[{i}] is malformed: {str(entry)[:200]}."
            )
    return info


def _expected_nbytes(like_entries: list[tuple[str, Any]]) -> int:
    total = 0
    for _, leaf in like_entries:
        if _scalar_kind(leaf) is not None:
            continue
        spec = (
            jax.eval_shape(jax.random.key_data, leaf) if _is_key_array(leaf) else leaf
        )
        total += int(np.prod(spec.shape, dtype=object)) * np.dtype(spec.dtype).itemsize
    return total


def restore_checkpoint(
    path: str | os.PathLike[str],
    like: Any,
    *,
    model_config: Mapping[str, Any] | None = None,
) -> Checkpoint:
    """Read a checkpoint into the structure of `like`, exactly as it was saved.

    Args:
        path: A file written by `save_checkpoint`.
        like: A pytree with the structure of the saved one; its leaves (arrays,
            `jax.ShapeDtypeStruct`s, Python scalars) give the expected shapes,
            dtypes and kinds. Restored arrays are NumPy arrays where `like` holds
            NumPy arrays, JAX arrays otherwise (placed with the template's
            sharding when it has one).
        model_config: The current model's config: refused if the checkpoint
            was saved for a different one.

    Returns:
        A `Checkpoint(tree, metadata, step, versions)`.

    Raises:
        ModelLoadError: (a subclass) the file is malformed or hostile
            (`ArchiveError`, `TensorFileError`, `ConfigError`, ...), disagrees
            with `like` (`WeightsMismatchError`) or belongs to another model
            (`CheckpointMismatchError`).

    Example:
        >>> import os, tempfile, jax, jax.numpy as jnp
        >>> path = os.path.join(tempfile.mkdtemp(), "c.fkc")
        >>> save_checkpoint(path, {"w": jnp.ones(3)}, model_config={"units": 3})
        >>> like = {"w": jax.ShapeDtypeStruct((3,), jnp.float32)}
        >>> restore_checkpoint(path, like).tree["w"].tolist()
        [1.0, 1.0, 1.0]
        >>> other = {"units": 4}
        >>> restore_checkpoint(path, like, model_config=other)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        funkeras.errors.CheckpointMismatchError: ...saved for a different model ...
    """
    what = os.fspath(path)
    like_entries = _template_entries(like)
    _, treedef = jax.tree_util.tree_flatten(like)
    budget = _expected_nbytes(like_entries) + MAX_INFO_BYTES + 2 * MAX_HEADER_BYTES
    data = archive.read_file(path, max_bytes=budget, what=what)
    members = archive.read_archive(data, kind=KIND, required={INFO, ARRAYS}, what=what)
    info = _check_info(
        archive.parse_json(
            members[INFO],
            what=f"{what}: {INFO}",
            max_bytes=MAX_INFO_BYTES,
            allow_nonfinite=True,
        ),
        what,
    )
    if model_config is not None:
        want = config_fingerprint(model_config)
        if info["fingerprint"] != want:
            raise CheckpointMismatchError(
                f"{what}: this checkpoint was saved for a different model "
                + (
                    "(it records no model config)"
                    if info["fingerprint"] is None
                    else f"(config fingerprint {info['fingerprint'][:12]}..., the "
                    f"current model's is {want[:12]}...)"
                )
                + ". Restore it into the model it was written for."
            )

    stored = {entry["key"]: entry for entry in info["leaves"]}
    if len(stored) != len(info["leaves"]):
        raise ConfigError(f"{what}: {INFO} lists a leaf key twice.")
    want_keys = [key for key, _ in like_entries]
    missing = [k for k in want_keys if k not in stored]
    unexpected = [k for k in stored if k not in set(want_keys)]
    problems = [f"  missing in the file: {k!r}" for k in missing[:20]]
    problems += [f"  unexpected in the file: {k[:200]!r}" for k in unexpected[:20]]
    expected_arrays: dict[str, Any] = {}
    for key, leaf in like_entries:
        entry = stored.get(key)
        if entry is None:
            continue
        kind = _scalar_kind(leaf)
        if kind is not None:
            if entry["kind"] != kind:
                problems.append(
                    f"  {key!r}: expected a Python {kind}, the file has {entry['kind']}"
                )
        elif _is_key_array(leaf):
            if entry["kind"] != "prng_key" or entry["key_type"] != str(leaf.dtype):
                got = entry.get("key_type", entry["kind"])
                problems.append(
                    f"  {key!r}: expected a {leaf.dtype} key array, the file has {got}"
                )
            else:
                expected_arrays[key] = jax.eval_shape(jax.random.key_data, leaf)
        elif entry["kind"] != "array":
            problems.append(
                f"  {key!r}: expected an array, the file has a {entry['kind']}"
            )
        else:
            expected_arrays[key] = leaf
    if problems:
        raise WeightsMismatchError(
            f"{what}: the checkpoint does not match the `like` template:\n"
            + "\n".join(problems)
        )
    arrays = tensors_from_bytes(
        members[ARRAYS], what=f"{what}: {ARRAYS}", expected=expected_arrays
    )

    leaves = []
    for key, leaf in like_entries:
        entry = stored[key]
        kind = _scalar_kind(leaf)
        if kind == "float":
            try:
                leaves.append(float.fromhex(entry["value"]))
            except (ValueError, OverflowError):
                raise ConfigError(f"{what}: leaf {key!r} is not a hex float.") from None
        elif kind is not None:
            leaves.append(entry["value"])
        elif _is_key_array(leaf):
            data_ = jnp.asarray(arrays[key])
            leaves.append(jax.random.wrap_key_data(data_, impl=_key_impl(leaf)))
        elif isinstance(leaf, np.ndarray | np.generic):
            leaves.append(np.array(arrays[key]).reshape(np.shape(leaf)))
        else:
            sharding = getattr(leaf, "sharding", None)
            value = arrays[key]
            leaves.append(
                jax.device_put(value, sharding)
                if sharding is not None
                else jnp.asarray(value)
            )
    return Checkpoint(
        tree=jax.tree_util.tree_unflatten(treedef, leaves),
        metadata=info["metadata"],
        step=info["step"],
        versions=dict(info["versions"]),
    )


# ----------------------------------------------------------------------------
# A directory of checkpoints.
# ----------------------------------------------------------------------------

# Only the names `path_for` writes (no leading zeros): a stray `ckpt_007.fkc`
# is not a checkpoint of this manager, and is ignored.
_NAME = re.compile(r"ckpt_(0|[1-9][0-9]{0,18})\.fkc")


class CheckpointManager:
    """A directory of step-numbered checkpoints, keeping the last `max_to_keep`.

    Every save is atomic (`ckpt_<step>.fkc` appears whole or not at all), so an
    interrupted run always finds its previous checkpoint intact.

    Args:
        directory: Where the checkpoints live (created if missing).
        max_to_keep: How many of the newest checkpoints to keep; `None` keeps all.
        model_config: The model's `get_config()`: stored as a fingerprint on save
            and checked on restore.

    Example:
        >>> import tempfile, jax, jax.numpy as jnp
        >>> tree = {"w": jnp.arange(3.0), "key": jax.random.key(1), "step": 7}
        >>> manager = CheckpointManager(tempfile.mkdtemp(), max_to_keep=2)
        >>> for step in (1, 2, 3):
        ...     _ = manager.save(step, tree, metadata={"epoch": step})
        >>> manager.all_steps()
        [2, 3]
        >>> restored = manager.restore(like=tree)
        >>> restored.step, restored.metadata["epoch"], restored.tree["w"].tolist()
        (3, 3, [0.0, 1.0, 2.0])
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_to_keep: int | None = 5,
        *,
        model_config: Mapping[str, Any] | None = None,
    ) -> None:
        if max_to_keep is not None and (
            isinstance(max_to_keep, bool)
            or not isinstance(max_to_keep, int)
            or max_to_keep < 1
        ):
            raise ValueError(
                f"CheckpointManager: `max_to_keep` must be a positive int or None, "
                f"got {max_to_keep!r}."
            )
        self.directory = os.fspath(directory)
        self.max_to_keep = max_to_keep
        self.model_config = None if model_config is None else dict(model_config)
        os.makedirs(self.directory, exist_ok=True)

    def path_for(self, step: int) -> str:
        """The file of the checkpoint at `step`."""
        return os.path.join(self.directory, f"ckpt_{int(step)}.fkc")

    def all_steps(self) -> list[int]:
        """The steps with a checkpoint on disk, ascending."""
        steps = []
        for name in os.listdir(self.directory):
            match = _NAME.fullmatch(name)
            if match:
                steps.append(int(match.group(1)))
        return sorted(steps)

    def latest_step(self) -> int | None:
        """The newest step with a checkpoint, or `None` if there is none."""
        steps = self.all_steps()
        return steps[-1] if steps else None

    def save(
        self, step: int, tree: Any, metadata: Mapping[str, Any] | None = None
    ) -> str:
        """Write the checkpoint of `step`, then delete the oldest beyond `max_to_keep`.

        Returns:
            The path written.
        """
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
            raise ValueError(
                f"CheckpointManager.save: `step` must be an int >= 0, got {step!r}."
            )
        path = self.path_for(step)
        save_checkpoint(
            path, tree, metadata, step=int(step), model_config=self.model_config
        )
        if self.max_to_keep is not None:
            for old in self.all_steps()[: -self.max_to_keep]:
                try:
                    os.unlink(self.path_for(old))
                except FileNotFoundError:
                    pass
        return path

    def restore(self, step: int | None = None, *, like: Any) -> Checkpoint:
        """Restore the checkpoint of `step` (the latest by default) into `like`.

        Raises:
            FileNotFoundError: there is no checkpoint (at `step`).
            ModelLoadError: see `restore_checkpoint`.
        """
        if step is None:
            step = self.latest_step()
            if step is None:
                raise FileNotFoundError(
                    f"CheckpointManager: no checkpoint in {self.directory!r}."
                )
        return restore_checkpoint(
            self.path_for(step), like, model_config=self.model_config
        )
