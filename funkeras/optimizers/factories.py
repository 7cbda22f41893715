"""Keras' optimizers (`SGD`, `Adam`, ...) as factories of optax transformations,
with Keras 3's arguments, order and defaults. See docs/optimizers.md for where
optax's update rules differ from Keras' and how funkeras closes the gap."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from funkeras._validation import check_bool, check_float
from funkeras.optimizers.base import (
    Optimizer,
    _build,
    _check_common,
    _check_unit,
    _common,
)
from funkeras.typing import Array, ArrayLike

__all__ = [
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
]


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
