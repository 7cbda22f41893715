"""Upsampling, zero padding, cropping, Resizing, CenterCrop, Rescaling vs Keras 3."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from funkeras.layers import resampling as R


@pytest.mark.parametrize(
    "name,kwargs,shape",
    [
        ("UpSampling1D", dict(size=3), (4, 2)),
        ("UpSampling2D", dict(size=(2, 3)), (3, 4, 2)),
        ("UpSampling2D", dict(size=2, interpolation="bilinear"), (3, 4, 2)),
        ("UpSampling2D", dict(size=(3, 2), interpolation="bicubic"), (3, 4, 1)),
        ("UpSampling3D", dict(size=(2, 1, 3)), (2, 3, 2, 2)),
        ("ZeroPadding1D", dict(padding=(1, 2)), (4, 2)),
        ("ZeroPadding2D", dict(padding=((1, 2), (0, 3))), (3, 4, 2)),
        ("ZeroPadding2D", dict(padding=(2, 1)), (3, 4, 2)),
        ("ZeroPadding3D", dict(padding=(1, 2, 0)), (2, 3, 2, 2)),
        ("Cropping1D", dict(cropping=(1, 2)), (5, 2)),
        ("Cropping2D", dict(cropping=((1, 0), (2, 1))), (3, 5, 2)),
        ("Cropping2D", dict(cropping=1), (4, 5, 2)),
        ("Cropping3D", dict(cropping=((1, 0), (0, 1), (2, 1))), (3, 4, 5, 2)),
    ],
)
def test_reshaping_layers_match_keras(keras_parity, name, kwargs, shape):
    keras_parity(
        lambda L: getattr(L, name)(**kwargs), lambda: getattr(R, name)(**kwargs), shape
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(interpolation="nearest"),
        dict(crop_to_aspect_ratio=True),
        dict(pad_to_aspect_ratio=True, fill_value=2.0),
        dict(antialias=True),
        dict(interpolation="lanczos3"),
    ],
)
@pytest.mark.parametrize("size", [(3, 4), (7, 4)])
def test_resizing_matches_keras(keras_parity, kwargs, size):
    keras_parity(
        lambda L: L.Resizing(*size, **kwargs),
        lambda: R.Resizing(*size, **kwargs),
        (6, 5, 2),
    )


@pytest.mark.parametrize("dtype", ["uint8", "int32"])
def test_resizing_rounds_integer_images_back_as_keras(keras_parity, dtype):
    keras_parity(lambda L: L.Resizing(3, 4), lambda: R.Resizing(3, 4), (6, 5, 2), dtype)


@pytest.mark.parametrize("size", [(3, 4), (3, 7)])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_center_crop_matches_keras(keras_parity, size, dtype):
    # (3, 7) is wider than the image: Keras crops to the aspect ratio and resizes.
    keras_parity(
        lambda L: L.CenterCrop(*size), lambda: R.CenterCrop(*size), (6, 5, 2), dtype
    )


@pytest.mark.parametrize(
    "kwargs,dtype",
    [
        (dict(scale=1 / 255.0), "uint8"),
        (dict(scale=1 / 127.5, offset=-1.0), "float32"),
        (dict(scale=[1.0, 2.0], offset=[0.5, -1.0]), "float32"),
    ],
)
def test_rescaling_matches_keras(keras_parity, kwargs, dtype):
    keras_parity(
        lambda L: L.Rescaling(**kwargs), lambda: R.Rescaling(**kwargs), (3, 2), dtype
    )


def test_bilinear_upsampling_against_a_numpy_formula():
    # Half-pixel centres: output i samples input (i + 0.5) / f - 0.5, clamped.
    x = np.array([0.0, 1.0, 4.0], np.float32).reshape(1, 1, 3, 1)
    y, _ = R.UpSampling2D((1, 2), interpolation="bilinear").apply({}, {}, x)
    pos = np.clip((np.arange(6) + 0.5) / 2 - 0.5, 0, 2)
    np.testing.assert_allclose(y[0, 0, :, 0], np.interp(pos, [0, 1, 2], x.ravel()))


def test_padding_and_cropping_invert_each_other():
    x = jnp.asarray(
        np.random.default_rng(0).standard_normal((2, 3, 4, 5, 1)), jnp.float32
    )
    pads = ((1, 0), (2, 1), (0, 3))
    y, _ = R.ZeroPadding3D(pads).apply({}, {}, x)
    assert y.shape == (2, 4, 7, 8, 1)
    back, _ = R.Cropping3D(pads).apply({}, {}, y)
    np.testing.assert_array_equal(back, x)


def test_bad_arguments_and_inputs_name_the_layer():
    with pytest.raises(ValueError, match="UpSampling2D.*interpolation"):
        R.UpSampling2D(interpolation="area")
    with pytest.raises(ValueError, match="ZeroPadding2D.*padding"):
        R.ZeroPadding2D((1, 2, 3))
    with pytest.raises(ValueError, match="Cropping1D.*cropping"):
        R.Cropping1D(-1)
    with pytest.raises(ValueError, match="Resizing.*only one"):
        R.Resizing(2, 2, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ValueError, match="Resizing.*height"):
        R.Resizing(0, 2)
    crop = R.Cropping2D(2, name="crop")
    with pytest.raises(ValueError, match=r"Cropping2D\(name='crop'\).*every element"):
        crop.init(None, jax.ShapeDtypeStruct((4, 6, 1), jnp.float32))
    with pytest.raises(ValueError, match=r"CenterCrop\(\).*rank 4"):
        R.CenterCrop(2, 2).init(None, jax.ShapeDtypeStruct((4, 4), jnp.float32))
    with pytest.raises(ValueError, match=r"UpSampling3D\(\).*rank 5"):
        R.UpSampling3D().apply({}, {}, jnp.ones((1, 2, 2, 1)))
