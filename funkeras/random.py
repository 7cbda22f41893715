"""Random sampling with Keras 3's `keras.random` names, and the process-wide seeds.

Every function takes `seed=`: an int, a `SeedGenerator`, a JAX key (a typed key
from `jax.random.key` or a raw `uint32[2]` key), or `None`. Seeds are turned into
keys as Keras' JAX backend turns them: the int `s` becomes the raw key
`[s, 0]`, and `SeedGenerator(s)` yields `[s, 0]`, `[s, 1]`, ... So
`fk.random.normal((3,), seed=7)` draws the same numbers as
`keras.random.normal((3,), seed=7)`.

`seed=None` draws a fresh seed from the process-wide seed stream (`next_seed`).
`set_random_seed(s)` restarts that stream (and seeds Python's `random` and
NumPy's global generator, as Keras does), so a whole script repeats; models built
without an explicit `seed` draw theirs from the same stream.

Under `jax.jit`, randomness must come in as an argument: a `SeedGenerator` (or
`seed=None`) called while a function is traced draws one key at trace time,
which the compiled program then reuses on every call. Keras' JAX backend has the
same limit (its stateless mode threads the generator's state through the
function); here a `SeedGenerator` is a plain Python object, not a layer
variable, so pass keys (`generator.next()`) into jitted functions instead.
"""

from __future__ import annotations

import random as _py_random
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._catalogue import module_dir
from funkeras._validation import check_float, check_int, normalize_dtype
from funkeras.typing import Array, ArrayLike

__all__ = [
    "SeedGenerator",
    "draw_key",
    "next_seed",
    "set_random_seed",
    "normal",
    "uniform",
    "randint",
    "truncated_normal",
    "dropout",
    "shuffle",
    "categorical",
    "gamma",
    "binomial",
    "beta",
]

_SEED_LIMIT = 2**31 - 1
_stream = np.random.default_rng()


def next_seed() -> int:
    """The next int of the process-wide seed stream (in `[1, 2**31 - 1)`).

    Example:
        >>> import funkeras as fk
        >>> fk.random.set_random_seed(3)
        >>> a = fk.random.next_seed()
        >>> fk.random.set_random_seed(3)
        >>> fk.random.next_seed() == a
        True
    """
    return int(_stream.integers(1, _SEED_LIMIT))


def set_random_seed(seed: int) -> None:
    """Restart the process-wide seed stream; seed Python's and NumPy's RNGs too.

    Models built without `seed=` and random ops called with `seed=None` then
    repeat from run to run. As `keras.utils.set_random_seed`, it also calls
    `random.seed(seed)` and `numpy.random.seed(seed)`.

    Example:
        >>> import funkeras as fk
        >>> fk.random.set_random_seed(0)
        >>> a = fk.Sequential([fk.Input(shape=(2,)), fk.layers.Dense(1)]).seed
        >>> fk.random.set_random_seed(0)
        >>> b = fk.Sequential([fk.Input(shape=(2,)), fk.layers.Dense(1)]).seed
        >>> a == b
        True
    """
    global _stream
    seed = check_int("set_random_seed", "seed", seed, minimum=0)
    _stream = np.random.default_rng(seed)
    _py_random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)


def _int_key(seed: int) -> Array:
    return jnp.asarray(np.array([seed & 0xFFFFFFFF, 0], dtype=np.uint32))


class SeedGenerator:
    """A stream of JAX keys, as `keras.random.SeedGenerator`.

    The state is the raw key `[seed, 0]`; each `next()` returns the state and
    advances it to `[seed, n + 1]`, so the keys match Keras' for the same seed.
    `seed=None` draws the seed from the process-wide stream.

    This is a plain Python object, not a layer variable: it is not saved with a
    model, and inside `jax.jit` a `next()` runs once at trace time (the compiled
    program keeps that key). Draw keys outside and pass them in.

    Args:
        seed: An int, or None to draw one from `next_seed()`.

    Example:
        >>> import funkeras as fk
        >>> gen = fk.random.SeedGenerator(1337)
        >>> a, b = gen.next(), gen.next()
        >>> a.tolist(), b.tolist()
        ([1337, 0], [1337, 1])
        >>> fk.random.normal((2,), seed=gen).shape
        (2,)
    """

    def __init__(self, seed: int | None = None) -> None:
        self.initial_seed = seed
        if seed is None:
            seed = next_seed()
        seed = check_int("SeedGenerator", "seed", seed, minimum=0)
        self._state = np.array([seed & 0xFFFFFFFF, 0], dtype=np.uint32)

    @property
    def state(self) -> Array:
        """The current raw key `uint32[2]` (the key the next `next()` returns)."""
        return jnp.asarray(self._state)

    def next(self) -> Array:
        """Return the current key and advance the state (host-side, never traced)."""
        key = jnp.asarray(self._state)
        self._state = self._state + np.array([0, 1], dtype=np.uint32)
        return key

    def get_config(self) -> dict[str, Any]:
        """`{"seed": the seed given}` (None if it was drawn), as Keras."""
        return {"seed": self.initial_seed}

    def __repr__(self) -> str:
        return f"SeedGenerator(state={self._state.tolist()})"


def _is_key(seed: Any) -> bool:
    if isinstance(seed, jax.Array | np.ndarray):
        if jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
            return True
        return seed.shape == (2,) and seed.dtype == np.uint32
    return False


def draw_key(seed: Any, owner: str = "random") -> Array:
    """A JAX key from `seed`: an int, a `SeedGenerator`, a key, or None.

    Example:
        >>> import funkeras as fk
        >>> fk.random.draw_key(5).tolist()
        [5, 0]
    """
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if seed is None:
        return _int_key(next_seed())
    if _is_key(seed):
        return seed
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        return _int_key(int(seed))
    raise TypeError(
        f"{owner}: `seed` must be an int, a SeedGenerator, a JAX key or None, got "
        f"{seed!r} ({type(seed).__name__})."
    )


def _float_dtype(owner: str, dtype: Any) -> Any:
    if dtype is None:
        return jnp.float32
    name = normalize_dtype(owner, dtype)
    if not jnp.issubdtype(jnp.dtype(name), jnp.floating):
        raise TypeError(f"{owner}: `dtype` must be a float dtype, got {name!r}.")
    return jnp.dtype(name)


def _shape(owner: str, shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int | np.integer):
        shape = (shape,)
    if not isinstance(shape, Sequence | np.ndarray):
        raise TypeError(f"{owner}: `shape` must be a tuple of ints, got {shape!r}.")
    return tuple(check_int(owner, "shape", int(d), minimum=0) for d in shape)


def normal(
    shape: Sequence[int],
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: Any = None,
    seed: Any = None,
) -> Array:
    """Samples from a normal distribution (`keras.random.normal`).

    Example:
        >>> import funkeras as fk
        >>> x = fk.random.normal((2, 3), seed=0)
        >>> x.shape, str(x.dtype)
        ((2, 3), 'float32')
    """
    key = draw_key(seed, "normal")
    dt = _float_dtype("normal", dtype)
    return jax.random.normal(key, _shape("normal", shape), dt) * stddev + mean


def uniform(
    shape: Sequence[int],
    minval: float = 0.0,
    maxval: float = 1.0,
    dtype: Any = None,
    seed: Any = None,
) -> Array:
    """Samples from a uniform distribution on `[minval, maxval)`.

    Example:
        >>> import funkeras as fk
        >>> x = fk.random.uniform((4,), minval=2.0, maxval=3.0, seed=0)
        >>> bool(((x >= 2) & (x < 3)).all())
        True
    """
    key = draw_key(seed, "uniform")
    dt = _float_dtype("uniform", dtype)
    return jax.random.uniform(
        key, _shape("uniform", shape), dt, minval=minval, maxval=maxval
    )


def randint(
    shape: Sequence[int],
    minval: int,
    maxval: int,
    dtype: Any = "int32",
    seed: Any = None,
) -> Array:
    """Random integers in `[minval, maxval)`.

    Example:
        >>> import funkeras as fk
        >>> x = fk.random.randint((5,), 0, 3, seed=0)
        >>> str(x.dtype), bool(((x >= 0) & (x < 3)).all())
        ('int32', True)
    """
    key = draw_key(seed, "randint")
    dt = jnp.dtype(normalize_dtype("randint", dtype))
    return jax.random.randint(key, _shape("randint", shape), minval, maxval, dtype=dt)


def truncated_normal(
    shape: Sequence[int],
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: Any = None,
    seed: Any = None,
) -> Array:
    """Normal samples truncated to two standard deviations around `mean`.

    Example:
        >>> import funkeras as fk
        >>> x = fk.random.truncated_normal((100,), seed=0)
        >>> bool((abs(x) <= 2).all())
        True
    """
    key = draw_key(seed, "truncated_normal")
    dt = _float_dtype("truncated_normal", dtype)
    sample = jax.random.truncated_normal(
        key, -2.0, 2.0, _shape("truncated_normal", shape), dt
    )
    return sample * stddev + mean


def dropout(
    inputs: ArrayLike,
    rate: float,
    noise_shape: Sequence[int | None] | None = None,
    seed: Any = None,
) -> Array:
    """Zero entries with probability `rate`; scale the rest by `1 / (1 - rate)`.

    `noise_shape` (None entries take the input's size) broadcasts one mask.

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> y = fk.random.dropout(jnp.ones((2, 4)), 0.5, seed=0)
        >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
        True
    """
    rate = check_float("dropout", "rate", rate, low=0.0, high=1.0)
    x = jnp.asarray(inputs)
    if rate == 1.0:
        return jnp.zeros_like(x)
    if rate == 0.0:
        return x
    key = draw_key(seed, "dropout")
    if noise_shape is None:
        shape = x.shape
    else:
        if len(noise_shape) != x.ndim:
            raise ValueError(
                f"dropout: `noise_shape` {tuple(noise_shape)} must have one entry "
                f"per input axis ({x.ndim})."
            )
        shape = tuple(
            x.shape[i] if d is None else int(d) for i, d in enumerate(noise_shape)
        )
    keep = 1.0 - rate
    mask = jnp.broadcast_to(jax.random.bernoulli(key, keep, shape), x.shape)
    return jax.lax.select(mask, x / keep, jnp.zeros_like(x))


def shuffle(x: ArrayLike, axis: int = 0, seed: Any = None) -> Array:
    """`x` with its entries along `axis` in a random order.

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> sorted(fk.random.shuffle(jnp.arange(5), seed=0).tolist())
        [0, 1, 2, 3, 4]
    """
    key = draw_key(seed, "shuffle")
    return jax.random.permutation(key, jnp.asarray(x), axis, independent=True)


def categorical(
    logits: ArrayLike, num_samples: int, dtype: Any = "int32", seed: Any = None
) -> Array:
    """`num_samples` class indices per row of `logits` `(batch, classes)`.

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> fk.random.categorical(jnp.array([[0.0, 50.0]]), 3, seed=0).tolist()
        [[1, 1, 1]]
    """
    num_samples = check_int("categorical", "num_samples", num_samples)
    logits = jnp.asarray(logits)
    if logits.ndim != 2:
        raise ValueError(
            f"categorical: `logits` must be 2D (batch, classes), got shape "
            f"{logits.shape}."
        )
    key = draw_key(seed, "categorical")
    out = jax.random.categorical(
        key, logits[..., None], shape=(logits.shape[0], num_samples), axis=1
    )
    return out.astype(normalize_dtype("categorical", dtype))


def gamma(
    shape: Sequence[int], alpha: float, dtype: Any = None, seed: Any = None
) -> Array:
    """Samples from a Gamma distribution with concentration `alpha`.

    Example:
        >>> import funkeras as fk
        >>> bool((fk.random.gamma((10,), 2.0, seed=0) > 0).all())
        True
    """
    key = draw_key(seed, "gamma")
    dt = _float_dtype("gamma", dtype)
    return jax.random.gamma(key, alpha, shape=_shape("gamma", shape), dtype=dt)


def binomial(
    shape: Sequence[int],
    counts: Any,
    probabilities: Any,
    dtype: Any = None,
    seed: Any = None,
) -> Array:
    """Samples from a binomial distribution (`counts` trials, success `probabilities`).

    Example:
        >>> import funkeras as fk
        >>> x = fk.random.binomial((6,), 10, 0.5, seed=0)
        >>> bool(((x >= 0) & (x <= 10)).all())
        True
    """
    key = draw_key(seed, "binomial")
    dt = _float_dtype("binomial", dtype)
    return jax.random.binomial(
        key,
        jnp.asarray(counts),
        jnp.asarray(probabilities),
        shape=_shape("binomial", shape),
        dtype=dt,
    )


def beta(
    shape: Sequence[int], alpha: Any, beta: Any, dtype: Any = None, seed: Any = None
) -> Array:
    """Samples from a Beta distribution on `[0, 1]`.

    Example:
        >>> import funkeras as fk
        >>> x = fk.random.beta((5,), 2.0, 3.0, seed=0)
        >>> bool(((x >= 0) & (x <= 1)).all())
        True
    """
    key = draw_key(seed, "beta")
    dt = _float_dtype("beta", dtype)
    return jax.random.beta(
        key,
        jnp.asarray(alpha),
        jnp.asarray(beta),
        shape=_shape("beta", shape),
        dtype=dt,
    )


__dir__ = module_dir(globals())
