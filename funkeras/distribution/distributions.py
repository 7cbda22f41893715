"""Data and model parallelism (Keras 3's `DataParallel`, `ModelParallel`) and
multi-process start-up (`initialize`), on `jax.sharding` and `jax.distributed`.

A distribution is a setting around the same pure step, not a second code path:
it names a mesh, how weights are laid out on it, and which mesh axis splits the
batch. The jit executor reads it to place the train state (params and optimizer
state created in their layout), to split each batch along the batch axis, and to
compile each step once with those shardings; XLA inserts the collectives.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from funkeras.distribution.mesh import DeviceMesh, LayoutMap, leaf_shape, weight_path

__all__ = [
    "Distribution",
    "DataParallel",
    "ModelParallel",
    "set_distribution",
    "distribution",
    "initialize",
]


class Distribution:
    """The base of `DataParallel` and `ModelParallel`: a mesh and a batch axis.

    Args:
        device_mesh: The `DeviceMesh`.
        batch_dim_name: The mesh axis the batch is split over.
    """

    def __init__(self, device_mesh: DeviceMesh, batch_dim_name: str) -> None:
        owner = type(self).__name__
        if not isinstance(device_mesh, DeviceMesh):
            raise TypeError(
                f"{owner}: `device_mesh` must be a `fk.distribution.DeviceMesh`, got "
                f"{type(device_mesh).__name__}."
            )
        if batch_dim_name not in device_mesh.axis_names:
            raise ValueError(
                f"{owner}: `batch_dim_name={batch_dim_name!r}` is not an axis of the "
                f"mesh, whose axes are {device_mesh.axis_names}."
            )
        self.device_mesh = device_mesh
        self.batch_dim_name = batch_dim_name

    @property
    def mesh(self) -> jax.sharding.Mesh:
        """The `jax.sharding.Mesh`."""
        return self.device_mesh.mesh

    @property
    def replicated(self) -> NamedSharding:
        """A full copy on every device of the mesh."""
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def data_sharding(self) -> NamedSharding:
        """Leading (batch) axis split over the batch mesh axis; the rest whole."""
        return NamedSharding(self.mesh, PartitionSpec(self.batch_dim_name))

    @property
    def batch_shards(self) -> int:
        """How many pieces a global batch is split into."""
        return self.device_mesh.axis_size(self.batch_dim_name)

    def check_batch_size(self, batch_size: int, owner: str) -> None:
        """Refuse a per-process batch size the batch axis cannot split evenly."""
        local = self.batch_shards // max(jax.process_count(), 1) or 1
        if batch_size % local:
            raise ValueError(
                f"{owner}: `batch_size={batch_size}` is not divisible by the {local} "
                f"devices of mesh axis {self.batch_dim_name!r} that split each batch "
                f"under {type(self).__name__}; pass a multiple of {local} (e.g. "
                f"{-(-batch_size // local) * local})."
            )

    def weight_shardings(self, params: Any, state: Any) -> tuple[Any, Any]:
        """A `NamedSharding` per leaf of `params` and `state` (replicated here)."""
        return (
            jax.tree.map(lambda _: self.replicated, params),
            jax.tree.map(lambda _: self.replicated, state),
        )

    def like_params(self, tree: Any, params: Any, param_shardings: Any) -> Any:
        """Shardings for an optimizer state: a leaf that mirrors a weight (same
        trailing path of dict keys, same shape: Adam's moments) takes the
        weight's layout; every other leaf (counts, scalars) is replicated."""
        by_path = {}
        for (path, leaf), sharding in zip(
            jax.tree_util.tree_flatten_with_path(params)[0],
            jax.tree.leaves(param_shardings),
            strict=True,
        ):
            by_path[weight_path(path)] = (leaf_shape(leaf), sharding)

        def one(path: Any, leaf: Any) -> NamedSharding:
            keys = []
            for k in reversed(path):
                if not isinstance(k, jax.tree_util.DictKey):
                    break
                keys.append(k)
            found = by_path.get(weight_path(list(reversed(keys))))
            if found is not None and found[0] == leaf_shape(leaf):
                return found[1]
            return self.replicated

        return jax.tree_util.tree_map_with_path(one, tree)

    def distribute_batch(self, tree: Any) -> Any:
        """Host arrays of one batch as global arrays split along the batch axis.

        With several processes each passes its own rows and the global batch is
        their concatenation (`jax.make_array_from_process_local_data`).
        """
        sharding = self.data_sharding
        if jax.process_count() > 1:

            def local(a: Any) -> jax.Array:
                return jax.make_array_from_process_local_data(sharding, np.asarray(a))

            return jax.tree.map(local, tree)
        return jax.device_put(tree, sharding)

    @contextlib.contextmanager
    def scope(self) -> Iterator[Distribution]:
        """Make this the global distribution inside a `with` block (as Keras)."""
        previous = _GLOBAL[0]
        _GLOBAL[0] = self
        try:
            yield self
        finally:
            _GLOBAL[0] = previous

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(device_mesh={self.device_mesh!r}, "
            f"batch_dim_name={self.batch_dim_name!r})"
        )


class DataParallel(Distribution):
    """Every weight replicated; each batch split over all devices (Keras' name).

    Args:
        device_mesh: A 1-D `DeviceMesh` (its one axis splits the batch), or None.
        devices: The devices to use (`jax.Device`s or names such as `"cpu:0"`)
            when no mesh is given; every device by default.

    Example:
        >>> import funkeras as fk
        >>> dp = fk.distribution.DataParallel()
        >>> dp.batch_dim_name
        'batch'
    """

    def __init__(
        self, device_mesh: DeviceMesh | None = None, devices: Any = None
    ) -> None:
        if device_mesh is None:
            found = jax.devices() if devices is None else list(devices)
            if not found:
                raise ValueError("DataParallel: `devices` is empty.")
            device_mesh = DeviceMesh((len(found),), ("batch",), found)
        elif devices is not None:
            raise ValueError("DataParallel: pass `device_mesh` or `devices`, not both.")
        elif not isinstance(device_mesh, DeviceMesh):
            raise TypeError(
                "DataParallel: `device_mesh` must be a `fk.distribution.DeviceMesh`, "
                f"got {type(device_mesh).__name__}."
            )
        elif len(device_mesh.shape) != 1:
            raise ValueError(
                f"DataParallel: the mesh must be 1-D, got shape {device_mesh.shape}; "
                "use ModelParallel for several axes."
            )
        super().__init__(device_mesh, device_mesh.axis_names[0])


class ModelParallel(Distribution):
    """Weights split by a `LayoutMap`, the batch split over one mesh axis.

    Args:
        layout_map: The `LayoutMap` (its mesh is the distribution's mesh).
        batch_dim_name: The mesh axis that splits the batch; the mesh's first
            axis by default (as Keras).

    Example:
        >>> import funkeras as fk
        >>> mesh = fk.distribution.DeviceMesh((1, 1), ("batch", "model"))
        >>> layout = fk.distribution.LayoutMap(mesh)
        >>> layout["dense.*kernel"] = (None, "model")
        >>> mp = fk.distribution.ModelParallel(layout_map=layout,
        ...                                    batch_dim_name="batch")
        >>> mp.batch_shards
        1
    """

    def __init__(
        self, *, layout_map: LayoutMap | None = None, batch_dim_name: str | None = None
    ) -> None:
        if not isinstance(layout_map, LayoutMap):
            raise TypeError(
                "ModelParallel: `layout_map` must be a `fk.distribution.LayoutMap`, "
                f"got {type(layout_map).__name__}."
            )
        mesh = layout_map.device_mesh
        super().__init__(
            mesh, mesh.axis_names[0] if batch_dim_name is None else batch_dim_name
        )
        self.layout_map = layout_map

    def weight_shardings(self, params: Any, state: Any) -> tuple[Any, Any]:
        return self.layout_map.shardings(params, state)


_GLOBAL: list[Distribution | None] = [None]
_STARTED: list[bool] = [False]


def set_distribution(value: Distribution | None) -> None:
    """Set the distribution every model compiled from now on uses (None: one device).

    Example:
        >>> import funkeras as fk
        >>> fk.distribution.set_distribution(fk.distribution.DataParallel())
        >>> type(fk.distribution.distribution()).__name__
        'DataParallel'
        >>> fk.distribution.set_distribution(None)
    """
    if value is not None and not isinstance(value, Distribution):
        raise TypeError(
            "set_distribution: expected a `DataParallel`, `ModelParallel` or None, "
            f"got {type(value).__name__}."
        )
    _GLOBAL[0] = value


def distribution() -> Distribution | None:
    """The global distribution (`set_distribution`), or None.

    Example:
        >>> import funkeras as fk
        >>> fk.distribution.distribution() is None
        True
    """
    return _GLOBAL[0]


def initialize(
    job_addresses: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Join this process to a multi-process run (`jax.distributed.initialize`).

    Call it once, first thing, before anything touches a device. Every process
    runs the same script; afterwards `list_devices()` lists every process'
    devices. On CPU it selects JAX's gloo collectives
    (`jax_cpu_collectives_implementation`), so a run needs no accelerator.

    Args:
        job_addresses: `"host:port"` of the coordinator (process 0), or a
            comma-separated list whose first entry is the coordinator. Default:
            the `KERAS_DISTRIBUTION_JOB_ADDRESSES` environment variable, else
            JAX's cluster auto-detection (Cloud TPU, SLURM).
        num_processes: The number of processes (default:
            `KERAS_DISTRIBUTION_NUM_PROCESSES`).
        process_id: This process' rank, 0 to `num_processes - 1` (default:
            `KERAS_DISTRIBUTION_PROCESS_ID`).

    Example:
        >>> import funkeras as fk
        >>> fk.distribution.initialize("10.0.0.1:1234", 2, 0)  # doctest: +SKIP
    """
    if _STARTED[0] or jax.distributed.is_initialized():
        raise RuntimeError(
            "initialize: this process already joined a multi-process run; call "
            "`fk.distribution.initialize` once per process."
        )
    env = os.environ
    if job_addresses is None:
        job_addresses = env.get("KERAS_DISTRIBUTION_JOB_ADDRESSES")
    if num_processes is None and "KERAS_DISTRIBUTION_NUM_PROCESSES" in env:
        num_processes = int(env["KERAS_DISTRIBUTION_NUM_PROCESSES"])
    if process_id is None and "KERAS_DISTRIBUTION_PROCESS_ID" in env:
        process_id = int(env["KERAS_DISTRIBUTION_PROCESS_ID"])
    coordinator = None
    if job_addresses:
        coordinator = str(job_addresses).split(",")[0].strip()
    if num_processes is not None and (
        process_id is None or not 0 <= int(process_id) < int(num_processes)
    ):
        raise ValueError(
            f"initialize: `process_id` must be in [0, {num_processes}), got "
            f"{process_id!r}."
        )
    collectives = jax.config.jax_cpu_collectives_implementation
    if collectives in (None, "none"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=num_processes,
            process_id=process_id,
        )
    except RuntimeError as e:
        jax.config.update("jax_cpu_collectives_implementation", collectives)
        if "before any JAX" in str(e):
            raise RuntimeError(
                "initialize: JAX already used a device in this process (a "
                "computation, `jax.devices()`, `list_devices()` or building a "
                "model), so it cannot join a multi-process run any more. Call "
                "`fk.distribution.initialize(...)` first thing in the script."
            ) from e
        raise
    _STARTED[0] = True
