"""Keras' array helpers: `to_categorical`, `normalize` and `pad_sequences` (NumPy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from funkeras import ops
from funkeras._validation import check_choice, check_int

__all__ = ["to_categorical", "normalize", "pad_sequences"]


def to_categorical(x: Any, num_classes: int | None = None) -> Any:
    """Integer class labels as one-hot rows (`keras.utils.to_categorical`).

    A trailing axis of size 1 is dropped first; `num_classes` defaults to
    `max(x) + 1`. NumPy input gives a float64 NumPy array, as in Keras; a JAX
    array gives a float32 JAX array.

    Example:
        >>> from funkeras.utils import to_categorical
        >>> to_categorical([0, 2, 1]).tolist()
        [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    if ops.is_tensor(x):
        if num_classes is None:
            num_classes = int(ops.max(x)) + 1
        if x.ndim > 1 and x.shape[-1] == 1:
            x = ops.squeeze(x, -1)
        return ops.one_hot(x, check_int("to_categorical", "num_classes", num_classes))
    x = np.asarray(x)
    if x.dtype.kind not in "iub" and not (
        x.dtype.kind == "f" and np.all(x == np.round(x))
    ):
        raise TypeError(
            f"to_categorical: `x` must hold integer class labels, got dtype {x.dtype}."
        )
    x = x.astype(np.int64)
    shape = x.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    x = x.reshape(-1)
    if num_classes is None:
        num_classes = int(np.max(x)) + 1 if x.size else 0
    num_classes = check_int("to_categorical", "num_classes", num_classes)
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(
            f"to_categorical: labels must lie in [0, {num_classes}), got values from "
            f"{x.min()} to {x.max()}."
        )
    out = np.zeros((x.shape[0], num_classes))
    out[np.arange(x.shape[0]), x] = 1
    return out.reshape(shape + (num_classes,))


def normalize(x: Any, axis: int = -1, order: int = 2) -> Any:
    """`x` divided by its `order`-norm along `axis` (`keras.utils.normalize`).

    NumPy input stays NumPy (a zero norm divides by 1); a JAX array goes through
    `fk.ops.normalize`.

    Example:
        >>> import numpy as np
        >>> from funkeras.utils import normalize
        >>> normalize(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
        [[0.6, 0.8], [0.0, 0.0]]
    """
    order = check_int("normalize", "order", order)
    if ops.is_tensor(x):
        return ops.normalize(x, axis=axis, order=order)
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


def pad_sequences(
    sequences: Any,
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Sequences of different lengths as one `(n, maxlen, ...)` NumPy array.

    Longer sequences lose values from the start (`truncating="pre"`) or the end
    (`"post"`); shorter ones are padded with `value` before (`padding="pre"`) or
    after (`"post"`). `maxlen` defaults to the longest sequence.

    Example:
        >>> from funkeras.utils import pad_sequences
        >>> pad_sequences([[1, 2, 3], [4]], maxlen=2).tolist()
        [[2, 3], [0, 4]]
        >>> pad_sequences([[1], [2, 3]], padding="post").tolist()
        [[1, 0], [2, 3]]
    """
    padding = check_choice("pad_sequences", "padding", padding, ("pre", "post"))
    truncating = check_choice(
        "pad_sequences", "truncating", truncating, ("pre", "post")
    )
    if not hasattr(sequences, "__len__"):
        raise TypeError(
            f"pad_sequences: `sequences` must be a list of sequences, got "
            f"{type(sequences).__name__}."
        )
    lengths, sample_shape = [], None
    for i, s in enumerate(sequences):
        if not hasattr(s, "__len__"):
            raise TypeError(
                f"pad_sequences: `sequences[{i}]` must be a sequence, got {s!r}."
            )
        lengths.append(len(s))
        if sample_shape is None and len(s):
            sample_shape = np.asarray(s).shape[1:]
    sample_shape = sample_shape or ()
    if maxlen is None:
        maxlen = max(lengths, default=0)
    maxlen = check_int("pad_sequences", "maxlen", maxlen, minimum=0)
    out = np.full((len(lengths), maxlen) + tuple(sample_shape), value, dtype=dtype)
    if maxlen == 0:
        return out
    for i, s in enumerate(sequences):
        if not len(s):
            continue
        part = np.asarray(
            s[-maxlen:] if truncating == "pre" else s[:maxlen], dtype=dtype
        )
        if part.shape[1:] != tuple(sample_shape):
            raise ValueError(
                f"pad_sequences: `sequences[{i}]` has steps of shape {part.shape[1:]}, "
                f"the first non-empty sequence has {tuple(sample_shape)}."
            )
        if padding == "post":
            out[i, : len(part)] = part
        else:
            out[i, -len(part) :] = part
    return out
