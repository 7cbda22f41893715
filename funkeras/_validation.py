"""Argument checks, dtype and name normalisation, and message helpers.

The neutral bottom of the tree: every funkeras package imports it, and it imports
no funkeras module. One of each check lives here, so every layer, loss, metric,
optimizer and callback refuses bad arguments with the same words.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = [
    "check_int",
    "check_float",
    "check_bool",
    "check_choice",
    "normalize_tuple",
    "normalize_dtype",
    "to_snake_case",
    "shape_str",
    "did_you_mean",
    "short_message",
]


def to_snake_case(name: str) -> str:
    """`BatchNormalization` -> `batch_normalization`, `Conv2D` -> `conv2d` (Keras)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def check_int(owner: str, arg: str, value: Any, *, minimum: int | None = 1) -> int:
    """Validate an integer argument (bools refused); return it as an `int`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"{owner}: `{arg}` must be an int, got {value!r} ({type(value).__name__})."
        )
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: `{arg}` must be >= {minimum}, got {value}.")
    return int(value)


def check_float(
    owner: str,
    arg: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Validate a real-number argument (and optionally its range); return a float."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(
            f"{owner}: `{arg}` must be a number, got {value!r} "
            f"({type(value).__name__})."
        )
    value = float(value)
    bad_low = low is not None and (value < low if low_inclusive else value <= low)
    bad_high = high is not None and (value > high if high_inclusive else value >= high)
    if bad_low or bad_high:
        lo = "[" if low_inclusive else "("
        hi = "]" if high_inclusive else ")"
        raise ValueError(
            f"{owner}: `{arg}` must be in {lo}{low}, {high}{hi}, got {value}."
        )
    return value


def check_bool(owner: str, arg: str, value: Any) -> bool:
    """Validate a boolean argument (a NumPy bool is accepted); return a `bool`."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"{owner}: `{arg}` must be a bool, got {value!r} ({type(value).__name__})."
        )
    return bool(value)


def check_choice(owner: str, arg: str, value: Any, choices: Sequence[str]) -> str:
    """Validate a string argument against its allowed values (case-insensitive)."""
    if not isinstance(value, str) or value.lower() not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ValueError(
            f"{owner}: `{arg}` must be one of {list(choices)}, got {value!r}.{hint}"
        )
    return value.lower()


def normalize_tuple(owner: str, arg: str, value: Any, n: int) -> tuple[int, ...]:
    """An int or a length-`n` sequence of positive ints, as a tuple (Keras' rule)."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (int(value),) * n
    if not isinstance(value, tuple | list) or len(value) != n:
        raise ValueError(
            f"{owner}: `{arg}` must be an int or a sequence of {n} ints, got {value!r}."
        )
    return tuple(check_int(owner, arg, v) for v in value)


def normalize_dtype(owner: str, value: Any) -> str:
    """A numeric dtype-like as its canonical name ("float32", "bfloat16", "int32")."""
    try:
        dtype = jnp.dtype(value)
    except TypeError as e:
        raise TypeError(f"{owner}: `dtype` must be a dtype name, got {value!r}.") from e
    if dtype.kind not in "fiub" and dtype.name != "bfloat16":
        raise TypeError(
            f"{owner}: `dtype` must be a numeric dtype (float32, bfloat16, int32, ...), "
            f"got {value!r}."
        )
    return dtype.name


def shape_str(shape: Sequence[Any]) -> str:
    """`(None, 3)`: a shape as error messages show it (unknown sizes as None)."""
    shape = tuple(shape)
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + (",)" if len(shape) == 1 else ")")
    )


def did_you_mean(
    name: Any, choices: Iterable[str], *, n: int = 3, cutoff: float = 0.6
) -> str:
    """`" Did you mean 'adam'?"` for the closest of `choices`, or `""`.

    The one suggestion every catalogue (layers, losses, metrics, optimizers,
    activations, initializers, regularizers, executions) appends to its error.
    Matching ignores case; suggestions keep the spelling of `choices`.
    """
    if not isinstance(name, str):
        return ""
    choices = list(dict.fromkeys(choices))
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=cutoff)
    if not close:
        return ""
    return f" Did you mean {' or '.join(repr(by_lower[c]) for c in close)}?"


def short_message(error: BaseException, limit: int = 200) -> str:
    """`str(error)`, cut to `limit` characters (a hostile file's text stays short)."""
    text = str(error)
    return text if len(text) <= limit else text[:limit] + "..."
