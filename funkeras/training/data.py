"""Host-side data handling: validation, casting, seeded order, padding and row masks.

Array data is checked once, cast as Keras casts it (float64 to float32; integer
images stay integers and the model's Input casts them in the compiled step), and
placed on the device once: each step gathers its rows in the compiled program
from a per-epoch index vector, so nothing crosses from the host per step. The
order of an epoch is a pure function of `(seed, epoch)`.

A short last batch is padded to the batch size by repeating real rows, and the
row mask marks the real ones, so one compiled step serves every batch.
Iterables (generators, PyTorch or Grain loaders) are padded the same way, batch
by batch. They cannot be rewound to an arbitrary position, so only array data
resumes exactly.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jax
import numpy as np

from funkeras.training.state import Batch, to_device

__all__ = [
    "ArrayData",
    "IterableData",
    "as_host_array",
    "encode_order",
    "epoch_order",
    "split_validation",
    "unpack_batch",
    "is_array_like",
    "data_fingerprint",
]


def _is_array(a: Any) -> bool:
    return isinstance(a, np.ndarray | jax.Array) or (
        hasattr(a, "__array__") and hasattr(a, "shape") and hasattr(a, "dtype")
    )


def is_array_like(x: Any) -> bool:
    """An array, or a list/tuple/dict whose leaves are all arrays (not an iterable)."""
    if _is_array(x):
        return True
    if isinstance(x, Mapping):
        return bool(x) and all(is_array_like(v) for v in x.values())
    if isinstance(x, list | tuple):
        return bool(x) and all(is_array_like(v) for v in x)
    return False


def as_host_array(a: Any, what: str) -> Any:
    """A NumPy (or JAX) array with Keras' casts: float64 -> float32, int64 -> int32."""
    if isinstance(a, jax.Array):
        return a
    if not isinstance(a, np.ndarray):
        try:
            a = np.asarray(a)
        except Exception as e:  # noqa: BLE001 - reported with the argument name
            raise TypeError(f"`{what}` could not be read as an array: {e}") from e
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    elif a.dtype == np.int64:
        a = a.astype(np.int32)
    elif a.dtype.kind in "USO":
        raise TypeError(
            f"`{what}` has dtype {a.dtype} (strings or Python objects); pass "
            "numeric arrays (turn text into numbers first, e.g. token ids)."
        )
    return a


def _tree_len(tree: Any, what: str) -> int:
    leaves = jax.tree.leaves(tree)
    lengths = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in leaves}
    if -1 in lengths:
        raise ValueError(f"`{what}` contains a scalar; every array needs a batch axis.")
    if len(lengths) != 1:
        raise ValueError(
            f"`{what}` holds arrays of different lengths {sorted(lengths)}; every "
            "array must have one row per example."
        )
    return lengths.pop()


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The order of the rows in `epoch`: a pure function of `(seed, epoch)`."""
    if not shuffle:
        return np.arange(n, dtype=np.int32)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch)])
    return rng.permutation(n).astype(np.int32)


def pad_order(order: np.ndarray, batch_size: int, total_steps: int) -> np.ndarray:
    """Pad `order` to `total_steps * batch_size` indices by repeating real rows."""
    need = total_steps * batch_size
    if need <= len(order):
        return order[:need]
    reps = math.ceil(need / len(order))
    return np.concatenate([order] + [order] * (reps - 1))[:need].astype(np.int32)


def encode_order(indices: np.ndarray, real: int) -> np.ndarray:
    """Row indices with the row mask folded in: one vector, one transfer.

    Positions before `real` hold their row `r`; later (padding) positions hold
    `-1 - r` (`~r`), so the compiled step reads both the row (`where(c >= 0, c,
    ~c)`) and the mask (`c >= 0`) from one slice.
    """
    out = np.array(indices, dtype=np.int32, copy=True)
    out[real:] = ~out[real:]
    return out


def split_validation(
    x: Any, y: Any, sample_weight: Any, validation_split: float
) -> tuple[tuple[Any, Any, Any], tuple[Any, Any, Any]]:
    """Keras' `validation_split`: the last fraction of the rows, before shuffling.

    The cut is Keras' own: `floor(n * (1 - validation_split))` training rows.
    """
    n = _tree_len(x, "x")
    cut = int(math.floor(n * (1.0 - validation_split)))
    if cut == 0 or cut == n:
        raise ValueError(
            f"fit: `validation_split={validation_split}` leaves "
            f"{'no training' if cut == 0 else 'no validation'} rows out of {n}."
        )

    def take(tree: Any, sl: slice) -> Any:
        return None if tree is None else jax.tree.map(lambda a: a[sl], tree)

    train = tuple(take(t, slice(0, cut)) for t in (x, y, sample_weight))
    val = tuple(take(t, slice(cut, n)) for t in (x, y, sample_weight))
    return train, val  # type: ignore[return-value]


class ArrayData:
    """Arrays held on the device; batches gathered inside the compiled step.

    Args:
        x: Inputs: an array, or a list/dict of arrays.
        y: Targets, or None.
        sample_weight: Optional per-row weights `(n,)`.
        batch_size: Rows per step.
    """

    def __init__(self, x: Any, y: Any, sample_weight: Any, batch_size: int) -> None:
        if isinstance(x, Mapping):
            x = dict(x)
        x = jax.tree.map(lambda a: as_host_array(a, "x"), x)
        y = None if y is None else jax.tree.map(lambda a: as_host_array(a, "y"), y)
        n = _tree_len(x, "x")
        if n == 0:
            raise ValueError("The data is empty: `x` has 0 rows.")
        if y is not None and _tree_len(y, "y") != n:
            raise ValueError(
                f"`x` and `y` have different numbers of rows: x has {n}, y has "
                f"{_tree_len(y, 'y')}."
            )
        if sample_weight is not None:
            sample_weight = as_host_array(sample_weight, "sample_weight").astype(
                np.float32
            )
            if sample_weight.ndim != 1 or sample_weight.shape[0] != n:
                raise ValueError(
                    f"`sample_weight` must have shape ({n},), got {sample_weight.shape}."
                )
        for what, tree in (("x", x), ("y", y)):
            for leaf in jax.tree.leaves(tree):
                if np.issubdtype(np.asarray(leaf).dtype, np.floating) and not np.all(
                    np.isfinite(np.asarray(leaf))
                ):
                    bad = np.argwhere(
                        ~np.isfinite(np.asarray(leaf)).reshape(n, -1).all(1)
                    )
                    raise ValueError(
                        f"`{what}` contains NaN or infinite values (first bad rows: "
                        f"{bad[:5, 0].tolist()}). Clean or impute the data first."
                    )
        self.n = n
        self.batch_size = int(batch_size)
        self.host = (x, y, sample_weight)
        self._device: Any = None

    @property
    def device_arrays(self) -> Any:
        """`(x, y, sample_weight)` on the default device (put there once)."""
        if self._device is None:
            self._device = to_device(self.host)
        return self._device

    def steps(self, steps_per_epoch: int | None = None) -> int:
        full = math.ceil(self.n / self.batch_size)
        return full if steps_per_epoch is None else min(int(steps_per_epoch), full)

    def order(
        self, seed: int, epoch: int, shuffle: bool, steps: int | None = None,
        block: int = 1,
    ) -> np.ndarray:
        """The epoch's row order as one host `int32` vector (see `encode_order`).

        The vector covers the whole epoch, padded to whole batches (and to whole
        `block`s of batches for programs that run K steps); padding positions
        repeat real rows. The rows of the first `steps` batches are real. The
        length depends only on the data, the batch size and `block`, so
        `steps_per_epoch` compiles nothing new.
        """
        full = math.ceil(self.n / self.batch_size)
        steps = full if steps is None else min(steps, full)
        total = math.ceil(full / block) * block
        rows = epoch_order(self.n, seed, epoch, shuffle)
        idx = pad_order(rows, self.batch_size, total)
        return encode_order(idx, min(self.n, steps * self.batch_size))

    def spec_batch(self) -> Batch:
        """A one-batch example (host arrays) to build models from."""
        x, y, sw = self.host
        take = lambda t: (
            None if t is None else jax.tree.map(lambda a: np.asarray(a[:1]), t)
        )  # noqa: E731
        return Batch(take(x), take(y), take(sw), np.ones((1,), bool))


def unpack_batch(item: Any) -> tuple[Any, Any, Any]:
    """An iterable's element as `(x, y, sample_weight)` (Keras' conventions)."""
    if (
        isinstance(item, tuple | list)
        and len(item) in (1, 2, 3)
        and not isinstance(item, np.ndarray)
    ):
        parts = list(item) + [None] * (3 - len(item))
        return parts[0], parts[1], parts[2]
    return item, None, None


class IterableData:
    """Batches from any iterable of `(x, y)` or `(x, y, sample_weight)`.

    The first batch fixes the batch size and shapes; a short final batch is padded
    with repeated real rows and masked; any other change of shape is an error.
    """

    def __init__(
        self, source: Iterable[Any], steps_per_epoch: int | None = None
    ) -> None:
        if isinstance(source, IterableData):
            # Already wrapped (and maybe peeked): continue from its state, so the
            # peeked first batch of a one-shot generator is not lost.
            self.__dict__.update(vars(source))
            self.steps_per_epoch = steps_per_epoch
            return
        if not isinstance(source, Iterable):
            raise TypeError(
                f"Expected arrays or an iterable of batches, got {type(source).__name__}."
            )
        self.source = source
        self.steps_per_epoch = steps_per_epoch
        self.batch_size: int | None = None
        self.shapes: Any = None
        self._iterator: Iterator[Any] | None = None
        self._first: Any = None

    def _to_host(self, tree: Any, what: str) -> Any:
        if tree is None:
            return None
        return jax.tree.map(lambda a: as_host_array(_to_numpy(a), what), tree)

    def _check(self, batch: tuple[Any, Any, Any], index: int) -> int:
        x, y, sw = batch
        n = _tree_len(x, "x")
        if y is not None and _tree_len(y, "y") != n:
            raise ValueError(
                f"Batch {index}: `x` has {n} rows but `y` has {_tree_len(y, 'y')}."
            )
        shapes = jax.tree.map(lambda a: tuple(np.shape(a)[1:]), (x, y))
        if self.shapes is None:
            if n == 0:
                raise ValueError(f"Batch {index} is empty.")
            self.shapes, self.batch_size = shapes, n
        elif shapes != self.shapes:
            raise ValueError(
                f"Batch {index} has feature shapes {shapes}, the first batch had "
                f"{self.shapes}. Only the batch axis may change (a short final batch)."
            )
        return n

    def peek(self) -> tuple[Any, Any, Any] | None:
        """The first batch `(x, y, sample_weight)` as host arrays (replayed later)."""
        if self._first is None:
            self._iterator = iter(self.source)
            try:
                self._first = next(self._iterator)
            except StopIteration:
                self._iterator = None
                return None
        x, y, sw = unpack_batch(self._first)
        return self._to_host(x, "x"), self._to_host(y, "y"), sw

    def batches(self) -> Iterator[tuple[Batch, int]]:
        """Yield `(padded_batch, real_rows)`; stops at the end or `steps_per_epoch`.

        Without `steps_per_epoch` every epoch iterates the source anew (a loader);
        with it, epochs continue one iterator (an endless generator).
        """
        if self._first is not None:
            it: Iterator[Any] = itertools.chain([self._first], self._iterator or ())
            self._first = None
        elif self._iterator is None or self.steps_per_epoch is None:
            it = iter(self.source)
        else:
            it = self._iterator
        self._iterator = it
        short_seen = False
        count = 0
        while self.steps_per_epoch is None or count < self.steps_per_epoch:
            try:
                item = next(it)
            except StopIteration:
                self._iterator = None
                return
            if short_seen:
                raise ValueError(
                    f"Batch {count} follows a short batch: only the final batch may "
                    f"be smaller than the batch size ({self.batch_size})."
                )
            x, y, sw = unpack_batch(item)
            x, y = self._to_host(x, "x"), self._to_host(y, "y")
            if sw is not None:
                sw = as_host_array(_to_numpy(sw), "sample_weight").astype(np.float32)
            n = self._check((x, y, sw), count)
            batch_size = int(self.batch_size or n)
            if n > batch_size:
                raise ValueError(
                    f"Batch {count} has {n} rows, more than the first batch's "
                    f"{batch_size}."
                )
            if n < batch_size:
                short_seen = True
            yield pad_batch(x, y, sw, n, batch_size), n
            count += 1


def _to_numpy(a: Any) -> Any:
    """Arrays from other frameworks (a torch tensor has `.numpy()`)."""
    if isinstance(a, np.ndarray | jax.Array):
        return a
    numpy = getattr(a, "numpy", None)
    if callable(numpy) and hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def pad_batch(x: Any, y: Any, sw: Any, n: int, batch_size: int) -> Batch:
    """Pad a batch of `n` rows to `batch_size` by repeating real rows; mask them."""
    mask = np.zeros((batch_size,), bool)
    mask[:n] = True
    if n == batch_size:
        return Batch(x, y, sw, mask)
    idx = np.arange(batch_size) % n

    def pad(tree: Any) -> Any:
        return (
            None if tree is None else jax.tree.map(lambda a: np.asarray(a)[idx], tree)
        )

    return Batch(pad(x), pad(y), pad(sw), mask)


def data_fingerprint(*arrays: Any) -> dict[str, Any]:
    """What identifies a fit's array data: rows, shapes, dtypes and a sample hash.

    JSON data (lists, ints, strings) that a backup records so that a resume on
    other data is refused. The hash covers the first and last row of every
    array (cheap for any size); `None` entries (no targets) are kept as `None`.

    Example:
        >>> import numpy as np
        >>> a = data_fingerprint(np.zeros((4, 2)), np.ones(4))
        >>> a["rows"], a["arrays"][0]
        (4, [[4, 2], 'float64'])
        >>> a == data_fingerprint(np.zeros((4, 2)), np.ones(4))
        True
    """
    digest = hashlib.sha256()
    described: list[Any] = []
    rows = None
    for leaf in jax.tree.leaves(list(arrays), is_leaf=lambda a: a is None):
        if leaf is None:
            described.append(None)
            continue
        shape = tuple(int(d) for d in np.shape(leaf))
        dtype = str(getattr(leaf, "dtype", np.asarray(leaf).dtype))
        described.append([list(shape), dtype])
        if shape:
            rows = shape[0] if rows is None else rows
            if shape[0]:
                for row in (leaf[:1], leaf[-1:]):
                    digest.update(np.ascontiguousarray(np.asarray(row)).tobytes())
    return {"rows": rows, "arrays": described, "sample_sha256": digest.hexdigest()}
