"""Whole-model files (`.fkz`) and weights files (`.safetensors`).

A model file is a canonical archive (see `funkeras.saving.archive`) of:

- `manifest.json`: format version, member names, sizes and SHA-256s;
- `config.json`: pure data, `{"format_version", "funkeras_version", "model":
  {"class_name": registry key, "config": model.get_config()}, "compile":
  model.get_compile_config() or null}`;
- `weights.safetensors`: params and state merged under `"layer/variable"` keys
  (`"encoder/dense/kernel"` inside a nested model);
- optionally `optimizer.safetensors` (the optimizer state's leaves by key path)
  and `train_state.json` (the epoch and step counters that `fit` continues from).

Saving the same model twice gives identical bytes, and a save is atomic. A weights
file is a plain safetensors file with the same `"layer/variable"` keys.
"""

from __future__ import annotations

import io
import math
import os
import warnings
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._validation import short_message
from funkeras._version import __version__
from funkeras.errors import (
    ArchiveError,
    BudgetExceededError,
    ConfigError,
    FormatVersionError,
    ModelLoadError,
    NotSerializableError,
)
from funkeras.saving import archive, keras_archive, keras_h5
from funkeras.saving.checkpoints import _leaves_by_key
from funkeras.saving.registry import (
    custom_object_scope,
    get_registered_class,
    is_model_class,
    registry_key,
)
from funkeras.saving.safetensors_io import (
    MAX_HEADER_BYTES,
    check_data_digest,
    compare_to_expected,
    flatten_dict,
    read_header,
    tensors_from_bytes,
    tensors_to_bytes,
    unflatten_like,
    with_data_digest,
)

__all__ = [
    "DEFAULT_MAX_PARAMS",
    "DEFAULT_MAX_NODES",
    "check_file_name",
    "save_model",
    "load_model",
    "save_weights",
    "load_weights",
]

KIND = "model"
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"
OPTIMIZER = "optimizer.safetensors"
TRAIN_STATE = "train_state.json"
DEFAULT_MAX_PARAMS = 2**31
DEFAULT_MAX_NODES = 10_000
"""The most layer calls (graph nodes) `load_model` rebuilds by default: each one
is traced to infer its shapes, so this bounds the CPU time a file can ask for."""
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_CONFIG_CLASSES = 20_000
MAX_CONFIG_CONTAINERS = 250_000
MAX_TRAIN_STATE_BYTES = 64 * 1024
# Bytes a file may hold per parameter of the budget: the weights (at most 8
# bytes per value) plus an optimizer state of up to five slots per weight.
_BYTES_PER_PARAM = 48


# ----------------------------------------------------------------------------
# The file-name rule, and Keras' own files.
# ----------------------------------------------------------------------------

MODEL_SUFFIX = ".fkz"
WEIGHTS_SUFFIX = ".weights.safetensors"
HDF5_SIGNATURE = keras_h5.HDF5_SIGNATURE
# Names that claim a format: (suffix, what a file so named is). Longest first.
_CLAIMS = (
    (".weights.safetensors", "weights", "a funkeras weights file (safetensors)"),
    (".weights.h5", "keras", "Keras' HDF5 weights format"),
    (".safetensors", "weights", "a weights file (safetensors)"),
    (".keras", "keras", "Keras' own archive format"),
    (".h5", "keras", "Keras' HDF5 format"),
    (".hdf5", "keras", "Keras' HDF5 format"),
    (".fkz", "model", "funkeras' model format"),
    (".fkc", "other", "a funkeras train-state checkpoint (`save_checkpoint`)"),
    (".fkx", "other", "a funkeras exported program (`export_model`)"),
)


def check_file_name(owner: str, path: str | os.PathLike[str], kind: str) -> str:
    """The one file-name rule of `save`, `save_weights` and `ModelCheckpoint`.

    A name must not claim a format the file is not in. A model file
    (`kind="model"`) is funkeras' own archive: name it `*.fkz`. A weights file
    (`kind="weights"`) is plain safetensors: name it `*.weights.safetensors`
    (or `*.safetensors`). Names ending in another format's suffix are refused:
    Keras' `.keras`, `.h5`, `.weights.h5` (funkeras does not write Keras'
    formats), and funkeras' other kinds of file. A name with no suffix, or one
    that names no format, is written as given (nothing is appended, so the
    name you save to is the name you load from).

    Returns:
        The path as a string.

    Raises:
        ValueError: the name claims another format; the message says which
            name to use.

    Example:
        >>> check_file_name("save", "m.fkz", "model")
        'm.fkz'
        >>> check_file_name("save", "m.keras", "model")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: save: 'm.keras' ends in `.keras`, Keras' own archive format...
    """
    name = os.fspath(path)
    lower = name.lower()
    for suffix, claims, meaning in _CLAIMS:
        if not lower.endswith(suffix):
            continue
        if claims == kind:
            return name
        stem = name[: len(name) - len(suffix)]
        if kind == "model":
            want_name = stem + MODEL_SUFFIX
            what = (
                "funkeras writes its own model format (a zip of config.json and "
                "weights.safetensors that Keras cannot read)"
            )
            rule = "A funkeras model file's name must end in `.fkz`"
        else:
            want_name = stem + WEIGHTS_SUFFIX
            what = "funkeras writes weights as a plain safetensors file"
            rule = (
                "A funkeras weights file's name must end in `.weights.safetensors` "
                "(or `.safetensors`)"
            )
        if kind == "model" and claims == "weights":
            hint = " (to save only the weights use `save_weights`)"
        elif kind == "weights" and claims == "model":
            hint = " (to save the whole model use `save`)"
        else:
            hint = ""
        raise ValueError(
            f"{owner}: {name!r} ends in `{suffix}`, {meaning}, but {what}; a "
            f"`{suffix}` name would claim a format the file is not in. {rule}: "
            f"{want_name!r}{hint}."
        )
    return name


_OTHER_KINDS = {
    "checkpoint": "a funkeras train-state checkpoint",
    "export": "a funkeras exported program",
}
_OTHER_LOADERS = {
    "checkpoint": "`fk.saving.restore_checkpoint`",
    "export": "`fk.saving.load_exported`",
}


def _funkeras_kind(data: bytes | memoryview, names: list[str]) -> str | None:
    """The `kind` a funkeras archive's manifest declares, or None."""
    if not names or names[0] != archive.MANIFEST:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
            info = z.getinfo(archive.MANIFEST)
            if info.file_size > 64 * 1024 or info.compress_type != zipfile.ZIP_STORED:
                return None
            manifest = archive.parse_json(
                z.read(info), what=archive.MANIFEST, max_bytes=64 * 1024, max_depth=4
            )
    except Exception:  # a damaged manifest: the archive message stands
        return None
    kind = manifest.get("kind") if isinstance(manifest, dict) else None
    return kind if isinstance(kind, str) else None


def _other_file_message(data: bytes | memoryview, what: str) -> str | None:
    """What a file that is not a model archive is, and what to call instead."""
    head = bytes(data[:16])
    if head[:8] == HDF5_SIGNATURE:
        return (
            f"{what}: this is an HDF5 file (Keras' `.weights.h5` weights, or a "
            "Keras 2 `.h5` model), not a model file. Keras 3 weights load into a "
            "funkeras model of the same architecture: build it and call "
            "`model.load_weights(path)`. A Keras 2 `.h5` model must be saved "
            "again from Keras 3 as `.keras`, which `fk.load_model` reads."
        )
    if not head:
        return f"{what}: the file is empty, not a model file."
    if len(head) >= 9 and head[8:9] == b"{" and head[:4] != b"PK\x03\x04":
        return (
            f"{what}: this is a safetensors weights file, not a model file: build "
            "the model and call `model.load_weights(path)`."
        )
    if head[:6] == b"\x93NUMPY":
        return (
            f"{what}: this is a NumPy `.npy` array, not a model file: load it with "
            "`np.load` and pass the arrays to `model.set_weights`."
        )
    if head[:1] == b"\x80" or head[:2] in (b"(d", b"(l", b"cc"):
        return (
            f"{what}: this looks like a Python pickle (a PyTorch or Keras 2 "
            "checkpoint?), which funkeras never unpickles: it could run code."
        )
    if head.lstrip()[:1] in (b"{", b"["):
        return (
            f"{what}: this is a JSON text file, not a model file (a config from "
            "`model.to_json()` is rebuilt with `fk.models.model_from_json`)."
        )
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
                names = z.namelist()
        except Exception:  # not a readable zip: the archive message stands
            return None
        kind = _funkeras_kind(data, names)
        if kind in _OTHER_KINDS:
            return (
                f"{what}: its {archive.MANIFEST} says this is {_OTHER_KINDS[kind]}, "
                f"not a model file: open it with {_OTHER_LOADERS[kind]}."
            )
        if names and all(n.endswith(".npy") for n in names):
            return (
                f"{what}: this is a NumPy `.npz` archive, not a model file: load "
                "it with `np.load` and pass the arrays to `model.set_weights`."
            )
    return None


def _read_model_archive(data: bytes, what: str) -> dict[str, memoryview]:
    """`read_archive` of a `.fkz`, naming a Keras file as such when refused."""
    try:
        return archive.read_archive(
            data,
            kind=KIND,
            required={CONFIG, WEIGHTS},
            optional={OPTIMIZER, TRAIN_STATE},
            what=what,
        )
    except ArchiveError:
        message = _other_file_message(data, what)
        if message is None:
            raise
        raise ArchiveError(message) from None


# ----------------------------------------------------------------------------
# Helpers shared by save and load.
# ----------------------------------------------------------------------------


def _merge(params: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """Params and state in one flat `{"layer/variable": array}` dict."""
    flat = flatten_dict(params, what="params")
    for key, value in flatten_dict(state, what="state").items():
        if key in flat:
            raise ValueError(f"weight {key!r} appears in both params and state.")
        flat[key] = value
    return flat


def _require_model(model: Any, what: str) -> None:
    if not is_model_class(type(model)):
        raise TypeError(
            f"{what}: expected a funkeras model, got {type(model).__name__}."
        )


def _abstract_weights(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `(params, state)` shapes and dtypes from `jax.eval_shape` (no allocation)."""
    return jax.eval_shape(lambda k: model.init(k, model.input_spec), jax.random.key(0))


def _count(tree: Any) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


def _optimizer_tensors(opt_state: Any) -> dict[str, Any]:
    leaves, _ = _leaves_by_key(opt_state, "optimizer state")
    out: dict[str, Any] = {}
    for key, leaf in leaves:
        if not isinstance(
            leaf, jax.Array | np.ndarray | np.generic
        ) or jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            raise NotSerializableError(
                f"optimizer state leaf {key!r} is a {type(leaf).__name__}; only "
                "numeric arrays can be saved (pass include_optimizer=False to skip "
                "the optimizer)."
            )
        out[key] = leaf
    return out


# ----------------------------------------------------------------------------
# Save.
# ----------------------------------------------------------------------------


def save_model(
    model: Any, path: str | os.PathLike[str], *, include_optimizer: bool = True
) -> None:
    """Save a model's architecture, weights and (optionally) training setup to one file.

    The file is written atomically (a crash leaves the previous file intact) and
    deterministically (the same model gives the same bytes). Everything is
    checked before anything is written: a layer holding a Python function (an
    activation given as a lambda) or an unregistered class cannot be saved.

    Args:
        model: A funkeras `Model` or `Sequential`.
        path: The file to write, `*.fkz` (see `check_file_name`: a `.keras`
            or `.h5` name is refused, as the file is not in Keras' format).
        include_optimizer: Also save the compile configuration, the optimizer
            state and the epoch/step counters (if the model is compiled). With
            `False` the loaded model comes back uncompiled.

    Raises:
        NotSerializableError: the config holds a callable or another non-data
            value (the message names where), or a class is not registered.
        TypeError: `model` is not a model.
        ValueError: `path` claims another format (`.keras`, `.h5`).

    Example:
        >>> import os, tempfile, numpy as np
        >>> import funkeras as fk
        >>> from funkeras.saving.format import save_model, load_model
        >>> model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])
        >>> path = os.path.join(tempfile.mkdtemp(), "m.fkz")
        >>> save_model(model, path)
        >>> x = np.ones((4, 3), np.float32)
        >>> y = model.predict(x, verbose=0)
        >>> bool((load_model(path).predict(x, verbose=0) == y).all())
        True
    """
    _require_model(model, "save_model")
    path = check_file_name("save_model", path, "model")
    key = registry_key(type(model))
    config = archive.check_json_data(model.get_config(), "model.config")
    compile_config = None
    if include_optimizer:
        try:
            raw = model.get_compile_config()
        except (TypeError, ValueError) as e:
            raise NotSerializableError(
                f"model.compile: the training setup cannot be saved as data ({e}). "
                "Pass include_optimizer=False to save the model without it."
            ) from e
        if raw is not None:
            compile_config = archive.check_json_data(raw, "model.compile")
    document = {
        "format_version": archive.FORMAT_VERSION,
        "funkeras_version": __version__,
        "model": {"class_name": key, "config": config},
        "compile": compile_config,
    }
    weights = _merge(model.params, model.state) if model.built else {}
    members: list[tuple[str, bytes]] = [
        (CONFIG, archive.dump_json(document)),
        (WEIGHTS, tensors_to_bytes(weights)),
    ]
    if compile_config is not None:
        if model.opt_state is not None:
            members.append(
                (OPTIMIZER, tensors_to_bytes(_optimizer_tensors(model.opt_state)))
            )
        progress = model.progress
        counters = {"epoch": int(progress.epoch), "step": int(progress.step)}
        members.append((TRAIN_STATE, archive.dump_json(counters)))
    archive.write_archive(path, KIND, members)


def save_weights(model: Any, path: str | os.PathLike[str]) -> None:
    """Save a model's params and state as a safetensors file, atomically.

    Keys are `"layer/variable"` (`"dense/kernel"`, `"batch_normalization/
    moving_mean"`; `"encoder/dense/kernel"` inside a nested model), so any
    safetensors tool can read the file.

    Raises:
        TypeError: `model` is not a model.
        ValueError: the model is not built (it has no weights yet), or `path`
            claims another format (`.weights.h5`, `.fkz`; see `check_file_name`).

    Example:
        >>> import os, tempfile, safetensors.numpy
        >>> import funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_weights(model, path)
        >>> sorted(safetensors.numpy.load_file(path))
        ['dense/bias', 'dense/kernel']
    """
    _require_model(model, "save_weights")
    path = check_file_name("save_weights", path, "weights")
    if not model.built:
        raise ValueError(
            "save_weights: the model has no weights yet; build it first "
            "(`model.build(input_shape)` or an `fk.Input`)."
        )
    data = tensors_to_bytes(_merge(model.params, model.state), {"format": "funkeras"})
    # The data's SHA-256 in the metadata: `load_weights` verifies it.
    archive.atomic_write(path, [with_data_digest(data)])


# ----------------------------------------------------------------------------
# Load.
# ----------------------------------------------------------------------------


def _check_document(
    document: Any, what: str, max_nodes: int = DEFAULT_MAX_NODES
) -> dict[str, Any]:
    where = f"{what}: {CONFIG}"
    keys = {"format_version", "funkeras_version", "model", "compile"}
    if not isinstance(document, dict) or set(document) != keys:
        got = (
            sorted(document) if isinstance(document, dict) else type(document).__name__
        )
        raise ConfigError(
            f"{where} must be an object with exactly the keys {sorted(keys)}, "
            f"got {got}."
        )
    version = document["format_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ConfigError(
            f"{where}: `format_version` must be an int, got {version!r:.40}."
        )
    if version > archive.FORMAT_VERSION or version < 1:
        raise FormatVersionError(
            f"{where}: format version {version} is not supported (this funkeras "
            f"reads version {archive.FORMAT_VERSION}); upgrade funkeras to load it."
        )
    if not isinstance(document["funkeras_version"], str):
        raise ConfigError(f"{where}: `funkeras_version` must be a string.")
    model = document["model"]
    if not isinstance(model, dict) or set(model) != {"class_name", "config"}:
        raise ConfigError(
            f"{where}: `model` must be an object with 'class_name' and 'config'."
        )
    if not isinstance(model["config"], dict):
        raise ConfigError(f"{where}: `model.config` must be an object.")
    if document["compile"] is not None and not isinstance(document["compile"], dict):
        raise ConfigError(f"{where}: `compile` must be an object or null.")
    # Rebuilding costs time per layer and per call node: bound both up front.
    classes = containers = calls = 0
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            classes += "class_name" in node
            containers += 1
            # Call nodes of functional configs, layers of Sequential ones: an
            # upper bound on the layer calls the rebuild traces.
            for key in ("nodes", "layers"):
                if isinstance(node.get(key), list):
                    calls += len(node[key])
            stack.extend(node.values())
        elif isinstance(node, list):
            containers += 1
            stack.extend(node)
    if classes > MAX_CONFIG_CLASSES or containers > MAX_CONFIG_CONTAINERS:
        raise BudgetExceededError(
            f"{where}: the config has {classes} class entries and {containers} JSON "
            f"objects and lists; at most {MAX_CONFIG_CLASSES} and "
            f"{MAX_CONFIG_CONTAINERS} are allowed."
        )
    if calls > max_nodes:
        raise BudgetExceededError(
            f"{where}: the config describes up to {calls:,} layer calls, over the "
            f"max_nodes={max_nodes:,} set by the caller (each one is traced when "
            "the model is rebuilt); nothing was built. Pass a larger max_nodes to "
            "load_model if you trust this graph."
        )
    return document


def _rebuild(document: dict[str, Any], what: str) -> Any:
    where = f"{what}: {CONFIG}"
    spec = document["model"]
    cls = get_registered_class(spec["class_name"], where=f"{where} model.class_name")
    if not is_model_class(cls):
        raise ConfigError(
            f"{where}: model.class_name {spec['class_name']!r} is a layer, not a model."
        )

    def resolve(name: Any) -> type:
        return get_registered_class(name, where=where)

    try:
        model = cls.from_config(spec["config"], resolve=resolve)
    except ModelLoadError:
        raise
    except MemoryError as e:  # the weight budget refused a layer before allocating
        raise BudgetExceededError(
            f"{where}: the model's weights exceed what can be allocated, so it "
            f"was refused before anything was allocated (the max_params check "
            f"comes after the build): {short_message(e, 400)}"
        ) from None
    except Exception as e:  # a layer refusing its config: any exception type
        raise ConfigError(
            f"{where}: the model config was refused while rebuilding the model: "
            f"{type(e).__name__}: {short_message(e, 400)}"
        ) from None
    if not is_model_class(type(model)):
        raise ConfigError(
            f"{where}: {spec['class_name']!r}.from_config did not build a model."
        )
    _refuse_unknown_keys(spec["config"], model.get_config(), what, "model.config")
    return model


def _unknown_keys(saved: Any, rebuilt: Any, path: str) -> list[str]:
    """Keys of `saved` that the rebuilt object's config does not have (ignored data)."""
    out: list[str] = []
    if isinstance(saved, dict) and isinstance(rebuilt, dict):
        for key, value in saved.items():
            if key not in rebuilt:
                out.append(f"{path}.{key}")
            else:
                out += _unknown_keys(value, rebuilt[key], f"{path}.{key}")
    elif (
        isinstance(saved, list)
        and isinstance(rebuilt, list)
        and len(saved) == len(rebuilt)
    ):
        for i, (a, b) in enumerate(zip(saved, rebuilt, strict=True)):
            out += _unknown_keys(a, b, f"{path}[{i}]")
    return out


def _refuse_unknown_keys(saved: Any, rebuilt: Any, what: str, root: str) -> None:
    # A key the loader would silently ignore could be a switch the file hopes is
    # honoured (`"safe_mode": false`); a file written by funkeras has none.
    unknown = _unknown_keys(saved, rebuilt, root)
    if unknown:
        raise ConfigError(
            f"{what}: {CONFIG}: unknown key(s) {unknown[:10]} that the rebuilt model "
            "does not use; refused rather than ignored."
        )


def _check_budget(model: Any, max_params: int, what: str) -> tuple[Any, Any]:
    if not model.built:
        return {}, {}
    try:
        params, state = _abstract_weights(model)
        # Regularizers are resolved by name only when a penalty is computed:
        # resolve them now, abstractly, so a bad name is refused at load time.
        jax.eval_shape(model.penalty, params)
    except ModelLoadError:
        raise
    except Exception as e:
        raise ConfigError(
            f"{what}: {CONFIG}: the model's weights cannot be described: "
            f"{type(e).__name__}: {short_message(e, 400)}"
        ) from None
    count = _count(params) + _count(state)
    if count > max_params:
        raise BudgetExceededError(
            f"{what}: the model in {CONFIG} has {count:,} parameters, over the budget "
            f"max_params={max_params:,} set by the caller; nothing was allocated. "
            "Pass a larger max_params to load_model if you trust this size."
        )
    return params, state


def _to_device(arrays: dict[str, np.ndarray], like: dict[str, Any]) -> dict[str, Any]:
    flat = {key: jnp.asarray(value) for key, value in arrays.items()}
    return unflatten_like(flat, like)


def _assign_weights(model: Any, params: Any, state: Any) -> None:
    # The weights were already checked against `jax.eval_shape(model.init)`
    # (names, shapes and dtypes), so they are assigned as they are: the setters
    # would check them again, and no throwaway initial weights are created.
    model.publish(params, state, model.opt_state)


def _restore_optimizer(model: Any, data: memoryview, what: str) -> None:
    template = model.opt_state
    if template is None:
        raise ConfigError(
            f"{what}: {OPTIMIZER} is present but the model has no optimizer state."
        )
    leaves, treedef = _leaves_by_key(template, "optimizer state")
    expected = {key: jax.ShapeDtypeStruct(np.shape(v), v.dtype) for key, v in leaves}
    arrays = tensors_from_bytes(data, what=f"{what}: {OPTIMIZER}", expected=expected)
    model.opt_state = jax.tree_util.tree_unflatten(
        treedef, [jnp.asarray(arrays[key]) for key, _ in leaves]
    )


def _restore_progress(model: Any, data: memoryview, what: str) -> None:
    progress = archive.parse_json(
        data,
        what=f"{what}: {TRAIN_STATE}",
        max_bytes=MAX_TRAIN_STATE_BYTES,
        max_depth=2,
    )
    ok = (
        isinstance(progress, dict)
        and set(progress) == {"epoch", "step"}
        and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63
            for v in progress.values()
        )
    )
    if not ok:
        raise ConfigError(
            f"{what}: {TRAIN_STATE} must be {{'epoch': int >= 0, 'step': int >= 0}}."
        )
    model.progress.epoch = progress["epoch"]
    model.progress.step = progress["step"]


def load_model(
    path: str | os.PathLike[str],
    custom_objects: dict[str, type] | None = None,
    compile: bool = True,
    safe_mode: bool = True,
    *,
    max_params: int = DEFAULT_MAX_PARAMS,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> Any:
    """Load a model saved by `save_model`: architecture, weights, and training setup.

    Threat model. A model file is treated as hostile data. What is guaranteed:

    - No code from the file ever runs. Layers and models are named by registry
      key and looked up only in the registry (built-in classes, and classes the
      loading program registered with `register_serializable`); nothing is
      imported, `getattr`-ed, unpickled or evaluated by a name read from the file.
      Losses, metrics and optimizers are resolved through their modules' own
      name tables. No argument, config value or file member turns this off.
    - Memory and time are bounded before anything is allocated: the file size
      (from `max_params`; the file is then read whole), the manifest, config and
      header sizes, JSON depth, the number of class entries and JSON objects in
      the config, and the parameter count of the model the config describes,
      computed with `jax.eval_shape` and checked against `max_params` (a budget
      set by the caller, never read from the file) before any weight exists. The
      weights' names, shapes and dtypes are checked against that model before any
      tensor data is copied.
    - The archive is checked whole: canonical zip layout (no compression, links,
      path traversal, duplicate, missing or extra members, data before or after
      the archive), member sizes and SHA-256s against the manifest, format
      versions, strict JSON. Every refusal raises a subclass of
      `funkeras.errors.ModelLoadError` naming the member, key and rule.

    What is not guaranteed: hostile weights within the declared shapes can give
    wrong predictions (anything the architecture can compute), and the SHA-256s
    protect against corruption, not against an author who rewrites the manifest.
    Registered user classes receive their config values as constructor
    arguments, so they must validate them as built-in layers do.

    Args:
        path: A file written by `save_model`, or a Keras 3 `.keras` archive,
            read as data (`funkeras.saving.keras_archive`: Sequential and
            functional models of funkeras' layers; `Lambda` and custom classes
            refused by name; needs h5py, the `h5` extra). Any other file is
            refused with what it is and what to call instead.
        custom_objects: `{name: class}` given in code, as in Keras: classes the
            config names (by `"package>Name"` or a plain name) that are not
            registered; looked up first, as in `custom_object_scope`.
        safe_mode: Accepted for Keras scripts. funkeras always loads safely:
            no value turns on running code from the file (`False` enables
            nothing, as there is nothing unsafe to enable).
        max_params: The most parameters (weights plus state, counted as scalars)
            the loaded model may have; the file may hold at most 48 bytes per
            allowed parameter, plus a fixed allowance for its JSON and headers.
        compile: Compile the model from the saved compile configuration (if
            any) and restore the optimizer state and epoch/step counters.
        max_nodes: The most layer calls (graph nodes, counted over every nested
            model) the file may describe; rebuilding traces each one, so this
            bounds the time spent before the file is accepted.

    Returns:
        The model, with its weights; compiled if `compile` and the file holds a
        compile configuration.

    Raises:
        ModelLoadError: (a subclass) the file is refused: `ArchiveError`,
            `FormatVersionError`, `ConfigError`, `UnsafeConfigError`,
            `TensorFileError`, `WeightsMismatchError`, `BudgetExceededError`.
        FileNotFoundError: (and other `OSError`s) from the file system.

    Example:
        >>> import os, tempfile
        >>> import funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> path = os.path.join(tempfile.mkdtemp(), "m.fkz")
        >>> save_model(model, path)
        >>> loaded = load_model(path)
        >>> loaded.compiled, loaded.count_params()
        (True, 8)
        >>> load_model(path, max_params=7)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        funkeras.errors.BudgetExceededError: ...has 8 parameters, over the budget...
    """
    if (
        isinstance(max_params, bool)
        or not isinstance(max_params, int)
        or max_params < 0
    ):
        raise ValueError(
            f"load_model: `max_params` must be an int >= 0, got {max_params!r}."
        )
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(
            f"load_model: `max_nodes` must be an int >= 1, got {max_nodes!r}."
        )
    for arg, value in (("compile", compile), ("safe_mode", safe_mode)):
        if not isinstance(value, bool):
            raise TypeError(f"load_model: `{arg}` must be a bool, got {value!r}.")
    with custom_object_scope(custom_objects):
        return _load_model(os.fspath(path), compile, max_params, max_nodes)


def _load_model(
    what: str, compile: bool, max_params: int, max_nodes: int = DEFAULT_MAX_NODES
) -> Any:
    budget = _BYTES_PER_PARAM * max_params + MAX_CONFIG_BYTES + 4 * MAX_HEADER_BYTES
    data = archive.read_file(what, max_bytes=budget, what=what)
    if data[:8] == HDF5_SIGNATURE:
        raise ArchiveError(_other_file_message(data, what))
    if keras_archive.is_keras_archive(data):
        return keras_archive.load_keras_model(
            data, what, compile=compile, max_params=max_params
        )
    members = _read_model_archive(data, what)
    document = _check_document(
        archive.parse_json(
            members[CONFIG], what=f"{what}: {CONFIG}", max_bytes=MAX_CONFIG_BYTES
        ),
        what,
        max_nodes,
    )
    if document["compile"] is None and (OPTIMIZER in members or TRAIN_STATE in members):
        raise ConfigError(
            f"{what}: optimizer state or train state is present without a compile "
            "config."
        )
    model = _rebuild(document, what)
    params_like, state_like = _check_budget(model, max_params, what)

    expected = _merge(params_like, state_like)
    arrays = tensors_from_bytes(
        members[WEIGHTS], what=f"{what}: {WEIGHTS}", expected=expected
    )
    if model.built:
        params_keys = flatten_dict(params_like)
        _assign_weights(
            model,
            _to_device({k: arrays[k] for k in params_keys}, params_like),
            _to_device(
                {k: v for k, v in arrays.items() if k not in params_keys}, state_like
            ),
        )

    if compile and document["compile"] is not None:
        try:
            model.compile_from_config(document["compile"])
            # `compile` defers resolving metrics and creating the optimizer state
            # to the first training call; do it now, so that a bad name is refused
            # here and the stored optimizer state has a template to match.
            if model.built:
                model.make_runner()
        except ModelLoadError:
            raise
        except Exception as e:
            raise ConfigError(
                f"{what}: {CONFIG}: the compile config was refused: "
                f"{type(e).__name__}: {short_message(e, 400)}"
            ) from None
        _refuse_unknown_keys(
            document["compile"], model.get_compile_config(), what, "compile"
        )
        if OPTIMIZER in members:
            _restore_optimizer(model, members[OPTIMIZER], what)
        if TRAIN_STATE in members:
            _restore_progress(model, members[TRAIN_STATE], what)
    return model


def _load_keras_weights(
    model: Any, data: bytes, what: str, skip_mismatch: bool
) -> None:
    """Keras 3 HDF5 weights into `model` (see `keras_h5` for the matching rule)."""
    params_like, state_like = _abstract_weights(model)
    expected = keras_h5.keras_weight_map(model, params_like, state_like, what)
    arrays = keras_h5.read_keras_weights(
        data, expected, what, skip_mismatch=skip_mismatch
    )
    keras_h5.assign_keras_weights(model, arrays, expected, model.params, model.state)


def _layer_of(key: str) -> str:
    return key.rsplit("/", 1)[0]


def load_weights(
    model: Any, path: str | os.PathLike[str], skip_mismatch: bool = False
) -> None:
    """Load weights saved by `save_weights`, a `.fkz` model file's, or Keras 3's.

    Every name, shape and dtype is checked; a refusal lists exactly which keys are
    missing, unexpected, or of another shape or dtype, and the model is left as
    it was.

    Args:
        model: A built model.
        path: A safetensors file with `"layer/variable"` keys, a model file,
            or Keras 3 weights: a `.weights.h5` file or a `.keras` archive,
            matched to the model by Keras' class-and-position paths (see
            `funkeras.saving.keras_h5`; needs h5py, the `h5` extra).
        skip_mismatch: As in Keras: skip the layers whose weights disagree (in
            number, shape or dtype) instead of refusing, with a warning naming
            them; the other layers are loaded.

    Raises:
        WeightsMismatchError: names, shapes or dtypes disagree (unless
            `skip_mismatch`).
        ModelLoadError: (other subclasses) the file is malformed.
        ValueError: the model is not built.

    Example:
        >>> import os, tempfile
        >>> import funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])
        >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_weights(model, path)
        >>> wider = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(4)])
        >>> load_weights(wider, path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        funkeras.errors.WeightsMismatchError: ...
          'dense/bias': expected float32[4], the file has float32[2]
          'dense/kernel': expected float32[3, 4], the file has float32[3, 2]
    """
    _require_model(model, "load_weights")
    if not model.built:
        raise ValueError(
            "load_weights: build the model first (`model.build(input_shape)` or an "
            "`fk.Input`), so that its weights' shapes are known."
        )
    what = os.fspath(path)
    params_like, state_like = _abstract_weights(model)
    expected = _merge(params_like, state_like)
    nbytes = sum(
        math.prod(s.shape) * np.dtype(s.dtype).itemsize for s in expected.values()
    )
    budget = 8 * nbytes + MAX_CONFIG_BYTES + 4 * MAX_HEADER_BYTES
    data = archive.read_file(path, max_bytes=budget, what=what)
    if data[:8] == HDF5_SIGNATURE:
        _load_keras_weights(model, data, what, skip_mismatch)
        return
    if keras_archive.is_keras_archive(data):
        weights = keras_archive.keras_weights_member(data, what, budget)
        _load_keras_weights(
            model, weights, f"{what}: {keras_archive.WEIGHTS}", skip_mismatch
        )
        return
    if data[:4] == b"PK\x03\x04":
        members = _read_model_archive(data, what)  # checked by the archive's hashes
        data, what = members[WEIGHTS], f"{what}: {WEIGHTS}"
    else:
        _, metadata = read_header(data, what=what)
        if not check_data_digest(data, metadata, what=what):
            warnings.warn(
                f"load_weights: {what} records no SHA-256 of its data (written by "
                "another tool or an older funkeras), so its values cannot be "
                "verified; it is loaded as it is.",
                stacklevel=2,
            )
    skip: set[str] = set()
    if skip_mismatch:
        infos, _ = read_header(data, what=what)
        mismatch = compare_to_expected(infos, expected)
        bad_layers = {_layer_of(k) for k in mismatch.missing}
        bad_layers |= {_layer_of(k) for k, _, _ in mismatch.wrong}
        model_layers = {_layer_of(k) for k in expected}
        bad_layers |= {_layer_of(k) for k in mismatch.unexpected} & model_layers
        skip = {k for k in expected if _layer_of(k) in bad_layers} | set(
            mismatch.unexpected
        )
        if bad_layers:
            warnings.warn(
                f"load_weights: skipped layer(s) {sorted(bad_layers)} whose weights "
                f"disagree with {what}:\n{mismatch.describe()}",
                stacklevel=2,
            )
    arrays = tensors_from_bytes(data, what=what, expected=expected, skip=skip)
    loaded = {key: jnp.asarray(value) for key, value in arrays.items()}
    # Weights the file does not provide (skipped layers) keep their current values.
    flat = loaded
    if loaded.keys() != expected.keys():
        flat = {**_merge(model.params, model.state), **loaded}
    params_keys = flatten_dict(params_like)
    params = unflatten_like(
        {k: v for k, v in flat.items() if k in params_keys}, params_like
    )
    state = unflatten_like(
        {k: v for k, v in flat.items() if k not in params_keys}, state_like
    )
    _assign_weights(model, params, state)
