"""fk.random: Keras' key conventions, the seed stream, and models' drawn seeds."""

from __future__ import annotations

import os
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk

SHAPE = (3, 4)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras is not on the JAX backend")
    return keras


CALLS = {
    "normal": lambda r, s: r.normal(SHAPE, mean=1.0, stddev=2.0, seed=s),
    "uniform": lambda r, s: r.uniform(SHAPE, minval=-1.0, maxval=3.0, seed=s),
    "randint": lambda r, s: r.randint(SHAPE, 0, 10, seed=s),
    "truncated_normal": lambda r, s: r.truncated_normal(SHAPE, stddev=0.5, seed=s),
    "dropout": lambda r, s: r.dropout(jnp.ones(SHAPE), 0.3, seed=s),
    "dropout_noise_shape": lambda r, s: r.dropout(
        jnp.ones(SHAPE), 0.5, noise_shape=(1, None), seed=s
    ),
    "shuffle": lambda r, s: r.shuffle(jnp.arange(12.0).reshape(SHAPE), axis=1, seed=s),
    "categorical": lambda r, s: r.categorical(
        jnp.log(jnp.array([[0.2, 0.8], [0.9, 0.1]])), 5, seed=s
    ),
    "gamma": lambda r, s: r.gamma(SHAPE, 2.0, seed=s),
    "binomial": lambda r, s: r.binomial(SHAPE, 10.0, 0.3, seed=s),
    "beta": lambda r, s: r.beta(SHAPE, 2.0, 3.0, seed=s),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_same_numbers_as_keras_for_int_seeds_and_generators(name):
    keras = _keras()
    call = CALLS[name]
    mine, theirs = call(fk.random, 42), call(keras.random, 42)
    assert np.asarray(mine).dtype == np.asarray(theirs).dtype
    np.testing.assert_allclose(np.asarray(mine), np.asarray(theirs), rtol=1e-6)
    gen_mine, gen_theirs = fk.random.SeedGenerator(7), keras.random.SeedGenerator(7)
    for _ in range(2):  # successive keys of the generators agree too
        np.testing.assert_allclose(
            np.asarray(call(fk.random, gen_mine)),
            np.asarray(call(keras.random, gen_theirs)),
            rtol=1e-6,
        )


def test_keys_are_accepted_and_reproducible():
    key = jax.random.key(3)
    a, b = fk.random.normal((5,), seed=key), fk.random.normal((5,), seed=key)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, jax.random.normal(key, (5,)))
    c = fk.random.normal((5,), seed=1)
    assert not np.allclose(c, fk.random.normal((5,), seed=2))


def test_seed_generator_advances_and_differs():
    gen = fk.random.SeedGenerator(5)
    first, second = gen.next(), gen.next()
    assert first.tolist() == [5, 0] and second.tolist() == [5, 1]
    assert gen.state.tolist() == [5, 2]
    assert gen.get_config() == {"seed": 5}
    draws = [fk.random.uniform((4,), seed=gen) for _ in range(2)]
    assert not np.allclose(draws[0], draws[1])


def test_seed_generator_does_not_leak_tracers_under_jit():
    gen = fk.random.SeedGenerator(0)

    @jax.jit
    def f(x):
        return x + fk.random.normal((2,), seed=gen)

    a, b = f(jnp.zeros(2)), f(jnp.zeros(2))
    np.testing.assert_array_equal(a, b)  # one key, drawn at trace time
    assert gen.state.tolist() == [0, 1]
    np.testing.assert_array_equal(
        a, fk.random.normal((2,), seed=fk.random.SeedGenerator(0))
    )


def test_set_random_seed_restarts_the_stream_and_seeds_python_and_numpy():
    fk.utils.set_random_seed(11)
    a = (
        fk.random.next_seed(),
        random.random(),
        np.random.rand(),
        fk.random.normal((2,)),
    )
    fk.utils.set_random_seed(11)
    b = (
        fk.random.next_seed(),
        random.random(),
        np.random.rand(),
        fk.random.normal((2,)),
    )
    assert a[:3] == b[:3]
    np.testing.assert_array_equal(a[3], b[3])
    assert fk.random.next_seed() != fk.random.next_seed()
    assert fk.utils.set_random_seed is fk.random.set_random_seed


def _model(**kwargs):
    return fk.Sequential(
        [fk.Input(shape=(3,)), fk.layers.Dense(4), fk.layers.Dense(1)], **kwargs
    )


def _weights(model):
    model.build((None, 3))
    return [np.asarray(w) for w in model.get_weights()]


def test_models_without_seed_differ_and_repeat_after_set_random_seed():
    fk.utils.set_random_seed(1)
    a, b = _model(), _model()
    assert a.seed != b.seed
    assert not np.allclose(_weights(a)[0], _weights(b)[0])
    fk.utils.set_random_seed(1)
    c = _model()
    assert c.seed == a.seed
    for wa, wc in zip(_weights(a), _weights(c), strict=True):
        np.testing.assert_array_equal(wa, wc)
    fixed = [_weights(_model(seed=3)) for _ in range(2)]
    np.testing.assert_array_equal(fixed[0][0], fixed[1][0])
    inp = fk.Input(shape=(3,))
    assert isinstance(fk.Model(inp, fk.layers.Dense(2)(inp)).seed, int)


def test_a_drawn_seed_is_saved_in_the_config(tmp_path):
    model = _model()
    assert model.get_config()["seed"] == model.seed
    path = tmp_path / "m.fkz"
    model.save(path)
    loaded = fk.load_model(path)
    assert loaded.seed == model.seed
    for wa, wb in zip(_weights(model), _weights(loaded), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_bad_seeds_and_arguments_are_named():
    with pytest.raises(TypeError, match="normal: `seed`"):
        fk.random.normal((2,), seed="x")
    with pytest.raises(TypeError, match="set_random_seed: `seed`"):
        fk.random.set_random_seed(1.5)
    with pytest.raises(ValueError, match="dropout: `rate`"):
        fk.random.dropout(jnp.ones(2), 1.5)
    with pytest.raises(TypeError, match="normal: `dtype`"):
        fk.random.normal((2,), dtype="int32")
    with pytest.raises(ValueError, match="categorical: `logits`"):
        fk.random.categorical(jnp.ones(3), 2)
