"""`TrainState`: everything a training step reads and writes, as one pytree."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from funkeras.typing import Params, PRNGKey, State

__all__ = [
    "TrainState",
    "Batch",
    "copy_tree",
    "to_device",
    "default_device",
    "step_key",
    "placement",
    "active_distribution",
    "batch_to_device",
    "constrain_batch",
]


class TrainState(NamedTuple):
    """The pytree a train step maps to its successor.

    Attributes:
        params: The model's weights (trainable and frozen).
        state: Non-trainable layer state (BatchNorm's moving statistics).
        opt_state: The optax optimizer state (holds the learning rate).
        metrics: One state per tracked metric (the loss tracker first).
        key: The run's base PRNG key as raw key data (`jax.random.key_data`);
            step `t` draws from `fold_in(key, t)` (see `step_key`).
        step: The number of optimizer steps taken (int32 scalar).
        epoch: The current epoch (int32 scalar).
        batch: The index of the next batch within the epoch (int32 scalar).
        callbacks: Callback state that must survive a resume (host data; empty
            inside compiled steps).
    """

    params: Params
    state: State
    opt_state: Any
    metrics: Any
    key: PRNGKey
    step: jax.Array
    epoch: jax.Array
    batch: jax.Array
    callbacks: dict[str, Any]

    @classmethod
    def create(
        cls,
        params: Params,
        state: State,
        opt_state: Any,
        metrics: Any,
        key: PRNGKey,
        *,
        step: int = 0,
        epoch: int = 0,
    ) -> TrainState:
        """A train state at `step`/`epoch` with the batch counter at 0.

        Every array is a fresh copy on the default device, so the state is safe
        to donate to a step. `key` is a typed PRNG key or its raw key data (what
        the state holds: a typed key argument costs dispatch time on every call).
        One compiled call makes the copies and places the key data and counters.
        """
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.key_data(key)
        tree = to_device((params, state, opt_state, metrics))
        tree, key, counters = _start_arrays(tree, key, step, epoch)
        if _ACTIVE[0] is not None:  # counters made in the program: on the mesh too
            key, counters = to_device((key, counters))
        params, state, opt_state, metrics = tree
        return cls(params, state, opt_state, metrics, key, *counters, callbacks={})


@jax.jit
def _start_arrays(tree: Any, key: Any, step: Any, epoch: Any) -> Any:
    return (
        jax.tree.map(jnp.copy, tree),
        jnp.copy(jnp.asarray(key, jnp.uint32)),  # never the caller's buffer
        (
            jnp.asarray(step, jnp.int32),
            jnp.asarray(epoch, jnp.int32),
            jnp.zeros((), jnp.int32),
        ),
    )


class Batch(NamedTuple):
    """One batch as a step sees it.

    Attributes:
        x: Inputs (an array, or a list/dict of arrays for several inputs).
        y: Targets (same conventions), or None for unsupervised steps.
        sample_weight: Optional `(batch,)` per-sample weights.
        mask: Boolean `(batch,)`: True on real rows, False on padding rows.
    """

    x: Any
    y: Any
    sample_weight: Any
    mask: jax.Array


def step_key(ts: TrainState) -> jax.Array:
    """The typed PRNG key of the step `ts.step`: `fold_in(key, step)`."""
    key = ts.key
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    return jax.random.fold_in(key, ts.step)


def default_device() -> Any:
    """The device steps run on: JAX's configured default, else this process'
    first device (in a multi-process run, `jax.devices()[0]` may be another's)."""
    device = jax.config.jax_default_device
    return device if device is not None else jax.local_devices()[0]


_SHARDINGS: dict[Any, Any] = {}
_ACTIVE: list[Any] = [None]


@contextlib.contextmanager
def placement(distribution: Any) -> Iterator[None]:
    """Place arrays on `distribution`'s mesh inside the block (None: one device).

    The loop enters it around `fit`, `evaluate` and `predict` of a runner that
    has a distribution (`funkeras.distribution`): `to_device` then replicates
    over the mesh, `batch_to_device` splits batches along the batch axis, and
    `constrain_batch` does the same inside a compiled step.
    """
    previous = _ACTIVE[0]
    _ACTIVE[0] = distribution
    try:
        yield
    finally:
        _ACTIVE[0] = previous


def active_distribution() -> Any:
    """The distribution of the enclosing `placement` block, or None."""
    return _ACTIVE[0]


def _on_mesh(a: Any, mesh: Any) -> bool:
    sharding = getattr(a, "sharding", None)
    return (
        isinstance(sharding, jax.sharding.NamedSharding) and sharding.mesh == mesh
    )


@jax.jit
def _copy_arrays(leaves: list[jax.Array]) -> list[jax.Array]:
    return [jnp.copy(a) for a in leaves]


def to_device(tree: Any, *, copy: bool = False) -> Any:
    """Every array leaf committed to the default device (copied when `copy`).

    Compiled steps are cached by their arguments' placement as well as their
    shapes: keeping every argument committed to one device means a step compiles
    once, whatever produced its inputs. Leaves already there move nothing; with
    `copy`, they are copied by one compiled call rather than one transfer each.
    """
    dist = _ACTIVE[0]
    if dist is None:
        device = default_device()
        sharding = _SHARDINGS.get(device)
        if sharding is None:
            sharding = _SHARDINGS[device] = jax.sharding.SingleDeviceSharding(device)
        target: Any = device
    else:
        # Under a distribution: anything already on the mesh (weights in their
        # layout, split batches) stays; the rest is replicated over the mesh.
        sharding = target = dist.replicated
    leaves, treedef = jax.tree.flatten(tree)
    placed = [
        isinstance(a, jax.Array) and a.committed
        and (a.sharding == sharding if dist is None else _on_mesh(a, dist.mesh))
        and not jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)
        for a in leaves
    ]
    moving = [a for a, ok in zip(leaves, placed, strict=True) if not ok]
    if moving:
        moved = iter(jax.device_put(moving, target))
        leaves = [a if ok else next(moved) for a, ok in zip(leaves, placed, strict=True)]
    if copy:
        arrays = [a for a in leaves if isinstance(a, jax.Array)]
        # One compiled call copies them all (the same program every time for the
        # same tree, so a second `fit` compiles nothing).
        copies = iter(_copy_arrays(arrays) if arrays else [])
        leaves = [next(copies) if isinstance(a, jax.Array) else a for a in leaves]
    return jax.tree.unflatten(treedef, leaves)


def copy_tree(tree: Any) -> Any:
    """A committed copy of every array leaf (what `fit` donates must not alias)."""
    return to_device(tree, copy=True)


def batch_to_device(batch: Any) -> Any:
    """A host batch on the device(s): split along the batch axis under a
    distribution (each process passing its own rows), else as `to_device`."""
    dist = _ACTIVE[0]
    if dist is None:
        return to_device(batch)
    leaves = jax.tree.leaves(batch)
    if leaves:
        dist.check_batch_size(int(np.shape(leaves[0])[0]), "fit/evaluate/predict")
    return dist.distribute_batch(batch)


def constrain_batch(batch: Any) -> Any:
    """Inside a compiled step: split `batch` along the batch axis of the active
    distribution (no-op without one), so each device computes its rows."""
    dist = _ACTIVE[0]
    if dist is None:
        return batch
    return jax.lax.with_sharding_constraint(batch, dist.data_sharding)
