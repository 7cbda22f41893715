"""Keras' data helpers: `PyDataset`, `split_dataset` and the `(x, y, w)` packers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from funkeras._validation import check_bool, check_int

__all__ = [
    "PyDataset",
    "split_dataset",
    "pack_x_y_sample_weight",
    "unpack_x_y_sample_weight",
]


class PyDataset:
    """Keras' base class for batch-producing datasets: subclass it for `fit`.

    A subclass defines `__len__` (the number of batches per epoch) and
    `__getitem__(index)` returning one batch: `x`, `(x, y)` or
    `(x, y, sample_weight)`. `fit`, `evaluate` and `predict` iterate it batch by
    batch, each epoch from index 0, and call `on_epoch_end()` after each pass
    (shuffle there). `workers`, `use_multiprocessing` and `max_queue_size` are
    accepted for Keras compatibility and ignored: batches are produced in the
    calling thread, in order (the training loop already overlaps the host and
    the device).

    Example:
        >>> import numpy as np
        >>> import funkeras as fk
        >>> class Batches(fk.utils.PyDataset):
        ...     def __init__(self, x, y, batch_size, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.x, self.y, self.batch_size = x, y, batch_size
        ...     def __len__(self):
        ...         return -(-len(self.x) // self.batch_size)
        ...     def __getitem__(self, i):
        ...         s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        ...         return self.x[s], self.y[s]
        >>> data = Batches(np.ones((10, 3), "float32"), np.zeros((10, 1), "float32"), 4)
        >>> len(data), [b[0].shape[0] for b in data]
        (3, [4, 4, 2])
    """

    def __init__(
        self,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ) -> None:
        self.workers = check_int("PyDataset", "workers", workers)
        self.use_multiprocessing = check_bool(
            "PyDataset", "use_multiprocessing", use_multiprocessing
        )
        self.max_queue_size = check_int("PyDataset", "max_queue_size", max_queue_size)

    def __len__(self) -> int:
        raise TypeError(
            f"{type(self).__name__} must define `__len__` (batches per epoch)."
        )

    def __getitem__(self, index: int) -> Any:
        raise TypeError(f"{type(self).__name__} must define `__getitem__` (one batch).")

    @property
    def num_batches(self) -> int | None:
        """The number of batches per epoch (`len(self)`)."""
        return len(self)

    def on_epoch_begin(self) -> None:
        """Called before each pass over the batches; override as needed."""

    def on_epoch_end(self) -> None:
        """Called after each full pass over the batches; override to reshuffle."""

    def __iter__(self) -> Iterator[Any]:
        self.on_epoch_begin()
        for i in range(len(self)):
            yield self[i]
        self.on_epoch_end()


def unpack_x_y_sample_weight(data: Any) -> tuple[Any, Any, Any]:
    """A batch as `(x, y, sample_weight)`, missing parts as None.

    Example:
        >>> from funkeras.utils import unpack_x_y_sample_weight
        >>> unpack_x_y_sample_weight((1, 2))
        (1, 2, None)
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) in (1, 2, 3):
        return (*data, *([None] * (3 - len(data))))  # type: ignore[return-value]
    raise ValueError(
        f"unpack_x_y_sample_weight: expected (x,), (x, y) or (x, y, sample_weight), "
        f"got a tuple of {len(data)}."
    )


def pack_x_y_sample_weight(x: Any, y: Any = None, sample_weight: Any = None) -> Any:
    """`(x,)`, `(x, y)` or `(x, y, sample_weight)`, as Keras packs a batch.

    A lone `x` that is not a tuple/list comes back as itself.

    Example:
        >>> from funkeras.utils import pack_x_y_sample_weight
        >>> pack_x_y_sample_weight(1, 2), pack_x_y_sample_weight(1)
        ((1, 2), 1)
    """
    if y is None:
        return (x,) if isinstance(x, tuple | list) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def _size(arg: str, value: Any, total: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"split_dataset: `{arg}` must be an int, a float or None, got {value!r}."
        )
    if isinstance(value, float):
        if not 0 < value < 1:
            raise ValueError(
                f"split_dataset: a float `{arg}` must lie in (0, 1), got {value}."
            )
        return round(value * total)
    if not 0 < value < total:
        raise ValueError(
            f"split_dataset: an int `{arg}` must lie in (0, {total}), got {value}."
        )
    return value


def split_dataset(
    dataset: Any,
    left_size: int | float | None = None,
    right_size: int | float | None = None,
    shuffle: bool = False,
    seed: int | None = None,
) -> tuple[Any, Any]:
    """Split arrays (or a tuple/list/dict of equal-length arrays) into two by rows.

    Sizes are row counts (int) or fractions (float); a missing one is the rest.
    Unlike Keras (which returns `tf.data.Dataset`s), both halves have the input's
    own structure, as NumPy arrays: `(x_left, y_left), (x_right, y_right)`.
    `shuffle=True` permutes the rows first, from `seed` (None: the process-wide
    seed stream's NumPy generator, `numpy.random`).

    Example:
        >>> import numpy as np
        >>> from funkeras.utils import split_dataset
        >>> data = (np.arange(10), np.arange(10))
        >>> (xl, yl), (xr, yr) = split_dataset(data, left_size=0.8)
        >>> xl.tolist(), xr.tolist()
        ([0, 1, 2, 3, 4, 5, 6, 7], [8, 9])
    """
    leaves = jax.tree.leaves(dataset)
    if not leaves:
        raise ValueError("split_dataset: `dataset` holds no arrays.")
    arrays = [np.asarray(a) for a in leaves]
    lengths = {a.shape[0] if a.ndim else -1 for a in arrays}
    if len(lengths) != 1 or -1 in lengths:
        raise ValueError(
            f"split_dataset: every array needs the same number of rows, got lengths "
            f"{sorted(lengths)}."
        )
    total = lengths.pop()
    left = _size("left_size", left_size, total)
    right = _size("right_size", right_size, total)
    if left is None and right is None:
        raise ValueError("split_dataset: give `left_size`, `right_size` or both.")
    if left is None:
        left = total - right  # type: ignore[operator]
    if right is None:
        right = total - left
    if left + right > total or left == 0 or right == 0:
        raise ValueError(
            f"split_dataset: left_size={left} and right_size={right} rows do not fit "
            f"{total} rows with both sides non-empty."
        )
    order = np.arange(total)
    if check_bool("split_dataset", "shuffle", shuffle):
        gen = np.random.default_rng(seed) if seed is not None else np.random
        order = gen.permutation(total)
    left_rows, right_rows = order[:left], order[total - right :]
    treedef = jax.tree.structure(dataset)
    return (
        jax.tree.unflatten(treedef, [a[left_rows] for a in arrays]),
        jax.tree.unflatten(treedef, [a[right_rows] for a in arrays]),
    )
