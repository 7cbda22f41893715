"""GroupNormalization, RMSNormalization and UnitNormalization against Keras 3."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from funkeras.layers.normalization import (
    GroupNormalization,
    RMSNormalization,
    UnitNormalization,
)


@pytest.mark.parametrize(
    "kwargs,shape",
    [
        (dict(groups=2), (3, 4)),
        (dict(groups=-1), (3, 5, 4)),  # instance normalization
        (dict(groups=1, epsilon=1e-5), (3, 4)),
        (dict(groups=3, axis=1, center=False), (6, 5)),
        (dict(groups=2, axis=2, scale=False), (3, 4, 5)),
    ],
)
def test_group_normalization_matches_keras(keras_parity, kwargs, shape):
    keras_parity(
        lambda L: L.GroupNormalization(**kwargs),
        lambda: GroupNormalization(**kwargs),
        shape,
    )


@pytest.mark.parametrize("kwargs", [dict(), dict(axis=[1, 2]), dict(epsilon=1e-3)])
def test_rms_normalization_matches_keras(keras_parity, kwargs):
    keras_parity(
        lambda L: L.RMSNormalization(**kwargs),
        lambda: RMSNormalization(**kwargs),
        (3, 4),
    )


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_unit_normalization_matches_keras(keras_parity, axis):
    keras_parity(
        lambda L: L.UnitNormalization(axis=axis),
        lambda: UnitNormalization(axis=axis),
        (3, 4),
    )


def test_group_normalization_against_numpy():
    x = np.random.default_rng(0).standard_normal((2, 5, 6)).astype(np.float32)
    layer = GroupNormalization(3, epsilon=1e-3)
    params, _ = layer.init(jax.random.key(0), jax.ShapeDtypeStruct((5, 6), "float32"))
    y, _ = layer.apply(params, {}, x)
    g = x.reshape(2, 5, 3, 2).astype(np.float64)
    mean = g.mean(axis=(1, 3), keepdims=True)
    var = g.var(axis=(1, 3), keepdims=True)
    expected = ((g - mean) / np.sqrt(var + 1e-3)).reshape(x.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_bfloat16_inputs_are_normalized_in_float32():
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 8)) * 100, "bfloat16")
    for layer in (
        GroupNormalization(4, dtype="bfloat16"),
        RMSNormalization(dtype="bfloat16"),
    ):
        spec = jax.ShapeDtypeStruct((8,), jnp.bfloat16)
        params, _ = layer.init(jax.random.key(0), spec)
        y, _ = layer.apply(params, {}, x)
        assert y.dtype == jnp.bfloat16 and bool(jnp.isfinite(y).all())


def test_bad_arguments_and_inputs_name_the_layer():
    with pytest.raises(ValueError, match="GroupNormalization.*groups"):
        GroupNormalization(0)
    with pytest.raises(ValueError, match="GroupNormalization.*batch axis"):
        GroupNormalization(2, axis=0)
    layer = GroupNormalization(3, name="gn")
    with pytest.raises(ValueError, match=r"GroupNormalization\(name='gn'\).*divide"):
        layer.init(jax.random.key(0), jax.ShapeDtypeStruct((4,), "float32"))
    with pytest.raises(ValueError, match=r"RMSNormalization\(\).*out of range"):
        RMSNormalization(axis=3).init(None, jax.ShapeDtypeStruct((4,), "float32"))
    with pytest.raises(TypeError, match="UnitNormalization.*axis"):
        UnitNormalization(axis="last")
