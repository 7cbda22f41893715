"""GaussianNoise, GaussianDropout, AlphaDropout and SpatialDropout1D/2D/3D.

The random draws cannot equal Keras' (another generator), so: at inference each
layer is the identity in Keras and here (`keras_parity`), and in training the
outputs are checked against the layers' formulas and statistics.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras.layers import regularization as R

ALPHA_P = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946


@pytest.mark.parametrize(
    "name,args,shape",
    [
        ("GaussianNoise", (0.3,), (3, 4)),
        ("GaussianDropout", (0.4,), (3, 4)),
        ("AlphaDropout", (0.2,), (3, 4)),
        ("SpatialDropout1D", (0.5,), (3, 4)),
        ("SpatialDropout2D", (0.5,), (2, 3, 4)),
        ("SpatialDropout3D", (0.5,), (2, 2, 3, 4)),
    ],
)
def test_identity_at_inference_as_in_keras(keras_parity, name, args, shape):
    keras_parity(
        lambda L: getattr(L, name)(*args), lambda: getattr(R, name)(*args), shape
    )


def train(layer, x, seed=0):
    y, _ = layer.apply({}, {}, x, training=True, key=jax.random.key(seed))
    return np.asarray(y)


def test_gaussian_noise_statistics():
    y = train(R.GaussianNoise(0.5), jnp.full((400, 100), 3.0))
    assert abs(y.mean() - 3.0) < 0.01 and abs(y.std() - 0.5) < 0.01


def test_gaussian_dropout_statistics():
    rate = 0.3
    y = train(R.GaussianDropout(rate), jnp.full((400, 100), 2.0))
    assert abs(y.mean() - 2.0) < 0.02
    assert abs(y.std() - 2.0 * np.sqrt(rate / (1 - rate))) < 0.02


def test_alpha_dropout_follows_keras_formula():
    rate = 0.25
    x = np.random.default_rng(0).standard_normal((200, 50)).astype(np.float32)
    y = train(R.AlphaDropout(rate), x)
    a = ((1 - rate) * (1 + rate * ALPHA_P**2)) ** -0.5
    b = -a * ALPHA_P * rate
    kept = np.isclose(y, a * x + b, atol=1e-5)
    dropped = np.isclose(y, a * ALPHA_P + b, atol=1e-5)
    assert (kept | dropped).all()
    assert abs(dropped.mean() - rate) < 0.02
    # Self-normalizing: a standard-normal input keeps mean 0 and variance 1.
    assert abs(y.mean()) < 0.03 and abs(y.std() - 1.0) < 0.03


def test_alpha_dropout_noise_shape_shares_the_draw():
    y = train(R.AlphaDropout(0.5, noise_shape=(None, 1, 3)), jnp.ones((8, 5, 3)))
    assert (y == y[:, :1, :]).all()


@pytest.mark.parametrize(
    "cls,shape", [(R.SpatialDropout1D, (64, 5, 8)), (R.SpatialDropout2D, (64, 3, 4, 8))]
)
def test_spatial_dropout_drops_whole_channels(cls, shape):
    y = train(cls(0.5), jnp.ones(shape))
    per_channel = y.reshape(shape[0], -1, shape[-1])
    assert (per_channel == per_channel[:, :1, :]).all()  # one draw per channel
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 0.4 < (per_channel[:, 0, :] == 0).mean() < 0.6


def test_randomness_comes_from_the_key_and_differs_per_call_node():
    inp = fk.Input(shape=(6,))
    noise = R.GaussianNoise(1.0)
    model = fk.Model(inp, fk.layers.Concatenate()([noise(inp), noise(inp)]), seed=0)
    x = jnp.zeros((2, 6))
    params, state = model.params, model.state
    y1, _ = model.apply(params, state, x, training=True, key=jax.random.key(1))
    y2, _ = model.apply(params, state, x, training=True, key=jax.random.key(1))
    np.testing.assert_array_equal(y1, y2)  # same key, same draw
    assert not np.allclose(y1[:, :6], y1[:, 6:])  # two call nodes, two draws


def test_bad_arguments_and_inputs_name_the_layer():
    with pytest.raises(ValueError, match="GaussianNoise.*stddev"):
        R.GaussianNoise(-0.1)
    with pytest.raises(ValueError, match="GaussianDropout.*rate"):
        R.GaussianDropout(1.0)
    with pytest.raises(ValueError, match="SpatialDropout2D.*channels_first"):
        R.SpatialDropout2D(0.1, data_format="channels_first")
    layer = R.SpatialDropout2D(0.5, name="sd")
    with pytest.raises(ValueError, match=r"SpatialDropout2D\(name='sd'\).*rank 4"):
        layer.init(None, jax.ShapeDtypeStruct((3, 4), jnp.float32))
    with pytest.raises(ValueError, match=r"GaussianNoise\(\).*needs `key=`"):
        R.GaussianNoise(0.1).apply({}, {}, jnp.ones((1, 2)), training=True)
