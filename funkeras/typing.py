"""Type aliases used across funkeras' public signatures."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

Array = jax.Array
ArrayLike = jax.typing.ArrayLike | np.ndarray
PRNGKey = jax.Array
Params = dict[str, Any]
State = dict[str, Any]
InputSpec = Any  # a jax.ShapeDtypeStruct, or a list/dict of them (no batch axis)
Logs = dict[str, float]
PyTree = Any

__all__ = ["Array", "ArrayLike", "PRNGKey", "Params", "State", "InputSpec", "Logs", "PyTree"]
