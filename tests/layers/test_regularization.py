"""Tests of funkeras.layers.regularization: Dropout."""

from __future__ import annotations

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from funkeras.layers.regularization import Dropout

KEY = jax.random.key(0)


def spec(shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype))


def train(layer, x, key, *, jit=False):
    fn = lambda x, k: layer.apply({}, {}, x, training=True, key=k)[0]  # noqa: E731
    return (jax.jit(fn) if jit else fn)(x, key)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_statistics(rate):
    x = jnp.ones((200, 500))
    y = np.asarray(train(Dropout(rate), x, KEY))
    kept = y != 0
    n = y.size
    keep = 1.0 - rate
    # The kept fraction is Binomial(n, keep) / n: allow 5 standard deviations.
    assert abs(kept.mean() - keep) < 5 * np.sqrt(keep * (1 - keep) / n)
    np.testing.assert_allclose(y[kept], 1.0 / keep, rtol=1e-6)
    assert np.all(y[~kept] == 0.0)
    # Inverted dropout keeps the mean.
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(rate / keep / n)


@pytest.mark.parametrize("jit", [False, True])
def test_dropout_matches_numpy_formula(jit):
    rate = 0.3
    x = jax.random.normal(jax.random.key(1), (4, 6, 5))
    key = jax.random.key(2)
    y = np.asarray(train(Dropout(rate), x, key, jit=jit))
    kept = y != 0
    ref = np.where(kept, np.asarray(x) / (1.0 - rate), 0.0)
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=0)
    assert 0 < kept.mean() < 1


def test_dropout_deterministic_per_key_and_jit_equals_eager():
    layer = Dropout(0.5)
    x = jnp.ones((8, 16))
    a = np.asarray(train(layer, x, jax.random.key(7)))
    b = np.asarray(train(layer, x, jax.random.key(7)))
    c = np.asarray(train(layer, x, jax.random.key(7), jit=True))
    d = np.asarray(train(layer, x, jax.random.key(8)))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, d)


def test_dropout_accepts_raw_uint32_keys():
    y = np.asarray(train(Dropout(0.5), jnp.ones((4, 8)), jax.random.PRNGKey(0)))
    assert set(np.unique(y).tolist()) == {0.0, 2.0}


@pytest.mark.parametrize("jit", [False, True])
def test_dropout_inference_is_identity(jit):
    layer = Dropout(0.9)
    x = jax.random.normal(KEY, (3, 4))
    marker = {"marker": jnp.arange(2.0)}
    fn = lambda x, s: layer.apply({}, s, x, training=False)  # noqa: E731
    y, state = (jax.jit(fn) if jit else fn)(x, marker)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
    np.testing.assert_array_equal(np.asarray(state["marker"]), [0.0, 1.0])
    if not jit:
        assert state is marker
        # With a key, inference is still the identity.
        y, _ = layer.apply({}, marker, x, training=False, key=KEY)
        np.testing.assert_array_equal(np.asarray(y), np.asarray(x))


def test_dropout_rate_zero_needs_no_key():
    x = jax.random.normal(KEY, (3, 4))
    y, _ = Dropout(0.0).apply({}, {}, x, training=True)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))


@pytest.mark.parametrize(
    "name, label", [("drop", "Dropout(name='drop')"), (None, "Dropout()")]
)
def test_dropout_needs_key_message(name, label):
    layer = Dropout(0.5, name=name)
    expected = (
        f"{label}.apply(..., training=True) needs `key=`; models pass one per call "
        "node (fit does this for you)"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        layer.apply({}, {}, jnp.ones((2, 3)), training=True)


def test_dropout_grad_is_mask_over_keep_prob():
    layer = Dropout(0.25)
    x = jnp.ones((6, 7))
    key = jax.random.key(3)
    y = train(layer, x, key)
    grad = jax.grad(lambda x: train(layer, x, key).sum())(x)
    # For x = 1, y = mask / keep_prob, which is also dy/dx.
    np.testing.assert_allclose(np.asarray(grad), np.asarray(y), rtol=1e-6)


@pytest.mark.parametrize("noise_shape", [(None, 1, None), [8, 1, 5], (None, 1, 1)])
def test_dropout_noise_shape_shares_mask(noise_shape):
    layer = Dropout(0.5, noise_shape=noise_shape)
    layer.init(KEY, spec((6, 5)))
    y = np.asarray(train(layer, jnp.ones((8, 6, 5)), jax.random.key(4)))
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :], y.shape))
    if noise_shape[2] == 1:
        np.testing.assert_array_equal(y, np.broadcast_to(y[:, :, :1], y.shape))
    assert 0 < (y != 0).mean() < 1


def test_dropout_noise_shape_errors():
    with pytest.raises(ValueError, match=r"Dropout\(name='d'\).*3 axes.*has 2"):
        Dropout(0.5, noise_shape=(None, 1, 1), name="d").init(KEY, spec((4,)))
    with pytest.raises(ValueError, match=r"does not broadcast.*axis 2: 3 vs 5"):
        Dropout(0.5, noise_shape=(None, 1, 3)).init(KEY, spec((6, 5)))
    layer = Dropout(0.5, noise_shape=(None, 4))
    with pytest.raises(ValueError, match="does not broadcast"):
        train(layer, jnp.ones((2, 3)), KEY)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"rate": 1.5}, ValueError, "rate"),
        ({"rate": 1.0}, ValueError, "rate"),
        ({"rate": -0.1}, ValueError, "rate"),
        ({"rate": "0.5"}, TypeError, "rate"),
        ({"rate": None}, TypeError, "rate"),
        ({"rate": 0.5, "noise_shape": 3}, TypeError, "noise_shape"),
        ({"rate": 0.5, "noise_shape": (None, 0)}, ValueError, "noise_shape"),
        ({"rate": 0.5, "noise_shape": (None, 2.0)}, TypeError, "noise_shape"),
    ],
)
def test_dropout_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        Dropout(**kwargs)
    assert "Dropout" in str(info.value)


def test_dropout_config_round_trip():
    layer = Dropout(0.25, noise_shape=(None, 1, 4), name="drop", dtype="bfloat16")
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    assert config["rate"] == 0.25 and config["noise_shape"] == [None, 1, 4]
    clone = Dropout.from_config(config)
    assert clone.noise_shape == (None, 1, 4)
    assert clone.get_config() == config
    x = jnp.ones((2, 3, 4), jnp.bfloat16)
    np.testing.assert_array_equal(
        np.asarray(train(layer, x, KEY), np.float32),
        np.asarray(train(clone, x, KEY), np.float32),
    )


@pytest.mark.parametrize("in_shape", [(3,), (2, 5)])
def test_dropout_compute_output_spec(in_shape):
    layer = Dropout(0.5)
    assert layer.init(KEY, spec(in_shape)) == ({}, {})
    out = layer.compute_output_spec(spec(in_shape))
    y = train(layer, jnp.ones((4, *in_shape)), KEY)
    assert out.shape == y.shape[1:] and out.dtype == y.dtype


def test_dropout_bfloat16():
    layer = Dropout(0.5, dtype="bfloat16")
    for jit in (False, True):
        y = train(layer, jnp.ones((16, 16), jnp.bfloat16), KEY, jit=jit)
        assert y.dtype == jnp.bfloat16
        assert set(np.unique(np.asarray(y, np.float32)).tolist()) == {0.0, 2.0}
    # A float32 input to a bfloat16 layer is cast, as Keras does.
    assert train(layer, jnp.ones((2, 2)), KEY).dtype == jnp.bfloat16
