"""Devices, device meshes and layout maps: Keras 3's names over `jax.sharding`.

A `DeviceMesh` is a named grid of devices (a `jax.sharding.Mesh`); a `LayoutMap`
says, by regular expressions over weight paths, how each weight is split over
the mesh's axes. The weight path is the params keys joined by `/`: the layer
name then the variable name (`"dense/kernel"`, `"dense_1/bias"`), with one more
level per nested model (`"encoder/dense/kernel"`). As in Keras, a key matches a
path exactly or by `re.search`, and a weight no key matches is replicated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["list_devices", "DeviceMesh", "LayoutMap", "weight_path", "leaf_shape"]


def list_devices(device_type: str | None = None) -> list[str]:
    """The devices of every process, as Keras names them: `"cpu:0"`, `"gpu:1"`.

    Args:
        device_type: `"cpu"`, `"gpu"` or `"tpu"`; None for the default backend.

    Example:
        >>> import funkeras as fk
        >>> fk.distribution.list_devices("cpu")[0]
        'cpu:0'
    """
    if device_type is not None:
        device_type = str(device_type).lower()
        if device_type not in ("cpu", "gpu", "tpu"):
            raise ValueError(
                f"list_devices: `device_type` must be 'cpu', 'gpu', 'tpu' or None, "
                f"got {device_type!r}."
            )
    devices = jax.devices(device_type) if device_type else jax.devices()
    return [f"{d.platform}:{d.id}" for d in devices]


def _as_device(device: Any, owner: str) -> Any:
    """A `jax.Device` from a device or its Keras name (`"cpu:3"`)."""
    if isinstance(device, jax.Device):
        return device
    if isinstance(device, str):
        match = re.fullmatch(r"\s*(\w+)\s*:\s*(\d+)\s*", device)
        if match:
            platform, index = match.group(1).lower(), int(match.group(2))
            try:
                found = jax.devices(platform)
            except RuntimeError:  # no such backend here
                found = []
            for d in found:
                if d.id == index:
                    return d
        raise ValueError(
            f"{owner}: no device {device!r}; the devices are {list_devices()}."
        )
    raise TypeError(
        f"{owner}: a device must be a `jax.Device` or a name such as 'cpu:0', got "
        f"{type(device).__name__}."
    )


class DeviceMesh:
    """A grid of devices with named axes (Keras' `DeviceMesh`, a `jax.sharding.Mesh`).

    Args:
        shape: The grid's shape, e.g. `(2, 4)`; its product is the device count.
        axis_names: One name per axis, e.g. `("batch", "model")`.
        devices: The devices (`jax.Device`s or names from `list_devices()`), in
            row-major grid order; all of them (`list_devices()`) by default.

    Example:
        >>> import funkeras as fk
        >>> mesh = fk.distribution.DeviceMesh((1,), ("batch",))
        >>> mesh.shape, mesh.axis_names
        ((1,), ('batch',))
    """

    def __init__(
        self, shape: Sequence[int], axis_names: Sequence[str], devices: Any = None
    ) -> None:
        owner = "DeviceMesh"
        shape = tuple(int(s) for s in shape)
        axis_names = tuple(str(a) for a in axis_names)
        if len(shape) != len(axis_names):
            raise ValueError(
                f"{owner}: `shape` {shape} and `axis_names` {axis_names} must have "
                "the same length."
            )
        if any(s < 1 for s in shape):
            raise ValueError(f"{owner}: every axis size must be >= 1, got {shape}.")
        if len(set(axis_names)) != len(axis_names):
            raise ValueError(f"{owner}: axis names must be unique, got {axis_names}.")
        if devices is None:
            found = jax.devices()
        else:
            flat = np.asarray(devices, dtype=object).reshape(-1).tolist()
            found = [_as_device(d, owner) for d in flat]
        if len({d.id for d in found}) != len(found):
            raise ValueError(f"{owner}: a device is listed twice in `devices`.")
        size = int(np.prod(shape))
        if size != len(found):
            raise ValueError(
                f"{owner}: `shape` {shape} holds {size} devices, but {len(found)} "
                f"were given{' (every device)' if devices is None else ''}. Pick a "
                "shape whose product is the device count."
            )
        self.shape = shape
        self.axis_names = axis_names
        self.devices = np.asarray(found, dtype=object).reshape(shape)
        self.mesh = Mesh(self.devices, axis_names)

    def axis_size(self, name: str) -> int:
        """The number of devices along axis `name`."""
        return self.shape[self.axis_names.index(name)]

    def __repr__(self) -> str:
        return f"DeviceMesh(shape={self.shape}, axis_names={self.axis_names})"


def leaf_shape(leaf: Any) -> tuple[int, ...]:
    """The shape of an array or a `jax.ShapeDtypeStruct`."""
    shape = getattr(leaf, "shape", None)
    return tuple(int(d) for d in (np.shape(leaf) if shape is None else shape))


def weight_path(key_path: Sequence[Any]) -> str:
    """The `/`-joined dict keys of a pytree key path (`"dense/kernel"`)."""
    parts = []
    for k in key_path:
        key = getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))
        parts.append(str(key))
    return "/".join(parts)


class LayoutMap(MutableMapping):
    """Regular expressions over weight paths -> how those weights are split.

    A value is a tuple with one entry per weight dimension: a mesh axis name
    (that dimension is split over that axis) or None (not split). The path of a
    weight is its params keys joined by `/` (`"dense/kernel"`, nested models
    add their name: `"encoder/dense/kernel"`). Lookup, as in Keras: an exact key
    first, else the one key that `re.search`es the path (two matching keys are
    an error); no match means replicated.

    Args:
        device_mesh: The `DeviceMesh` the axis names refer to.

    Example:
        >>> import funkeras as fk
        >>> mesh = fk.distribution.DeviceMesh((1, 1), ("batch", "model"))
        >>> layout = fk.distribution.LayoutMap(mesh)
        >>> layout["dense.*kernel"] = (None, "model")
        >>> layout["dense/kernel"]
        (None, 'model')
    """

    def __init__(self, device_mesh: DeviceMesh) -> None:
        if not isinstance(device_mesh, DeviceMesh):
            raise TypeError(
                "LayoutMap: `device_mesh` must be a `fk.distribution.DeviceMesh`, got "
                f"{type(device_mesh).__name__}."
            )
        self.device_mesh = device_mesh
        self._layouts: dict[str, tuple[str | None, ...]] = {}

    def __setitem__(self, key: str, layout: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"LayoutMap: keys are regex strings, got {key!r}.")
        try:
            re.compile(key)
        except re.error as e:
            raise ValueError(f"LayoutMap: {key!r} is not a valid regex: {e}.") from e
        if isinstance(layout, str) or layout is None:
            layout = (layout,)
        if not isinstance(layout, tuple | list):
            raise TypeError(
                f"LayoutMap[{key!r}]: a layout is a tuple of mesh axis names or None "
                f"(one per weight dimension), got {layout!r}."
            )
        names = self.device_mesh.axis_names
        for axis in layout:
            if axis is not None and axis not in names:
                raise ValueError(
                    f"LayoutMap[{key!r}] = {tuple(layout)!r}: axis {axis!r} is not in "
                    f"the mesh, whose axes are {names}."
                )
        used = [a for a in layout if a is not None]
        if len(set(used)) != len(used):
            raise ValueError(
                f"LayoutMap[{key!r}] = {tuple(layout)!r}: a mesh axis may split one "
                "dimension only."
            )
        self._layouts[key] = tuple(layout)

    def __getitem__(self, key: str) -> tuple[str | None, ...] | None:
        """The layout of weight path `key` (exact key, else the one regex that
        matches), or None."""
        if key in self._layouts:
            return self._layouts[key]
        matches = [k for k in self._layouts if re.search(k, key)]
        if len(matches) > 1:
            raise ValueError(
                f"LayoutMap: the weight {key!r} matches several keys {matches}; make "
                "the regexes exclusive."
            )
        return self._layouts[matches[0]] if matches else None

    def matching_key(self, path: str) -> str | None:
        """The key that gives `path` its layout, or None."""
        if path in self._layouts:
            return path
        matches = [k for k in self._layouts if re.search(k, path)]
        if len(matches) > 1:
            raise ValueError(
                f"LayoutMap: the weight {path!r} matches several keys {matches}; make "
                "the regexes exclusive."
            )
        return matches[0] if matches else None

    def __contains__(self, key: object) -> bool:
        """Whether `key` is one of the map's keys (not whether it matches one)."""
        return key in self._layouts

    def __delitem__(self, key: str) -> None:
        del self._layouts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layouts)

    def __len__(self) -> int:
        return len(self._layouts)

    def shardings(self, *trees: Any) -> tuple[Any, ...]:
        """A `NamedSharding` per leaf of params-like trees (params, state), by path.

        Every key must match some weight, a layout must have one entry per
        dimension, and a split dimension must divide by its axis' size: each
        is checked here, before anything is traced, with the path named.
        """
        mesh = self.device_mesh
        used: set[str] = set()
        paths: list[str] = []

        def one(key_path: Any, leaf: Any) -> NamedSharding:
            path = weight_path(key_path)
            paths.append(path)
            key = self.matching_key(path)
            if key is None:
                return NamedSharding(mesh.mesh, PartitionSpec())
            used.add(key)
            layout = self._layouts[key]
            shape = leaf_shape(leaf)
            if len(layout) != len(shape):
                raise ValueError(
                    f"LayoutMap[{key!r}] = {layout!r} has {len(layout)} entries, but "
                    f"the weight {path!r} it matches has shape {shape} "
                    f"({len(shape)} dimensions): give one entry per dimension."
                )
            for dim, (size, axis) in enumerate(zip(shape, layout, strict=True)):
                if axis is not None and size % mesh.axis_size(axis):
                    raise ValueError(
                        f"LayoutMap[{key!r}]: dimension {dim} of {path!r} (shape "
                        f"{shape}) has size {size}, not divisible by the "
                        f"{mesh.axis_size(axis)} devices of mesh axis {axis!r}. "
                        "Change the layer size or the mesh shape."
                    )
            return NamedSharding(mesh.mesh, PartitionSpec(*layout))

        out = tuple(jax.tree_util.tree_map_with_path(one, t) for t in trees)
        unused = [k for k in self._layouts if k not in used]
        if unused:
            raise ValueError(
                f"LayoutMap: the key(s) {unused} match no weight of the model; its "
                f"weight paths are {paths[:12]}{' ...' if len(paths) > 12 else ''}. "
                "Fix or remove the key."
            )
        return out

    def __repr__(self) -> str:
        return f"LayoutMap({self.device_mesh!r}, {self._layouts!r})"
