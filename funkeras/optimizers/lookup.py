"""The optimizer catalogue: `get` (Keras names, configs, or any optax
transformation), `serialize` and `deserialize`."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import optax

from funkeras._catalogue import Catalogue
from funkeras.optimizers.base import _NOT_SERIALIZABLE, Optimizer
from funkeras.optimizers.factories import (
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    Nadam,
    RMSprop,
)

__all__ = [
    "get",
    "serialize",
    "deserialize",
]


_OPTIMIZERS = Catalogue(
    "optimizer",
    {
        f.__name__.lower(): f
        for f in (
            SGD,
            Adam,
            AdamW,
            RMSprop,
            Adagrad,
            Adadelta,
            Adamax,
            Nadam,
            Lion,
            Adafactor,
        )
    },
    fold=str.lower,
    tail="Known names: {names}; or pass any optax transformation.",
    cutoff=0.5,
    example="{'class_name': 'Adam', 'config': {...}}",
)

# Keras config keys funkeras accepts only at their inert values (`ema_momentum`
# means nothing without `use_ema`).
_KERAS_ONLY = {
    "use_ema": False,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
}
_KERAS_IGNORED = ("ema_momentum",)


def get(identifier: Any, **overrides: Any) -> optax.GradientTransformation:
    """An optax transformation from a Keras name, a config dict or a transformation.

    Args:
        identifier: A Keras optimizer name, case-insensitive ("adam", "SGD",
            "rmsprop", ...), built with Keras' defaults; a config dict
            `{"class_name": "Adam", "config": {...}}` (what `serialize` returns,
            Keras' own form included); or an `optax.GradientTransformation`,
            returned as is.
        **overrides: Keras arguments replacing the defaults or the config's
            values (`get("adam", learning_rate=1e-4)`); names and configs only.

    Returns:
        The transformation (an `Optimizer` unless one was passed in).

    Raises:
        ValueError: unknown name, or overrides given with a transformation.
        TypeError: `identifier` of another type.

    Example:
        >>> tx = get("sgd", learning_rate=0.5)
        >>> serialize(tx)["config"]["learning_rate"]
        0.5
    """
    if isinstance(identifier, optax.GradientTransformation):
        if overrides:
            raise ValueError(
                f"get(): overrides {sorted(overrides)} apply to optimizer names and "
                "configs, not to an optax transformation, which is returned as is."
            )
        return identifier
    if isinstance(identifier, str):
        return _OPTIMIZERS.get(identifier)(**overrides)
    if isinstance(identifier, Mapping):
        return deserialize(
            {**identifier, "config": {**(identifier.get("config") or {}), **overrides}}
        )
    raise TypeError(
        "get(): expected an optimizer name (e.g. 'adam'), a config dict or an optax "
        f"GradientTransformation, got {identifier!r} ({type(identifier).__name__})."
    )


def serialize(optimizer: optax.GradientTransformation) -> dict[str, Any]:
    """An optimizer built here as `{"class_name": ..., "config": {...}}` (JSON-safe).

    Raises:
        TypeError: `optimizer` is an arbitrary optax transformation, or its
            learning rate is a callable that is not a funkeras schedule.

    Example:
        >>> from funkeras.optimizers import ExponentialDecay
        >>> serialize(Adam(learning_rate=ExponentialDecay(0.1, 100, 0.9)))["config"][
        ...     "learning_rate"]["class_name"]
        'ExponentialDecay'
    """
    if not isinstance(optimizer, Optimizer) or optimizer.class_name is None:
        raise TypeError(
            _NOT_SERIALIZABLE.format(what=f"{type(optimizer).__name__} object")
        )
    return {"class_name": optimizer.class_name, "config": optimizer.get_config()}


def deserialize(config: Mapping[str, Any]) -> Optimizer:
    """Rebuild an optimizer from `serialize`'s dict (or Keras' optimizer config).

    Keras' `use_ema`, `ema_momentum`, `ema_overwrite_frequency` and
    `loss_scale_factor` are accepted only at their inert values.

    Example:
        >>> tx = deserialize({"class_name": "Adam", "config": {"learning_rate": 0.01}})
        >>> tx.class_name
        'Adam'
    """
    return _OPTIMIZERS.deserialize(config, build=_build)


def _build(factory: Any, kwargs: dict[str, Any]) -> Optimizer:
    """Call `factory` with a config's arguments, Keras' inert extras removed."""
    for key in _KERAS_IGNORED:
        kwargs.pop(key, None)
    for key, inert in _KERAS_ONLY.items():
        if key in kwargs and (value := kwargs.pop(key)) is not inert and value != inert:
            raise ValueError(
                f"{factory.__name__}: Keras' `{key}={value!r}` is not supported by "
                f"funkeras (only {key}={inert!r}); for weight averaging see "
                "`optax.ema`."
            )
    known = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ValueError(
            f"{factory.__name__}: unknown config keys {unknown}. Known: {list(known)}."
        )
    return factory(**kwargs)
