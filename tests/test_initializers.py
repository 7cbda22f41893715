"""Initializers: statistics and fan rules against the published formulas."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from funkeras import initializers
from funkeras.initializers import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    Identity,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
)

KEY = jax.random.key(0)


def np_fans(shape):
    """Keras' rule, written out: (*receptive_field, in, out)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def truncated_unit_std():
    """Std of N(0, 1) truncated to [-2, 2], by numerical integration."""
    z = np.linspace(-2.0, 2.0, 200_001)
    pdf = np.exp(-0.5 * z**2)
    return math.sqrt(np.trapezoid(z**2 * pdf, z) / np.trapezoid(pdf, z))


def test_truncation_constant_is_the_truncated_std():
    assert truncated_unit_std() == pytest.approx(0.87962566103423978, rel=1e-9)


@pytest.mark.parametrize(
    ("shape", "fans"),
    [
        ((), (1, 1)),
        ((7,), (7, 7)),
        ((4, 6), (4, 6)),
        ((3, 4, 5), (12, 15)),
        ((3, 3, 16, 32), (144, 288)),
        ((2, 3, 4, 5, 6), (120, 144)),
    ],
)
def test_compute_fans(shape, fans):
    assert initializers.compute_fans(shape) == fans == np_fans(shape)


def check_uniform(w, limit):
    w = np.asarray(w, np.float64)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() >= 0.99 * limit  # the bounds are really reached
    assert abs(w.mean()) < 5 * limit / math.sqrt(3 * w.size)
    assert w.var() == pytest.approx(limit**2 / 3, rel=0.03)


def check_truncated(w, std, mean=0.0):
    """`std` is the samples' own standard deviation (after truncation)."""
    w = np.asarray(w, np.float64)
    raw = std / 0.87962566103423978
    assert np.abs(w - mean).max() <= 2 * raw * (1 + 1e-6)
    assert np.abs(w - mean).max() >= 1.95 * raw
    assert abs(w.mean() - mean) < 5 * std / math.sqrt(w.size)
    assert w.std() == pytest.approx(std, rel=0.03)


def check_normal(w, std, mean=0.0):
    w = np.asarray(w, np.float64)
    assert np.abs(w - mean).max() > 3 * std  # not truncated
    assert abs(w.mean() - mean) < 5 * std / math.sqrt(w.size)
    assert w.std() == pytest.approx(std, rel=0.03)


SHAPES = [(300, 200), (3, 3, 64, 128)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("name", "kind", "formula"),
    [
        ("glorot_uniform", "uniform", lambda fi, fo: math.sqrt(6 / (fi + fo))),
        ("glorot_normal", "truncated", lambda fi, fo: math.sqrt(2 / (fi + fo))),
        ("he_uniform", "uniform", lambda fi, fo: math.sqrt(6 / fi)),
        ("he_normal", "truncated", lambda fi, fo: math.sqrt(2 / fi)),
        ("lecun_uniform", "uniform", lambda fi, fo: math.sqrt(3 / fi)),
        ("lecun_normal", "truncated", lambda fi, fo: math.sqrt(1 / fi)),
    ],
)
def test_named_variance_scaling(name, kind, formula, shape):
    w = initializers.get(name)(KEY, shape)
    assert w.shape == shape and w.dtype == jnp.float32
    value = formula(*np_fans(shape))  # the limit (uniform) or the std (normal)
    if kind == "uniform":
        check_uniform(w, value)
    else:
        check_truncated(w, value)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize(
    "distribution", ["truncated_normal", "untruncated_normal", "uniform"]
)
def test_variance_scaling(mode, distribution):
    shape, scale = (3, 3, 64, 128), 3.0
    fan_in, fan_out = np_fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    w = VarianceScaling(scale, mode, distribution)(KEY, shape)
    std = math.sqrt(scale / n)
    if distribution == "uniform":
        check_uniform(w, math.sqrt(3 * scale / n))
    elif distribution == "truncated_normal":
        check_truncated(w, std)
    else:
        check_normal(w, std)


def test_variance_scaling_empty_and_scalar_shapes():
    # A zero fan (empty kernel) counts as 1 instead of dividing by zero.
    for mode in ("fan_in", "fan_out", "fan_avg"):
        assert VarianceScaling(1.0, mode, "uniform")(KEY, (0, 5)).shape == (0, 5)
        assert VarianceScaling(1.0, mode)(KEY, (3, 0, 2)).shape == (3, 0, 2)
    # A scalar has fan_in = fan_out = 1: limit sqrt(3 * scale).
    init = VarianceScaling(0.5, "fan_avg", "uniform")
    w = jax.vmap(lambda k: init(k, ()))(jax.random.split(KEY, 20000))
    check_uniform(w, math.sqrt(1.5))


def test_variance_scaling_normal_alias():
    assert VarianceScaling(distribution="normal").distribution == "truncated_normal"
    assert VarianceScaling(mode="FAN_OUT").mode == "fan_out"


def test_random_uniform():
    w = np.asarray(RandomUniform()(KEY, (300, 200)), np.float64)
    assert w.min() >= -0.05 and w.max() < 0.05
    assert w.var() == pytest.approx(0.1**2 / 12, rel=0.03)
    w = np.asarray(RandomUniform(1.0, 3.0)(KEY, (300, 200)), np.float64)
    assert w.min() >= 1.0 and w.max() < 3.0 and w.min() < 1.01 and w.max() > 2.99
    assert w.mean() == pytest.approx(2.0, abs=0.01)
    assert w.var() == pytest.approx(4 / 12, rel=0.03)


def test_random_normal():
    check_normal(RandomNormal()(KEY, (300, 200)), 0.05)
    check_normal(RandomNormal(mean=1.0, stddev=2.0)(KEY, (300, 200)), 2.0, mean=1.0)


def test_truncated_normal():
    check_truncated(TruncatedNormal()(KEY, (300, 200)), 0.05 * 0.87962566103423978)
    w = TruncatedNormal(mean=-1.0, stddev=0.5)(KEY, (300, 200))
    check_truncated(w, 0.5 * 0.87962566103423978, mean=-1.0)


def test_constants():
    assert Zeros()(KEY, (2, 3)).tolist() == [[0.0] * 3] * 2
    assert Ones()(KEY, (2,), jnp.int32).tolist() == [1, 1]
    w = Constant(0.25)(KEY, (3, 1), jnp.bfloat16)
    assert w.dtype == jnp.bfloat16 and w.tolist() == [[0.25]] * 3
    assert Constant(7)(KEY, (2,), jnp.int32).tolist() == [7, 7]
    np.testing.assert_array_equal(Identity(2.0)(KEY, (2, 3)), 2 * np.eye(2, 3))


@pytest.mark.parametrize("shape", [(4, 6), (6, 6), (3, 3, 4, 8)])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal(shape, gain):
    w = Orthogonal(gain)(KEY, shape)
    assert w.shape == shape and w.dtype == jnp.float32
    m = np.asarray(w, np.float64).reshape(-1, shape[-1])
    rows, cols = m.shape
    gram = m.T @ m if rows >= cols else m @ m.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-5)


def test_orthogonal_low_precision_and_distinct_draws():
    w = Orthogonal()(KEY, (6, 6), jnp.bfloat16)
    assert w.dtype == jnp.bfloat16
    a, b = Orthogonal()(KEY, (6, 6)), Orthogonal()(jax.random.key(1), (6, 6))
    assert not np.allclose(a, b)


def test_orthogonal_needs_rank_two():
    with pytest.raises(
        ValueError, match=r"Orthogonal: the shape must have rank >= 2, got shape=\(5,\)"
    ):
        Orthogonal()(KEY, (5,))


ALL_NAMES = [
    "zeros",
    "ones",
    "constant",
    "random_uniform",
    "random_normal",
    "truncated_normal",
    "variance_scaling",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "identity",
]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_deterministic_traceable_and_dtype(name):
    init = initializers.get(name)
    a = init(KEY, (4, 6))
    np.testing.assert_array_equal(a, init(KEY, (4, 6)))
    if name not in ("zeros", "ones", "constant", "identity"):
        assert not np.array_equal(a, init(jax.random.key(1), (4, 6)))
    # Layers call initializers inside traced `init`s (eval_shape, jit).
    spec = jax.eval_shape(lambda k: init(k, (4, 6), jnp.bfloat16), KEY)
    assert spec.shape == (4, 6) and spec.dtype == jnp.bfloat16


@pytest.mark.parametrize("name", ["he_uniform", "glorot_normal", "orthogonal"])
def test_jit_matches_eager(name):
    init = initializers.get(name)
    jitted = jax.jit(init, static_argnums=(1, 2))(KEY, (4, 6), jnp.float32)
    np.testing.assert_allclose(jitted, init(KEY, (4, 6)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "name", [n for n in ALL_NAMES if n not in ("zeros", "ones", "constant", "identity")]
)
def test_random_initializers_need_a_float_dtype(name):
    with pytest.raises(ValueError, match="need a floating dtype, got int32"):
        initializers.get(name)(KEY, (2, 2), jnp.int32)


def test_bad_shape():
    with pytest.raises(
        ValueError, match=r"`shape` must not be negative, got \(2, -1\)"
    ):
        GlorotUniform()(KEY, (2, -1))
    with pytest.raises(TypeError, match=r"init\(key, shape, dtype\)"):
        GlorotUniform()(KEY, (2.0, 3))


# -- get / serialize ---------------------------------------------------------


@pytest.mark.parametrize("name", ALL_NAMES)
def test_get_snake_and_camel_names(name):
    by_snake = initializers.get(name)
    camel = type(by_snake).__name__
    assert type(initializers.get(camel)) is type(by_snake)
    assert initializers.get(name.upper()) == by_snake


def test_get_aliases_and_keras_names():
    assert isinstance(initializers.get("GlorotUniform"), GlorotUniform)
    assert isinstance(initializers.get("uniform"), RandomUniform)
    assert isinstance(initializers.get("normal"), RandomNormal)
    assert isinstance(initializers.get("one"), Ones)
    assert isinstance(initializers.get("zero"), Zeros)


def test_get_dict_class_instance_callable():
    init = initializers.get(
        {
            "class_name": "VarianceScaling",
            "config": {"scale": 2.0, "mode": "fan_out", "distribution": "uniform"},
        }
    )
    assert init == VarianceScaling(2.0, "fan_out", "uniform")
    assert initializers.get({"class_name": "he_normal"}) == HeNormal()
    assert initializers.get(GlorotNormal) == GlorotNormal()
    instance = Constant(3.0)
    assert initializers.get(instance) is instance

    def custom(key, shape, dtype=jnp.float32):
        return jnp.full(shape, 3.0, dtype)

    assert initializers.get(custom) is custom


@pytest.mark.parametrize(
    "init",
    [
        GlorotUniform(),
        HeNormal(),
        Zeros(),
        Orthogonal(),
        Orthogonal(gain=2.0),
        Constant(0.5),
        Constant(3),
        RandomUniform(-1.0, 2.0),
        RandomNormal(0.5, 0.2),
        TruncatedNormal(stddev=0.1),
        VarianceScaling(0.5, "fan_avg", "untruncated_normal"),
        Identity(3.0),
    ],
    ids=repr,
)
def test_serialize_round_trip(init):
    data = json.loads(json.dumps(initializers.serialize(init)))
    back = initializers.get(data)
    assert back == init and type(back) is type(init)
    np.testing.assert_array_equal(back(KEY, (4, 6)), init(KEY, (4, 6)))


def test_serialize_forms():
    assert initializers.serialize(GlorotUniform()) == "glorot_uniform"
    assert initializers.serialize(Orthogonal()) == {
        "class_name": "Orthogonal",
        "config": {"gain": 1.0},
    }
    assert initializers.serialize("he_normal") == "he_normal"
    assert initializers.serialize(None) is None
    with pytest.raises(ValueError, match="Cannot serialize initializer"):
        initializers.serialize(lambda key, shape, dtype=jnp.float32: jnp.zeros(shape))
    with pytest.raises(ValueError, match="Unknown initializer"):
        initializers.serialize("glorot")


def test_unknown_name_suggests():
    with pytest.raises(
        ValueError, match="Unknown initializer 'glorot_unifrom'"
    ) as info:
        initializers.get("glorot_unifrom")
    assert "Did you mean 'glorot_uniform'" in str(info.value)
    assert "'he_normal'" in str(info.value)


def test_bad_identifiers():
    with pytest.raises(ValueError, match="must look like"):
        initializers.get({"name": "GlorotUniform"})
    with pytest.raises(TypeError, match="RandomNormal: bad config"):
        initializers.get({"class_name": "RandomNormal", "config": {"std": 1.0}})
    with pytest.raises(ValueError, match="Unknown initializer 'Glorot'"):
        initializers.get({"class_name": "Glorot", "config": {}})
    with pytest.raises(TypeError, match="Could not interpret initializer"):
        initializers.get(0.1)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: VarianceScaling(scale=0.0),
            ValueError,
            "`scale` must be > 0.0, got 0.0",
        ),
        (lambda: VarianceScaling(scale=-1.0), ValueError, "`scale` must be > 0.0"),
        (
            lambda: VarianceScaling(mode="fan_x"),
            ValueError,
            r"`mode` must be one of \['fan_in', 'fan_out', 'fan_avg'\], got 'fan_x'",
        ),
        (
            lambda: VarianceScaling(distribution="gaussian"),
            ValueError,
            "`distribution` must be one of",
        ),
        (
            lambda: RandomNormal(stddev=-0.1),
            ValueError,
            "RandomNormal: `stddev` must be >= 0.0",
        ),
        (
            lambda: TruncatedNormal(stddev=float("nan")),
            ValueError,
            "must be a finite number",
        ),
        (lambda: RandomUniform(1.0, 0.0), ValueError, "`minval` must be <= `maxval`"),
        (
            lambda: RandomNormal(mean="0"),
            TypeError,
            "RandomNormal: `mean` must be a number",
        ),
        (
            lambda: Constant([1.0, 2.0]),
            TypeError,
            "Constant: `value` must be a Python scalar",
        ),
        (
            lambda: Orthogonal(gain=float("inf")),
            ValueError,
            "Orthogonal: `gain` must be a finite",
        ),
    ],
)
def test_argument_validation(make, error, match):
    with pytest.raises(error, match=match):
        make()
