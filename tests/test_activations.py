"""Activations against NumPy formulas, eagerly and under jit; get/serialize."""

import functools
import json
import math

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest

from funkeras import activations

# Points on both sides of every kink (0, +-3, 6) and in the tails.
X = np.array(
    [-9.0, -7.0, -3.0, -2.5, -1.0, -0.3, 0.0, 0.3, 1.0, 2.5, 3.0, 5.9, 6.0, 7.5],
    np.float32,
)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf)


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def np_elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * (np.exp(x) - 1.0))


def np_relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras' ReLU, element by element: keep x above the threshold, cap, leak."""
    out = []
    for v in x.tolist():
        y = v if v > threshold else 0.0
        if max_value is not None:
            y = min(max(y, 0.0), max_value)
        y -= negative_slope * max(threshold - v, 0.0)
        out.append(y)
    return np.array(out)


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_sparsemax(x):
    """Each row projected onto the simplex (Martins & Astudillo, Algorithm 1)."""
    out = np.empty_like(x)
    for i, z in enumerate(x.reshape(-1, x.shape[-1])):
        zs = np.sort(z)[::-1]
        k = max(j for j in range(1, len(z) + 1) if 1 + j * zs[j - 1] > zs[:j].sum())
        tau = (zs[:k].sum() - 1) / k
        out.reshape(-1, x.shape[-1])[i] = np.maximum(z - tau, 0.0)
    return out


def np_glu(x):
    a, b = np.split(x, 2, axis=-1)
    return a * np_sigmoid(b)


REFERENCES = {
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.minimum(np.maximum(x, 0.0), 6.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "elu": np_elu,
    "selu": lambda x: SELU_SCALE * np_elu(x, SELU_ALPHA),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "sigmoid": np_sigmoid,
    "hard_sigmoid": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "hard_silu": lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "hard_swish": lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "tanh": lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
    "softmax": np_softmax,
    "log_softmax": lambda x: np.log(np_softmax(x)),
    "softplus": np_softplus,
    "softsign": lambda x: x / (np.abs(x) + 1.0),
    "silu": lambda x: x * np_sigmoid(x),
    "swish": lambda x: x * np_sigmoid(x),
    "mish": lambda x: x * np.tanh(np.log1p(np.exp(x))),
    "exponential": np.exp,
    "linear": lambda x: x,
    "celu": lambda x: np.maximum(x, 0.0) + np.minimum(0.0, np.expm1(x)),
    "glu": np_glu,
    "hard_shrink": lambda x: np.where(np.abs(x) > 0.5, x, 0.0),
    "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
    "log_sigmoid": lambda x: -np_softplus(-x),
    "soft_shrink": lambda x: np.where(
        x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0)
    ),
    "sparse_plus": lambda x: np.where(
        x <= -1.0, 0.0, np.where(x >= 1.0, x, (x + 1.0) ** 2 / 4.0)
    ),
    "sparse_sigmoid": lambda x: np.clip((x + 1.0) / 2.0, 0.0, 1.0),
    "sparsemax": np_sparsemax,
    "squareplus": lambda x: (x + np.sqrt(x**2 + 4.0)) / 2.0,
    "tanh_shrink": lambda x: x - np.tanh(x),
    "threshold": lambda x: np.where(x > 0.5, x, -1.0),
}
# Arguments the function needs (Keras' `threshold` has no defaults).
ARGS = {"threshold": {"threshold": 0.5, "default_value": -1.0}}
FUNCTIONS = sorted(set(activations.__all__) - {"get", "serialize"})


def test_every_activation_has_a_reference():
    assert set(REFERENCES) == set(FUNCTIONS)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_matches_numpy(name, jit):
    fn = functools.partial(getattr(activations, name), **ARGS.get(name, {}))
    f = jax.jit(fn) if jit else fn
    x = np.stack([X, X[::-1] * 0.5])  # 2D, so softmax normalizes each row
    got = np.asarray(f(jnp.asarray(x)))
    np.testing.assert_allclose(
        got, REFERENCES[name](x.astype(np.float64)), rtol=2e-6, atol=2e-6
    )
    assert got.dtype == np.float32


@pytest.mark.parametrize("name", FUNCTIONS)
def test_keeps_low_precision_dtype(name):
    y = getattr(activations, name)(jnp.asarray(X, jnp.bfloat16), **ARGS.get(name, {}))
    assert y.dtype == jnp.bfloat16
    assert y.shape == ((X.shape[0] // 2,) if name == "glu" else X.shape)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"negative_slope": 0.1},
        {"max_value": 6.0},
        {"max_value": 2.5},
        {"threshold": 1.0},
        {"threshold": -1.0},
        {"threshold": -1.0, "max_value": 4.0},
        {"negative_slope": 0.3, "max_value": 6.0},
        {"negative_slope": 0.3, "threshold": 2.5},
        {"negative_slope": 0.5, "max_value": 3.0, "threshold": -2.5},
    ],
)
@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_relu_arguments(kwargs, jit):
    f = (
        jax.jit(lambda x: activations.relu(x, **kwargs))
        if jit
        else (lambda x: activations.relu(x, **kwargs))
    )
    got = np.asarray(f(jnp.asarray(X)))
    np.testing.assert_allclose(
        got, np_relu(X.astype(np.float64), **kwargs), rtol=1e-6, atol=1e-6
    )


def test_relu_keras_documented_values():
    x = jnp.array([-10.0, -5.0, 0.0, 5.0, 10.0])
    assert activations.relu(x, negative_slope=0.5).tolist() == [
        -5.0,
        -2.5,
        0.0,
        5.0,
        10.0,
    ]
    assert activations.relu(x, max_value=5.0).tolist() == [0.0, 0.0, 0.0, 5.0, 5.0]
    assert activations.relu(x, threshold=5.0).tolist() == [0.0, 0.0, 0.0, 0.0, 10.0]


@pytest.mark.parametrize("approximate", [False, True])
def test_gelu_forms(approximate):
    x = X.astype(np.float64)
    if approximate:
        ref = 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))
    else:
        ref = 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))
    got = activations.gelu(jnp.asarray(X), approximate=approximate)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=2e-6, atol=2e-6)


def test_gelu_default_is_exact_not_jax_default():
    x = jnp.asarray(X)
    exact = jax.nn.gelu(x, approximate=False)
    np.testing.assert_array_equal(activations.gelu(x), exact)
    assert not np.allclose(activations.gelu(x), jax.nn.gelu(x), rtol=0, atol=1e-6)


def test_leaky_relu_default_slope_is_keras():
    assert activations.leaky_relu(jnp.array([-1.0])).tolist() == pytest.approx([-0.2])
    assert activations.leaky_relu(jnp.array([-1.0]), 0.5).tolist() == [-0.5]


@pytest.mark.parametrize("alpha", [0.5, 2.0])
def test_elu_alpha(alpha):
    got = activations.elu(jnp.asarray(X), alpha=alpha)
    np.testing.assert_allclose(
        np.asarray(got), np_elu(X.astype(np.float64), alpha), rtol=2e-6, atol=2e-6
    )


@pytest.mark.parametrize("axis", [0, 1, (0, 1)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_axis(name, axis):
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32) * 3
    got = np.asarray(getattr(activations, name)(jnp.asarray(x), axis=axis))
    ref = np_softmax(x.astype(np.float64), axis=axis)
    np.testing.assert_allclose(
        got, ref if name == "softmax" else np.log(ref), rtol=1e-5, atol=1e-6
    )


def test_softmax_is_stable_for_large_logits():
    got = activations.softmax(jnp.array([1000.0, 1000.0]))
    np.testing.assert_allclose(np.asarray(got), [0.5, 0.5])


# Checked away from the kinks (no point within 0.1 of 0, +-3 or 6).
GRAD_NAMES = [
    "elu",
    "selu",
    "gelu",
    "sigmoid",
    "tanh",
    "softplus",
    "softsign",
    "silu",
    "mish",
    "exponential",
    "softmax",
    "log_softmax",
    "leaky_relu",
    "relu",
    "relu6",
    "hard_sigmoid",
    "hard_silu",
]


@pytest.mark.parametrize("name", GRAD_NAMES)
def test_gradients(name):
    x = np.array([-4.1, -2.2, -0.7, 0.45, 1.3, 2.4, 4.2])
    fn = getattr(activations, name)
    with jax.enable_x64(True):
        jax.test_util.check_grads(fn, (jnp.asarray(x, jnp.float64),), order=1, eps=1e-4)


def test_relu_gradient_with_arguments():
    x = jnp.array([-3.0, -1.5, 0.5, 2.0, 5.0])
    g = jax.grad(
        lambda x: activations.relu(
            x, negative_slope=0.1, max_value=4.0, threshold=1.0
        ).sum()
    )(x)
    assert g.tolist() == pytest.approx([0.1, 0.1, 0.1, 1.0, 0.0])


def test_relu_rejects_traced_or_bad_arguments():
    with pytest.raises(
        TypeError, match="relu: `negative_slope` must be a Python number"
    ):
        activations.relu(jnp.ones(2), negative_slope=jnp.array(0.1))
    with pytest.raises(ValueError, match="relu: `max_value` must be in"):
        activations.relu(jnp.ones(2), max_value=-1.0)
    with pytest.raises(TypeError, match="gelu: `approximate` must be a bool"):
        activations.gelu(jnp.ones(2), approximate="yes")


# -- get / serialize ---------------------------------------------------------


def test_get_none_is_linear():
    assert activations.get(None) is activations.linear


@pytest.mark.parametrize("name", FUNCTIONS)
def test_get_by_name_any_case(name):
    fn = activations.get(name)
    assert fn is getattr(activations, name)
    assert activations.get(name.upper()) is fn


def test_swish_is_silu():
    assert activations.get("swish") is activations.silu
    assert activations.get("hard_swish") is activations.hard_silu


def test_get_returns_callables_as_is():
    def custom(x):
        return x * 2

    assert activations.get(custom) is custom
    assert activations.get(jax.nn.relu) is jax.nn.relu


def test_get_unknown_name_suggests():
    with pytest.raises(ValueError, match="Unknown activation 'rleu'") as info:
        activations.get("rleu")
    msg = str(info.value)
    assert "Did you mean 'relu'" in msg
    assert "'softmax'" in msg and "'gelu'" in msg  # the valid names are listed


def test_get_unknown_name_without_close_match():
    with pytest.raises(ValueError, match="Valid names") as info:
        activations.get("zzzzzz")
    assert "Did you mean" not in str(info.value)


def test_get_rejects_non_callable():
    with pytest.raises(TypeError, match="Could not interpret activation"):
        activations.get(3)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_serialize_round_trip(name):
    fn = getattr(activations, name)
    data = activations.serialize(fn)
    assert json.loads(json.dumps(data)) == data
    assert activations.get(data) is fn


def test_serialize_names_and_none():
    assert activations.serialize(activations.swish) == "silu"
    assert activations.serialize("ReLU") == "relu"
    assert activations.serialize(None) is None


def test_serialize_rejects_custom_and_unknown():
    with pytest.raises(ValueError, match="Cannot serialize activation"):
        activations.serialize(lambda x: x)
    with pytest.raises(ValueError, match="Unknown activation"):
        activations.serialize("not_an_activation")
