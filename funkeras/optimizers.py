"""Keras optimizer names and arguments, built as optax transformations.

funkeras has no update rules of its own: `Adam(...)`, `SGD(...)` and the other
factories here return `optax` transformations configured with Keras 3's names,
defaults and formulas, so a Keras script's `optimizer=` moves over unchanged::

    tx = funkeras.optimizers.get("adam")              # Keras defaults
    tx = funkeras.optimizers.Adam(learning_rate=1e-3, clipnorm=1.0)
    opt_state = tx.init(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)

Every factory wraps its rule in `optax.inject_hyperparams(...,
hyperparam_dtype=jnp.float32)`, so the learning rate lives in `opt_state` in
float32 (a bf16 model does not round it) and `set_learning_rate` changes it
without recompiling a jitted step. The value each factory returns is an
`Optimizer`: an `optax.GradientTransformationExtraArgs` that also remembers its
Keras arguments, so `serialize(tx)` gives `{"class_name": "Adam", "config":
{...}}` and `get(serialize(tx))` rebuilds it. Any other optax transformation
works everywhere funkeras takes an optimizer, but cannot be saved as a config.

Keras' base arguments map onto optax as follows, in Keras' order (clip, then
the rule, then weight decay): `clipnorm` clips each gradient leaf by its own
L2 norm (Keras clips per variable, not globally); `clipvalue` is `optax.clip`;
`global_clipnorm` is `optax.clip_by_global_norm`; `weight_decay` is Keras'
decoupled decay `w -= learning_rate * weight_decay * w` on every parameter
(`optax.add_decayed_weights`, scaled by the current learning rate);
`gradient_accumulation_steps` wraps everything in `optax.MultiSteps`, which
averages `k` gradients and then clips and updates once, as Keras does. Keras'
`use_ema` and `loss_scale_factor` are not offered (see `optax.ema` and
`optax.MultiSteps(..., should_skip_update_fn=...)`).

Where optax's update rule differs from Keras'
---------------------------------------------
* **Adam / AdamW epsilon.** Keras adds `epsilon` to `sqrt(v)` before the bias
  correction ("epsilon hat"): `w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m /
  (sqrt(v) + epsilon)`. `optax.adam` adds `eps` to `sqrt(v_hat)` after it:
  `w -= lr * m_hat / (sqrt(v_hat) + eps)`. The two agree exactly when `eps =
  epsilon / sqrt(1 - beta_2^t)`, so funkeras passes that schedule as optax's
  `eps` (it shows in `opt_state.hyperparams["eps"]`) and Adam/AdamW follow
  Keras. optax's `eps_root` (added inside the square root) is a different term
  and stays 0. A hand-built `optax.adam(lr, eps=1e-7)` has an epsilon
  `sqrt(1 - beta_2^t)` times Keras' (0.03x at step 1): visible only when
  gradients are within a few orders of magnitude of epsilon.
  With `amsgrad=True`, Keras keeps the running maximum of the *raw* second
  moment; funkeras uses `optax.scale_by_amsgrad(bias_correction_nu=False)`
  times `sqrt(1 - beta_2^t)`, which is Keras' formula (`optax.amsgrad` takes
  the maximum of bias-corrected moments instead).
* **SGD momentum under a changing learning rate.** Keras' velocity sums
  learning-rate-scaled steps (`v = momentum * v - lr * g; w += v`); optax's
  `trace` sums raw gradients and scales the sum by the current rate (`t =
  momentum * t + g; w -= lr * t`). They are identical while the rate is
  constant (Nesterov too). After a change (`set_learning_rate`, a schedule),
  optax rescales the whole accumulated momentum at once, whereas Keras lets the
  old steps decay at their old rate. RMSprop's momentum does not differ: optax
  scales by the rate before its trace, as Keras does.
* **Nadam's momentum schedule.** Keras 3 uses Dozat's schedule `u_t = beta_1 *
  (1 - 0.5 * 0.96^t)` and the running product of the `u_t` in its bias
  correction (the TF 1 formula had `0.96^(0.004 t)`); `optax.nadam` uses a
  constant `beta_1` with a Nesterov look-ahead, `m_hat = beta_1 * m /
  (1 - beta_1^(t+1)) + (1 - beta_1) * g / (1 - beta_1^t)`. Epsilon is placed
  alike (added to `sqrt(v_hat)`). The steps differ most early in training and
  converge as `0.96^t` vanishes.
* **Adamax epsilon.** optax folds `eps` into the infinity norm (`u = max(b2 *
  u, |g| + eps)`); Keras adds it to the denominator (`max(b2 * u, |g|) +
  epsilon`). Equal at the first step; after that the denominators differ by
  less than `epsilon`.
* **Adafactor.** Built from optax's Adafactor pieces with Keras' settings:
  every parameter of rank >= 2 is factored (optax's own default factors only
  when two dimensions are >= 128), second-moment decay `1 - t^beta_2_decay`,
  step size `min(learning_rate, 1/sqrt(t)) * max(epsilon_2, rms(param))`,
  update clipping at `clip_threshold`. For parameters of rank >= 3 optax
  factors the two largest axes where Keras factors the last two. As in Keras 3,
  the step size is capped by `1/sqrt(t)` whatever `relative_step` says.
* **Schedules under gradient accumulation.** Keras' schedules count every
  mini-batch; under `optax.MultiSteps` the schedule advances once per applied
  update, so `decay_steps` counts updates, not mini-batches.

Adagrad (same initial accumulator, 0.1, and epsilon inside the square root),
Adadelta, RMSprop (epsilon inside the square root, as optax's
`eps_in_sqrt=True`; centered and momentum variants too) and Lion follow Keras'
formulas exactly. optax's own defaults differ from Keras' in places (epsilon
1e-8, Lion's weight decay 1e-3, Adadelta's rho 0.9); funkeras always passes
Keras' values.
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from funkeras._validation import check_bool, check_float, check_int
from funkeras.typing import Array, ArrayLike, PyTree

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "Nadam",
    "Lion",
    "Adafactor",
    "get",
    "serialize",
    "deserialize",
    "get_learning_rate",
    "set_learning_rate",
    "LearningRateSchedule",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
    "serialize_schedule",
    "deserialize_schedule",
]


# ----------------------------------------------------------------------------
# Learning-rate schedules: Keras' classes and formulas, as optax schedules
# (callables `step -> learning rate`) that also have a JSON-safe config.
# ----------------------------------------------------------------------------


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


_SCHEDULES: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls
    for cls in (
        ExponentialDecay,
        PiecewiseConstantDecay,
        PolynomialDecay,
        InverseTimeDecay,
        CosineDecay,
        CosineDecayRestarts,
    )
}


def serialize_schedule(schedule: LearningRateSchedule) -> dict[str, Any]:
    """A schedule as `{"class_name": ..., "config": {...}}` (JSON-safe).

    Example:
        >>> serialize_schedule(InverseTimeDecay(0.1, 10, 0.5))["class_name"]
        'InverseTimeDecay'
    """
    if _SCHEDULES.get(type(schedule).__name__) is not type(schedule):
        raise TypeError(
            f"Cannot serialize the learning-rate schedule {schedule!r}: only funkeras' "
            f"schedules ({', '.join(_SCHEDULES)}) have a saved form."
        )
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize_schedule(config: Mapping[str, Any]) -> LearningRateSchedule:
    """Rebuild a schedule from `serialize_schedule`'s dict (Keras' form is accepted).

    Example:
        >>> s = deserialize_schedule({"class_name": "ExponentialDecay",
        ...     "config": {"initial_learning_rate": 0.1, "decay_steps": 10,
        ...                "decay_rate": 0.5}})
        >>> round(float(s(10)), 6)
        0.05
    """
    if not isinstance(config, Mapping) or not isinstance(config.get("class_name"), str):
        raise ValueError(
            "A schedule config must be a dict like {'class_name': 'ExponentialDecay', "
            f"'config': {{...}}}}, got {config!r}."
        )
    name = config["class_name"]
    if name not in _SCHEDULES:
        raise ValueError(
            f"Unknown learning-rate schedule {name!r}."
            + _suggest(name, list(_SCHEDULES))
            + f" Known: {', '.join(_SCHEDULES)}."
        )
    return _SCHEDULES[name].from_config(dict(config.get("config") or {}))


# ----------------------------------------------------------------------------
# The transformation type, argument checks and the common builder.
# ----------------------------------------------------------------------------


class Optimizer(optax.GradientTransformationExtraArgs):
    """An optax transformation built from a Keras optimizer, with its config.

    It is an `optax.GradientTransformationExtraArgs` (`init`, `update`) and is
    used exactly like one; it also remembers the Keras class name and arguments
    it was built from, so `serialize` can save it and `get` can rebuild it.
    Create it with the factories (`Adam(...)`, `get("sgd")`), not directly.

    Example:
        >>> tx = Adam(learning_rate=0.01)
        >>> isinstance(tx, optax.GradientTransformation), tx.class_name
        (True, 'Adam')
    """

    _class_name: str | None = None
    _arguments: dict[str, Any] | None = None

    def __new__(
        cls,
        init: Any,
        update: Any,
        *,
        class_name: str | None = None,
        arguments: dict[str, Any] | None = None,
    ) -> Optimizer:
        self = super().__new__(cls, init, update)
        self._class_name = class_name
        self._arguments = dict(arguments) if arguments is not None else None
        return self

    @property
    def class_name(self) -> str | None:
        """The Keras class name (`"Adam"`), or None for a bare transformation."""
        return self._class_name

    def get_config(self) -> dict[str, Any]:
        """The Keras arguments as a JSON-safe dict (a schedule as its own config).

        Raises:
            TypeError: the learning rate is a callable that is not a funkeras
                schedule, or the transformation carries no arguments.
        """
        if self._class_name is None or self._arguments is None:
            raise TypeError(_NOT_SERIALIZABLE.format(what="this transformation"))
        config = dict(self._arguments)
        rate = config["learning_rate"]
        if callable(rate):
            if not isinstance(rate, LearningRateSchedule):
                raise TypeError(
                    f"{self._class_name}: cannot serialize learning_rate={rate!r}: "
                    "a plain callable schedule has no saved form. Use one of "
                    f"funkeras' schedules ({', '.join(_SCHEDULES)}) or a float."
                )
            config["learning_rate"] = serialize_schedule(rate)
        return config

    def __repr__(self) -> str:
        if self._class_name is None or self._arguments is None:
            return super().__repr__()
        args = ", ".join(f"{k}={v!r}" for k, v in self._arguments.items())
        return f"{self._class_name}({args})"


_NOT_SERIALIZABLE = (
    "Cannot serialize {what}: only the optimizers built by funkeras.optimizers "
    "(get('adam'), Adam(...), ...) remember their arguments. An arbitrary optax "
    "transformation (or one wrapped around a funkeras optimizer) has no config; "
    "rebuild it in code when loading, or save the model without its optimizer."
)


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _check_learning_rate(
    owner: str, value: Any
) -> float | Callable[[ArrayLike], Array]:
    if isinstance(value, Mapping):
        return deserialize_schedule(value)
    if callable(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(
            f"{owner}: `learning_rate` must be a float, a schedule "
            "(ExponentialDecay(...), CosineDecay(...), any optax schedule "
            "`step -> rate`) or a schedule config dict, "
            f"got {value!r} ({type(value).__name__})."
        )
    rate = float(value)
    if not (math.isfinite(rate) and rate >= 0.0):
        raise ValueError(
            f"{owner}: `learning_rate` must be a finite number >= 0, got {value!r}."
        )
    return rate


def _optional_positive(owner: str, arg: str, value: Any) -> float | None:
    if value is None:
        return None
    return check_float(owner, arg, value, low=0.0, low_inclusive=False)


def _check_common(owner: str, args: dict[str, Any]) -> dict[str, Any]:
    """Validate Keras' base optimizer arguments in place and return `args`."""
    args["learning_rate"] = _check_learning_rate(owner, args["learning_rate"])
    if args["weight_decay"] is not None:
        args["weight_decay"] = check_float(
            owner, "weight_decay", args["weight_decay"], low=0.0
        )
    for arg in ("clipnorm", "clipvalue", "global_clipnorm"):
        args[arg] = _optional_positive(owner, arg, args[arg])
    clips = [
        a for a in ("clipnorm", "clipvalue", "global_clipnorm") if args[a] is not None
    ]
    if len(clips) > 1:
        raise ValueError(
            f"{owner}: only one of `clipnorm`, `clipvalue` and `global_clipnorm` "
            f"can be set, got {', '.join(f'{a}={args[a]}' for a in clips)}."
        )
    if args["gradient_accumulation_steps"] is not None:
        args["gradient_accumulation_steps"] = check_int(
            owner,
            "gradient_accumulation_steps",
            args["gradient_accumulation_steps"],
            minimum=2,
        )
    if args["name"] is not None and not isinstance(args["name"], str):
        raise TypeError(f"{owner}: `name` must be a string, got {args['name']!r}.")
    return args


def _check_unit(owner: str, arg: str, value: Any) -> float:
    return check_float(owner, arg, value, low=0.0, high=1.0)




def _clip_by_norm_per_leaf(max_norm: ArrayLike) -> optax.GradientTransformation:
    """Keras' `clipnorm`: scale each leaf `g` by `max_norm / max(||g||, max_norm)`."""

    def clip(updates: PyTree, params: PyTree = None) -> PyTree:
        del params

        def leaf(g: Array) -> Array:
            norm = jnp.sqrt(jnp.sum(jnp.square(g.astype(jnp.float32))))
            return (g * (max_norm / jnp.maximum(norm, max_norm))).astype(g.dtype)

        return jax.tree.map(leaf, updates)

    return optax.stateless(clip)


def _build(
    class_name: str,
    args: dict[str, Any],
    hyperparams: dict[str, Any],
    rule: Callable[[dict[str, Any]], optax.GradientTransformation],
    static: Sequence[str] = (),
) -> Optimizer:
    """Wrap `rule` in Keras' clipping, weight decay and accumulation, with injection.

    `hyperparams` are the rule's own arguments (besides `learning_rate`): numbers
    become float32 entries of `opt_state.hyperparams` (schedules are re-evaluated
    every step), booleans, None and the names in `static` stay Python values.
    `rule(h)` gets the current values and returns the scaled, signed update.
    """
    injected = {
        "learning_rate": args["learning_rate"],
        "weight_decay": args["weight_decay"],
        "clipnorm": args["clipnorm"],
        "clipvalue": args["clipvalue"],
        "global_clipnorm": args["global_clipnorm"],
        **hyperparams,
    }

    def inner(**h: Any) -> optax.GradientTransformation:
        parts = []
        if h["clipnorm"] is not None:
            parts.append(_clip_by_norm_per_leaf(h["clipnorm"]))
        if h["clipvalue"] is not None:
            parts.append(optax.clip(h["clipvalue"]))
        if h["global_clipnorm"] is not None:
            parts.append(optax.clip_by_global_norm(h["global_clipnorm"]))
        parts.append(rule(h))
        if h["weight_decay"] is not None:
            # Keras' decoupled decay: w -= learning_rate * weight_decay * w.
            parts.append(
                optax.add_decayed_weights(-h["learning_rate"] * h["weight_decay"])
            )
        return optax.chain(*parts)

    inner.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY) for k in injected]
    )
    tx: optax.GradientTransformation = optax.inject_hyperparams(
        inner, static_args=tuple(static), hyperparam_dtype=jnp.float32
    )(**injected)
    if args["gradient_accumulation_steps"] is not None:
        tx = optax.MultiSteps(
            tx, args["gradient_accumulation_steps"]
        ).gradient_transformation()

    def update(
        updates: PyTree, state: PyTree, params: PyTree = None, **extra_args: Any
    ) -> tuple[PyTree, PyTree]:
        updates, new_state = tx.update(updates, state, params, **extra_args)
        # Keep every state leaf in its `init` dtype, as Keras keeps optimizer
        # variables in their variable's dtype: otherwise the float32
        # hyperparameters promote bf16 moments to float32 at the first update,
        # and a jitted step compiles a second time.
        return updates, jax.tree.map(_keep_dtype, new_state, state)

    return Optimizer(tx.init, update, class_name=class_name, arguments=args)


def _keep_dtype(new: Any, old: Any) -> Any:
    dtype = getattr(old, "dtype", None)
    return new if dtype is None or new.dtype == dtype else new.astype(dtype)


def _common(
    args: dict[str, Any], name: str | None, default_name: str
) -> dict[str, Any]:
    args["name"] = default_name if name is None else name
    return args


# ----------------------------------------------------------------------------
# The optimizers. Arguments, order and defaults are Keras 3's.
# ----------------------------------------------------------------------------

_COMMON_ARGS_DOC = """
        weight_decay: If set, decoupled weight decay `w -= learning_rate *
            weight_decay * w` on every parameter (needs `params` in `update`).
        clipnorm: If set, each gradient leaf is scaled so that its own L2 norm is
            at most this value.
        clipvalue: If set, each gradient element is clipped to `[-clipvalue,
            clipvalue]`.
        global_clipnorm: If set, all gradients are scaled so that their global L2
            norm is at most this value. At most one of the three clip arguments.
        gradient_accumulation_steps: If an int >= 2, gradients are averaged over
            this many calls and applied once (`optax.MultiSteps`); the calls in
            between return zero updates.
        name: Kept in the config, as in Keras; nothing else uses it."""


def SGD(  # noqa: N802 - Keras' class name
    learning_rate: Any = 0.01,
    momentum: float = 0.0,
    nesterov: bool = False,
    *,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
) -> Optimizer:
    """Gradient descent with optional (Nesterov) momentum: `optax.sgd`.

    Keras' rule `v = momentum * v - lr * g; w += v` equals optax's `t = momentum *
    t + g; w -= lr * t` while the learning rate is constant; see the module notes
    for what happens when it changes.

    Args:
        learning_rate: A float >= 0 or a schedule. Defaults to 0.01.
        momentum: Float in [0, 1]; 0 is plain gradient descent.
        nesterov: Whether to use Nesterov momentum.
    {common}

    Returns:
        An `Optimizer` (an optax transformation).

    Example:
        >>> tx = SGD(learning_rate=0.1, momentum=0.9)
        >>> params = {"w": jnp.ones(2)}
        >>> updates, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
        >>> updates["w"].tolist()
        [-0.10000000149011612, -0.10000000149011612]
    """
    args = _common(dict(locals()), name, "SGD")
    _check_common("SGD", args)
    args["momentum"] = _check_unit("SGD", "momentum", momentum)
    args["nesterov"] = check_bool("SGD", "nesterov", nesterov)
    hyper = {"momentum": args["momentum"] or None, "nesterov": args["nesterov"]}
    return _build(
        "SGD",
        args,
        hyper,
        lambda h: optax.sgd(h["learning_rate"], h["momentum"], h["nesterov"]),
    )


def _adam_hyperparams(owner: str, args: dict[str, Any]) -> dict[str, Any]:
    args["beta_1"] = _check_unit(owner, "beta_1", args["beta_1"])
    args["beta_2"] = check_float(
        owner, "beta_2", args["beta_2"], low=0.0, high=1.0, high_inclusive=False
    )
    args["epsilon"] = check_float(owner, "epsilon", args["epsilon"], low=0.0)
    args["amsgrad"] = check_bool(owner, "amsgrad", args["amsgrad"])
    beta_2, epsilon = args["beta_2"], args["epsilon"]
    if args["amsgrad"]:
        eps: Any = epsilon
    else:
        # optax adds eps to sqrt(v_hat); Keras adds epsilon to sqrt(v). Equal when
        # eps = epsilon / sqrt(1 - beta_2^t), t = count + 1 (the module notes).
        def eps(count: ArrayLike) -> Array:
            return epsilon * jax.lax.rsqrt(1.0 - beta_2 ** (jnp.asarray(count) + 1.0))

    return {
        "beta_1": args["beta_1"],
        "beta_2": beta_2,
        "eps": eps,
        "amsgrad": args["amsgrad"],
    }


def _adam_rule(h: dict[str, Any]) -> optax.GradientTransformation:
    if not h["amsgrad"]:
        return optax.adam(h["learning_rate"], h["beta_1"], h["beta_2"], eps=h["eps"])
    beta_2 = h["beta_2"]
    return optax.chain(
        optax.scale_by_amsgrad(h["beta_1"], beta_2, h["eps"], bias_correction_nu=False),
        # Keras' bias correction of the raw maximum: times sqrt(1 - beta_2^t).
        optax.scale_by_schedule(lambda count: jnp.sqrt(1.0 - beta_2 ** (count + 1.0))),
        optax.scale_by_learning_rate(h["learning_rate"]),
    )


def Adam(  # noqa: N802 - Keras' class name
    learning_rate: Any = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
    *,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
) -> Optimizer:
    """Adam with Keras' "epsilon hat": `optax.adam` with a scheduled `eps`.

    The update is Keras' `w -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m /
    (sqrt(v) + epsilon)` (see the module notes for how optax's `eps` is set).

    Args:
        learning_rate: A float >= 0 or a schedule. Defaults to 0.001.
        beta_1: Decay rate of the first-moment estimate.
        beta_2: Decay rate of the second-moment estimate, in [0, 1).
        epsilon: Keras' epsilon, added to `sqrt(v)`.
        amsgrad: Whether to use the AMSGrad variant (Keras' formula).
    {common}

    Returns:
        An `Optimizer` (an optax transformation).

    Example:
        >>> tx = Adam(learning_rate=0.1)
        >>> params = jnp.zeros(2)
        >>> updates, _ = tx.update(jnp.array([1.0, -2.0]), tx.init(params))
        >>> [round(u, 4) for u in updates.tolist()]
        [-0.1, 0.1]
    """
    args = _common(dict(locals()), name, "adam")
    _check_common("Adam", args)
    return _build("Adam", args, _adam_hyperparams("Adam", args), _adam_rule)


def AdamW(  # noqa: N802 - Keras' class name
    learning_rate: Any = 0.001,
    weight_decay: float = 0.004,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
    *,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
) -> Optimizer:
    """Adam with decoupled weight decay `w -= lr * weight_decay * w` (Keras' AdamW).

    The same rule as `Adam` plus the decay; `update` needs `params`.

    Args:
        learning_rate: A float >= 0 or a schedule. Defaults to 0.001.
        weight_decay: Decay factor, a float >= 0. Defaults to 0.004.
        beta_1: Decay rate of the first-moment estimate.
        beta_2: Decay rate of the second-moment estimate, in [0, 1).
        epsilon: Keras' epsilon, added to `sqrt(v)`.
        amsgrad: Whether to use the AMSGrad variant (Keras' formula).
        clipnorm: As in `Adam`.
        clipvalue: As in `Adam`.
        global_clipnorm: As in `Adam`.
        gradient_accumulation_steps: As in `Adam`.
        name: Kept in the config.

    Returns:
        An `Optimizer` (an optax transformation).

    Example:
        >>> tx = AdamW(learning_rate=0.1, weight_decay=0.5)
        >>> params = jnp.ones(1)
        >>> updates, _ = tx.update(jnp.zeros(1), tx.init(params), params)
        >>> round(float(updates[0]), 4)  # only the decay: -0.1 * 0.5 * 1
        -0.05
    """
    if weight_decay is None:
        raise ValueError(
            "AdamW: `weight_decay` must be a float >= 0, got None. "
            "Use Adam for no decay."
        )
    args = _common(dict(locals()), name, "adamw")
    _check_common("AdamW", args)
    return _build("AdamW", args, _adam_hyperparams("AdamW", args), _adam_rule)


def RMSprop(  # noqa: N802 - Keras' class name
    learning_rate: Any = 0.001,
    rho: float = 0.9,
    momentum: float = 0.0,
    epsilon: float = 1e-7,
    centered: bool = False,
    *,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
) -> Optimizer:
    """RMSprop, `w -= lr * g / sqrt(v + epsilon)`: `optax.rmsprop` (Keras' formula).

    Args:
        learning_rate: A float >= 0 or a schedule. Defaults to 0.001.
        rho: Decay rate of the moving average of squared gradients.
        momentum: Float in [0, 1]; if > 0, a momentum on the scaled steps.
        epsilon: Added to the average inside the square root, as in Keras.
        centered: Whether to divide by the estimated variance instead.
    {common}

    Returns:
        An `Optimizer` (an optax transformation).

    Example:
        >>> tx = RMSprop(learning_rate=0.1, epsilon=0.0)
        >>> params = jnp.zeros(1)
        >>> updates, _ = tx.update(jnp.ones(1), tx.init(params))
        >>> round(float(updates[0]), 4)  # -0.1 / sqrt(0.1)
        -0.3162
    """
    args = _common(dict(locals()), name, "rmsprop")
    _check_common("RMSprop", args)
    args["rho"] = _check_unit("RMSprop", "rho", rho)
    args["momentum"] = _check_unit("RMSprop", "momentum", momentum)
    args["epsilon"] = check_float("RMSprop", "epsilon", epsilon, low=0.0)
    args["centered"] = check_bool("RMSprop", "centered", centered)
    hyper = {
        "rho": args["rho"],
        "momentum": args["momentum"] or None,
        "epsilon": args["epsilon"],
        "centered": args["centered"],
    }
    return _build(
        "RMSprop",
        args,
        hyper,
        lambda h: optax.rmsprop(
            h["learning_rate"],
            decay=h["rho"],
            eps=h["epsilon"],
            eps_in_sqrt=True,
            centered=h["centered"],
            momentum=h["momentum"],
        ),
    )


def Adagrad(  # noqa: N802 - Keras' class name
    learning_rate: Any = 0.001,
    initial_accumulator_value: float = 0.1,
    epsilon: float = 1e-7,
    *,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
) -> Optimizer:
    """Adagrad, `w -= lr * g / sqrt(sum g^2 + epsilon)`: `optax.adagrad`.

    Args:
        learning_rate: A float >= 0 or a schedule. Defaults to 0.001.
        initial_accumulator_value: Starting value of the sum of squares, >= 0.
        epsilon: Added inside the square root.
    {common}

    Returns:
        An `Optimizer` (an optax transformation).

    Example:
        >>> tx = Adagrad(learning_rate=1.0, initial_accumulator_value=0.0, epsilon=0.0)
        >>> params = jnp.zeros(1)
        >>> updates, _ = tx.update(jnp.full(1, 3.0), tx.init(params))
        >>> float(updates[0])
        -1.0
    """
    args = _common(dict(locals()), name, "adagrad")
    _check_common("Adagrad", args)
    args["initial_accumulator_value"] = check_float(
        "Adagrad", "initial_accumulator_value", initial_accumulator_value, low=0.0
    )
    args["epsilon"] = check_float("Adagrad", "epsilon", epsilon, low=0.0)
    hyper = {
        "initial_accumulator_value": args["initial_accumulator_value"],
        "epsilon": args["epsilon"],
    }
    return _build(
        "Adagrad",
        args,
        hyper,
        lambda h: optax.adagrad(
            h["learning_rate"], h["initial_accumulator_value"], h["epsilon"]
        ),
        static=("initial_accumulator_value",),
    )


def Adadelta(  # noqa: N802 - Keras' class name
    learning_rate: Any = 0.001,
    rho: float = 0.95,
    epsilon: float = 1e-7,
    *,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
) -> Optimizer:
    """Adadelta: `optax.scale_by_adadelta` times the learning rate (Keras' formula).

    Args:
        learning_rate: A float >= 0 or a schedule. Defaults to 0.001 (the paper's
            form is 1.0).
        rho: Decay rate of both moving averages.
        epsilon: Added inside both square roots.
    {common}

    Returns:
        An `Optimizer` (an optax transformation).

    Example:
        >>> tx = Adadelta(learning_rate=1.0, rho=0.0, epsilon=1.0)
        >>> params = jnp.zeros(1)
        >>> updates, _ = tx.update(jnp.zeros(1), tx.init(params))
        >>> float(updates[0])
        -0.0
    """
    args = _common(dict(locals()), name, "adadelta")
    _check_common("Adadelta", args)
    args["rho"] = _check_unit("Adadelta", "rho", rho)
    args["epsilon"] = check_float("Adadelta", "epsilon", epsilon, low=0.0)
    return _build(
        "Adadelta",
        args,
        {"rho": args["rho"], "epsilon": args["epsilon"]},
        lambda h: optax.chain(
            optax.scale_by_adadelta(h["rho"], h["epsilon"]),
            optax.scale_by_learning_rate(h["learning_rate"]),
        ),
    )


def Adamax(  # noqa: N802 - Keras' class name
    learning_rate: Any = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    *,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
) -> Optimizer:
    """Adamax (Adam with the infinity norm): `optax.adamax`.

    optax places epsilon inside the running maximum, Keras beside it (module notes).

    Args:
        learning_rate: A float >= 0 or a schedule. Defaults to 0.001.
        beta_1: Decay rate of the first-moment estimate.
        beta_2: Decay rate of the infinity norm.
        epsilon: Small constant for numerical stability.
    {common}

    Returns:
        An `Optimizer` (an optax transformation).

    Example:
        >>> tx = Adamax(learning_rate=0.1)
        >>> params = jnp.zeros(1)
        >>> updates, _ = tx.update(jnp.full(1, 2.0), tx.init(params))
        >>> round(float(updates[0]), 4)
        -0.1
    """
    args = _common(dict(locals()), name, "adamax")
    _check_common("Adamax", args)
    args["beta_1"] = _check_unit("Adamax", "beta_1", beta_1)
    args["beta_2"] = _check_unit("Adamax", "beta_2", beta_2)
    args["epsilon"] = check_float("Adamax", "epsilon", epsilon, low=0.0)
    return _build(
        "Adamax",
        args,
        {
            "beta_1": args["beta_1"],
            "beta_2": args["beta_2"],
            "epsilon": args["epsilon"],
        },
        lambda h: optax.adamax(
            h["learning_rate"], h["beta_1"], h["beta_2"], h["epsilon"]
        ),
    )


def Nadam(  # noqa: N802 - Keras' class name
    learning_rate: Any = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    *,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
) -> Optimizer:
    """Adam with Nesterov momentum: `optax.nadam`.

    optax's Nesterov look-ahead uses a constant `beta_1`, not Keras' momentum
    schedule `beta_1 * (1 - 0.5 * 0.96^t)` (module notes).

    Args:
        learning_rate: A float >= 0 or a schedule. Defaults to 0.001.
        beta_1: Decay rate of the first-moment estimate.
        beta_2: Decay rate of the second-moment estimate, in [0, 1).
        epsilon: Added to `sqrt(v_hat)`, as in Keras' Nadam.
    {common}

    Returns:
        An `Optimizer` (an optax transformation).

    Example:
        >>> tx = Nadam(learning_rate=0.1)
        >>> params = jnp.zeros(1)
        >>> updates, _ = tx.update(jnp.ones(1), tx.init(params))
        >>> round(float(updates[0]), 4)  # Keras' momentum schedule gives -0.1063
        -0.1474
    """
    args = _common(dict(locals()), name, "nadam")
    _check_common("Nadam", args)
    args["beta_1"] = _check_unit("Nadam", "beta_1", beta_1)
    args["beta_2"] = check_float(
        "Nadam", "beta_2", beta_2, low=0.0, high=1.0, high_inclusive=False
    )
    args["epsilon"] = check_float("Nadam", "epsilon", epsilon, low=0.0)
    return _build(
        "Nadam",
        args,
        {
            "beta_1": args["beta_1"],
            "beta_2": args["beta_2"],
            "epsilon": args["epsilon"],
        },
        lambda h: optax.nadam(
            h["learning_rate"], h["beta_1"], h["beta_2"], h["epsilon"]
        ),
    )


def Lion(  # noqa: N802 - Keras' class name
    learning_rate: Any = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.99,
    *,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
) -> Optimizer:
    """Lion, `w -= lr * sign(beta_1 * m + (1 - beta_1) * g)`: `optax.scale_by_lion`.

    Unlike `optax.lion` (weight decay 1e-3 by default), there is no weight decay
    unless `weight_decay` is given, as in Keras.

    Args:
        learning_rate: A float >= 0 or a schedule. Defaults to 0.001.
        beta_1: Interpolation between momentum and gradient, in (0, 1].
        beta_2: Decay rate of the momentum.
    {common}

    Returns:
        An `Optimizer` (an optax transformation).

    Example:
        >>> tx = Lion(learning_rate=0.1)
        >>> params = jnp.zeros(2)
        >>> updates, _ = tx.update(jnp.array([3.0, -0.5]), tx.init(params))
        >>> [round(u, 4) for u in updates.tolist()]
        [-0.1, 0.1]
    """
    args = _common(dict(locals()), name, "lion")
    _check_common("Lion", args)
    args["beta_1"] = check_float(
        "Lion", "beta_1", beta_1, low=0.0, high=1.0, low_inclusive=False
    )
    args["beta_2"] = _check_unit("Lion", "beta_2", beta_2)
    return _build(
        "Lion",
        args,
        {"beta_1": args["beta_1"], "beta_2": args["beta_2"]},
        lambda h: optax.chain(
            optax.scale_by_lion(h["beta_1"], h["beta_2"]),
            optax.scale_by_learning_rate(h["learning_rate"]),
        ),
    )


def Adafactor(  # noqa: N802 - Keras' class name
    learning_rate: Any = 0.001,
    beta_2_decay: float = -0.8,
    epsilon_1: float = 1e-30,
    epsilon_2: float = 1e-3,
    clip_threshold: float = 1.0,
    relative_step: bool = True,
    *,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
) -> Optimizer:
    """Adafactor with Keras' settings, from optax's Adafactor pieces.

    Step `t`: second moments decay by `1 - t^beta_2_decay` (factored for every
    parameter of rank >= 2), the scaled gradient is clipped to RMS
    `clip_threshold`, then multiplied by `min(learning_rate, 1/sqrt(t)) *
    max(epsilon_2, rms(param))`. `update` needs `params`.

    Args:
        learning_rate: A float >= 0 or a schedule. Defaults to 0.001.
        beta_2_decay: Exponent of the second-moment decay, < 0.
        epsilon_1: Added to squared gradients.
        epsilon_2: Lower bound on the parameter scale.
        clip_threshold: RMS threshold of the update clipping.
        relative_step: Kept for Keras compatibility: in Keras 3 the step size
            is capped by `1/sqrt(t)` either way, and so it is here.
    {common}

    Returns:
        An `Optimizer` (an optax transformation).

    Example:
        >>> tx = Adafactor(learning_rate=0.1)
        >>> params = jnp.ones(2)
        >>> updates, _ = tx.update(jnp.array([1.0, -1.0]), tx.init(params), params)
        >>> [round(u, 4) for u in updates.tolist()]
        [-0.1, 0.1]
    """
    args = _common(dict(locals()), name, "adafactor")
    _check_common("Adafactor", args)
    args["beta_2_decay"] = check_float(
        "Adafactor", "beta_2_decay", beta_2_decay, high=0.0, high_inclusive=False
    )
    args["epsilon_1"] = check_float("Adafactor", "epsilon_1", epsilon_1, low=0.0)
    args["epsilon_2"] = check_float("Adafactor", "epsilon_2", epsilon_2, low=0.0)
    args["clip_threshold"] = check_float(
        "Adafactor", "clip_threshold", clip_threshold, low=0.0, low_inclusive=False
    )
    args["relative_step"] = check_bool("Adafactor", "relative_step", relative_step)
    hyper = {
        k: args[k] for k in ("beta_2_decay", "epsilon_1", "epsilon_2", "clip_threshold")
    }

    def rule(h: dict[str, Any]) -> optax.GradientTransformation:
        rate = h["learning_rate"]
        return optax.chain(
            optax.scale_by_factored_rms(
                factored=True,
                decay_rate=-h["beta_2_decay"],
                min_dim_size_to_factor=1,
                epsilon=h["epsilon_1"],
            ),
            optax.clip_by_block_rms(h["clip_threshold"]),
            optax.scale_by_schedule(
                lambda count: -jnp.minimum(rate, jax.lax.rsqrt(count + 1.0))
            ),
            optax.scale_by_param_block_rms(h["epsilon_2"]),
        )

    return _build("Adafactor", args, hyper, rule)


for _factory in (SGD, Adam, RMSprop, Adagrad, Adadelta, Adamax, Nadam, Lion, Adafactor):
    if _factory.__doc__:
        _factory.__doc__ = _factory.__doc__.replace(
            "    {common}", _COMMON_ARGS_DOC.strip("\n")
        )

_OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
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
}

# Keras config keys funkeras accepts only at their inert values (`ema_momentum`
# means nothing without `use_ema`).
_KERAS_ONLY = {
    "use_ema": False,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
}
_KERAS_IGNORED = ("ema_momentum",)


# ----------------------------------------------------------------------------
# Names, configs and the learning rate in the optimizer state.
# ----------------------------------------------------------------------------


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
        return _lookup(identifier)(**overrides)
    if isinstance(identifier, Mapping):
        return deserialize(
            {**identifier, "config": {**(identifier.get("config") or {}), **overrides}}
        )
    raise TypeError(
        "get(): expected an optimizer name (e.g. 'adam'), a config dict or an optax "
        f"GradientTransformation, got {identifier!r} ({type(identifier).__name__})."
    )


def _lookup(name: str) -> Callable[..., Optimizer]:
    key = name.lower()
    if key not in _OPTIMIZERS:
        raise ValueError(
            f"Unknown optimizer {name!r}."
            + _suggest(key, list(_OPTIMIZERS))
            + f" Known names: {', '.join(_OPTIMIZERS)}; "
            "or pass any optax transformation."
        )
    return _OPTIMIZERS[key]


def serialize(optimizer: optax.GradientTransformation) -> dict[str, Any]:
    """An optimizer built here as `{"class_name": ..., "config": {...}}` (JSON-safe).

    Raises:
        TypeError: `optimizer` is an arbitrary optax transformation, or its
            learning rate is a callable that is not a funkeras schedule.

    Example:
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
    if not isinstance(config, Mapping) or not isinstance(config.get("class_name"), str):
        raise ValueError(
            "An optimizer config must be a dict like {'class_name': 'Adam', 'config': "
            f"{{...}}}}, got {config!r}."
        )
    factory = _lookup(config["class_name"])
    kwargs = dict(config.get("config") or {})
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


_INJECT_STATES = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)


def _is_inject(node: Any) -> bool:
    return isinstance(node, _INJECT_STATES)


def _has_rate(node: Any) -> bool:
    return "learning_rate" in node.hyperparams


def _is_scheduled(node: Any) -> bool:
    return "learning_rate" in (getattr(node, "hyperparams_states", None) or {})


def _find_rates(opt_state: PyTree) -> list[tuple[str, Any]]:
    """(key path, inject state) for every injected learning rate in `opt_state`."""
    found: list[tuple[str, Any]] = []
    leaves, _ = jax.tree_util.tree_flatten_with_path(opt_state, is_leaf=_is_inject)
    for path, node in leaves:
        if not _is_inject(node):
            continue
        if _has_rate(node):
            found.append((jax.tree_util.keystr(path), node))
        else:
            inner = _find_rates(node.inner_state)
            found.extend(
                (jax.tree_util.keystr(path) + ".inner_state" + p, n) for p, n in inner
            )
    return found


_NO_RATE = (
    "{fn}: found no injectable learning rate in the optimizer state. Build the "
    "optimizer with funkeras.optimizers (get('adam'), Adam(...)) or wrap your optax "
    "factory: optax.inject_hyperparams(optax.adam)(learning_rate=1e-3), so the rate "
    "lives in the state."
)


def _check_agree(fn: str, found: list[tuple[str, Any]]) -> None:
    rates = [node.hyperparams["learning_rate"] for _, node in found]
    if any(isinstance(rate, jax.core.Tracer) for rate in rates):
        return  # under a trace the values are unknown; nothing to compare
    values = {float(np.asarray(rate)) for rate in rates}
    if len(values) > 1:
        where = ", ".join(
            f"{path}: {float(np.asarray(node.hyperparams['learning_rate']))}"
            for path, node in found
        )
        raise ValueError(
            f"{fn}: the optimizer state holds several different learning rates "
            f"({where}). Read or set each on its own sub-state."
        )


def get_learning_rate(opt_state: PyTree, optimizer: Any = None) -> float:
    """The learning rate the next update will use, read from `opt_state`.

    The injected hyperparameters are searched for anywhere in the state, so
    wrappers (`optax.MultiSteps`, `optax.chain`, `optax.masked`,
    `optax.multi_transform`) are fine. Several copies must agree.

    Args:
        opt_state: The state of an optimizer built here or with
            `optax.inject_hyperparams`.
        optimizer: Needed only when the learning rate is a schedule: the
            `Optimizer` built here, whose schedule is evaluated at the state's
            step count (optax keeps only the last value used in the state).

    Returns:
        The learning rate as a Python float (this reads the device).

    Raises:
        ValueError: no injectable learning rate; copies that disagree; or a
            schedule without `optimizer`.

    Example:
        >>> tx = SGD(learning_rate=0.1, gradient_accumulation_steps=2)
        >>> round(get_learning_rate(tx.init(jnp.zeros(2))), 6)
        0.1
    """
    found = _find_rates(opt_state)
    if not found:
        raise ValueError(_NO_RATE.format(fn="get_learning_rate"))
    scheduled = [node for _, node in found if _is_scheduled(node)]
    if not scheduled:
        _check_agree("get_learning_rate", found)
        return float(np.asarray(found[0][1].hyperparams["learning_rate"]))
    if len(scheduled) != len(found):
        raise ValueError(
            "get_learning_rate: the optimizer state holds both scheduled and constant "
            f"learning rates ({', '.join(path for path, _ in found)}). Read each on "
            "its own sub-state."
        )
    count = int(np.asarray(scheduled[0].hyperparams_states["learning_rate"].count))
    schedule = None
    if isinstance(optimizer, Optimizer) and optimizer._arguments is not None:
        schedule = optimizer._arguments.get("learning_rate")
    if not callable(schedule):
        raise ValueError(
            "get_learning_rate: the learning rate follows a schedule (now at step "
            f"{count}), and the state keeps only the last value used. Pass the "
            "optimizer so its schedule can be evaluated: "
            "get_learning_rate(opt_state, optimizer=tx), or call your schedule "
            f"yourself: schedule({count})."
        )
    return float(schedule(count))


def set_learning_rate(opt_state: PyTree, value: ArrayLike) -> PyTree:
    """A copy of `opt_state` with a new learning rate, keeping dtype, shape and device.

    Keeping the stored dtype (float32, strongly typed) and placement means a
    jitted train step that takes the state does not recompile. Every copy of
    the rate found (they must agree) gets the new value.

    Args:
        opt_state: The state of an optimizer built here or with
            `optax.inject_hyperparams`.
        value: The new learning rate: a finite number >= 0 (or a scalar array).

    Returns:
        The new optimizer state; the old one is unchanged.

    Raises:
        ValueError: no injectable learning rate; copies that disagree; the rate
            is a schedule (optax recomputes it every step, so a manual value
            would do nothing); or a negative or non-finite value.

    Example:
        >>> tx = Adam(learning_rate=0.1)
        >>> state = set_learning_rate(tx.init(jnp.zeros(2)), 0.01)
        >>> round(get_learning_rate(state), 6)
        0.01
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.number | np.ndarray | jax.Array)
        or np.ndim(value) != 0
    ):
        raise TypeError(
            f"set_learning_rate: `value` must be a real scalar, got {value!r}."
        )
    if not isinstance(value, jax.core.Tracer):
        concrete = float(np.asarray(value))
        if not (math.isfinite(concrete) and concrete >= 0.0):
            raise ValueError(
                "set_learning_rate: `value` must be a finite number >= 0, "
                f"got {value!r}."
            )
    found = _find_rates(opt_state)
    if not found:
        raise ValueError(_NO_RATE.format(fn="set_learning_rate"))
    for path, node in found:
        if _is_scheduled(node):
            raise ValueError(
                f"set_learning_rate: the learning rate at {path or 'the top'} "
                "follows a schedule, which optax re-evaluates at every step, so a "
                "value set by hand would be overwritten. Build the optimizer with a "
                "float learning rate to set it from callbacks, or change the "
                "schedule and rebuild."
            )
    _check_agree("set_learning_rate", found)

    def replace(node: Any) -> Any:
        if not _is_inject(node):
            return node
        if not _has_rate(node):
            return node._replace(inner_state=_map(node.inner_state))
        old = node.hyperparams["learning_rate"]
        new = jnp.broadcast_to(jnp.asarray(value, dtype=old.dtype), jnp.shape(old))
        if isinstance(old, jax.Array) and not isinstance(old, jax.core.Tracer):
            new = jax.device_put(new, old.sharding)
        return node._replace(hyperparams={**node.hyperparams, "learning_rate": new})

    def _map(tree: PyTree) -> PyTree:
        return jax.tree.map(replace, tree, is_leaf=_is_inject)

    return _map(opt_state)
