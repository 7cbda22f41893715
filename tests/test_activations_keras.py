"""The activations Keras 3 added (celu ... threshold) against `keras.activations`."""

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras import activations

X = np.random.default_rng(0).uniform(-3, 3, (4, 6)).astype(np.float32)

CASES = [
    ("celu", {}),
    ("celu", {"alpha": 0.5}),
    ("glu", {}),
    ("glu", {"axis": 0}),
    ("hard_shrink", {}),
    ("hard_shrink", {"threshold": 1.2}),
    ("hard_tanh", {}),
    ("log_sigmoid", {}),
    ("soft_shrink", {}),
    ("soft_shrink", {"threshold": 0.8}),
    ("sparse_plus", {}),
    ("sparse_sigmoid", {}),
    ("squareplus", {}),
    ("squareplus", {"b": 1.0}),
    ("tanh_shrink", {}),
    ("threshold", {"threshold": 0.3, "default_value": -2.0}),
]


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras is not on the JAX backend")
    return keras


def keras_value(keras, name, x, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.asarray(getattr(keras.activations, name)(x, **kwargs))


@pytest.mark.parametrize("name,kwargs", CASES)
def test_matches_keras(keras, name, kwargs):
    expected = keras_value(keras, name, X, **kwargs)
    fn = getattr(activations, name)
    for got in (fn(X, **kwargs), jax.jit(lambda x: fn(x, **kwargs))(X)):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_sparsemax_matches_keras_where_keras_is_right(keras):
    # One logit far above the rest: a support of one, where Keras 3.15's threshold
    # (a sum of the cumulative sums over the support) is still the right one.
    x = np.array([[4.0, 1.0, 0.0, -1.0], [0.0, -2.0, 3.0, 1.0]], np.float32)
    np.testing.assert_allclose(
        activations.sparsemax(x), keras_value(keras, "sparsemax", x), atol=1e-6
    )


def test_sparsemax_is_a_projection_onto_the_simplex():
    # With two or more logits kept, Keras up to 3.15 returns values that do not sum
    # to 1 (keras-team/keras#23425); the fixed formula is the paper's.
    y = np.asarray(activations.sparsemax(X))
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-6)
    assert (y >= 0).all() and (y == 0).any()
    np.testing.assert_allclose(
        activations.sparsemax(jnp.array([[0.0, 0.5, 1.0]])), [[0.0, 0.25, 0.75]]
    )
    y0 = activations.sparsemax(X, axis=0)
    np.testing.assert_allclose(np.asarray(y0).sum(0), 1.0, rtol=1e-6)


def test_new_names_resolve_and_layers_take_them():
    assert activations.get("Hard_Tanh") is activations.hard_tanh
    layer = fk.layers.Dense(3, activation="log_sigmoid")
    params, _ = layer.init(jax.random.key(0), jax.ShapeDtypeStruct((2,), "float32"))
    y, _ = layer.apply(params, {}, jnp.ones((1, 2)))
    assert (np.asarray(y) <= 0).all()
    assert activations.serialize(activations.sparsemax) == "sparsemax"


def test_bad_arguments():
    with pytest.raises(ValueError, match="glu.*even"):
        activations.glu(jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="threshold"):
        activations.threshold(jnp.ones(2), jnp.array(0.5), 0.0)
    with pytest.raises(ValueError, match="squareplus.*b"):
        activations.squareplus(jnp.ones(2), b=-1.0)
