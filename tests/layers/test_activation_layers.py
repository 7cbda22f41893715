"""ReLU, LeakyReLU, PReLU, ELU and Softmax layers against Keras 3."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras.layers import activation as A


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(max_value=6.0),
        dict(max_value=2.5, negative_slope=0.1),
        dict(threshold=1.0),
        dict(threshold=1.0, negative_slope=0.2, max_value=4.0),
    ],
)
def test_relu_matches_keras(keras_parity, kwargs):
    keras_parity(lambda L: L.ReLU(**kwargs), lambda: A.ReLU(**kwargs), (3, 4))


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("LeakyReLU", dict()),
        ("LeakyReLU", dict(negative_slope=0.05)),
        ("ELU", dict()),
        ("ELU", dict(alpha=0.5)),
        ("Softmax", dict()),
        ("Softmax", dict(axis=1)),
        ("Softmax", dict(axis=(1, 2))),
    ],
)
def test_activation_layers_match_keras(keras_parity, name, kwargs):
    keras_parity(
        lambda L: getattr(L, name)(**kwargs), lambda: getattr(A, name)(**kwargs), (3, 4)
    )


@pytest.mark.parametrize(
    "shared_axes,shape", [(None, (3, 4)), ([1, 2], (3, 4, 2)), (1, (3, 4))]
)
def test_prelu_matches_keras(keras_parity, shared_axes, shape):
    keras_parity(
        lambda L: L.PReLU(shared_axes=shared_axes),
        lambda: A.PReLU(shared_axes=shared_axes),
        shape,
    )


def test_prelu_alpha_is_named_and_shaped_as_keras_and_trains():
    model = fk.Sequential([fk.Input(shape=(4, 3)), A.PReLU(shared_axes=[1])], seed=0)
    (alpha,) = model.get_weights()
    assert alpha.shape == (1, 3) and not alpha.any()  # Keras' "Zeros" default
    assert list(model.params["p_re_lu"]) == ["alpha"]
    model.compile(optimizer="sgd", loss="mse")
    x = -np.ones((8, 4, 3), np.float32)
    model.fit(x, np.ones_like(x), epochs=1, batch_size=8, verbose=0)
    # d loss / d alpha < 0 for negative inputs and targets above: alpha decreases.
    assert (model.get_weights()[0] < 0).all()


def test_bad_arguments_and_inputs_name_the_layer():
    with pytest.raises(ValueError, match="ReLU.*max_value"):
        A.ReLU(max_value=-1.0)
    with pytest.raises(ValueError, match="ReLU.*threshold"):
        A.ReLU(threshold=-0.5)
    with pytest.raises(ValueError, match="LeakyReLU.*negative_slope"):
        A.LeakyReLU(-0.1)
    with pytest.raises(ValueError, match=r"Softmax\(name='sm'\).*axis=2"):
        A.Softmax(axis=2, name="sm").init(None, jax.ShapeDtypeStruct((3,), jnp.float32))
    with pytest.raises(ValueError, match=r"Softmax\(\).*batch axis"):
        A.Softmax(axis=0).init(None, jax.ShapeDtypeStruct((3,), jnp.float32))
    prelu = A.PReLU(shared_axes=3, name="p")
    with pytest.raises(ValueError, match=r"PReLU\(name='p'\).*shared_axes"):
        prelu.init(jax.random.key(0), jax.ShapeDtypeStruct((3, 2), jnp.float32))
    params, _ = A.PReLU().init(jax.random.key(0), jax.ShapeDtypeStruct((3,), "float32"))
    with pytest.raises(ValueError, match=r"PReLU\(\).*alpha"):
        A.PReLU().apply(params, {}, jnp.ones((2, 4)))
