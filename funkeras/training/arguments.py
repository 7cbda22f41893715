"""Checks of `fit`/`evaluate`/`predict` arguments, made before anything is built,
traced or trained, so that a refused call leaves the model as it was.

Every check names the method and the argument, says what was expected and what
came. The data checks (`check_inputs`, `check_sample_weight`,
`check_class_weight`) run on the host, on the arrays as the user gave them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from funkeras._validation import check_bool, check_float, check_int

__all__ = [
    "check_optional_int",
    "check_fit_arguments",
    "check_inputs",
    "check_sample_weight",
    "check_class_weight",
]


def check_optional_int(owner: str, arg: str, value: Any, *, minimum: int = 1) -> Any:
    """None, or an int >= `minimum` (a bool, a float or a string is refused).

    Example:
        >>> check_optional_int("fit", "batch_size", 16)
        16
        >>> check_optional_int("fit", "batch_size", 0)
        Traceback (most recent call last):
        ...
        ValueError: fit: `batch_size` must be >= 1, got 0.
    """
    if value is None:
        return None
    return check_int(owner, arg, value, minimum=minimum)


def check_fit_arguments(
    *,
    batch_size: Any,
    epochs: Any,
    validation_split: Any,
    shuffle: Any,
    initial_epoch: Any,
    steps_per_epoch: Any,
    validation_steps: Any,
    validation_batch_size: Any,
    validation_freq: Any,
    seed: Any,
    class_weight: Any,
) -> float:
    """Refuse a bad scalar argument of `fit`; return `validation_split` as a float.

    Example:
        >>> check_fit_arguments(batch_size=None, epochs=1, validation_split=0.2,
        ...     shuffle=True, initial_epoch=None, steps_per_epoch=None,
        ...     validation_steps=None, validation_batch_size=None,
        ...     validation_freq=1, seed=0, class_weight=None)
        0.2
    """
    check_optional_int("fit", "batch_size", batch_size)
    check_int("fit", "epochs", epochs, minimum=0)
    check_optional_int("fit", "initial_epoch", initial_epoch, minimum=0)
    check_optional_int("fit", "steps_per_epoch", steps_per_epoch)
    check_optional_int("fit", "validation_steps", validation_steps)
    check_optional_int("fit", "validation_batch_size", validation_batch_size)
    check_int("fit", "validation_freq", validation_freq)
    check_int("fit", "seed", seed, minimum=None)
    if not isinstance(shuffle, str):  # Keras also takes "batch"
        check_bool("fit", "shuffle", shuffle)
    if class_weight is not None:
        check_class_weight("fit", class_weight)
    return check_float(
        "fit", "validation_split", validation_split, low=0.0, high=1.0,
        high_inclusive=False,
    )


def check_class_weight(owner: str, class_weight: Any) -> None:
    """A dict `{class index: finite weight}`.

    Example:
        >>> check_class_weight("fit", {0: 1.0, 1: float("nan")})
        Traceback (most recent call last):
        ...
        ValueError: fit: `class_weight[1]` must be a finite number, got nan.
    """
    if not isinstance(class_weight, Mapping):
        raise TypeError(
            f"{owner}: `class_weight` must be a dict {{class: weight}}, got "
            f"{class_weight!r}."
        )
    for k, v in class_weight.items():
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
            raise ValueError(
                f"{owner}: `class_weight` keys must be class indices (ints >= 0), "
                f"got {k!r}."
            )
        if (
            isinstance(v, bool)
            or not isinstance(v, numbers.Real)
            or not math.isfinite(float(v))
        ):
            raise ValueError(
                f"{owner}: `class_weight[{k!r}]` must be a finite number, got {v!r}."
            )


def check_sample_weight(owner: str, sample_weight: Any, rows: int | None) -> Any:
    """Per-row weights as a float32 `(rows,)` array, finite, or None.

    Example:
        >>> check_sample_weight("fit", [1.0, float("inf")], 2)
        Traceback (most recent call last):
        ...
        ValueError: fit: `sample_weight` holds NaN or infinite values ... [1]).
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, str | bytes):
        raise TypeError(f"{owner}: `sample_weight` must be an array, got a string.")
    try:
        sw = np.asarray(sample_weight)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{owner}: `sample_weight` could not be read as an array: {e}"
        ) from e
    if not (np.issubdtype(sw.dtype, np.number) or sw.dtype == np.bool_):
        raise TypeError(
            f"{owner}: `sample_weight` must hold numbers, got dtype {sw.dtype}."
        )
    sw = sw.astype(np.float32)
    if sw.ndim != 1 or (rows is not None and sw.shape[0] != rows):
        want = f"({rows},)" if rows is not None else "(rows,)"
        raise ValueError(
            f"{owner}: `sample_weight` must have shape {want}, one weight a row; "
            f"got {sw.shape}."
        )
    bad = ~np.isfinite(sw)
    if bad.any():
        raise ValueError(
            f"{owner}: `sample_weight` holds NaN or infinite values (first bad "
            f"rows: {np.flatnonzero(bad)[:5].tolist()})."
        )
    return sw


def _numbers_only(x: Any) -> bool:
    """A (nested) list or tuple whose leaves are all Python numbers."""
    if isinstance(x, list | tuple):
        return bool(x) and all(_numbers_only(v) for v in x)
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def check_inputs(owner: str, x: Any, what: str = "x") -> Any:
    """Refuse inputs no model can take; return `x` (nested number lists as arrays).

    Strings (a `str`, or an array of strings or objects) and ragged lists are
    refused with what to do instead; a nested list of numbers becomes one array
    (a list of arrays stays a list: several inputs).

    Example:
        >>> check_inputs("predict", [[1.0, 2.0], [3.0]])
        Traceback (most recent call last):
        ...
        ValueError: predict: `x` is a ragged list (rows of different lengths); ...
    """
    if isinstance(x, str | bytes):
        raise TypeError(
            f"{owner}: `{what}` is a string ({x[:20]!r}); pass numeric arrays "
            "(turn text into numbers first, e.g. token ids)."
        )
    if _numbers_only(x):
        try:
            return np.asarray(x)
        except ValueError:
            raise ValueError(
                f"{owner}: `{what}` is a ragged list (rows of different lengths); "
                "pad it to one length (`fk.utils.pad_sequences`) or pass an array."
            ) from None
    if not isinstance(x, np.ndarray | jax.Array | list | tuple | Mapping):
        return x  # an iterable of batches: each batch is checked as it comes
    for leaf in jax.tree.leaves(x):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not hasattr(leaf, "shape"):
            continue
        kind = np.dtype(dtype).kind if not isinstance(leaf, jax.Array) else "f"
        if kind in "USO":
            raise TypeError(
                f"{owner}: `{what}` has dtype {np.dtype(dtype)} (strings or Python "
                "objects); pass numeric arrays (turn text into numbers first, "
                "e.g. token ids)."
            )
    return x
