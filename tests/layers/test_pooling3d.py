"""3-D and global 3-D poolings, the `*Pool*` aliases, against Keras 3."""

import jax
import jax.numpy as jnp
import pytest

import funkeras as fk
from funkeras.layers import pooling as P


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(pool_size=2),
        dict(pool_size=(2, 3, 2), strides=1, padding="same"),
        dict(pool_size=3, strides=2, padding="same"),
    ],
)
@pytest.mark.parametrize("name", ["MaxPooling3D", "AveragePooling3D"])
def test_pooling3d_matches_keras(keras_parity, name, kwargs):
    keras_parity(
        lambda L: getattr(L, name)(**kwargs),
        lambda: getattr(P, name)(**kwargs),
        (3, 4, 5, 2),
    )


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["GlobalMaxPooling3D", "GlobalAveragePooling3D"])
def test_global_pooling3d_matches_keras(keras_parity, name, keepdims):
    keras_parity(
        lambda L: getattr(L, name)(keepdims=keepdims),
        lambda: getattr(P, name)(keepdims=keepdims),
        (2, 3, 4, 2),
    )


def test_keras_pool_aliases():
    L = fk.layers
    assert L.MaxPool1D is L.MaxPooling1D and L.MaxPool3D is L.MaxPooling3D
    assert L.AvgPool2D is L.AveragePooling2D and L.AvgPool3D is L.AveragePooling3D
    assert L.GlobalAvgPool2D is L.GlobalAveragePooling2D
    assert L.GlobalMaxPool3D is L.GlobalMaxPooling3D
    assert L.GlobalAvgPool1D is L.GlobalAveragePooling1D


def test_bad_input_names_the_layer():
    layer = P.MaxPooling3D(name="pool")
    with pytest.raises(ValueError, match=r"MaxPooling3D\(name='pool'\).*rank 5"):
        layer.init(None, jax.ShapeDtypeStruct((4, 4, 2), jnp.float32))
    with pytest.raises(ValueError, match="AveragePooling3D.*empty output"):
        P.AveragePooling3D(3).init(
            None, jax.ShapeDtypeStruct((2, 4, 4, 1), jnp.float32)
        )
    with pytest.raises(ValueError, match="MaxPooling3D.*pool_size"):
        P.MaxPooling3D((2, 2))
