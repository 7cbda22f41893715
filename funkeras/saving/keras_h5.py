"""Keras 3's HDF5 weights files (`.weights.h5`, and `model.weights.h5` in a `.keras`).

Keras 3 stores a model's variables by position in the object tree, not by
variable name::

    layers/<layer>/vars/0, 1, ...          a layer's variables: its trainable
                                           ones, then its non-trainable ones, in
                                           creation order
    layers/<model>/layers/<layer>/vars/... a nested model's layers
    optimizer/vars/..., vars/              optimizer and model-level state

`<layer>` is the snake-case class name, numbered by occurrence among the
container's layers (`dense`, `dense_1`, `conv2d`, `batch_normalization`), never
the layer's own name: two models of the same architecture match whatever their
layers are called (Keras' rule). funkeras walks its model the same way, so a
file matches a funkeras model of the same architecture (same layer classes in
the same order, same weight shapes); anything else is refused with the list of
differing entries.

Reading needs `h5py` (`pip install funkeras[h5]`). The file is read whole into
memory (bounded by the caller) and opened from there; before any dataset is
read the reader refuses external and soft links, virtual datasets, external
raw storage, compressed or filtered datasets, non-numeric dtypes, and datasets
whose declared size disagrees with the bytes they store or runs past the end of
the file. A dataset is read only after its shape has been checked against the
model's weight, so no allocation is sized by the file.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._validation import short_message, to_snake_case
from funkeras.errors import (
    BudgetExceededError,
    TensorFileError,
    WeightsMismatchError,
)
from funkeras.layers.subclassing import ordered_names
from funkeras.saving.registry import is_model_class, registry_key

__all__ = [
    "HDF5_SIGNATURE",
    "MAX_OBJECTS",
    "require_h5py",
    "keras_weight_map",
    "read_keras_weights",
    "assign_keras_weights",
]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_OBJECTS = 100_000  # groups + datasets + links walked in one file
MAX_DEPTH = 64
MAX_RANK = 32


def require_h5py(what: str) -> Any:
    """The `h5py` module, or an `ImportError` saying what to install."""
    try:
        import h5py  # optional dependency: the `h5` extra
    except ImportError as e:
        raise ImportError(
            f"{what}: reading Keras' HDF5 weights (`.weights.h5`, and the weights "
            "inside a `.keras` file) needs the optional package h5py: "
            "`pip install 'funkeras[h5]'` (or `pip install h5py`)."
        ) from e
    return h5py


# ----------------------------------------------------------------------------
# The model side: Keras' path of every funkeras weight.
# ----------------------------------------------------------------------------


def _class_key(layer: Any) -> str:
    try:
        return registry_key(type(layer)).rpartition(">")[2]
    except Exception:  # an unregistered class: Keras names it by class name
        return type(layer).__name__


def _container_layers(model: Any, what: str) -> list[Any]:
    graph = getattr(model, "graph", None)
    if graph is None:
        raise WeightsMismatchError(
            f"{what}: Keras weights are matched to a Sequential or functional "
            f"model's layers; {type(model).__name__} {model.name!r} has no layer "
            "graph (a subclassed model). Build the same architecture as a "
            "Sequential or functional model, or copy the weights with "
            "`set_weights(keras_model.get_weights())`."
        )
    return [*graph.input_layers, *graph.layers]


def keras_weight_map(
    model: Any, params: Any, state: Any, what: str
) -> dict[str, tuple[tuple[str, ...], bool, Any]]:
    """`{keras dataset path: (funkeras path, is_param, ShapeDtypeStruct)}` for `model`.

    The Keras path of each weight (`layers/dense_1/vars/0`) is derived as Keras
    3 derives it (see the module docstring); `params` and `state` are the
    model's trees (arrays or `ShapeDtypeStruct`s).
    """
    out: dict[str, tuple[tuple[str, ...], bool, Any]] = {}

    def walk(container: Any, p: Any, s: Any, h5: str, fk: tuple[str, ...]) -> None:
        used: dict[str, int] = {}
        for layer in _container_layers(container, what):
            base = to_snake_case(_class_key(layer))
            if base in used:
                used[base] += 1
                key = f"{base}_{used[base]}"
            else:
                used[base] = 0
                key = base
            path = f"{h5}layers/{key}"
            lp, ls = p.get(layer.name, {}), s.get(layer.name, {})
            if is_model_class(type(layer)):
                walk(layer, lp, ls, f"{path}/", (*fk, layer.name))
                continue
            # Keras' order: trainable variables, then non-trainable ones, each
            # in creation order (jit sorts dict keys, so it comes from the layer).
            entries = [(n, lp[n], True) for n in ordered_names(layer, lp)]
            entries += [(n, ls[n], False) for n in ordered_names(layer, ls)]
            for i, (name, value, is_param) in enumerate(entries):
                if isinstance(value, dict):
                    raise WeightsMismatchError(
                        f"{what}: layer {layer.name!r} keeps nested weights "
                        f"({name!r}); its Keras layout is not known to funkeras."
                    )
                spec = jax.ShapeDtypeStruct(np.shape(value), value.dtype)
                out[f"{path}/vars/{i}"] = ((*fk, layer.name, name), is_param, spec)

    walk(model, params, state, "", ())
    return out


# ----------------------------------------------------------------------------
# The file side: a bounded, link-free walk of the HDF5 tree.
# ----------------------------------------------------------------------------


def _label(dtype: Any, shape: tuple[int, ...]) -> str:
    return f"{np.dtype(dtype).name}[{', '.join(str(d) for d in shape)}]"


def _check_dataset(h5py: Any, ds: Any, path: str, what: str, size: int) -> None:
    if ds.is_virtual:
        raise TensorFileError(
            f"{what}: dataset {path!r} is a virtual dataset (its data lives in "
            "other files); refused."
        )
    if ds.external:
        raise TensorFileError(
            f"{what}: dataset {path!r} keeps its data in external file(s) "
            f"{[e[0] for e in ds.external][:3]}; refused."
        )
    # The HDF5 type class first: converting a string or compound type to a
    # NumPy dtype is work (and imports) spent on a file about to be refused.
    type_class = ds.id.get_type().get_class()
    if type_class not in (h5py.h5t.INTEGER, h5py.h5t.FLOAT):
        raise TensorFileError(
            f"{what}: dataset {path!r} has a non-numeric dtype (HDF5 type class "
            f"{type_class}); weights are numeric arrays."
        )
    dtype = ds.dtype
    if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype:
        raise TensorFileError(
            f"{what}: dataset {path!r} has the non-numeric dtype {dtype}; weights "
            "are numeric arrays."
        )
    shape = ds.shape
    if shape is None or len(shape) > MAX_RANK or any(d < 0 for d in shape):
        raise TensorFileError(f"{what}: dataset {path!r} has an invalid shape.")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > size:
        raise BudgetExceededError(
            f"{what}: dataset {path!r} declares {_label(dtype, shape)} "
            f"({nbytes:,} bytes), more than the whole file ({size:,} bytes); "
            "nothing was allocated."
        )
    plist = ds.id.get_create_plist()
    if plist.get_nfilters():
        raise TensorFileError(
            f"{what}: dataset {path!r} is compressed or filtered; Keras writes "
            "plain datasets, and a compressed one's size cannot be checked "
            "against the file before reading."
        )
    stored = ds.id.get_storage_size()
    if stored != nbytes:
        raise TensorFileError(
            f"{what}: dataset {path!r} declares {_label(dtype, shape)} "
            f"({nbytes:,} bytes) but stores {stored:,} bytes."
        )
    offset = ds.id.get_offset() if plist.get_layout() == h5py.h5d.CONTIGUOUS else 0
    if nbytes and (offset is None or offset + nbytes > size):
        raise TensorFileError(
            f"{what}: dataset {path!r} runs past the end of the file (truncated "
            "or corrupted)."
        )


def _walk(h5py: Any, root: Any, what: str, size: int) -> Iterator[tuple[str, Any]]:
    """Every dataset as `(path, dataset)`, refusing links and special objects."""
    stack: list[tuple[Any, str, int]] = [(root, "", 0)]
    seen = 0
    while stack:
        group, prefix, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise TensorFileError(
                f"{what}: groups nested deeper than {MAX_DEPTH} levels."
            )
        for name in group:
            seen += 1
            if seen > MAX_OBJECTS:
                raise BudgetExceededError(
                    f"{what}: more than {MAX_OBJECTS:,} objects in the file."
                )
            path = f"{prefix}{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise TensorFileError(
                    f"{what}: {path!r} is an external link to "
                    f"{link.filename!r}:{link.path!r}; links out of the file are "
                    "refused."
                )
            if isinstance(link, h5py.SoftLink):
                raise TensorFileError(
                    f"{what}: {path!r} is a soft link to {link.path!r}; Keras "
                    "writes no links, and links are refused."
                )
            if not isinstance(link, h5py.HardLink):
                raise TensorFileError(f"{what}: {path!r} is a link of unknown kind.")
            obj = group[name]
            if isinstance(obj, h5py.Group):
                stack.append((obj, f"{path}/", depth + 1))
            elif isinstance(obj, h5py.Dataset):
                _check_dataset(h5py, obj, path, what, size)
                yield path, obj
            else:
                raise TensorFileError(
                    f"{what}: {path!r} is a {type(obj).__name__}, not a group or "
                    "a dataset."
                )


def _open(h5py: Any, data: bytes | memoryview, what: str) -> Any:
    if bytes(data[:8]) != HDF5_SIGNATURE:
        raise TensorFileError(f"{what}: not an HDF5 file (no HDF5 signature).")
    try:
        return h5py.File(io.BytesIO(bytes(data)), "r")
    except Exception as e:  # libhdf5 raises several types on a damaged file
        raise TensorFileError(
            f"{what}: not a readable HDF5 file ({short_message(e)})."
        ) from None


def _legacy_message(f: Any, what: str) -> str | None:
    if "model_weights" in f or "layer_names" in f.attrs:
        return (
            f"{what}: this is a legacy Keras 2 HDF5 file (`model.save('x.h5')` "
            "or `save_weights` from Keras 2), which funkeras does not read. Open "
            "it in Keras 3 and save it again as `.weights.h5` (or `.keras`)."
        )
    return None


def read_keras_weights(
    data: bytes | memoryview,
    expected: dict[str, tuple[tuple[str, ...], bool, Any]],
    what: str,
    *,
    skip_mismatch: bool = False,
) -> dict[str, np.ndarray]:
    """The arrays of a Keras 3 HDF5 weights file, checked against `expected`.

    Args:
        data: The whole file.
        expected: `keras_weight_map`'s output for the model being loaded.
        what: How messages name the file.
        skip_mismatch: Skip (with a warning) the layers whose entries disagree,
            instead of refusing.

    Returns:
        `{keras path: array}` in the expected dtypes, for every expected entry
        (but the skipped ones).

    Raises:
        ImportError: h5py is not installed.
        TensorFileError: a malformed or unsafe file.
        WeightsMismatchError: the file's entries disagree with the model.
        BudgetExceededError: a declared size larger than the file.
    """
    h5py = require_h5py(what)
    size = len(data)
    f = _open(h5py, data, what)
    with f:
        try:
            legacy = _legacy_message(f, what)
            if legacy is not None:
                raise TensorFileError(legacy)
            found = {
                path: ds
                for path, ds in _walk(h5py, f, what, size)
                if path.startswith("layers/")
            }
            return _read_matched(found, expected, what, skip_mismatch)
        except (TensorFileError, WeightsMismatchError, BudgetExceededError):
            raise
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as e:
            raise TensorFileError(
                f"{what}: the HDF5 file is damaged ({short_message(e)})."
            ) from None


def _layer_path(path: str) -> str:
    return path.rsplit("/vars/", 1)[0]


def _read_matched(
    found: dict[str, Any],
    expected: dict[str, tuple[tuple[str, ...], bool, Any]],
    what: str,
    skip_mismatch: bool,
) -> dict[str, np.ndarray]:
    lines: list[str] = []
    bad_layers: set[str] = set()
    for path, (fk_path, _, spec) in expected.items():
        name = "/".join(fk_path)
        ds = found.get(path)
        if ds is None:
            lines.append(f"  {path} (funkeras {name!r}): missing from the file")
            bad_layers.add(_layer_path(path))
            continue
        compatible = np.dtype(ds.dtype).kind == np.dtype(spec.dtype).kind or (
            np.dtype(ds.dtype).kind in "iu" and np.dtype(spec.dtype).kind in "iu"
        )
        if tuple(ds.shape) != tuple(spec.shape) or not compatible:
            lines.append(
                f"  {path} (funkeras {name!r}): expected "
                f"{_label(spec.dtype, spec.shape)}, the file has "
                f"{_label(ds.dtype, ds.shape)}"
            )
            bad_layers.add(_layer_path(path))
    for path in sorted(set(found) - set(expected)):
        lines.append(
            f"  {path}: in the file ({_label(found[path].dtype, found[path].shape)}) "
            "but the model has no such weight"
        )
        bad_layers.add(_layer_path(path))
    if lines and not skip_mismatch:
        raise WeightsMismatchError(
            f"{what}: the Keras weights do not match the model (Keras names "
            "layers by class and position: `layers/dense_1` is the second Dense "
            "of its model):\n" + "\n".join(sorted(lines)[:40])
        )
    if lines:
        warnings.warn(
            f"load_weights: skipped Keras layer(s) {sorted(bad_layers)} whose "
            f"weights disagree with {what}:\n" + "\n".join(sorted(lines)[:40]),
            stacklevel=4,
        )
    out: dict[str, np.ndarray] = {}
    for path, (_, _, spec) in expected.items():
        if _layer_path(path) in bad_layers:
            continue
        ds = found[path]
        array = np.empty(ds.shape, dtype=ds.dtype)
        if array.size:
            ds.read_direct(array)
        out[path] = array.astype(spec.dtype, copy=False)
    return out


def assign_keras_weights(
    model: Any,
    arrays: dict[str, np.ndarray],
    expected: dict[str, tuple[tuple[str, ...], bool, Any]],
    params: Any,
    state: Any,
) -> None:
    """Put `arrays` (by Keras path) into `model`; the rest keep `params`/`state`."""

    def put(tree: Any, path: tuple[str, ...], value: Any) -> None:
        for key in path[:-1]:
            tree = tree[key]
        tree[path[-1]] = value

    new_params = jax.tree.map(lambda a: a, params)
    new_state = jax.tree.map(lambda a: a, state)
    for key, value in arrays.items():
        fk_path, is_param, _ = expected[key]
        put(new_params if is_param else new_state, fk_path, jnp.asarray(value))
    model.publish(new_params, new_state, model.opt_state)

