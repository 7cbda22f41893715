"""Weight initializers with Keras 3 names, defaults and fan rules.

An initializer is any callable `(key, shape, dtype=jnp.float32) -> jax.Array`.
The built-ins are small classes with Keras' names (`GlorotUniform()`,
`VarianceScaling(scale=2.0, mode="fan_in")`, `Constant(0.1)`) whose instances are
such callables and carry a JSON-safe `get_config()`. Layers accept a name
(`"he_normal"`), a `{"class_name": ..., "config": ...}` dict, an instance or any
callable, and resolve it with `get`; `serialize` turns a built-in back into data.

Two ways to call one. Inside a layer, funkeras calls `init(key, shape, dtype)`:
randomness comes only from the `key` (the model's seed), so the same key always
gives the same values, in every process, and a `seed=` is not used. Called as
Keras calls it, `init(shape, dtype=None)` (the first argument is not a PRNG key),
it returns an array drawn from its `seed=`: the same values at every call, and
the same values as Keras 3 on JAX for the same seed (Keras' key is `[seed, 0]`).
Without a seed it draws one at its first such call (from Python's `random`, as
Keras does), so two unseeded initializers differ and one repeats itself.

Fans follow Keras: for a kernel of shape `(*receptive_field, in, out)`,
`fan_in = in * prod(receptive_field)` and `fan_out = out * prod(receptive_field)`;
a 2D shape `(in, out)` has `fan_in = in`, `fan_out = out`; a 1D shape `(n,)` has
`fan_in = fan_out = n`.
"""

from __future__ import annotations

import abc
import functools
import math
import random
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._catalogue import Catalogue, module_dir
from funkeras._validation import check_choice, check_float, check_int
from funkeras.typing import Array, PRNGKey

__all__ = [
    "Initializer",
    "Zeros",
    "Ones",
    "Constant",
    "Identity",
    "RandomUniform",
    "RandomNormal",
    "TruncatedNormal",
    "VarianceScaling",
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "Orthogonal",
    "compute_fans",
    "get",
    "serialize",
]

# Standard deviation of a unit normal truncated to [-2, 2]; dividing by it makes
# the truncated samples have the intended standard deviation (Keras' constant).
_TRUNCATED_STDDEV = 0.87962566103423978


def _check_number(
    owner: str,
    arg: str,
    value: Any,
    *,
    minimum: float | None = None,
    strict: bool = False,
) -> float:
    """A finite real hyperparameter (optionally `>= minimum`, or `>` if strict)."""
    value = check_float(owner, arg, value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: `{arg}` must be a finite number, got {value}.")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        op = ">" if strict else ">="
        raise ValueError(f"{owner}: `{arg}` must be {op} {minimum}, got {value}.")
    return value


def _normalize_shape(owner: str, shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int | np.integer) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple | list) or not all(
        isinstance(d, int | np.integer) and not isinstance(d, bool) for d in shape
    ):
        raise TypeError(
            f"{owner}: `shape` must be a tuple of ints, got {shape!r}. "
            "Initializers are called as `init(key, shape, dtype)` or, as in Keras, "
            "`init(shape, dtype=None)`."
        )
    if any(d < 0 for d in shape):
        raise ValueError(f"{owner}: `shape` must not be negative, got {tuple(shape)}.")
    return tuple(int(d) for d in shape)


def _float_dtype(owner: str, dtype: Any) -> jnp.dtype:
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"{owner}: random initializers need a floating dtype, got {dtype.name}. "
            "Use a float dtype for this variable, or a constant initializer."
        )
    return dtype


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """The `(fan_in, fan_out)` of a weight shape, by Keras' rules.

    `()` gives `(1, 1)`; `(n,)` gives `(n, n)`; `(in, out)` gives `(in, out)`;
    `(*window, in, out)` gives `(in * prod(window), out * prod(window))`.

    Example:
        >>> from funkeras.initializers import compute_fans
        >>> compute_fans((3, 3, 16, 32))
        (144, 288)
    """
    shape = tuple(shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    receptive_field = math.prod(int(d) for d in shape[:-2])
    return int(shape[-2]) * receptive_field, int(shape[-1]) * receptive_field


def _is_key(value: Any) -> bool:
    """Whether `value` is a JAX PRNG key (typed, or raw `uint32[2]` key data)."""
    if not isinstance(value, jax.Array | np.ndarray):
        return False
    if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        return True
    return value.dtype == np.uint32 and tuple(value.shape) == (2,)


def _check_seed(owner: str, seed: Any) -> int | None:
    if seed is None:
        return None
    seed = check_int(owner, "seed", seed, minimum=0)
    if seed >= 2**32:
        raise ValueError(f"{owner}: `seed` must be < 2**32, got {seed}.")
    return seed


def _both_conventions(call: Callable[..., Array]) -> Callable[..., Array]:
    """Let `call(self, key, shape, dtype)` also be called Keras' way:
    `(shape, dtype=None)`, drawing from the initializer's own seed."""

    @functools.wraps(call)
    def dispatch(self: Initializer, *args: Any, **kwargs: Any) -> Array:
        if "key" in kwargs or (args and _is_key(args[0])):
            return call(self, *args, **kwargs)
        if args:
            shape, rest = args[0], args[1:]
        elif "shape" in kwargs:
            shape, rest = kwargs.pop("shape"), ()
        else:
            raise TypeError(
                f"{type(self).__name__}: call as `init(key, shape, dtype)` or, as "
                "in Keras, `init(shape, dtype=None)`; no shape was given."
            )
        dtype = rest[0] if rest else kwargs.pop("dtype", None)
        if kwargs or len(rest) > 1:
            raise TypeError(
                f"{type(self).__name__}: unexpected arguments "
                f"{list(kwargs) or list(rest[1:])}; the Keras call is "
                "`init(shape, dtype=None)`."
            )
        return call(
            self, self.standalone_key(), shape,
            jnp.float32 if dtype is None else dtype,
        )

    return dispatch


class Initializer(abc.ABC):
    """Base class of the built-in initializers: `init(key, shape, dtype) -> Array`.

    Subclasses define `__call__` and, when they take arguments, `get_config`
    returning them as a JSON-safe dict (`from_config` passes it back to the
    constructor). Instances compare equal when their class and config match.
    Any plain function `(key, shape, dtype) -> Array` is an initializer too; the
    class adds equality and `get_config`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.initializers import Initializer
        >>> class Halves(Initializer):
        ...     def __call__(self, key, shape, dtype=jnp.float32):
        ...         return jnp.full(shape, 0.5, dtype)
        >>> Halves()(jax.random.key(0), (2,)).tolist()
        [0.5, 0.5]
    """

    seed: int | None = None
    _drawn_seed: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is not None:
            cls.__call__ = _both_conventions(call)  # type: ignore[method-assign]

    @abc.abstractmethod
    def __call__(
        self, key: PRNGKey, shape: Sequence[int], dtype: Any = jnp.float32
    ) -> Array:
        """Draw an array of `shape` and `dtype` using `key`.

        A subclass writes this `(key, shape, dtype)` form; the base class also
        accepts Keras' `(shape, dtype=None)`, with `standalone_key()` as the key.
        """

    def standalone_key(self) -> PRNGKey:
        """The key of a Keras-style call `init(shape)`: Keras' `[seed, 0]` from
        `seed=`, or from a seed drawn once (Python's `random`) when none was given.

        Example:
            >>> from funkeras.initializers import RandomNormal
            >>> init = RandomNormal(seed=7)
            >>> bool((init((2, 2)) == init((2, 2))).all())
            True
        """
        seed = self.seed
        if seed is None:
            if self._drawn_seed is None:
                self._drawn_seed = random.randint(1, 10**9)
            seed = self._drawn_seed
        data = jnp.asarray([seed, 0], dtype=jnp.uint32)
        return jax.random.wrap_key_data(data, impl="threefry2x32")

    def _with_seed(self, config: dict[str, Any]) -> dict[str, Any]:
        """`config`, plus `seed` when one was given (unseeded configs stay as
        they were)."""
        return config if self.seed is None else {**config, "seed": self.seed}

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as a JSON-safe dict."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """Rebuild an initializer from `get_config()`'s output."""
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """Fills with zeros.

    Example:
        >>> import jax
        >>> from funkeras.initializers import Zeros
        >>> Zeros()(jax.random.key(0), (2,)).tolist()
        [0.0, 0.0]
    """

    def __call__(self, key, shape, dtype=jnp.float32):
        del key
        return jnp.zeros(_normalize_shape("Zeros", shape), dtype)


class Ones(Initializer):
    """Fills with ones.

    Example:
        >>> import jax
        >>> from funkeras.initializers import Ones
        >>> Ones()(jax.random.key(0), (2,)).tolist()
        [1.0, 1.0]
    """

    def __call__(self, key, shape, dtype=jnp.float32):
        del key
        return jnp.ones(_normalize_shape("Ones", shape), dtype)


class Constant(Initializer):
    """Fills with one scalar `value`.

    Args:
        value: A Python scalar, cast to the requested dtype.

    Example:
        >>> import jax
        >>> from funkeras.initializers import Constant
        >>> Constant(0.5)(jax.random.key(0), (3,)).tolist()
        [0.5, 0.5, 0.5]
    """

    def __init__(self, value: float = 0.0) -> None:
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(
                f"Constant: `value` must be a Python scalar (int or float), got "
                f"{value!r} ({type(value).__name__})."
            )
        self.value = value

    def __call__(self, key, shape, dtype=jnp.float32):
        del key
        return jnp.full(_normalize_shape("Constant", shape), self.value, dtype)

    def get_config(self):
        return {"value": self.value}


class Identity(Initializer):
    """Fills a 2D shape with `gain` times the identity matrix (`jnp.eye`).

    Args:
        gain: Multiplicative factor.

    Example:
        >>> import jax
        >>> from funkeras.initializers import Identity
        >>> Identity()(jax.random.key(0), (2, 2)).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = _check_number("Identity", "gain", gain)

    def __call__(self, key, shape, dtype=jnp.float32):
        del key
        shape = _normalize_shape("Identity", shape)
        if len(shape) != 2:
            raise ValueError(
                f"Identity: only 2D shapes can be initialized, got shape={shape} of "
                f"rank {len(shape)}."
            )
        return (self.gain * jnp.eye(*shape, dtype=jnp.float32)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


class RandomUniform(Initializer):
    """Draws from the uniform distribution on `[minval, maxval)`.

    Args:
        minval: Lower bound (inclusive).
        maxval: Upper bound (exclusive).
        seed: Optional int in [0, 2**32): the seed of Keras-style calls
            `init(shape)` (a layer's `init(key, ...)` uses its key instead).

    Example:
        >>> import jax
        >>> from funkeras.initializers import RandomUniform
        >>> w = RandomUniform(-1.0, 1.0)(jax.random.key(0), (100,))
        >>> bool((w >= -1.0).all() and (w < 1.0).all())
        True
    """

    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None
    ) -> None:
        self.seed = _check_seed("RandomUniform", seed)
        self.minval = _check_number("RandomUniform", "minval", minval)
        self.maxval = _check_number("RandomUniform", "maxval", maxval)
        if self.minval > self.maxval:
            raise ValueError(
                f"RandomUniform: `minval` must be <= `maxval`, got minval={self.minval}"
                f", maxval={self.maxval}."
            )

    def __call__(self, key, shape, dtype=jnp.float32):
        shape = _normalize_shape("RandomUniform", shape)
        dtype = _float_dtype("RandomUniform", dtype)
        return jax.random.uniform(key, shape, dtype, self.minval, self.maxval)

    def get_config(self):
        return self._with_seed({"minval": self.minval, "maxval": self.maxval})


class RandomNormal(Initializer):
    """Draws from the normal distribution `N(mean, stddev**2)`.

    Args:
        mean: Mean of the values.
        stddev: Standard deviation of the values (non-negative).
        seed: Optional int in [0, 2**32): the seed of Keras-style calls
            `init(shape)` (a layer's `init(key, ...)` uses its key instead).

    Example:
        >>> import jax
        >>> from funkeras.initializers import RandomNormal
        >>> RandomNormal(stddev=0.01)(jax.random.key(0), (2, 3)).shape
        (2, 3)
    """

    def __init__(
        self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None
    ) -> None:
        self.seed = _check_seed("RandomNormal", seed)
        self.mean = _check_number("RandomNormal", "mean", mean)
        self.stddev = _check_number("RandomNormal", "stddev", stddev, minimum=0.0)

    def __call__(self, key, shape, dtype=jnp.float32):
        shape = _normalize_shape("RandomNormal", shape)
        dtype = _float_dtype("RandomNormal", dtype)
        return jax.random.normal(key, shape, dtype) * self.stddev + self.mean

    def get_config(self):
        return self._with_seed({"mean": self.mean, "stddev": self.stddev})


class TruncatedNormal(Initializer):
    """Draws from `N(mean, stddev**2)` truncated to `mean +- 2 * stddev`.

    As in Keras, `stddev` is that of the normal before truncation (the samples'
    own standard deviation is about `0.88 * stddev`).

    Args:
        mean: Mean of the values.
        stddev: Standard deviation before truncation (non-negative).
        seed: Optional int in [0, 2**32): the seed of Keras-style calls
            `init(shape)` (a layer's `init(key, ...)` uses its key instead).

    Example:
        >>> import jax
        >>> from funkeras.initializers import TruncatedNormal
        >>> w = TruncatedNormal(stddev=1.0)(jax.random.key(0), (1000,))
        >>> bool((abs(w) <= 2.0).all())
        True
    """

    def __init__(
        self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None
    ) -> None:
        self.seed = _check_seed("TruncatedNormal", seed)
        self.mean = _check_number("TruncatedNormal", "mean", mean)
        self.stddev = _check_number("TruncatedNormal", "stddev", stddev, minimum=0.0)

    def __call__(self, key, shape, dtype=jnp.float32):
        shape = _normalize_shape("TruncatedNormal", shape)
        dtype = _float_dtype("TruncatedNormal", dtype)
        unit = jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)
        return unit * self.stddev + self.mean

    def get_config(self):
        return self._with_seed({"mean": self.mean, "stddev": self.stddev})


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


class VarianceScaling(Initializer):
    """Draws with variance `scale / n`, `n` the fan chosen by `mode`.

    `n` is `fan_in`, `fan_out` or `(fan_in + fan_out) / 2` (at least 1), from
    `compute_fans(shape)`. With `distribution="truncated_normal"`, samples come
    from a normal truncated at two standard deviations whose pre-truncation
    standard deviation is `sqrt(scale / n) / 0.87962566103423978`, so the samples
    themselves have standard deviation `sqrt(scale / n)`; `"untruncated_normal"`
    draws `N(0, scale / n)`; `"uniform"` draws from `[-limit, limit]` with
    `limit = sqrt(3 * scale / n)`.

    Args:
        scale: Positive scaling factor.
        mode: One of `"fan_in"`, `"fan_out"`, `"fan_avg"`.
        distribution: One of `"truncated_normal"` (alias `"normal"`),
            `"untruncated_normal"`, `"uniform"`.
        seed: Optional int in [0, 2**32): the seed of Keras-style calls
            `init(shape)` (a layer's `init(key, ...)` uses its key instead).

    Example:
        >>> import jax
        >>> from funkeras.initializers import VarianceScaling
        >>> init = VarianceScaling(scale=2.0, mode="fan_in", distribution="uniform")
        >>> w = init(jax.random.key(0), (8, 4))
        >>> bool((abs(w) <= (3 * 2.0 / 8) ** 0.5).all())
        True
    """

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ) -> None:
        owner = type(self).__name__
        self.seed = _check_seed(owner, seed)
        self.scale = _check_number(owner, "scale", scale, minimum=0.0, strict=True)
        self.mode = check_choice(owner, "mode", mode, _MODES)
        if isinstance(distribution, str) and distribution.lower() == "normal":
            distribution = "truncated_normal"
        self.distribution = check_choice(
            owner, "distribution", distribution, _DISTRIBUTIONS
        )

    def __call__(self, key, shape, dtype=jnp.float32):
        owner = type(self).__name__
        shape = _normalize_shape(owner, shape)
        dtype = _float_dtype(owner, dtype)
        fan_in, fan_out = compute_fans(shape)
        fan = {
            "fan_in": fan_in,
            "fan_out": fan_out,
            "fan_avg": (fan_in + fan_out) / 2.0,
        }
        variance = self.scale / max(1.0, fan[self.mode])
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(variance) / _TRUNCATED_STDDEV
            return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) * stddev
        if self.distribution == "untruncated_normal":
            return jax.random.normal(key, shape, dtype) * math.sqrt(variance)
        limit = math.sqrt(3.0 * variance)
        return jax.random.uniform(key, shape, dtype, -limit, limit)

    def get_config(self):
        return self._with_seed({
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
        })


class _FixedVarianceScaling(VarianceScaling):
    """A `VarianceScaling` whose arguments are fixed by the class (Glorot, He...);
    only `seed=` is taken, as in Keras."""

    _ARGS: ClassVar[tuple[float, str, str]]

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(*self._ARGS, seed=seed)

    def get_config(self):
        return self._with_seed({})


class GlorotUniform(_FixedVarianceScaling):
    """Glorot uniform: `U(-limit, limit)` with `limit = sqrt(6 / (fan_in + fan_out))`.

    Keras' default kernel initializer. Equals `VarianceScaling(1.0, "fan_avg",
    "uniform")`.

    Example:
        >>> import jax
        >>> from funkeras.initializers import GlorotUniform
        >>> GlorotUniform()(jax.random.key(0), (3, 4)).shape
        (3, 4)
    """

    _ARGS = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Glorot (Xavier) normal: truncated normal with std `sqrt(2 / (fan_in + fan_out))`.

    Equals `VarianceScaling(1.0, "fan_avg", "truncated_normal")`.

    Example:
        >>> import jax
        >>> from funkeras.initializers import GlorotNormal
        >>> GlorotNormal()(jax.random.key(0), (3, 4)).shape
        (3, 4)
    """

    _ARGS = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """He uniform: `U(-limit, limit)` with `limit = sqrt(6 / fan_in)`.

    Equals `VarianceScaling(2.0, "fan_in", "uniform")`.

    Example:
        >>> import jax
        >>> from funkeras.initializers import HeUniform
        >>> HeUniform()(jax.random.key(0), (3, 4)).shape
        (3, 4)
    """

    _ARGS = (2.0, "fan_in", "uniform")


class HeNormal(_FixedVarianceScaling):
    """He normal: truncated normal with standard deviation `sqrt(2 / fan_in)`.

    Equals `VarianceScaling(2.0, "fan_in", "truncated_normal")`.

    Example:
        >>> import jax
        >>> from funkeras.initializers import HeNormal
        >>> HeNormal()(jax.random.key(0), (3, 3, 2, 4)).shape
        (3, 3, 2, 4)
    """

    _ARGS = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """LeCun uniform: `U(-limit, limit)` with `limit = sqrt(3 / fan_in)`.

    Equals `VarianceScaling(1.0, "fan_in", "uniform")`.

    Example:
        >>> import jax
        >>> from funkeras.initializers import LecunUniform
        >>> LecunUniform()(jax.random.key(0), (3, 4)).shape
        (3, 4)
    """

    _ARGS = (1.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """LeCun normal: truncated normal with standard deviation `sqrt(1 / fan_in)`.

    Equals `VarianceScaling(1.0, "fan_in", "truncated_normal")`; pairs with `selu`.

    Example:
        >>> import jax
        >>> from funkeras.initializers import LecunNormal
        >>> LecunNormal()(jax.random.key(0), (3, 4)).shape
        (3, 4)
    """

    _ARGS = (1.0, "fan_in", "truncated_normal")


class Orthogonal(Initializer):
    """`gain` times a (semi-)orthogonal matrix, from the QR of a normal draw.

    The shape is viewed as a matrix `(prod(shape[:-1]), shape[-1])`: with at least
    as many rows as columns its columns are orthonormal, otherwise its rows are.
    The signs of `R`'s diagonal are folded into `Q` so that the result is uniform
    over orthogonal matrices (Saxe et al., 2014).

    Args:
        gain: Multiplicative factor.
        seed: Optional int in [0, 2**32): the seed of Keras-style calls
            `init(shape)` (a layer's `init(key, ...)` uses its key instead).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.initializers import Orthogonal
        >>> q = Orthogonal()(jax.random.key(0), (4, 4))
        >>> bool(jnp.allclose(q.T @ q, jnp.eye(4), atol=1e-5))
        True
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        self.seed = _check_seed("Orthogonal", seed)
        self.gain = _check_number("Orthogonal", "gain", gain)

    def __call__(self, key, shape, dtype=jnp.float32):
        shape = _normalize_shape("Orthogonal", shape)
        dtype = _float_dtype("Orthogonal", dtype)
        if len(shape) < 2:
            raise ValueError(
                f"Orthogonal: the shape must have rank >= 2, got shape={shape} of "
                f"rank {len(shape)}."
            )
        rows, cols = math.prod(shape[:-1]), shape[-1]
        # QR is not defined for half precisions: decompose in at least float32.
        work = jnp.promote_types(dtype, jnp.float32)
        a = jax.random.normal(key, (max(rows, cols), min(rows, cols)), work)
        q, r = jnp.linalg.qr(a)
        q = q * jnp.sign(jnp.diagonal(r))
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dtype)

    def get_config(self):
        return self._with_seed({"gain": self.gain})


_CLASSES: tuple[type[Initializer], ...] = (
    Zeros,
    Ones,
    Constant,
    Identity,
    RandomUniform,
    RandomNormal,
    TruncatedNormal,
    VarianceScaling,
    GlorotUniform,
    GlorotNormal,
    HeUniform,
    HeNormal,
    LecunUniform,
    LecunNormal,
    Orthogonal,
)


# Keras' names: snake_case names (the first one listed for a class is the one
# `serialize` writes), Keras' short aliases, and the CamelCase class names.
_CATALOGUE = Catalogue(
    "initializer",
    {
        "zeros": Zeros,
        "ones": Ones,
        "constant": Constant,
        "identity": Identity,
        "random_uniform": RandomUniform,
        "random_normal": RandomNormal,
        "truncated_normal": TruncatedNormal,
        "variance_scaling": VarianceScaling,
        "glorot_uniform": GlorotUniform,
        "glorot_normal": GlorotNormal,
        "he_uniform": HeUniform,
        "he_normal": HeNormal,
        "lecun_uniform": LecunUniform,
        "lecun_normal": LecunNormal,
        "orthogonal": Orthogonal,
        "uniform": RandomUniform,
        "normal": RandomNormal,
        "one": Ones,
        "zero": Zeros,
        **{cls.__name__: cls for cls in _CLASSES},
    },
    fold=str.lower,
    tail="Valid names: {names}; or pass a callable `(key, shape, dtype)`.",
    example="{'class_name': 'VarianceScaling', 'config': {...}}",
)


def get(identifier: Any) -> Callable[..., Array]:
    """Resolve an initializer given by name, config dict, instance or callable.

    Args:
        identifier: A Keras name (`"glorot_uniform"`, `"GlorotUniform"`, aliases
            `"uniform"`, `"normal"`, `"one"`, `"zero"`), a dict
            `{"class_name": ..., "config": {...}}`, an `Initializer` class or
            instance, or any callable `(key, shape, dtype) -> Array`.

    Returns:
        A callable `(key, shape, dtype=jnp.float32) -> Array`.

    Raises:
        ValueError: For an unknown name (with the closest valid names) or a
            malformed dict.
        TypeError: For anything else that is not callable.

    Example:
        >>> import jax
        >>> from funkeras import initializers
        >>> initializers.get("ones")(jax.random.key(0), (2,)).tolist()
        [1.0, 1.0]
        >>> initializers.get({"class_name": "Constant", "config": {"value": 2.0}})
        Constant(value=2.0)
    """
    if isinstance(identifier, str):
        return _CATALOGUE.get(identifier)()
    if isinstance(identifier, dict):
        return _CATALOGUE.deserialize(identifier, base=Initializer)
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise TypeError(
        "Could not interpret initializer: expected a name such as 'glorot_uniform', "
        "a {'class_name', 'config'} dict or a callable `(key, shape, dtype)`, got "
        f"{identifier!r} ({type(identifier).__name__})."
    )


def serialize(initializer: Any) -> str | dict[str, Any] | None:
    """The JSON-safe description of a built-in initializer (`get` inverts it).

    Args:
        initializer: A built-in `Initializer` instance, a name, or `None`.

    Returns:
        The snake_case name for an initializer without arguments
        (`"glorot_uniform"`), `{"class_name": ..., "config": {...}}` for one with
        arguments, the name itself for a valid name, `None` for `None`.

    Raises:
        ValueError: For a callable that is not a built-in initializer (it cannot
            be stored as data), or an unknown name.

    Example:
        >>> from funkeras import initializers
        >>> initializers.serialize(initializers.HeNormal())
        'he_normal'
        >>> initializers.serialize(initializers.RandomNormal(stddev=0.1))
        {'class_name': 'RandomNormal', 'config': {'mean': 0.0, 'stddev': 0.1}}
    """
    if initializer is None:
        return None
    if isinstance(initializer, str):
        _CATALOGUE.get(initializer)
        return initializer
    if type(initializer) in _CLASSES:
        if not initializer.get_config():
            return _CATALOGUE.name_of(type(initializer))
        return _CATALOGUE.serialize(initializer)
    raise ValueError(
        f"Cannot serialize initializer {initializer!r}: only built-in initializers "
        "can be saved as data. Use a built-in name or class such as "
        "'glorot_uniform' or VarianceScaling(...)."
    )


__dir__ = module_dir(globals())
