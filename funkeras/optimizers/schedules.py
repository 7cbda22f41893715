"""Keras' learning-rate schedules and formulas, as optax schedules (callables
`step -> learning rate`) that also have a JSON-safe config."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp

from funkeras._catalogue import Catalogue
from funkeras._validation import check_bool, check_float
from funkeras.typing import Array, ArrayLike

__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
    "SCHEDULES",
    "serialize_schedule",
    "deserialize_schedule",
]


class LearningRateSchedule(abc.ABC):
    """Base of funkeras' learning-rate schedules: `step -> learning rate`.

    A schedule is an optax schedule (any optimizer's `learning_rate` accepts it)
    with a JSON-safe `get_config()`, so an optimizer that uses it can be saved.
    Subclasses are frozen dataclasses holding Keras' arguments. Only the
    built-in schedules have a saved form; a subclass of your own still works
    as a learning rate.

    Example:
        >>> @dataclass(frozen=True)
        ... class Halving(LearningRateSchedule):
        ...     initial_learning_rate: float
        ...     def __call__(self, step):
        ...         return self.initial_learning_rate * 0.5 ** jnp.asarray(step)
        >>> float(Halving(1.0)(3)), Halving(1.0).get_config()
        (0.125, {'initial_learning_rate': 1.0})
    """

    @abc.abstractmethod
    def __call__(self, step: ArrayLike) -> Array:
        """The learning rate at optimizer step `step` (0 for the first update).

        `step` may also be an array of steps; the rates come back elementwise.
        """

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as a JSON-safe dict (Keras' config keys)."""
        config = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            config[field.name] = list(value) if isinstance(value, tuple) else value
        return config

    def _number(self, arg: str, **bounds: Any) -> None:
        """Validate the numeric field `arg` and store it as a Python float."""
        value = check_float(type(self).__name__, arg, getattr(self, arg), **bounds)
        object.__setattr__(self, arg, value)

    def _flag(self, arg: str) -> None:
        object.__setattr__(
            self, arg, check_bool(type(self).__name__, arg, getattr(self, arg))
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LearningRateSchedule:
        """Rebuild a schedule from `get_config()`'s dict."""
        return cls(**config)


def _step(step: ArrayLike) -> Array:
    return jnp.asarray(step, jnp.float32)


_POSITIVE = {"low": 0.0, "low_inclusive": False}


@dataclass(frozen=True)
class ExponentialDecay(LearningRateSchedule):
    """Exponential decay: `initial_learning_rate * decay_rate ** (step / decay_steps)`.

    With `staircase=True` the exponent is `floor(step / decay_steps)`.

    Example:
        >>> s = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
        >>> round(float(s(20)), 6)
        0.025
    """

    initial_learning_rate: float
    decay_steps: float
    decay_rate: float
    staircase: bool = False
    name: str = "ExponentialDecay"

    def __post_init__(self) -> None:
        self._number("initial_learning_rate")
        self._number("decay_steps", **_POSITIVE)
        self._number("decay_rate")
        self._flag("staircase")

    def __call__(self, step: ArrayLike) -> Array:
        p = _step(step) / self.decay_steps
        if self.staircase:
            p = jnp.floor(p)
        return self.initial_learning_rate * jnp.power(jnp.float32(self.decay_rate), p)


@dataclass(frozen=True)
class PiecewiseConstantDecay(LearningRateSchedule):
    """Piecewise constant: `values[i]` where `boundaries[i-1] < step <= boundaries[i]`.

    As in Keras, `values[0]` holds while `step <= boundaries[0]` and
    `values[-1]` once `step > boundaries[-1]` (optax's
    `piecewise_constant_schedule` switches at `step == boundary` instead).

    Example:
        >>> s = PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001])
        >>> [round(float(s(t)), 4) for t in (10, 11, 21)]
        [0.1, 0.01, 0.001]
    """

    boundaries: Sequence[float]
    values: Sequence[float]
    name: str = "PiecewiseConstant"

    def __post_init__(self) -> None:
        owner = "PiecewiseConstantDecay"
        for arg in ("boundaries", "values"):
            seq = getattr(self, arg)
            if not isinstance(seq, list | tuple):
                raise TypeError(
                    f"{owner}: `{arg}` must be a list of numbers, got {seq!r}."
                )
            object.__setattr__(
                self, arg, tuple(check_float(owner, arg, v) for v in seq)
            )
        if len(self.boundaries) != len(self.values) - 1:
            raise ValueError(
                f"{owner}: `values` must have one more element than `boundaries`, got "
                f"{len(self.boundaries)} boundaries and {len(self.values)} values."
            )
        if any(
            b >= c for b, c in zip(self.boundaries, self.boundaries[1:], strict=False)
        ):
            raise ValueError(
                f"{owner}: `boundaries` must be strictly increasing, "
                f"got {list(self.boundaries)}."
            )

    def __call__(self, step: ArrayLike) -> Array:
        boundaries = jnp.asarray(self.boundaries, jnp.float32)
        passed = jnp.sum(_step(step)[..., None] > boundaries, axis=-1)
        return jnp.asarray(self.values, jnp.float32)[passed]


@dataclass(frozen=True)
class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay from `initial_learning_rate` to `end_learning_rate`.

    `(initial - end) * (1 - min(step, decay_steps) / decay_steps) ** power + end`;
    with `cycle=True`, `decay_steps` is first multiplied by
    `ceil(step / decay_steps)` (1 at step 0), as in Keras.

    Example:
        >>> s = PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.0)
        >>> round(float(s(5)), 6), round(float(s(50)), 6)
        (0.05, 0.0)
    """

    initial_learning_rate: float
    decay_steps: float
    end_learning_rate: float = 0.0001
    power: float = 1.0
    cycle: bool = False
    name: str = "PolynomialDecay"

    def __post_init__(self) -> None:
        self._number("initial_learning_rate")
        self._number("decay_steps", **_POSITIVE)
        self._number("end_learning_rate")
        self._number("power")
        self._flag("cycle")

    def __call__(self, step: ArrayLike) -> Array:
        step = _step(step)
        decay_steps = jnp.float32(self.decay_steps)
        if self.cycle:
            multiplier = jnp.where(step == 0, 1.0, jnp.ceil(step / decay_steps))
            decay_steps = decay_steps * multiplier
        else:
            step = jnp.minimum(step, decay_steps)
        fraction_left = 1.0 - step / decay_steps
        delta = self.initial_learning_rate - self.end_learning_rate
        return delta * jnp.power(fraction_left, self.power) + self.end_learning_rate


@dataclass(frozen=True)
class InverseTimeDecay(LearningRateSchedule):
    """Inverse time decay: `initial_learning_rate / (1 + decay_rate * p)`.

    `p = step / decay_steps`, floored when `staircase=True`.

    Example:
        >>> s = InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.5)
        >>> round(float(s(2)), 6)
        0.05
    """

    initial_learning_rate: float
    decay_steps: float
    decay_rate: float
    staircase: bool = False
    name: str = "InverseTimeDecay"

    def __post_init__(self) -> None:
        self._number("initial_learning_rate")
        self._number("decay_steps", **_POSITIVE)
        self._number("decay_rate")
        self._flag("staircase")

    def __call__(self, step: ArrayLike) -> Array:
        p = _step(step) / self.decay_steps
        if self.staircase:
            p = jnp.floor(p)
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)


def _cosine(step: Array, decay_steps: float, alpha: float) -> Array:
    return (1.0 - alpha) * 0.5 * (1.0 + jnp.cos(jnp.pi * step / decay_steps)) + alpha


@dataclass(frozen=True)
class CosineDecay(LearningRateSchedule):
    """Cosine decay to `alpha` times the start value, after an optional linear warmup.

    Without `warmup_target`: `initial_learning_rate * ((1 - alpha) * 0.5 *
    (1 + cos(pi * min(step, decay_steps) / decay_steps)) + alpha)`. With it, the
    rate first moves linearly from `initial_learning_rate` to `warmup_target`
    over `warmup_steps`, then decays from `warmup_target` over `decay_steps`.

    Example:
        >>> s = CosineDecay(0.0, decay_steps=10, warmup_target=0.1, warmup_steps=5)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10, 15)]
        [0.0, 0.1, 0.05, 0.0]
    """

    initial_learning_rate: float
    decay_steps: float
    alpha: float = 0.0
    name: str = "CosineDecay"
    warmup_target: float | None = None
    warmup_steps: float = 0

    def __post_init__(self) -> None:
        self._number("initial_learning_rate")
        self._number("decay_steps", **_POSITIVE)
        self._number("alpha")
        if self.warmup_target is not None:
            self._number("warmup_target")
        self._number("warmup_steps", low=0.0)

    def __call__(self, step: ArrayLike) -> Array:
        step = _step(step)
        if self.warmup_target is None:
            step = jnp.minimum(step, self.decay_steps)
            return self.initial_learning_rate * _cosine(
                step, self.decay_steps, self.alpha
            )
        step = jnp.minimum(step, self.decay_steps + self.warmup_steps)
        delta = self.warmup_target - self.initial_learning_rate
        warm = delta * step / max(self.warmup_steps, 1) + self.initial_learning_rate
        decay_step = step - self.warmup_steps
        decayed = self.warmup_target * _cosine(decay_step, self.decay_steps, self.alpha)
        return jnp.where(step < self.warmup_steps, warm, decayed)


@dataclass(frozen=True)
class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR), Keras' formula.

    The first period lasts `first_decay_steps`; each next one is `t_mul` times
    longer and starts at `m_mul` times the previous start value; within a period
    the rate follows `CosineDecay` down to `alpha` times the period's start.

    Example:
        >>> s = CosineDecayRestarts(0.1, first_decay_steps=10, t_mul=1.0)
        >>> [round(float(s(t)), 6) for t in (0, 5, 10)]
        [0.1, 0.05, 0.1]
    """

    initial_learning_rate: float
    first_decay_steps: float
    t_mul: float = 2.0
    m_mul: float = 1.0
    alpha: float = 0.0
    name: str = "SGDRDecay"

    def __post_init__(self) -> None:
        self._number("initial_learning_rate")
        self._number("first_decay_steps", **_POSITIVE)
        self._number("t_mul", **_POSITIVE)
        self._number("m_mul")
        self._number("alpha")

    def __call__(self, step: ArrayLike) -> Array:
        fraction = _step(step) / self.first_decay_steps
        if self.t_mul == 1.0:
            restarts = jnp.floor(fraction)
            fraction = fraction - restarts
        else:
            # Periods grow geometrically: restart i begins at (1 - t^i) / (1 - t).
            t_mul = jnp.float32(self.t_mul)
            restarts = jnp.floor(
                jnp.log(1.0 - fraction * (1.0 - t_mul)) / jnp.log(t_mul)
            )
            start = (1.0 - t_mul**restarts) / (1.0 - t_mul)
            fraction = (fraction - start) / t_mul**restarts
        cosine = (
            0.5
            * jnp.float32(self.m_mul) ** restarts
            * (1.0 + jnp.cos(jnp.pi * fraction))
        )
        return self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)


SCHEDULES = Catalogue(
    "learning-rate schedule",
    {
        cls.__name__: cls
        for cls in (
            ExponentialDecay,
            PiecewiseConstantDecay,
            PolynomialDecay,
            InverseTimeDecay,
            CosineDecay,
            CosineDecayRestarts,
        )
    },
    tail="Known: {names}.",
    cutoff=0.5,
    example="{'class_name': 'ExponentialDecay', 'config': {...}}",
)
"""funkeras' schedules by class name: the ones that have a saved form."""


def serialize_schedule(schedule: LearningRateSchedule) -> dict[str, Any]:
    """A schedule as `{"class_name": ..., "config": {...}}` (JSON-safe).

    Example:
        >>> serialize_schedule(InverseTimeDecay(0.1, 10, 0.5))["class_name"]
        'InverseTimeDecay'
    """
    if SCHEDULES.name_of(type(schedule)) is None:
        raise TypeError(
            f"Cannot serialize the learning-rate schedule {schedule!r}: only funkeras' "
            f"schedules ({', '.join(SCHEDULES.names())}) have a saved form."
        )
    return SCHEDULES.serialize(schedule)


def deserialize_schedule(config: Mapping[str, Any]) -> LearningRateSchedule:
    """Rebuild a schedule from `serialize_schedule`'s dict (Keras' form is accepted).

    Example:
        >>> s = deserialize_schedule({"class_name": "ExponentialDecay",
        ...     "config": {"initial_learning_rate": 0.1, "decay_steps": 10,
        ...                "decay_rate": 0.5}})
        >>> round(float(s(10)), 6)
        0.05
    """
    return SCHEDULES.deserialize(config)
