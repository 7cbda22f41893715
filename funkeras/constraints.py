"""Weight constraints with Keras 3 names and formulas.

A constraint is a callable `c(w) -> w'` applied to a weight after every
optimizer update (inside the compiled train step), as in Keras:
`add_weight(..., constraint="non_neg")` in a Keras-style layer. `MaxNorm`,
`MinMaxNorm`, `NonNeg` and `UnitNorm` follow Keras' formulas (norms over
`axis`, Keras' `epsilon` 1e-7 in the denominators); the lowercase names are the
classes, as in Keras 3 (`constraints.max_norm(2.0)` is `MaxNorm(2.0)`). Any
function `w -> w'` is a constraint too (it cannot be saved as data).

Example:
    >>> import jax.numpy as jnp
    >>> from funkeras import constraints
    >>> constraints.get("non_neg")(jnp.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from funkeras._catalogue import Catalogue, module_dir
from funkeras._validation import check_float
from funkeras.typing import Array, ArrayLike

__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "unit_norm",
    "get",
    "serialize",
    "deserialize",
]

EPSILON = 1e-7  # Keras' backend.epsilon()


def _axis(owner: str, axis: Any) -> int | tuple[int, ...]:
    if isinstance(axis, list | tuple):
        return tuple(_axis(owner, a) for a in axis)  # type: ignore[misc]
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(
            f"{owner}: `axis` must be an int or a list of ints, got {axis!r}."
        )
    return axis


def _norms(w: Array, axis: Any) -> Array:
    return jnp.sqrt(jnp.sum(jnp.square(w), axis=axis, keepdims=True))


class Constraint:
    """Base class of the constraints: `c(w) -> w'`, projected after each update.

    Subclasses define `__call__` and `get_config` (the constructor arguments;
    `from_config` passes them back). Instances compare equal when their class
    and config match.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.constraints import Constraint
        >>> class Clip(Constraint):
        ...     def __init__(self, limit=1.0):
        ...         self.limit = limit
        ...     def __call__(self, w):
        ...         return jnp.clip(w, -self.limit, self.limit)
        ...     def get_config(self):
        ...         return {"limit": self.limit}
        >>> Clip()(jnp.array([3.0, -0.5])).tolist()
        [1.0, -0.5]
    """

    def __call__(self, w: ArrayLike) -> Array:
        return jnp.asarray(w)

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Scale each slice along `axis` down to norm at most `max_value`.

    Keras: `w * clip(norms, 0, max_value) / (epsilon + norms)`, norms over
    `axis` (0: each column of a Dense kernel, i.e. each unit's input weights).

    Args:
        max_value: The largest norm allowed.
        axis: The axis (or axes) the norms are computed over.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.constraints import MaxNorm
        >>> w = MaxNorm(1.0)(jnp.array([[3.0], [4.0]]))
        >>> [round(v, 4) for v in w[:, 0].tolist()]
        [0.6, 0.8]
    """

    def __init__(self, max_value: float = 2, axis: Any = 0) -> None:
        self.max_value = check_float("MaxNorm", "max_value", max_value)
        self.axis = _axis("MaxNorm", axis)

    def __call__(self, w: ArrayLike) -> Array:
        w = jnp.asarray(w)
        norms = _norms(w, self.axis)
        desired = jnp.clip(norms, 0, self.max_value)
        return w * (desired / (EPSILON + norms))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class MinMaxNorm(Constraint):
    """Keep each slice's norm between `min_value` and `max_value`.

    Keras: `desired = rate * clip(norms, min_value, max_value) + (1 - rate) *
    norms`; `w * desired / (epsilon + norms)`.

    Args:
        min_value: The smallest norm.
        max_value: The largest norm.
        rate: How far to move towards the interval each step (1: all the way).
        axis: The axis (or axes) the norms are computed over.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.constraints import MinMaxNorm
        >>> w = MinMaxNorm(1.0, 2.0)(jnp.array([[0.3], [0.4]]))
        >>> round(float(jnp.linalg.norm(w)), 4)
        1.0
    """

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0,
                 rate: float = 1.0, axis: Any = 0) -> None:
        self.min_value = check_float("MinMaxNorm", "min_value", min_value)
        self.max_value = check_float("MinMaxNorm", "max_value", max_value)
        self.rate = check_float("MinMaxNorm", "rate", rate)
        self.axis = _axis("MinMaxNorm", axis)
        if self.min_value > self.max_value:
            raise ValueError(
                f"MinMaxNorm: `min_value` ({self.min_value}) must not exceed "
                f"`max_value` ({self.max_value})."
            )

    def __call__(self, w: ArrayLike) -> Array:
        w = jnp.asarray(w)
        norms = _norms(w, self.axis)
        desired = (self.rate * jnp.clip(norms, self.min_value, self.max_value)
                   + (1 - self.rate) * norms)
        return w * (desired / (EPSILON + norms))

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value,
                "rate": self.rate, "axis": self.axis}


class NonNeg(Constraint):
    """Negative entries become 0 (Keras: `maximum(w, 0)`).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.constraints import NonNeg
        >>> NonNeg()(jnp.array([-2.0, 0.5])).tolist()
        [0.0, 0.5]
    """

    def __call__(self, w: ArrayLike) -> Array:
        return jnp.maximum(jnp.asarray(w), 0)


class UnitNorm(Constraint):
    """Scale each slice along `axis` to norm 1 (Keras: `w / (epsilon + norms)`).

    Args:
        axis: The axis (or axes) the norms are computed over.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.constraints import UnitNorm
        >>> [round(v, 4) for v in UnitNorm()(jnp.array([[3.0], [4.0]]))[:, 0].tolist()]
        [0.6, 0.8]
    """

    def __init__(self, axis: Any = 0) -> None:
        self.axis = _axis("UnitNorm", axis)

    def __call__(self, w: ArrayLike) -> Array:
        w = jnp.asarray(w)
        return w / (EPSILON + _norms(w, self.axis))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


# Keras 3: the lowercase names are the classes.
max_norm = MaxNorm
min_max_norm = MinMaxNorm
non_neg = NonNeg
unit_norm = UnitNorm

_CLASSES = Catalogue(
    "constraint",
    {"MaxNorm": MaxNorm, "MinMaxNorm": MinMaxNorm, "NonNeg": NonNeg,
     "UnitNorm": UnitNorm, "max_norm": MaxNorm, "min_max_norm": MinMaxNorm,
     "non_neg": NonNeg, "unit_norm": UnitNorm},
    fold=lambda name: name.lower().replace("_", ""),
    tail="Valid names: {names}; or pass a {'class_name', 'config'} dict, an "
    "instance such as MaxNorm(2.0), or a callable `w -> w`.",
    example="{'class_name': 'MaxNorm', 'config': {'max_value': 2.0}}",
)


def get(identifier: Any) -> Callable[[ArrayLike], Array] | None:
    """Resolve a constraint given by name, config dict, class, instance or callable.

    Example:
        >>> from funkeras import constraints
        >>> constraints.get("max_norm")
        MaxNorm(max_value=2.0, axis=0)
        >>> constraints.get({"class_name": "UnitNorm", "config": {"axis": 1}})
        UnitNorm(axis=1)
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        return _CLASSES.get(identifier)()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Constraint):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(
        "Could not interpret constraint: expected None, a name such as 'non_neg', "
        "a {'class_name', 'config'} dict or a callable `w -> w`, got "
        f"{identifier!r} ({type(identifier).__name__})."
    )


def deserialize(config: dict[str, Any], custom_objects: Any = None) -> Constraint:
    """The constraint a `serialize` dict describes."""
    return _CLASSES.deserialize(config, custom_objects=custom_objects, base=Constraint)


def serialize(constraint: Any) -> dict[str, Any] | None:
    """`{"class_name": ..., "config": ...}` for a built-in constraint (None for None).

    Example:
        >>> from funkeras import constraints
        >>> constraints.serialize(constraints.NonNeg())
        {'class_name': 'NonNeg', 'config': {}}
    """
    if constraint is None:
        return None
    if isinstance(constraint, Constraint) and _CLASSES.find(type(constraint).__name__):
        return _CLASSES.serialize(constraint)
    raise ValueError(
        f"Cannot serialize constraint {constraint!r}: only the built-in constraints "
        f"({', '.join(['MaxNorm', 'MinMaxNorm', 'NonNeg', 'UnitNorm'])}) can be "
        "saved as data."
    )


__dir__ = module_dir(globals())
