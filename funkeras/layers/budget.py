"""The weight budget: a layer whose weights would not fit is refused at build.

Building a layer traces its `init` abstractly (`jax.eval_shape`), so the size of
its weights is known before anything is allocated. A layer whose weights and
state need more bytes than the budget is refused there, with the byte count,
rather than letting the allocation abort the process. The budget is the
default device's memory when JAX reports it, else the host's physical memory;
`set_weight_budget` changes it (`None` restores the default).

Example:
    >>> import funkeras as fk
    >>> fk.utils.set_weight_budget(10_000)
    >>> try:
    ...     fk.Sequential([fk.Input((8,)), fk.layers.Dense(10_000)])
    ... except MemoryError as e:
    ...     print(e)
    Dense() would need 360,000 bytes of weights (...), more than the 10,000 bytes ...
    >>> fk.utils.set_weight_budget(None)
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import numpy as np

__all__ = ["set_weight_budget", "weight_budget", "check_weight_bytes", "tree_bytes"]

_BUDGET: list[int | None] = [None]


def set_weight_budget(nbytes: int | None) -> None:
    """Set the most bytes one layer's weights may take (`None`: the default).

    Example:
        >>> import funkeras as fk
        >>> fk.utils.set_weight_budget(2**30)
        >>> fk.utils.weight_budget()
        1073741824
        >>> fk.utils.set_weight_budget(None)
    """
    if nbytes is not None and (
        isinstance(nbytes, bool) or not isinstance(nbytes, int | np.integer)
        or nbytes < 1
    ):
        raise ValueError(
            f"set_weight_budget: `nbytes` must be an int >= 1 or None, got {nbytes!r}."
        )
    _BUDGET[0] = None if nbytes is None else int(nbytes)


def _default_budget() -> int:
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - a backend without memory stats
        stats = {}
    limit = stats.get("bytes_limit")
    if limit:
        return int(limit)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 64 * 2**30


def weight_budget() -> int:
    """The most bytes one layer's weights may take, as now set."""
    if _BUDGET[0] is None:
        _BUDGET[0] = _default_budget()
    return _BUDGET[0]


def tree_bytes(tree: Any) -> int:
    """Bytes of every array (or `ShapeDtypeStruct`) leaf of `tree`."""
    return sum(
        math.prod(int(d) for d in leaf.shape) * np.dtype(leaf.dtype).itemsize
        for leaf in jax.tree.leaves(tree)
        if hasattr(leaf, "shape") and hasattr(leaf, "dtype")
    )


def check_weight_bytes(label: str, params: Any, state: Any) -> None:
    """Refuse weights (shape specs) over the budget, naming the layer and bytes."""
    need = tree_bytes((params, state))
    budget = weight_budget()
    if need > budget:
        shapes = ", ".join(
            f"{jax.tree_util.keystr(path, simple=True, separator='/')} "
            f"{tuple(int(d) for d in leaf.shape)}"
            for path, leaf in jax.tree_util.tree_leaves_with_path(params)[:4]
        )
        raise MemoryError(
            f"{label} would need {need:,} bytes of weights ({shapes}), more than the "
            f"{budget:,} bytes allowed (the device's memory, or "
            "`fk.utils.set_weight_budget`); nothing was allocated. Use fewer "
            "units or a smaller input."
        )
