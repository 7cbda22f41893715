"""Depthwise and separable convolutions against Keras 3 given the same weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras.layers.depthwise import (
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)

CASES = [
    dict(kernel_size=3),
    dict(kernel_size=3, depth_multiplier=2, strides=2, padding="same"),
    dict(kernel_size=2, dilation_rate=2, padding="same", activation="relu"),
    dict(kernel_size=4, padding="same", use_bias=False),
]


@pytest.mark.parametrize("kwargs", CASES)
def test_depthwise_conv1d_matches_keras(keras_parity, kwargs):
    keras_parity(
        lambda L: L.DepthwiseConv1D(**kwargs), lambda: DepthwiseConv1D(**kwargs), (7, 3)
    )


@pytest.mark.parametrize("kwargs", CASES)
def test_depthwise_conv2d_matches_keras(keras_parity, kwargs):
    keras_parity(
        lambda L: L.DepthwiseConv2D(**kwargs),
        lambda: DepthwiseConv2D(**kwargs),
        (6, 5, 3),
    )


@pytest.mark.parametrize("kwargs", CASES[:3])
def test_separable_conv1d_matches_keras(keras_parity, kwargs):
    keras_parity(
        lambda L: L.SeparableConv1D(4, **kwargs),
        lambda: SeparableConv1D(4, **kwargs),
        (7, 3),
    )


@pytest.mark.parametrize("kwargs", CASES)
def test_separable_conv2d_matches_keras(keras_parity, kwargs):
    keras_parity(
        lambda L: L.SeparableConv2D(5, **kwargs),
        lambda: SeparableConv2D(5, **kwargs),
        (6, 5, 3),
    )


def test_depthwise_output_channels_are_channel_major():
    # Output c * m + j is input channel c through its filter j (Keras' order),
    # checked against a per-channel NumPy correlation.
    layer = DepthwiseConv1D(2, depth_multiplier=3, use_bias=False)
    spec = jax.ShapeDtypeStruct((5, 2), jnp.float32)
    params, _ = layer.init(jax.random.key(0), spec)
    x = np.random.default_rng(0).standard_normal((1, 5, 2)).astype(np.float32)
    y, _ = layer.apply(params, {}, x)
    kernel = np.asarray(params["kernel"])
    for c in range(2):
        for j in range(3):
            expected = np.correlate(x[0, :, c], kernel[:, c, j], mode="valid")
            np.testing.assert_allclose(
                y[0, :, c * 3 + j], expected, rtol=1e-5, atol=1e-6
            )


def test_weight_names_and_shapes_are_keras():
    spec = jax.ShapeDtypeStruct((8, 8, 3), jnp.float32)
    params, _ = SeparableConv2D(16, 3, depth_multiplier=2).init(jax.random.key(0), spec)
    assert {k: v.shape for k, v in params.items()} == {
        "depthwise_kernel": (3, 3, 3, 2),
        "pointwise_kernel": (1, 1, 6, 16),
        "bias": (16,),
    }
    params, _ = DepthwiseConv2D(3, depth_multiplier=2).init(jax.random.key(0), spec)
    assert {k: v.shape for k, v in params.items()} == {
        "kernel": (3, 3, 3, 2),
        "bias": (6,),
    }


def test_regularizers_add_to_the_penalty():
    layer = SeparableConv1D(2, 3, pointwise_regularizer="l2")
    assert layer.has_penalty()
    assert not SeparableConv1D(2, 3).has_penalty()
    params = {
        "depthwise_kernel": jnp.ones((3, 2, 1)),
        "pointwise_kernel": jnp.full((1, 2, 2), 2.0),
        "bias": jnp.ones((2,)),
    }
    np.testing.assert_allclose(layer.penalty(params), 0.01 * 4.0 * 4)
    dw = DepthwiseConv1D(3, depthwise_regularizer="l1")
    np.testing.assert_allclose(dw.penalty({"kernel": -jnp.ones((3, 2, 1))}), 0.01 * 6)


def test_aliases_and_bad_input():
    assert fk.layers.SeparableConvolution2D is SeparableConv2D
    with pytest.raises(ValueError, match="DepthwiseConv1D.*padding"):
        DepthwiseConv1D(3, padding="causal")  # Keras has no causal depthwise
    with pytest.raises(ValueError, match="SeparableConv2D.*depth_multiplier"):
        SeparableConv2D(4, 3, depth_multiplier=0)
    layer = DepthwiseConv2D(5, name="dw")
    with pytest.raises(ValueError, match=r"DepthwiseConv2D\(name='dw'\).*kernel size"):
        layer.init(jax.random.key(0), jax.ShapeDtypeStruct((3, 3, 1), "float32"))
    with pytest.raises(ValueError, match=r"DepthwiseConv2D\(name='dw'\).*rank 4"):
        layer.init(jax.random.key(0), jax.ShapeDtypeStruct((3, 3), "float32"))
