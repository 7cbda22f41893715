"""Weight regularizers with Keras 3 names and formulas.

A regularizer is any callable `reg(x) -> scalar` whose value is added to the loss.
`L1`, `L2` and `L1L2` are small classes with a JSON-safe `get_config()`. Layers
take a regularizer per variable (`kernel_regularizer="l2"`) and `Layer.penalty`
resolves it with `get`; `serialize` turns a built-in back into data.

Names resolve to Keras' defaults: `"l1"` is `L1(0.01)`, `"l2"` is `L2(0.01)`, and
`"l1_l2"` is `L1L2(l1=0.01, l2=0.01)` (Keras' `l1_l2()`), whereas the class
`L1L2()` defaults to no penalty. As in Keras 3, the lowercase attributes are the
classes: `regularizers.l2(1e-4)` is `L2(1e-4)`, `l1_l2` is `L1L2`, and
`orthogonal_regularizer` is `OrthogonalRegularizer`.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from funkeras._catalogue import Catalogue, module_dir
from funkeras._validation import check_choice, check_float
from funkeras.typing import Array, ArrayLike

__all__ = [
    "Regularizer",
    "L1",
    "L2",
    "L1L2",
    "OrthogonalRegularizer",
    "l1",
    "l2",
    "l1_l2",
    "orthogonal_regularizer",
    "get",
    "serialize",
]


def _check_factor(owner: str, arg: str, value: Any, default: float) -> float:
    """A penalty factor: a finite non-negative number (`None` means the default)."""
    if value is None:
        return default
    value = check_float(owner, arg, value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{owner}: `{arg}` must be a finite non-negative number, got {value}."
        )
    return value


class Regularizer(abc.ABC):
    """Base class of the built-in regularizers: `reg(x) -> scalar penalty`.

    Subclasses define `__call__` and `get_config` (the constructor arguments as a
    JSON-safe dict; `from_config` passes it back). Instances compare equal when
    their class and config match. Any plain function `x -> scalar` is a
    regularizer too; the class adds equality and `get_config`.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.regularizers import Regularizer
        >>> class MaxAbs(Regularizer):
        ...     def __init__(self, factor=1.0):
        ...         self.factor = factor
        ...     def __call__(self, x):
        ...         return self.factor * jnp.max(jnp.abs(x))
        ...     def get_config(self):
        ...         return {"factor": self.factor}
        >>> float(MaxAbs(2.0)(jnp.array([1.0, -3.0])))
        6.0
    """

    @abc.abstractmethod
    def __call__(self, x: ArrayLike) -> Array:
        """The penalty of `x`, a scalar of `x`'s dtype."""

    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as a JSON-safe dict."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """Rebuild a regularizer from `get_config()`'s output."""
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1(Regularizer):
    """L1 penalty: `l1 * sum(abs(x))`.

    Args:
        l1: Non-negative factor (`None` means 0.01).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.regularizers import L1
        >>> float(L1(0.5)(jnp.array([1.0, -2.0, 3.0])))
        3.0
    """

    def __init__(self, l1: float = 0.01) -> None:
        self.l1 = _check_factor("L1", "l1", l1, 0.01)

    def __call__(self, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        return (self.l1 * jnp.sum(jnp.abs(x))).astype(x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(Regularizer):
    """L2 penalty: `l2 * sum(x ** 2)` (no factor 1/2, as in Keras).

    Args:
        l2: Non-negative factor (`None` means 0.01).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.regularizers import L2
        >>> float(L2(2.0)(jnp.ones((5, 5))))
        50.0
    """

    def __init__(self, l2: float = 0.01) -> None:
        self.l2 = _check_factor("L2", "l2", l2, 0.01)

    def __call__(self, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        return (self.l2 * jnp.sum(jnp.square(x))).astype(x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


class L1L2(Regularizer):
    """L1 plus L2 penalty: `l1 * sum(abs(x)) + l2 * sum(x ** 2)`.

    The class defaults to no penalty (`l1=0, l2=0`, as Keras' `L1L2`); the name
    `"l1_l2"` gives `l1=0.01, l2=0.01`.

    Args:
        l1: Non-negative L1 factor (`None` means 0).
        l2: Non-negative L2 factor (`None` means 0).

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.regularizers import L1L2
        >>> float(L1L2(l1=1.0, l2=0.5)(jnp.array([1.0, -2.0])))
        5.5
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _check_factor("L1L2", "l1", l1, 0.0)
        self.l2 = _check_factor("L1L2", "l2", l2, 0.0)

    def __call__(self, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        total = jnp.zeros((), x.dtype)
        # A zero factor adds no term at all (as in Keras), not a zero-weighted one.
        if self.l1:
            total = total + self.l1 * jnp.sum(jnp.abs(x))
        if self.l2:
            total = total + self.l2 * jnp.sum(jnp.square(x))
        return total.astype(x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Keras' orthogonality penalty on a rank-2 kernel: with the rows (or columns,
    `mode="columns"`) L2-normalized, `factor * 0.5 * sum(|off-diagonal of their
    Gram matrix|) / num_pairs`, where `num_pairs = size * (size - 1) / 2`.

    Args:
        factor: Non-negative factor (default 0.01).
        mode: `"rows"` (default) or `"columns"`: which vectors should be orthogonal.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.regularizers import OrthogonalRegularizer
        >>> float(OrthogonalRegularizer(1.0)(jnp.eye(3)))
        0.0
        >>> round(float(OrthogonalRegularizer(1.0)(jnp.ones((2, 2)))), 6)
        1.0
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows") -> None:
        self.factor = _check_factor("OrthogonalRegularizer", "factor", factor, 0.01)
        self.mode = check_choice(
            "OrthogonalRegularizer", "mode", mode, ("rows", "columns")
        )

    def __call__(self, x: ArrayLike) -> Array:
        x = jnp.asarray(x)
        if x.ndim != 2:
            raise ValueError(
                "OrthogonalRegularizer: the weight must have rank 2, got shape "
                f"{tuple(x.shape)}."
            )
        vectors = x if self.mode == "rows" else x.T
        # Keras' normalize: x * min(rsqrt(sum(x ** 2)), 1 / epsilon).
        inv = jnp.minimum(
            jax.lax.rsqrt(jnp.sum(jnp.square(vectors), axis=1, keepdims=True)), 1e7
        )
        unit = vectors * inv
        product = unit @ unit.T
        size = product.shape[0]
        off = product * (1.0 - jnp.eye(size, dtype=product.dtype))
        pairs = size * (size - 1.0) / 2.0
        return (self.factor * 0.5 * jnp.sum(jnp.abs(off)) / pairs).astype(x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "mode": self.mode}


# Keras 3's lowercase aliases of the classes (`keras.regularizers.l2(1e-4)`).
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer


def _keras_l1_l2() -> Regularizer:
    """Keras' `l1_l2()` helper: 0.01 each."""
    return L1L2(l1=0.01, l2=0.01)


_CLASSES = Catalogue(
    "regularizer class",
    {"L1": L1, "L2": L2, "L1L2": L1L2, "OrthogonalRegularizer": OrthogonalRegularizer},
    fold=lambda name: name.lower().replace("_", ""),
    tail="Valid class names: {names}.",
    example="{'class_name': 'L2', 'config': {'l2': 0.01}}",
)
# Names give Keras' defaults.
_NAMED = Catalogue(
    "regularizer",
    {
        "l1": L1,
        "l2": L2,
        "l1_l2": _keras_l1_l2,
        "l1l2": _keras_l1_l2,
        "orthogonal_regularizer": OrthogonalRegularizer,
    },
    fold=str.lower,
    tail="Valid names: {names}; or pass a {'class_name', 'config'} dict, an instance "
    "such as L2(1e-4), or a callable `x -> scalar`.",
)


def get(identifier: Any) -> Callable[[ArrayLike], Array] | None:
    """Resolve a regularizer given by name, config dict, instance or callable.

    Args:
        identifier: `None`; a name (`"l1"`, `"l2"`, `"l1_l2"`, case-insensitive);
            a dict `{"class_name": "L2", "config": {"l2": 1e-4}}`; a
            `Regularizer` class or instance; or any callable `x -> scalar`.

    Returns:
        The regularizer, or `None` for `None`.

    Raises:
        ValueError: For an unknown name (with the closest valid names) or a
            malformed dict.
        TypeError: For anything else that is not callable.

    Example:
        >>> from funkeras import regularizers
        >>> regularizers.get("l1_l2")
        L1L2(l1=0.01, l2=0.01)
        >>> regularizers.get({"class_name": "L2", "config": {"l2": 0.001}})
        L2(l2=0.001)
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        return _NAMED.get(identifier)()
    if isinstance(identifier, dict):
        return _CLASSES.deserialize(identifier, base=Regularizer)
    if isinstance(identifier, type) and issubclass(identifier, Regularizer):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(
        "Could not interpret regularizer: expected None, a name such as 'l2', a "
        "{'class_name', 'config'} dict or a callable `x -> scalar`, got "
        f"{identifier!r} ({type(identifier).__name__})."
    )


def serialize(regularizer: Any) -> str | dict[str, Any] | None:
    """The JSON-safe description of a built-in regularizer (`get` inverts it).

    Args:
        regularizer: A built-in `Regularizer` instance, a name, or `None`.

    Returns:
        `{"class_name": ..., "config": {...}}` for an instance, the name itself for
        a valid name, `None` for `None`.

    Raises:
        ValueError: For a callable that is not a built-in regularizer (it cannot
            be stored as data), or an unknown name.

    Example:
        >>> from funkeras import regularizers
        >>> regularizers.serialize(regularizers.L2(0.001))
        {'class_name': 'L2', 'config': {'l2': 0.001}}
    """
    if regularizer is None:
        return None
    if isinstance(regularizer, str):
        _NAMED.get(regularizer)
        return regularizer
    if _CLASSES.name_of(type(regularizer)) is not None:
        return _CLASSES.serialize(regularizer)
    raise ValueError(
        f"Cannot serialize regularizer {regularizer!r}: only built-in regularizers "
        f"can be saved as data. Use one of {sorted(_CLASSES.names())} or a name such "
        "as 'l2'."
    )


__dir__ = module_dir(globals())
