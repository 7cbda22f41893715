"""Tests of funkeras.layers.core: Dense, Embedding, Identity, Activation."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from funkeras import regularizers
from funkeras.layers.core import Activation, Dense, Embedding, Identity

KEY = jax.random.key(0)


def spec(shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype))


def run(layer, params, state, x, *, jit):
    fn = lambda p, s, x: layer.apply(p, s, x)  # noqa: E731
    return (jax.jit(fn) if jit else fn)(params, state, x)


def check_state_passthrough(layer, params, x):
    """A stateless layer returns the state it is given, eagerly and under jit."""
    marker = {"marker": jnp.arange(3.0)}
    _, out = layer.apply(params, marker, x, training=False)
    assert out is marker
    _, out = jax.jit(lambda p, s, x: layer.apply(p, s, x))(params, marker, x)
    assert out.keys() == marker.keys()
    np.testing.assert_array_equal(np.asarray(out["marker"]), [0.0, 1.0, 2.0])


# ---------------------------------------------------------------------------
# NumPy references, written with explicit loops.
# ---------------------------------------------------------------------------


def np_dense(x, kernel, bias, activation):
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    out = np.zeros(x.shape[:-1] + (kernel.shape[1],))
    for j in range(kernel.shape[1]):
        for i in range(kernel.shape[0]):
            out[..., j] += x[..., i] * kernel[i, j]
        if bias is not None:
            out[..., j] += float(bias[j])
    return NP_ACTIVATIONS[activation](out)


NP_ACTIVATIONS = {
    None: lambda z: z,
    "linear": lambda z: z,
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "softplus": lambda z: np.log1p(np.exp(z)),
}


# ---------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(
    "activation, use_bias", [(None, True), ("tanh", True), ("tanh", False)]
)
@pytest.mark.parametrize("in_shape", [(5,), (3, 5), (2, 3, 5)])
def test_dense_matches_numpy(jit, activation, use_bias, in_shape):
    layer = Dense(
        4, activation=activation, use_bias=use_bias, bias_initializer="random_normal"
    )
    params, state = layer.init(KEY, spec(in_shape))
    assert params["kernel"].shape == (5, 4)
    assert ("bias" in params) == use_bias
    x = jax.random.normal(jax.random.key(1), (2, *in_shape))
    y, _ = run(layer, params, state, x, jit=jit)
    ref = np_dense(x, params["kernel"], params.get("bias"), activation)
    assert y.shape == (2, *in_shape[:-1], 4)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-5)
    check_state_passthrough(layer, params, x)


def test_dense_jit_equals_eager():
    layer = Dense(7, activation="relu")
    params, state = layer.init(KEY, spec((3, 6)))
    x = jax.random.normal(jax.random.key(2), (4, 3, 6))
    eager, _ = run(layer, params, state, x, jit=False)
    jitted, _ = run(layer, params, state, x, jit=True)
    np.testing.assert_allclose(
        np.asarray(eager), np.asarray(jitted), rtol=1e-6, atol=1e-6
    )


def test_dense_init_defaults():
    layer = Dense(30)
    params, _ = layer.init(KEY, spec((20,)))
    limit = np.sqrt(6.0 / (20 + 30))  # glorot_uniform
    kernel = np.asarray(params["kernel"])
    assert np.all(np.abs(kernel) <= limit) and kernel.std() > limit / 4
    np.testing.assert_array_equal(np.asarray(params["bias"]), np.zeros(30))
    again, _ = layer.init(KEY, spec((20,)))
    np.testing.assert_array_equal(kernel, np.asarray(again["kernel"]))
    other, _ = layer.init(jax.random.key(1), spec((20,)))
    assert not np.array_equal(kernel, np.asarray(other["kernel"]))


def test_dense_kernel_and_bias_get_independent_keys():
    layer = Dense(
        8, kernel_initializer="random_normal", bias_initializer="random_normal"
    )
    params, _ = layer.init(KEY, spec((8,)))
    assert not np.allclose(np.asarray(params["kernel"][0]), np.asarray(params["bias"]))


def test_dense_casts_inputs_like_keras():
    layer = Dense(3, kernel_initializer="ones")
    params, state = layer.init(KEY, spec((2,)))
    y, _ = layer.apply(params, state, np.array([[1, 2]], dtype=np.uint8))
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y), [[3.0, 3.0, 3.0]])
    y, _ = layer.apply(params, state, jnp.ones((1, 2), jnp.bfloat16))
    assert y.dtype == jnp.float32


def test_dense_bfloat16():
    layer = Dense(4, activation="relu", dtype="bfloat16")
    params, state = layer.init(KEY, spec((6,), jnp.bfloat16))
    assert params["kernel"].dtype == jnp.bfloat16
    assert params["bias"].dtype == jnp.bfloat16
    x = jax.random.normal(jax.random.key(3), (3, 6)).astype(jnp.bfloat16)
    for jit in (False, True):
        y, _ = run(layer, params, state, x, jit=jit)
        assert y.dtype == jnp.bfloat16
        ref = np_dense(
            np.asarray(x, np.float32),
            np.asarray(params["kernel"], np.float32),
            np.asarray(params["bias"], np.float32),
            "relu",
        )
        np.testing.assert_allclose(np.asarray(y, np.float32), ref, rtol=3e-2, atol=3e-2)


def test_dense_grads():
    layer = Dense(3, activation="tanh", bias_initializer="random_normal")
    params, state = layer.init(KEY, spec((4,)))
    x = jax.random.normal(jax.random.key(4), (2, 4))
    check_grads(
        lambda p, x: layer.apply(p, state, x)[0],
        (params, x),
        order=1,
        modes=["rev"],
        atol=1e-2,
        rtol=1e-2,
    )


@pytest.mark.parametrize("in_shape", [(5,), (2, 3, 5)])
def test_dense_compute_output_spec(in_shape):
    layer = Dense(4, dtype="bfloat16")
    out = layer.compute_output_spec(spec(in_shape))
    params, state = layer.init(KEY, spec(in_shape))
    y, _ = layer.apply(params, state, jnp.zeros((3, *in_shape)))
    assert out.shape == y.shape[1:] == (*in_shape[:-1], 4)
    assert out.dtype == y.dtype == jnp.bfloat16


def test_dense_config_round_trip():
    layer = Dense(
        5,
        activation="relu",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer="l2",
        name="dense_7",
        trainable=False,
    )
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    assert config["units"] == 5 and config["activation"] == "relu"
    assert config["kernel_initializer"] == "he_normal"
    clone = Dense.from_config(config)
    assert clone is not layer and clone.get_config() == config
    params, state = layer.init(KEY, spec((3,)))
    x = jax.random.normal(jax.random.key(5), (2, 3))
    np.testing.assert_array_equal(
        np.asarray(layer.apply(params, state, x)[0]),
        np.asarray(clone.apply(params, state, x)[0]),
    )


def test_dense_penalty():
    plain = Dense(3)
    params, _ = plain.init(KEY, spec((4,)))
    assert float(plain.penalty(params)) == 0.0
    reg = Dense(
        3, kernel_regularizer="l2", bias_regularizer="l1", bias_initializer="ones"
    )
    params, _ = reg.init(KEY, spec((4,)))
    expected = regularizers.get("l2")(params["kernel"]) + regularizers.get("l1")(
        params["bias"]
    )
    assert float(expected) > 0
    np.testing.assert_allclose(float(reg.penalty(params)), float(expected), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"units": 0}, ValueError, "units"),
        ({"units": -3}, ValueError, "units"),
        ({"units": "10"}, TypeError, "units"),
        ({"units": 2.0}, TypeError, "units"),
        ({"units": True}, TypeError, "units"),
        ({"units": 2, "use_bias": 1}, TypeError, "use_bias"),
        ({"units": 2, "activation": "not_an_activation"}, ValueError, "activation"),
        ({"units": 2, "activation": 3}, TypeError, "activation"),
        (
            {"units": 2, "kernel_initializer": "not_an_init"},
            ValueError,
            "kernel_initializer",
        ),
        ({"units": 2, "bias_initializer": 0.5}, TypeError, "bias_initializer"),
        (
            {"units": 2, "kernel_regularizer": "not_a_reg"},
            ValueError,
            "kernel_regularizer",
        ),
        ({"units": 2, "dtype": "not_a_dtype"}, TypeError, "dtype"),
        ({"units": 2, "name": ""}, TypeError, "name"),
    ],
)
def test_dense_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        Dense(**kwargs)
    assert "Dense" in str(info.value)


def test_dense_rank0_spec_error():
    with pytest.raises(ValueError, match=r"Dense\(name='d'\).*rank >= 2.*\(None,\)"):
        Dense(3, name="d").init(KEY, spec(()))


def test_dense_list_spec_error():
    with pytest.raises(TypeError, match="Dense.*single input"):
        Dense(3).init(KEY, [spec((2,)), spec((2,))])


def test_dense_last_axis_mismatch_in_apply():
    layer = Dense(3, name="dense_1")
    params, state = layer.init(KEY, spec((4,)))
    with pytest.raises(ValueError, match=r"Dense\(name='dense_1'\).*to be 4.*\(2, 5\)"):
        layer.apply(params, state, jnp.zeros((2, 5)))
    with pytest.raises(ValueError, match="to be 4"):
        jax.jit(lambda x: layer.apply(params, state, x))(jnp.zeros((2, 5)))
    # Under a symbolic batch, too.
    (batch,) = jax.export.symbolic_shape("batch")
    with pytest.raises(ValueError, match="to be 4"):
        jax.eval_shape(
            lambda x: layer.apply(params, state, x),
            jax.ShapeDtypeStruct((batch, 5), jnp.float32),
        )


# ---------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(
    "idx_shape, idx_dtype", [((), jnp.int32), ((3,), jnp.uint8), ((2, 3), jnp.int16)]
)
def test_embedding_matches_numpy(jit, idx_shape, idx_dtype):
    layer = Embedding(11, 4)
    params, state = layer.init(KEY, spec(idx_shape, idx_dtype))
    table = np.asarray(params["embeddings"])
    assert table.shape == (11, 4)
    idx = np.random.default_rng(0).integers(0, 11, size=(5, *idx_shape))
    x = jnp.asarray(idx, idx_dtype)
    y, _ = run(layer, params, state, x, jit=jit)
    ref = np.zeros((*idx.shape, 4), np.float32)
    for pos in np.ndindex(*idx.shape):
        ref[pos] = table[idx[pos]]
    assert y.shape == (5, *idx_shape, 4) and y.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(y), ref)
    check_state_passthrough(layer, params, x)


def test_embedding_default_initializer_is_uniform_005():
    params, _ = Embedding(200, 50).init(KEY, spec((3,), jnp.int32))
    table = np.asarray(params["embeddings"])
    assert table.min() >= -0.05 and table.max() <= 0.05
    assert table.min() < -0.045 and table.max() > 0.045
    assert abs(table.mean()) < 0.005


def test_embedding_out_of_range_gives_nan():
    layer = Embedding(3, 2, embeddings_initializer="ones")
    params, state = layer.init(KEY, spec((2,), jnp.int32))
    y, _ = layer.apply(params, state, jnp.array([[0, 3]], jnp.int32))
    assert np.all(np.asarray(y[0, 0]) == 1.0) and np.all(np.isnan(np.asarray(y[0, 1])))


def test_embedding_float_spec_raises_type_error():
    with pytest.raises(TypeError) as info:
        Embedding(10, 3, name="emb").init(KEY, spec((4,), jnp.float32))
    message = str(info.value)
    assert "Embedding(name='emb')" in message
    assert "float32" in message and 'Input(shape=..., dtype="int32")' in message


def test_embedding_float_array_raises_type_error():
    layer = Embedding(10, 3)
    params, state = layer.init(KEY, spec((4,), jnp.int32))
    with pytest.raises(TypeError, match="integer indices"):
        layer.apply(params, state, jnp.zeros((2, 4), jnp.float32))


def test_embedding_bfloat16():
    layer = Embedding(10, 3, dtype="bfloat16")
    params, state = layer.init(KEY, spec((4,), jnp.int32))
    assert params["embeddings"].dtype == jnp.bfloat16
    x = jnp.array([[1, 2, 3, 9]], jnp.int32)
    for jit in (False, True):
        y, _ = run(layer, params, state, x, jit=jit)
        assert y.dtype == jnp.bfloat16
        np.testing.assert_array_equal(
            np.asarray(y, np.float32),
            np.asarray(params["embeddings"], np.float32)[[1, 2, 3, 9]][None],
        )
    assert layer.compute_output_spec(spec((4,), jnp.int32)) == spec(
        (4, 3), jnp.bfloat16
    )


def test_embedding_grads_accumulate_on_repeated_rows():
    layer = Embedding(4, 2)
    params, state = layer.init(KEY, spec((3,), jnp.int32))
    x = jnp.array([[1, 1, 3]], jnp.int32)
    grads = jax.grad(lambda p: layer.apply(p, state, x)[0].sum())(params)
    np.testing.assert_array_equal(
        np.asarray(grads["embeddings"]), [[0, 0], [2, 2], [0, 0], [1, 1]]
    )


@pytest.mark.parametrize("idx_shape", [(), (7,), (2, 3)])
def test_embedding_compute_output_spec(idx_shape):
    layer = Embedding(10, 6)
    out = layer.compute_output_spec(spec(idx_shape, jnp.int32))
    params, state = layer.init(KEY, spec(idx_shape, jnp.int32))
    y, _ = layer.apply(params, state, jnp.zeros((2, *idx_shape), jnp.int32))
    assert out.shape == y.shape[1:] == (*idx_shape, 6)
    assert out.dtype == y.dtype


def test_embedding_config_round_trip_and_penalty():
    layer = Embedding(
        10,
        3,
        embeddings_initializer="random_normal",
        embeddings_regularizer="l2",
        name="emb",
    )
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    clone = Embedding.from_config(config)
    assert clone.get_config() == config
    params, _ = layer.init(KEY, spec((2,), jnp.int32))
    np.testing.assert_allclose(
        float(clone.penalty(params)),
        float(regularizers.get("l2")(params["embeddings"])),
        rtol=1e-6,
    )
    assert Embedding(3, 2).get_config()["embeddings_initializer"] == "uniform"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"input_dim": 0, "output_dim": 2}, ValueError, "input_dim"),
        ({"input_dim": 3, "output_dim": 0}, ValueError, "output_dim"),
        ({"input_dim": "3", "output_dim": 2}, TypeError, "input_dim"),
        ({"input_dim": 3, "output_dim": 2.5}, TypeError, "output_dim"),
        (
            {"input_dim": 3, "output_dim": 2, "embeddings_initializer": "nope"},
            ValueError,
            "embeddings_initializer",
        ),
        (
            {"input_dim": 3, "output_dim": 2, "embeddings_regularizer": 7},
            TypeError,
            "embeddings_regularizer",
        ),
    ],
)
def test_embedding_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        Embedding(**kwargs)
    assert "Embedding" in str(info.value)


# ---------------------------------------------------------------------------
# Identity and Activation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
def test_identity(jit):
    layer = Identity()
    params, state = layer.init(KEY, spec((2, 3)))
    assert params == {} and state == {}
    x = jax.random.normal(KEY, (4, 2, 3))
    y, _ = run(layer, params, state, x, jit=jit)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))
    check_state_passthrough(layer, params, x)
    assert layer.compute_output_spec(spec((2, 3))) == spec((2, 3))


def test_identity_pytree_and_dtype():
    layer = Identity(dtype="bfloat16")
    x = {"a": jnp.ones((2, 3)), "b": jnp.arange(4).reshape(2, 2)}
    y, _ = layer.apply({}, {}, x)
    assert y["a"].dtype == jnp.bfloat16 and y["b"].dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(y["b"]), np.asarray(x["b"]))
    assert Identity.from_config(layer.get_config()).dtype == "bfloat16"


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(
    "name", ["relu", "tanh", "sigmoid", "softplus", "linear", None]
)
def test_activation_matches_numpy(jit, name):
    layer = Activation(name)
    params, state = layer.init(KEY, spec((3, 4)))
    x = 3 * jax.random.normal(jax.random.key(6), (2, 3, 4))
    y, _ = run(layer, params, state, x, jit=jit)
    ref = NP_ACTIVATIONS[name](np.asarray(x, np.float64))
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-6)
    check_state_passthrough(layer, params, x)


def test_activation_callable_and_bfloat16():
    layer = Activation(lambda z: 2 * z, dtype="bfloat16")
    y, _ = layer.apply({}, {}, jnp.array([[1.0, -1.5]]))
    assert y.dtype == jnp.bfloat16
    assert y.tolist() == [[2.0, -3.0]]
    out = Activation("relu", dtype="bfloat16").compute_output_spec(spec((5,)))
    assert out == spec((5,), jnp.bfloat16)


def test_activation_config_round_trip():
    layer = Activation("gelu", name="act")
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    assert config["activation"] == "gelu"
    clone = Activation.from_config(config)
    assert clone.get_config() == config
    x = jnp.linspace(-3, 3, 7)[None]
    np.testing.assert_array_equal(
        np.asarray(layer.apply({}, {}, x)[0]), np.asarray(clone.apply({}, {}, x)[0])
    )


@pytest.mark.parametrize("value, error", [("nope", ValueError), (1.0, TypeError)])
def test_activation_config_errors(value, error):
    with pytest.raises(error, match=r"Activation: .*`activation`"):
        Activation(value)


def test_activation_requires_single_input():
    with pytest.raises(TypeError, match="Activation"):
        Activation("relu").init(KEY, [spec((2,)), spec((2,))])
