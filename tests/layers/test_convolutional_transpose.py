"""Transposed and 3-D convolutions against Keras 3 given the same weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras.layers.convolutional import Conv3D, Convolution3D
from funkeras.layers.convolutional_transpose import (
    Conv1DTranspose,
    Conv2DTranspose,
    Conv3DTranspose,
    Convolution2DTranspose,
)

TRANSPOSE_CASES = [
    # kernel, strides, padding, output_padding, dilation
    (3, 1, "valid", None, 1),
    (3, 2, "valid", None, 1),
    (2, 3, "valid", None, 1),  # stride > kernel: default output_padding fills gaps
    (2, 3, "valid", 2, 1),
    (3, 2, "same", None, 1),
    (4, 2, "same", None, 1),
    (4, 3, "same", 1, 1),
    (3, 2, "same", 0, 1),
    (3, 1, "same", None, 2),
    (2, 1, "valid", None, 3),
]


@pytest.mark.parametrize(
    "kernel,strides,padding,output_padding,dilation", TRANSPOSE_CASES
)
def test_conv1d_transpose_matches_keras(
    keras_parity, kernel, strides, padding, output_padding, dilation
):
    kwargs = dict(
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        dilation_rate=dilation,
    )
    keras_parity(
        lambda L: L.Conv1DTranspose(3, **kwargs),
        lambda: Conv1DTranspose(3, **kwargs),
        (5, 2),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3, strides=2, padding="same"),
        dict(kernel_size=(2, 3), strides=(2, 1), padding="valid", activation="relu"),
        dict(kernel_size=3, strides=(3, 2), padding="same", output_padding=(2, 1)),
        dict(kernel_size=(4, 1), strides=2, padding="valid", output_padding=(1, 0)),
        dict(kernel_size=3, dilation_rate=(2, 1), padding="same", use_bias=False),
    ],
)
def test_conv2d_transpose_matches_keras(keras_parity, kwargs):
    keras_parity(
        lambda L: L.Conv2DTranspose(2, **kwargs),
        lambda: Conv2DTranspose(2, **kwargs),
        (3, 4, 3),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2, strides=2),
        dict(kernel_size=3, strides=(1, 2, 2), padding="same"),
        dict(kernel_size=(2, 3, 2), strides=2, padding="same", output_padding=1),
    ],
)
def test_conv3d_transpose_matches_keras(keras_parity, kwargs):
    keras_parity(
        lambda L: L.Conv3DTranspose(2, **kwargs),
        lambda: Conv3DTranspose(2, **kwargs),
        (2, 3, 2, 2),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3),
        dict(kernel_size=(2, 3, 2), strides=2, padding="same"),
        dict(kernel_size=2, dilation_rate=2, padding="same", activation="tanh"),
        dict(kernel_size=1, groups=2),
    ],
)
def test_conv3d_matches_keras(keras_parity, kwargs):
    keras_parity(
        lambda L: L.Conv3D(4, **kwargs),
        lambda: Conv3D(4, **kwargs),
        (4, 3, 5, 2),
    )


def test_keras_aliases_are_the_same_classes():
    assert fk.layers.Convolution3D is Conv3D is Convolution3D
    assert fk.layers.Convolution2DTranspose is Conv2DTranspose
    assert Convolution2DTranspose is Conv2DTranspose
    assert fk.layers.Convolution1D is fk.layers.Conv1D
    assert fk.layers.Convolution1DTranspose is Conv1DTranspose


def test_positional_arguments_follow_keras_order():
    # Keras: Conv2DTranspose(filters, kernel_size, strides, padding, output_padding,
    # data_format, ...) but Conv3DTranspose(..., padding, data_format, output_padding).
    layer2 = Conv2DTranspose(4, 3, 2, "same", 1)
    assert layer2.output_padding == (1, 1)
    layer3 = Conv3DTranspose(4, 3, 2, "same", None, 1)
    assert layer3.output_padding == (1, 1, 1) and layer3.data_format == "channels_last"


def test_kernel_layout_is_filters_then_channels():
    layer = Conv2DTranspose(5, (2, 3))
    params, _ = layer.init(
        jax.random.key(0), jax.ShapeDtypeStruct((4, 4, 3), "float32")
    )
    assert params["kernel"].shape == (2, 3, 5, 3)
    assert params["bias"].shape == (5,)


def test_transpose_is_the_gradient_of_the_strided_convolution():
    # An independent reference: conv_transpose(y, W) is the vector-Jacobian product
    # of conv(x, W) (same kernel, same strides, "valid"), as Keras defines it.
    conv = fk.layers.Conv1D(3, 3, strides=2, use_bias=False)
    spec = jax.ShapeDtypeStruct((9, 2), jnp.float32)
    kparams, _ = conv.init(jax.random.key(1), spec)
    x = jnp.ones((1, 9, 2))
    y, vjp = jax.vjp(lambda x: conv.apply(kparams, {}, x)[0], x)
    g = jax.random.normal(jax.random.key(2), y.shape)
    (expected,) = vjp(g)
    layer = Conv1DTranspose(2, 3, strides=2, use_bias=False)
    out, _ = layer.apply({"kernel": kparams["kernel"]}, {}, g)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_bad_arguments_and_inputs_name_the_layer():
    with pytest.raises(ValueError, match="Conv2DTranspose.*output_padding.*less than"):
        Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="Conv1DTranspose.*dilation_rate"):
        Conv1DTranspose(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="Conv1DTranspose.*padding"):
        Conv1DTranspose(2, 3, padding="causal")
    with pytest.raises(ValueError, match="Conv3DTranspose.*channels_first"):
        Conv3DTranspose(2, 3, data_format="channels_first")
    layer = Conv2DTranspose(2, 3, name="up")
    with pytest.raises(ValueError, match=r"Conv2DTranspose\(name='up'\).*rank 4"):
        layer.init(jax.random.key(0), jax.ShapeDtypeStruct((4, 3), "float32"))
    # "same" with an explicit output_padding of 0, an even kernel and one step
    # would give an empty axis.
    empty = Conv1DTranspose(2, 2, strides=2, padding="same", output_padding=0)
    with pytest.raises(ValueError, match="Conv1DTranspose.*empty output"):
        empty.init(jax.random.key(0), jax.ShapeDtypeStruct((1, 3), "float32"))
    params, _ = layer.init(
        jax.random.key(0), jax.ShapeDtypeStruct((4, 4, 3), "float32")
    )
    with pytest.raises(ValueError, match=r"Conv2DTranspose\(name='up'\).*last axis"):
        layer.apply(params, {}, jnp.ones((1, 4, 4, 5)))
