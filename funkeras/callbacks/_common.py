"""Helpers shared by the callbacks: key paths, fit settings, learning rate, writers."""

from __future__ import annotations

import math
from typing import Any

import jax

from funkeras import optimizers

__all__ = [
    "flatten_paths",
    "steps_per_execution",
    "current_learning_rate",
    "summary_writer",
    "epoch_start_step",
]


def _key_name(entry: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def flatten_paths(tree: Any) -> list[tuple[str, Any]]:
    """`[("dense/kernel", leaf), ...]`: every leaf of a params-like tree by key path."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [("/".join(_key_name(p) for p in path), leaf) for path, leaf in flat]


def steps_per_execution(model: Any) -> int:
    """The model's `compile(steps_per_execution=K)` (1 when not compiled)."""
    return int(getattr(model, "steps_per_execution", 1))


def epoch_start_step(model: Any) -> int:
    """The optimizer step count at the start of the current epoch.

    `fit` updates `model.progress.step` at every epoch end (and a resume sets
    it), so read in `on_epoch_begin` it is the count the epoch starts from.
    """
    progress = getattr(model, "progress", None)
    return 0 if progress is None else int(progress.step)


def current_learning_rate(model: Any) -> float | None:
    """The learning rate the next update uses, or None when it cannot be read."""
    opt_state = getattr(model, "opt_state", None)
    if opt_state is None:
        return None
    try:
        return optimizers.get_learning_rate(opt_state)
    except ValueError:
        pass
    # A schedule: evaluated with the optimizer that built it, at the state's count.
    try:
        value = optimizers.get_learning_rate(
            opt_state, getattr(model, "compiled_optimizer", None)
        )
    except (ValueError, TypeError):
        return None
    return value if math.isfinite(value) else None


def summary_writer(owner: str, log_dir: str) -> Any:
    """A tensorboardX `SummaryWriter` for `log_dir` (the optional dependency)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError as e:
        raise ImportError(
            f"{owner}: writing TensorBoard event files needs the optional package "
            "`tensorboardX` (no TensorFlow needed): `pip install tensorboardX`."
        ) from e
    return SummaryWriter(logdir=log_dir, flush_secs=5)
