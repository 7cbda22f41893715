"""Tests for funkeras.optimizers: Keras names on optax, against NumPy references.

The references below are Keras 3's update rules (keras/src/optimizers/*.py)
written out in float64 NumPy, run through Keras' `BaseOptimizer.apply` order:
accumulate -> clip -> decoupled weight decay -> rule.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from funkeras.optimizers import (
    SGD,
    Adafactor,
    Adam,
    AdamW,
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    Optimizer,
    PiecewiseConstantDecay,
    PolynomialDecay,
    RMSprop,
    deserialize,
    deserialize_schedule,
    get,
    get_learning_rate,
    serialize,
    serialize_schedule,
    set_learning_rate,
)

# ----------------------------------------------------------------------------
# Keras' rules in NumPy. Each takes (w, g, slots, t) for one variable, t >= 1.
# ----------------------------------------------------------------------------


def keras_sgd(lr=0.01, momentum=0.0, nesterov=False):
    def step(w, g, s, t):
        if momentum == 0:
            return w - lr * g
        s["m"] = momentum * s.get("m", 0.0) - lr * g
        return w + (momentum * s["m"] - lr * g if nesterov else s["m"])

    return step


def keras_adam(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
    def step(w, g, s, t):
        alpha = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        s["m"] = s.get("m", 0.0) + (g - s.get("m", 0.0)) * (1 - beta_1)
        s["v"] = s.get("v", 0.0) + (g * g - s.get("v", 0.0)) * (1 - beta_2)
        v = s["v"]
        if amsgrad:
            s["v_hat"] = np.maximum(s.get("v_hat", 0.0), s["v"])
            v = s["v_hat"]
        return w - s["m"] * alpha / (np.sqrt(v) + epsilon)

    return step


def keras_rmsprop(lr=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    def step(w, g, s, t):
        s["v"] = rho * s.get("v", 0.0) + (1 - rho) * g * g
        if centered:
            s["a"] = rho * s.get("a", 0.0) + (1 - rho) * g
            denominator = s["v"] - s["a"] ** 2 + epsilon
        else:
            denominator = s["v"] + epsilon
        increment = lr * g / np.sqrt(denominator)
        if momentum > 0:
            s["m"] = momentum * s.get("m", 0.0) + increment
            return w - s["m"]
        return w - increment

    return step


def keras_adagrad(lr=0.001, initial_accumulator_value=0.1, epsilon=1e-7):
    def step(w, g, s, t):
        s["acc"] = s.get("acc", initial_accumulator_value) + g * g
        return w - lr * g / np.sqrt(s["acc"] + epsilon)

    return step


def keras_adadelta(lr=0.001, rho=0.95, epsilon=1e-7):
    def step(w, g, s, t):
        s["ag"] = rho * s.get("ag", 0.0) + (1 - rho) * g * g
        delta = -np.sqrt(s.get("ad", 0.0) + epsilon) * g / np.sqrt(s["ag"] + epsilon)
        s["ad"] = rho * s.get("ad", 0.0) + (1 - rho) * delta * delta
        return w + lr * delta

    return step


def keras_adamax(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    def step(w, g, s, t):
        s["m"] = s.get("m", 0.0) + (g - s.get("m", 0.0)) * (1 - beta_1)
        s["u"] = np.maximum(beta_2 * s.get("u", 0.0), np.abs(g))
        return w - lr * s["m"] / ((1 - beta_1**t) * (s["u"] + epsilon))

    return step


def keras_nadam(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    def step(w, g, s, t):
        u_t = beta_1 * (1 - 0.5 * 0.96**t)
        u_next = beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
        s["u_product"] = s.get("u_product", 1.0) * u_t
        s["m"] = s.get("m", 0.0) + (g - s.get("m", 0.0)) * (1 - beta_1)
        s["v"] = s.get("v", 0.0) + (g * g - s.get("v", 0.0)) * (1 - beta_2)
        m_hat = u_next * s["m"] / (1 - s["u_product"] * u_next) + (1 - u_t) * g / (
            1 - s["u_product"]
        )
        v_hat = s["v"] / (1 - beta_2**t)
        return w - m_hat * lr / (np.sqrt(v_hat) + epsilon)

    return step


def optax_nadam(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """optax's Nesterov Adam: constant beta_1, look-ahead bias correction."""

    def step(w, g, s, t):
        s["m"] = beta_1 * s.get("m", 0.0) + (1 - beta_1) * g
        s["v"] = beta_2 * s.get("v", 0.0) + (1 - beta_2) * g * g
        m_hat = beta_1 * s["m"] / (1 - beta_1 ** (t + 1)) + (1 - beta_1) * g / (
            1 - beta_1**t
        )
        v_hat = s["v"] / (1 - beta_2**t)
        return w - lr * m_hat / (np.sqrt(v_hat) + epsilon)

    return step


def keras_lion(lr=0.001, beta_1=0.9, beta_2=0.99):
    def step(w, g, s, t):
        m = s.get("m", 0.0)
        w = w - lr * np.sign(m * beta_1 + g * (1 - beta_1))
        s["m"] = m * beta_2 + g * (1 - beta_2)
        return w

    return step


def keras_adafactor(
    lr=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0
):
    def rms(x):
        return np.sqrt(np.mean(np.square(x)))

    def step(w, g, s, t):
        rho_t = min(lr, 1 / math.sqrt(t))
        alpha_t = max(epsilon_2, rms(w)) * rho_t
        g2 = g * g + epsilon_1
        beta = 1 - t**beta_2_decay
        if w.ndim >= 2:
            s["r"] = beta * s.get("r", 0.0) + (1 - beta) * g2.mean(axis=-1)
            s["c"] = beta * s.get("c", 0.0) + (1 - beta) * g2.mean(axis=-2)
            v = (s["r"] / s["r"].mean(axis=-1, keepdims=True))[..., None] * s["c"][
                ..., None, :
            ]
        else:
            s["v"] = beta * s.get("v", 0.0) + (1 - beta) * g2
            v = s["v"]
        u = g / np.sqrt(v)
        u = u / max(1.0, rms(u) / clip_threshold)
        return w - alpha_t * u

    return step


def keras_run(
    rule,
    params,
    grads_seq,
    *,
    lr,
    clipnorm=None,
    clipvalue=None,
    global_clipnorm=None,
    weight_decay=None,
    accumulation=None,
):
    """Keras' BaseOptimizer.apply in float64; returns the per-call parameter deltas."""
    w = {k: np.asarray(v, np.float64) for k, v in params.items()}
    slots = {k: {} for k in w}
    acc = {k: np.zeros_like(v) for k, v in w.items()}
    deltas = []
    for iteration, grads in enumerate(grads_seq):
        before = {k: v.copy() for k, v in w.items()}
        g = {k: np.asarray(v, np.float64) for k, v in grads.items()}
        apply = True
        if accumulation:
            apply = (iteration + 1) % accumulation == 0
            if apply:
                g = {k: (g[k] + acc[k]) / accumulation for k in g}
                acc = {k: np.zeros_like(v) for k, v in acc.items()}
            else:
                acc = {k: acc[k] + g[k] for k in g}
        if apply:
            t = (iteration // accumulation if accumulation else iteration) + 1
            if clipnorm is not None:
                g = {
                    k: v * clipnorm / max(np.linalg.norm(v), clipnorm)
                    for k, v in g.items()
                }
            elif global_clipnorm is not None:
                norm = math.sqrt(sum(np.sum(v * v) for v in g.values()))
                g = {k: v * min(1.0, global_clipnorm / norm) for k, v in g.items()}
            elif clipvalue is not None:
                g = {k: np.clip(v, -clipvalue, clipvalue) for k, v in g.items()}
            if weight_decay is not None:
                w = {k: v - v * weight_decay * lr for k, v in w.items()}
            w = {k: rule(w[k], g[k], slots[k], t) for k in w}
        deltas.append({k: w[k] - before[k] for k in w})
    return deltas


def ours_run(tx, params, grads_seq, *, jit):
    update = jax.jit(tx.update) if jit else tx.update
    params = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    state = tx.init(params)
    deltas = []
    for grads in grads_seq:
        grads = {k: jnp.asarray(v, jnp.float32) for k, v in grads.items()}
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
        deltas.append({k: np.asarray(v, np.float64) for k, v in updates.items()})
    return deltas


def assert_deltas_close(ours, keras, rtol=2e-5, atol=1e-9):
    assert len(ours) == len(keras)
    for step, (a, b) in enumerate(zip(ours, keras, strict=True)):
        for k in b:
            np.testing.assert_allclose(
                a[k], b[k], rtol=rtol, atol=atol, err_msg=f"step {step}, {k}"
            )


def make_problem(steps=3, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    params = {"a": rng.normal(size=(3,)), "b": rng.normal(size=(2, 4))}
    grads = [
        {k: scale * rng.normal(size=v.shape) for k, v in params.items()}
        for _ in range(steps)
    ]
    return params, grads


# ----------------------------------------------------------------------------
# Names, defaults and one-step numerics.
# ----------------------------------------------------------------------------

KERAS_DEFAULTS = {
    "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "adam": {
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
    },
    "adamw": {
        "learning_rate": 0.001,
        "weight_decay": 0.004,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "amsgrad": False,
    },
    "rmsprop": {
        "learning_rate": 0.001,
        "rho": 0.9,
        "momentum": 0.0,
        "epsilon": 1e-7,
        "centered": False,
    },
    "adagrad": {
        "learning_rate": 0.001,
        "initial_accumulator_value": 0.1,
        "epsilon": 1e-7,
    },
    "adadelta": {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7},
    "adamax": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "nadam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "lion": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.99},
    "adafactor": {
        "learning_rate": 0.001,
        "beta_2_decay": -0.8,
        "epsilon_1": 1e-30,
        "epsilon_2": 1e-3,
        "clip_threshold": 1.0,
        "relative_step": True,
    },
}


@pytest.mark.parametrize("name", sorted(KERAS_DEFAULTS))
def test_names_build_with_keras_defaults(name):
    for spelling in (name, name.upper()):
        tx = get(spelling)
        assert isinstance(tx, optax.GradientTransformation) and isinstance(
            tx, Optimizer
        )
        config = serialize(tx)["config"]
        for arg, value in KERAS_DEFAULTS[name].items():
            assert config[arg] == value, (name, arg)
        assert get_learning_rate(tx.init({"w": jnp.zeros(3)})) == pytest.approx(
            KERAS_DEFAULTS[name]["learning_rate"]
        )


RULE_CASES = [
    ("sgd", {}, keras_sgd),
    ("sgd", {"momentum": 0.9}, keras_sgd),
    ("sgd", {"momentum": 0.9, "nesterov": True}, keras_sgd),
    ("adam", {}, keras_adam),
    ("adam", {"amsgrad": True}, keras_adam),
    ("rmsprop", {}, keras_rmsprop),
    ("rmsprop", {"momentum": 0.5, "centered": True}, keras_rmsprop),
    ("adagrad", {}, keras_adagrad),
    ("adadelta", {}, keras_adadelta),
    ("adamax", {}, keras_adamax),
    ("lion", {}, keras_lion),
    ("adafactor", {}, keras_adafactor),
]


@pytest.mark.parametrize(("name", "kwargs", "keras_rule"), RULE_CASES)
def test_update_matches_keras_rule(name, kwargs, keras_rule):
    params, grads = make_problem(steps=4)
    lr = KERAS_DEFAULTS[name]["learning_rate"]
    keras = keras_run(keras_rule(**kwargs), params, grads, lr=lr)
    assert_deltas_close(ours_run(get(name, **kwargs), params, grads, jit=True), keras)


def test_adafactor_step_size_is_capped_by_inverse_sqrt_step():
    # Keras: rho_t = min(learning_rate, 1 / sqrt(t)), which bites once lr > 1/sqrt(t).
    params, grads = make_problem(steps=3)
    keras = keras_run(keras_adafactor(lr=1.0), params, grads, lr=1.0)
    ours = ours_run(Adafactor(learning_rate=1.0), params, grads, jit=True)
    assert_deltas_close(ours, keras)


@pytest.mark.parametrize(
    ("name", "kwargs", "keras_rule"), [RULE_CASES[2], RULE_CASES[3]]
)
def test_eager_update_matches_keras_rule(name, kwargs, keras_rule):
    params, grads = make_problem(steps=2)
    lr = KERAS_DEFAULTS[name]["learning_rate"]
    keras = keras_run(keras_rule(**kwargs), params, grads, lr=lr)
    assert_deltas_close(ours_run(get(name, **kwargs), params, grads, jit=False), keras)


@pytest.mark.parametrize("name", sorted(KERAS_DEFAULTS))
def test_state_keeps_its_dtypes_for_bf16_params(name):
    # A jitted step compiles once only if the state's avals survive an update.
    tx = get(name, gradient_accumulation_steps=2) if name == "adam" else get(name)
    params = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones((2, 4), jnp.bfloat16)}
    state = tx.init(params)
    _, new_state = jax.eval_shape(tx.update, params, state, params)

    def avals(tree):
        return [(x.shape, x.dtype, x.weak_type) for x in jax.tree.leaves(tree)]

    assert avals(new_state) == avals(state)


@pytest.mark.parametrize("jit", [False, True])
def test_adamw_matches_keras_adam_with_decoupled_decay(jit):
    params, grads = make_problem()
    keras = keras_run(keras_adam(lr=0.01), params, grads, lr=0.01, weight_decay=0.004)
    assert_deltas_close(
        ours_run(AdamW(learning_rate=0.01), params, grads, jit=jit), keras
    )


def test_adam_matches_keras_epsilon_hat_where_plain_optax_adam_does_not():
    # Gradients near epsilon: Keras' epsilon is added to sqrt(v) before the bias
    # correction, optax's after; funkeras schedules optax's eps to agree.
    params, grads = make_problem(steps=3, scale=1e-6)
    keras = keras_run(keras_adam(lr=0.1), params, grads, lr=0.1)
    assert_deltas_close(ours_run(Adam(0.1), params, grads, jit=True), keras, rtol=1e-4)
    plain = ours_run(optax.adam(0.1, eps=1e-7), params, grads, jit=True)
    assert not np.allclose(plain[0]["a"], keras[0]["a"], rtol=0.1)


def test_nadam_is_optax_rule_and_differs_from_keras_momentum_schedule():
    params, grads = make_problem(steps=3)
    ours = ours_run(get("nadam", learning_rate=0.01), params, grads, jit=True)
    assert_deltas_close(ours, keras_run(optax_nadam(lr=0.01), params, grads, lr=0.01))
    keras = keras_run(keras_nadam(lr=0.01), params, grads, lr=0.01)
    assert not np.allclose(ours[0]["a"], keras[0]["a"], rtol=0.05)


def test_sgd_momentum_differs_from_keras_after_learning_rate_change():
    # optax: t = m t + g, w -= lr t. Keras: v = m v - lr g, w += v.
    tx = SGD(learning_rate=0.1, momentum=0.9)
    w = jnp.zeros(2)
    g = jnp.array([1.0, -2.0])
    state = tx.init(w)
    for _ in range(2):
        _, state = tx.update(g, state)
    state = set_learning_rate(state, 0.01)
    updates, _ = tx.update(g, state)
    trace = 0.0
    velocity = 0.0
    for lr in (0.1, 0.1, 0.01):
        trace = 0.9 * trace + np.asarray(g)
        velocity = 0.9 * velocity - lr * np.asarray(g)
    np.testing.assert_allclose(updates, -0.01 * trace, rtol=1e-6)
    assert not np.allclose(updates, velocity, rtol=0.1)


# ----------------------------------------------------------------------------
# Clipping, weight decay, gradient accumulation.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "expected_a", "expected_b"),
    [
        # Keras clipnorm: each variable g * c / max(||g||, c).
        ({"clipnorm": 1.0}, [3 / 5, 4 / 5], [0.3, 0.4]),
        # global: every variable scaled by c / max(global norm, c).
        (
            {"global_clipnorm": 1.0},
            [3 / math.sqrt(25.25), 4 / math.sqrt(25.25)],
            [0.3 / math.sqrt(25.25), 0.4 / math.sqrt(25.25)],
        ),
        ({"clipvalue": 0.35}, [0.35, 0.35], [0.3, 0.35]),
    ],
)
@pytest.mark.parametrize("jit", [False, True])
def test_clipping_numerics(clip, expected_a, expected_b, jit):
    tx = SGD(learning_rate=1.0, **clip)
    grads = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.3, 0.4])}
    update = jax.jit(tx.update) if jit else tx.update
    updates, _ = update(grads, tx.init(grads))
    np.testing.assert_allclose(updates["a"], -np.array(expected_a), rtol=1e-6)
    np.testing.assert_allclose(updates["b"], -np.array(expected_b), rtol=1e-6)


@pytest.mark.parametrize(
    "clip", [{"clipnorm": 0.1}, {"global_clipnorm": 0.2}, {"clipvalue": 0.05}]
)
def test_clipping_happens_before_the_rule(clip):
    params, grads = make_problem()
    keras = keras_run(keras_adam(lr=0.01), params, grads, lr=0.01, **clip)
    assert_deltas_close(ours_run(Adam(0.01, **clip), params, grads, jit=True), keras)


def test_only_one_clip_argument():
    with pytest.raises(ValueError, match="only one of `clipnorm`, `clipvalue`"):
        Adam(clipnorm=1.0, clipvalue=0.5)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(
    "make",
    [lambda: SGD(0.1, weight_decay=0.01), lambda: SGD(0.1, 0.9, weight_decay=0.01)],
)
def test_weight_decay_is_keras_decoupled_decay(make, jit):
    params, grads = make_problem()
    tx = make()
    keras = keras_run(
        keras_sgd(lr=0.1, momentum=serialize(tx)["config"]["momentum"]),
        params,
        grads,
        lr=0.1,
        weight_decay=0.01,
    )
    assert_deltas_close(ours_run(tx, params, grads, jit=jit), keras)


@pytest.mark.parametrize(
    ("make", "keras_rule", "lr"),
    [
        (
            lambda: SGD(0.1, 0.9, gradient_accumulation_steps=3),
            keras_sgd(0.1, 0.9),
            0.1,
        ),
        (
            lambda: Adam(0.01, clipnorm=0.3, gradient_accumulation_steps=3),
            keras_adam(0.01),
            0.01,
        ),
    ],
)
def test_gradient_accumulation(make, keras_rule, lr):
    params, grads = make_problem(steps=6)
    tx = make()
    accumulation = serialize(tx)["config"]["gradient_accumulation_steps"]
    clipnorm = serialize(tx)["config"]["clipnorm"]
    keras = keras_run(
        keras_rule, params, grads, lr=lr, clipnorm=clipnorm, accumulation=accumulation
    )
    ours = ours_run(tx, params, grads, jit=True)
    for step in (0, 1, 3, 4):  # k - 1 calls of zeros, then one update of the mean
        assert all(np.all(v == 0) for v in ours[step].values())
    assert_deltas_close(ours, keras)


# ----------------------------------------------------------------------------
# The learning rate in the optimizer state.
# ----------------------------------------------------------------------------


def _wrapped(kind):
    params = {"a": jnp.ones(2), "b": jnp.ones(3)}
    if kind == "plain":
        tx = SGD(0.1)
    elif kind == "multisteps":
        tx = optax.MultiSteps(SGD(0.1), 2).gradient_transformation()
    elif kind == "accumulation_arg":
        tx = SGD(0.1, gradient_accumulation_steps=2)
    elif kind == "chain":
        tx = optax.chain(optax.clip(10.0), SGD(0.1))
    elif kind == "masked":
        tx = optax.masked(SGD(0.1), {"a": True, "b": False})
    else:
        tx = optax.multi_transform({"x": SGD(0.1), "y": SGD(0.1)}, {"a": "x", "b": "y"})
    return tx, params


@pytest.mark.parametrize(
    "kind",
    ["plain", "multisteps", "accumulation_arg", "chain", "masked", "multi_transform"],
)
def test_get_and_set_learning_rate_through_wrappers(kind):
    tx, params = _wrapped(kind)
    state = tx.init(params)
    assert get_learning_rate(state) == pytest.approx(0.1)
    new_state = set_learning_rate(state, 0.05)
    assert get_learning_rate(new_state) == pytest.approx(0.05)
    assert get_learning_rate(state) == pytest.approx(0.1)  # the old state is unchanged
    grads = {"a": jnp.ones(2), "b": jnp.ones(3)}
    update = jax.jit(tx.update)
    for _ in range(2 if kind in ("multisteps", "accumulation_arg") else 1):
        updates, new_state = update(grads, new_state, params)
    np.testing.assert_allclose(updates["a"], -0.05 * np.ones(2), rtol=1e-6)


def test_learning_rates_that_disagree_are_refused():
    tx = optax.multi_transform({"x": SGD(0.1), "y": SGD(0.2)}, {"a": "x", "b": "y"})
    state = tx.init({"a": jnp.ones(2), "b": jnp.ones(3)})
    for call in (
        lambda: get_learning_rate(state),
        lambda: set_learning_rate(state, 0.1),
    ):
        with pytest.raises(ValueError, match="several different learning rates"):
            call()


def test_set_learning_rate_keeps_dtype_and_does_not_retrace():
    tx = Adam(0.1)
    params = jnp.ones(3, jnp.bfloat16)
    traces = []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    grads = jnp.ones(3, jnp.bfloat16)
    state = tx.init(params)
    assert state.hyperparams["learning_rate"].dtype == jnp.float32
    state = set_learning_rate(state, 0.01)
    params, state = step(params, state, grads)
    state = set_learning_rate(state, 0.001)
    assert state.hyperparams["learning_rate"].dtype == jnp.float32
    assert not state.hyperparams["learning_rate"].weak_type
    params, state = step(params, state, grads)
    assert len(traces) == 1
    assert get_learning_rate(state) == pytest.approx(0.001)
    # The counter can fail: a weakly typed Python float in the state retraces.
    weak = state._replace(hyperparams={**state.hyperparams, "learning_rate": 0.001})
    step(params, weak, grads)
    assert len(traces) == 2


def test_set_learning_rate_under_jit():
    tx = SGD(0.1)
    state = jax.jit(set_learning_rate)(tx.init(jnp.zeros(2)), 0.5)
    assert get_learning_rate(state) == pytest.approx(0.5)


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf")])
def test_set_learning_rate_rejects_bad_values(value):
    with pytest.raises(ValueError, match="finite number >= 0"):
        set_learning_rate(SGD().init(jnp.zeros(2)), value)


def test_set_learning_rate_rejects_non_scalars():
    with pytest.raises(TypeError, match="real scalar"):
        set_learning_rate(SGD().init(jnp.zeros(2)), jnp.ones(2))


@pytest.mark.parametrize(
    "schedule", [ExponentialDecay(0.1, 10, 0.5), lambda t: 0.1 / (t + 1)]
)
def test_scheduled_learning_rate(schedule):
    inner = SGD(schedule, 0.9)
    tx = optax.MultiSteps(inner, 2).gradient_transformation()
    state = inner.init(jnp.zeros(2))
    update = jax.jit(inner.update)
    for _ in range(3):
        _, state = update(jnp.ones(2), state)
    with pytest.raises(ValueError, match="follows a schedule"):
        set_learning_rate(state, 0.1)
    with pytest.raises(ValueError, match=r"optimizer=tx.*schedule\(3\)"):
        get_learning_rate(state)
    assert get_learning_rate(state, optimizer=inner) == pytest.approx(
        float(schedule(3))
    )
    # Under MultiSteps the schedule counts applied updates, not calls.
    wrapped_state = tx.init(jnp.zeros(2))
    update = jax.jit(tx.update)
    for _ in range(4):
        _, wrapped_state = update(jnp.ones(2), wrapped_state)
    assert get_learning_rate(wrapped_state, optimizer=inner) == pytest.approx(
        float(schedule(2))
    )


@pytest.mark.parametrize("fn", [get_learning_rate, lambda s: set_learning_rate(s, 0.1)])
def test_plain_optax_transform_has_no_settable_learning_rate(fn):
    state = optax.adam(1e-3).init(jnp.zeros(2))
    with pytest.raises(ValueError, match=r"optax.inject_hyperparams\(optax.adam\)"):
        fn(state)


def test_user_injected_optax_transform_is_settable():
    tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.1)
    state = set_learning_rate(tx.init(jnp.zeros(2)), 0.2)
    assert get_learning_rate(state) == pytest.approx(0.2)


# ----------------------------------------------------------------------------
# Schedules: Keras' formulas, written out.
# ----------------------------------------------------------------------------


def np_piecewise(t, boundaries, values):
    if t <= boundaries[0]:
        return values[0]
    for low, high, value in zip(
        boundaries[:-1], boundaries[1:], values[1:-1], strict=False
    ):
        if low < t <= high:
            return value
    return values[-1]


def np_cosine(t, initial, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0):
    def decay(step, start):
        step = min(step, decay_steps)
        return start * (
            (1 - alpha) * 0.5 * (1 + math.cos(math.pi * step / decay_steps)) + alpha
        )

    if warmup_target is None:
        return decay(t, initial)
    t = min(t, decay_steps + warmup_steps)
    if t < warmup_steps:
        return (warmup_target - initial) * t / warmup_steps + initial
    return decay(t - warmup_steps, warmup_target)


def np_restarts(t, initial, first, t_mul, m_mul, alpha):
    start, length, restart = 0.0, float(first), 0
    while t >= start + length:
        start, length, restart = start + length, length * t_mul, restart + 1
    cosine = 0.5 * m_mul**restart * (1 + math.cos(math.pi * (t - start) / length))
    return initial * ((1 - alpha) * cosine + alpha)


def np_polynomial(t, initial, decay_steps, end, power, cycle):
    if cycle:
        decay_steps = decay_steps * (1 if t == 0 else math.ceil(t / decay_steps))
    else:
        t = min(t, decay_steps)
    return (initial - end) * (1 - t / decay_steps) ** power + end


SCHEDULE_CASES = [
    (ExponentialDecay(0.1, 10, 0.5), lambda t: 0.1 * 0.5 ** (t / 10)),
    (ExponentialDecay(0.1, 10, 0.5, staircase=True), lambda t: 0.1 * 0.5 ** (t // 10)),
    (
        PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
        lambda t: np_piecewise(t, [10, 20], [1.0, 0.5, 0.1]),
    ),
    (PolynomialDecay(0.1, 20), lambda t: np_polynomial(t, 0.1, 20, 0.0001, 1.0, False)),
    (
        PolynomialDecay(0.1, 20, 0.01, power=0.5, cycle=True),
        lambda t: np_polynomial(t, 0.1, 20, 0.01, 0.5, True),
    ),
    (InverseTimeDecay(0.1, 5, 0.5), lambda t: 0.1 / (1 + 0.5 * t / 5)),
    (
        InverseTimeDecay(0.1, 5, 0.5, staircase=True),
        lambda t: 0.1 / (1 + 0.5 * (t // 5)),
    ),
    (CosineDecay(0.1, 20, alpha=0.1), lambda t: np_cosine(t, 0.1, 20, 0.1)),
    (
        CosineDecay(0.0, 20, warmup_target=0.2, warmup_steps=8),
        lambda t: np_cosine(t, 0.0, 20, 0.0, 0.2, 8),
    ),
    (
        CosineDecayRestarts(0.1, 10, t_mul=1.0, m_mul=0.5, alpha=0.1),
        lambda t: np_restarts(t, 0.1, 10, 1.0, 0.5, 0.1),
    ),
    (CosineDecayRestarts(0.1, 10), lambda t: np_restarts(t, 0.1, 10, 2.0, 1.0, 0.0)),
]
STEPS = [0, 1, 3, 7, 9, 12, 21, 25, 37, 100]


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(("schedule", "formula"), SCHEDULE_CASES)
def test_schedule_values_match_keras_formula(schedule, formula, jit):
    fn = jax.jit(schedule) if jit else schedule
    got = fn(jnp.asarray(STEPS, jnp.int32))  # elementwise over an array of steps
    np.testing.assert_allclose(got, [formula(t) for t in STEPS], rtol=1e-5, atol=1e-7)
    assert float(schedule(STEPS[3])) == pytest.approx(formula(STEPS[3]), rel=1e-5)


@pytest.mark.parametrize(("schedule", "formula"), SCHEDULE_CASES)
def test_schedule_config_round_trip(schedule, formula):
    config = json.loads(json.dumps(serialize_schedule(schedule)))
    rebuilt = deserialize_schedule(config)
    assert rebuilt == schedule
    assert float(rebuilt(7)) == pytest.approx(formula(7), rel=1e-5)


def test_schedule_drives_the_optimizer_learning_rate():
    schedule = PiecewiseConstantDecay([1], [1.0, 0.1])
    tx = SGD(schedule)
    state = tx.init(jnp.zeros(1))
    steps = []
    for _ in range(3):
        updates, state = tx.update(jnp.ones(1), state)
        steps.append(float(updates[0]))
    assert steps == pytest.approx([-1.0, -1.0, -0.1])


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: ExponentialDecay(0.1, 0, 0.5), ValueError, "decay_steps"),
        (lambda: PiecewiseConstantDecay([1, 2], [1.0]), ValueError, "one more element"),
        (
            lambda: PiecewiseConstantDecay([2, 1], [1.0, 2.0, 3.0]),
            ValueError,
            "strictly increasing",
        ),
        (lambda: CosineDecay("0.1", 10), TypeError, "initial_learning_rate"),
        (
            lambda: InverseTimeDecay(0.1, 1, 0.5, staircase="yes"),
            TypeError,
            "staircase",
        ),
        (
            lambda: deserialize_schedule({"class_name": "ExponentialDeccay"}),
            ValueError,
            "Did you mean 'ExponentialDecay'",
        ),
    ],
)
def test_schedule_validation(make, error, match):
    with pytest.raises(error, match=match):
        make()


# ----------------------------------------------------------------------------
# get / serialize round trips and errors.
# ----------------------------------------------------------------------------


ROUND_TRIP = [get(name) for name in sorted(KERAS_DEFAULTS)] + [
    Adam(
        CosineDecay(0.01, 100, warmup_target=0.1, warmup_steps=5),
        clipnorm=1.0,
        gradient_accumulation_steps=2,
    ),
    SGD(PiecewiseConstantDecay([2], [0.1, 0.01]), 0.9, True, weight_decay=1e-3),
    RMSprop(0.01, centered=True, momentum=0.5, global_clipnorm=2.0),
    Adafactor(ExponentialDecay(0.1, 10, 0.9), clipvalue=0.1, name="factored"),
]


@pytest.mark.parametrize("tx", ROUND_TRIP, ids=lambda tx: tx.class_name)
def test_serialize_get_round_trip(tx):
    config = serialize(tx)
    rebuilt = get(json.loads(json.dumps(config)))
    assert isinstance(rebuilt, Optimizer)
    assert serialize(rebuilt) == config
    params = {"a": jnp.ones(3), "b": jnp.ones((2, 4))}
    state, rebuilt_state = tx.init(params), rebuilt.init(params)
    assert jax.tree.structure(state) == jax.tree.structure(rebuilt_state)
    jax.tree.map(np.testing.assert_array_equal, state, rebuilt_state)


@pytest.mark.parametrize("tx", ROUND_TRIP[-4:], ids=lambda tx: tx.class_name)
def test_round_trip_gives_the_same_updates(tx):
    params, grads = make_problem(steps=2)

    @jax.jit
    def both(params, grads):
        deltas = []
        for t in (tx, get(json.loads(json.dumps(serialize(tx))))):
            state = t.init(params)
            for g in grads:
                updates, state = t.update(g, state, params)
            deltas.append(updates)
        return deltas

    ours, rebuilt = both(
        jax.tree.map(jnp.float32, params), jax.tree.map(jnp.float32, grads)
    )
    jax.tree.map(np.testing.assert_array_equal, ours, rebuilt)


def test_get_overrides_and_transformations():
    assert (
        serialize(get("adam", learning_rate=0.5, amsgrad=True))["config"]["amsgrad"]
        is True
    )
    config = serialize(
        get({"class_name": "SGD", "config": {"momentum": 0.5}}, nesterov=True)
    )
    assert config["config"]["momentum"] == 0.5 and config["config"]["nesterov"] is True
    tx = optax.adam(1e-3)
    assert get(tx) is tx
    with pytest.raises(ValueError, match="overrides"):
        get(tx, learning_rate=0.1)
    with pytest.raises(TypeError, match="optimizer name"):
        get(3)


def test_keras_config_loads():
    keras_config = {
        "module": "keras.optimizers",
        "class_name": "Adam",
        "config": {
            "name": "adam",
            "learning_rate": {
                "module": "keras.optimizers.schedules",
                "class_name": "ExponentialDecay",
                "config": {
                    "initial_learning_rate": 0.01,
                    "decay_steps": 100,
                    "decay_rate": 0.9,
                    "staircase": False,
                    "name": "ExponentialDecay",
                },
                "registered_name": None,
            },
            "weight_decay": None,
            "clipnorm": None,
            "global_clipnorm": None,
            "clipvalue": None,
            "use_ema": False,
            "ema_momentum": 0.99,
            "ema_overwrite_frequency": None,
            "loss_scale_factor": None,
            "gradient_accumulation_steps": None,
            "beta_1": 0.9,
            "beta_2": 0.999,
            "epsilon": 1e-07,
            "amsgrad": False,
        },
        "registered_name": None,
    }
    tx = get(keras_config)
    assert serialize(tx)["config"]["learning_rate"]["config"]["decay_rate"] == 0.9
    keras_config["config"]["use_ema"] = True
    with pytest.raises(ValueError, match="use_ema=True"):
        deserialize(keras_config)


@pytest.mark.parametrize(
    ("identifier", "match"),
    [
        ("adma", "Did you mean .*'adam'"),
        ("rmsprp", "Did you mean 'rmsprop'"),
        ("foo", "Unknown optimizer 'foo'. Known names"),
        ({"class_name": "Adamm", "config": {}}, "Did you mean .*'adam'"),
        (
            {"class_name": "Adam", "config": {"beta1": 0.9}},
            r"unknown config keys \['beta1'\]",
        ),
        ({"config": {}}, "class_name"),
    ],
)
def test_unknown_names_and_keys(identifier, match):
    with pytest.raises(ValueError, match=match):
        get(identifier)


def test_serialize_refuses_what_has_no_config():
    with pytest.raises(TypeError, match="only the optimizers built by funkeras"):
        serialize(optax.adam(1e-3))
    with pytest.raises(TypeError, match="only the optimizers built by funkeras"):
        serialize(optax.chain(optax.clip(1.0), Adam()))
    with pytest.raises(TypeError, match="plain callable schedule"):
        serialize(Adam(learning_rate=optax.cosine_decay_schedule(0.1, 100)))


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: Adam(beta_1=2.0),
            ValueError,
            r"Adam: `beta_1` must be in \[0.0, 1.0\]",
        ),
        (lambda: Adam(beta_2=1.0), ValueError, "beta_2"),
        (lambda: SGD(momentum=1.5), ValueError, "SGD: `momentum`"),
        (
            lambda: SGD(learning_rate="fast"),
            TypeError,
            "SGD: `learning_rate` must be a float",
        ),
        (lambda: SGD(learning_rate=-1.0), ValueError, "finite number >= 0"),
        (lambda: SGD(nesterov=1), TypeError, "nesterov"),
        (lambda: Adam(clipnorm=0.0), ValueError, "clipnorm"),
        (
            lambda: Adam(gradient_accumulation_steps=1),
            ValueError,
            "gradient_accumulation_steps",
        ),
        (lambda: AdamW(weight_decay=None), ValueError, "AdamW: `weight_decay`"),
        (lambda: get("lion", beta_1=0.0), ValueError, "Lion: `beta_1`"),
        (lambda: Adafactor(beta_2_decay=0.8), ValueError, "beta_2_decay"),
    ],
)
def test_argument_validation(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_optimizer_repr_and_copy():
    import copy

    tx = SGD(0.1, 0.9)
    assert repr(tx).startswith("SGD(learning_rate=0.1, momentum=0.9, nesterov=False")
    assert serialize(copy.deepcopy(tx)) == serialize(tx)
