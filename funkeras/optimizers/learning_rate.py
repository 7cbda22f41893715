"""Reading and setting the learning rate that lives in an optimizer state."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from funkeras.optimizers.base import Optimizer
from funkeras.typing import ArrayLike, PyTree

__all__ = [
    "get_learning_rate",
    "set_learning_rate",
]


_INJECT_STATES = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)


def _is_inject(node: Any) -> bool:
    return isinstance(node, _INJECT_STATES)


def _has_rate(node: Any) -> bool:
    return "learning_rate" in node.hyperparams


def _is_scheduled(node: Any) -> bool:
    return "learning_rate" in (getattr(node, "hyperparams_states", None) or {})


def _find_rates(opt_state: PyTree) -> list[tuple[str, Any]]:
    """(key path, inject state) for every injected learning rate in `opt_state`."""
    found: list[tuple[str, Any]] = []
    leaves, _ = jax.tree_util.tree_flatten_with_path(opt_state, is_leaf=_is_inject)
    for path, node in leaves:
        if not _is_inject(node):
            continue
        if _has_rate(node):
            found.append((jax.tree_util.keystr(path), node))
        else:
            inner = _find_rates(node.inner_state)
            found.extend(
                (jax.tree_util.keystr(path) + ".inner_state" + p, n) for p, n in inner
            )
    return found


_NO_RATE = (
    "{fn}: found no injectable learning rate in the optimizer state. Build the "
    "optimizer with funkeras.optimizers (get('adam'), Adam(...)) or wrap your optax "
    "factory: optax.inject_hyperparams(optax.adam)(learning_rate=1e-3), so the rate "
    "lives in the state."
)


def _check_agree(fn: str, found: list[tuple[str, Any]]) -> None:
    rates = [node.hyperparams["learning_rate"] for _, node in found]
    if any(isinstance(rate, jax.core.Tracer) for rate in rates):
        return  # under a trace the values are unknown; nothing to compare
    values = {float(np.asarray(rate)) for rate in rates}
    if len(values) > 1:
        where = ", ".join(
            f"{path}: {float(np.asarray(node.hyperparams['learning_rate']))}"
            for path, node in found
        )
        raise ValueError(
            f"{fn}: the optimizer state holds several different learning rates "
            f"({where}). Read or set each on its own sub-state."
        )


def get_learning_rate(opt_state: PyTree, optimizer: Any = None) -> float:
    """The learning rate the next update will use, read from `opt_state`.

    The injected hyperparameters are searched for anywhere in the state, so
    wrappers (`optax.MultiSteps`, `optax.chain`, `optax.masked`,
    `optax.multi_transform`) are fine. Several copies must agree.

    Args:
        opt_state: The state of an optimizer built here or with
            `optax.inject_hyperparams`.
        optimizer: Needed only when the learning rate is a schedule: the
            `Optimizer` built here, whose schedule is evaluated at the state's
            step count (optax keeps only the last value used in the state).

    Returns:
        The learning rate as a Python float (this reads the device).

    Raises:
        ValueError: no injectable learning rate; copies that disagree; or a
            schedule without `optimizer`.

    Example:
        >>> from funkeras.optimizers import SGD
        >>> tx = SGD(learning_rate=0.1, gradient_accumulation_steps=2)
        >>> round(get_learning_rate(tx.init(jnp.zeros(2))), 6)
        0.1
    """
    found = _find_rates(opt_state)
    if not found:
        raise ValueError(_NO_RATE.format(fn="get_learning_rate"))
    scheduled = [node for _, node in found if _is_scheduled(node)]
    if not scheduled:
        _check_agree("get_learning_rate", found)
        return float(np.asarray(found[0][1].hyperparams["learning_rate"]))
    if len(scheduled) != len(found):
        raise ValueError(
            "get_learning_rate: the optimizer state holds both scheduled and constant "
            f"learning rates ({', '.join(path for path, _ in found)}). Read each on "
            "its own sub-state."
        )
    count = int(np.asarray(scheduled[0].hyperparams_states["learning_rate"].count))
    schedule = None
    if isinstance(optimizer, Optimizer) and optimizer.arguments is not None:
        schedule = optimizer.arguments.get("learning_rate")
    if not callable(schedule):
        raise ValueError(
            "get_learning_rate: the learning rate follows a schedule (now at step "
            f"{count}), and the state keeps only the last value used. Pass the "
            "optimizer so its schedule can be evaluated: "
            "get_learning_rate(opt_state, optimizer=tx), or call your schedule "
            f"yourself: schedule({count})."
        )
    return float(schedule(count))


def set_learning_rate(opt_state: PyTree, value: ArrayLike) -> PyTree:
    """A copy of `opt_state` with a new learning rate, keeping dtype, shape and device.

    Keeping the stored dtype (float32, strongly typed) and placement means a
    jitted train step that takes the state does not recompile. Every copy of
    the rate found (they must agree) gets the new value.

    Args:
        opt_state: The state of an optimizer built here or with
            `optax.inject_hyperparams`.
        value: The new learning rate: a finite number >= 0 (or a scalar array).

    Returns:
        The new optimizer state; the old one is unchanged.

    Raises:
        ValueError: no injectable learning rate; copies that disagree; the rate
            is a schedule (optax recomputes it every step, so a manual value
            would do nothing); or a negative or non-finite value.

    Example:
        >>> from funkeras.optimizers import Adam
        >>> tx = Adam(learning_rate=0.1)
        >>> state = set_learning_rate(tx.init(jnp.zeros(2)), 0.01)
        >>> round(get_learning_rate(state), 6)
        0.01
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.number | np.ndarray | jax.Array)
        or np.ndim(value) != 0
    ):
        raise TypeError(
            f"set_learning_rate: `value` must be a real scalar, got {value!r}."
        )
    if not isinstance(value, jax.core.Tracer):
        concrete = float(np.asarray(value))
        if not (math.isfinite(concrete) and concrete >= 0.0):
            raise ValueError(
                "set_learning_rate: `value` must be a finite number >= 0, "
                f"got {value!r}."
            )
    found = _find_rates(opt_state)
    if not found:
        raise ValueError(_NO_RATE.format(fn="set_learning_rate"))
    for path, node in found:
        if _is_scheduled(node):
            raise ValueError(
                f"set_learning_rate: the learning rate at {path or 'the top'} "
                "follows a schedule, which optax re-evaluates at every step, so a "
                "value set by hand would be overwritten. Build the optimizer with a "
                "float learning rate to set it from callbacks, or change the "
                "schedule and rebuild."
            )
    _check_agree("set_learning_rate", found)

    def replace(node: Any) -> Any:
        if not _is_inject(node):
            return node
        if not _has_rate(node):
            return node._replace(inner_state=_map(node.inner_state))
        old = node.hyperparams["learning_rate"]
        new = jnp.broadcast_to(jnp.asarray(value, dtype=old.dtype), jnp.shape(old))
        if isinstance(old, jax.Array) and not isinstance(old, jax.core.Tracer):
            new = jax.device_put(new, old.sharding)
        return node._replace(hyperparams={**node.hyperparams, "learning_rate": new})

    def _map(tree: PyTree) -> PyTree:
        return jax.tree.map(replace, tree, is_leaf=_is_inject)

    return _map(opt_state)
