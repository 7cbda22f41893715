"""Tests of `funkeras.layers.convolutional` against a loop-based NumPy convolution."""

import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from funkeras.layers.convolutional import Conv1D, Conv2D, same_padding


def np_pads(padding, size, kernel, stride, dilation):
    """(before, after) padding of one axis, written from TensorFlow's rule."""
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return dilation * (kernel - 1), 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def np_conv(x, kernel, bias, strides, padding, dilation, groups):
    """Channels-last N-D grouped convolution by explicit loops over positions."""
    rank = x.ndim - 2
    window = kernel.shape[:rank]
    pads = [
        np_pads(padding, x.shape[1 + i], window[i], strides[i], dilation[i])
        for i in range(rank)
    ]
    xp = np.pad(x.astype(np.float64), [(0, 0), *pads, (0, 0)])
    out_sizes = [
        (xp.shape[1 + i] - dilation[i] * (window[i] - 1) - 1) // strides[i] + 1
        for i in range(rank)
    ]
    in_per_group = kernel.shape[-2]
    filters = kernel.shape[-1]
    out_per_group = filters // groups
    y = np.zeros((x.shape[0], *out_sizes, filters))
    for pos in itertools.product(*(range(n) for n in out_sizes)):
        for g in range(groups):
            channels = slice(g * in_per_group, (g + 1) * in_per_group)
            outputs = slice(g * out_per_group, (g + 1) * out_per_group)
            for tap in itertools.product(*(range(k) for k in window)):
                idx = tuple(
                    pos[i] * strides[i] + tap[i] * dilation[i] for i in range(rank)
                )
                # (batch, in_per_group) @ (in_per_group, out_per_group)
                y[(slice(None), *pos, outputs)] += (
                    xp[(slice(None), *idx, channels)]
                    @ kernel[(*tap, slice(None), outputs)]
                )
    if bias is not None:
        y += bias
    return y


def normal(shape, seed=0, dtype=np.float32):
    """Standard-normal test data from NumPy (no XLA compile per shape)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def random_params(layer, spec, seed=0):
    """Params with the shapes and dtypes `init` gives, filled with NumPy draws."""
    shapes, _ = jax.eval_shape(lambda k: layer.init(k, spec), jax.random.key(0))
    return {
        name: normal(s.shape, seed + i, s.dtype)
        for i, (name, s) in enumerate(sorted(shapes.items()))
    }


def run_both(layer, params, x):
    """The layer's output eagerly and under `jax.jit`."""
    eager, _ = layer.apply(params, {}, x)
    jitted, _ = jax.jit(lambda p, x: layer.apply(p, {}, x))(params, x)
    return eager, jitted


CONV1D_CASES = [
    # kernel, strides, padding, dilation, groups, steps, channels, filters
    (3, 1, "valid", 1, 1, 7, 2, 3),
    (3, 2, "valid", 1, 1, 8, 2, 3),
    (3, 2, "same", 1, 1, 7, 2, 3),
    (4, 1, "same", 1, 1, 6, 2, 2),  # even kernel: the extra padding goes at the end
    (2, 3, "same", 1, 1, 8, 3, 2),
    (3, 1, "same", 2, 1, 7, 2, 2),
    (3, 1, "causal", 1, 1, 6, 2, 3),
    (3, 1, "causal", 2, 1, 7, 2, 2),
    (2, 2, "causal", 1, 1, 7, 2, 2),
    (3, 1, "valid", 1, 2, 6, 4, 2),
    (3, 1, "same", 1, 4, 5, 4, 8),  # depthwise-style: one input channel per group
]


@pytest.mark.parametrize(
    "kernel,strides,padding,dilation,groups,steps,channels,filters", CONV1D_CASES
)
def test_conv1d_matches_loop_reference(
    kernel, strides, padding, dilation, groups, steps, channels, filters
):
    layer = Conv1D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        groups=groups,
    )
    spec = jax.ShapeDtypeStruct((steps, channels), jnp.float32)
    params = random_params(layer, spec)
    assert params["kernel"].shape == (kernel, channels // groups, filters)
    x = normal((2, steps, channels), seed=7)
    expected = np_conv(
        x, params["kernel"], params["bias"], (strides,), padding, (dilation,), groups
    )
    for y in run_both(layer, params, x):
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    out_spec = layer.compute_output_spec(spec)
    assert out_spec.shape == expected.shape[1:]
    assert out_spec.dtype == jnp.float32


CONV2D_CASES = [
    # kernel, strides, padding, dilation, groups, (h, w), channels, filters
    ((3, 3), 1, "valid", 1, 1, (5, 6), 2, 3),
    ((3, 2), (2, 1), "valid", 1, 1, (6, 5), 2, 2),
    ((3, 3), 2, "same", 1, 1, (5, 6), 2, 3),
    ((2, 2), 1, "same", 1, 1, (4, 5), 3, 2),  # even kernel: padding at bottom/right
    ((2, 3), (3, 2), "same", 1, 1, (7, 5), 2, 2),
    ((3, 3), 1, "same", (2, 1), 1, (6, 5), 2, 2),
    ((3, 2), 1, "valid", 2, 1, (6, 5), 2, 2),
    ((3, 3), 1, "same", 1, 2, (4, 4), 4, 6),
    ((1, 1), 1, "valid", 1, 3, (3, 3), 3, 3),
]


@pytest.mark.parametrize(
    "kernel,strides,padding,dilation,groups,size,channels,filters", CONV2D_CASES
)
def test_conv2d_matches_loop_reference(
    kernel, strides, padding, dilation, groups, size, channels, filters
):
    layer = Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        groups=groups,
    )
    spec = jax.ShapeDtypeStruct((*size, channels), jnp.float32)
    params = random_params(layer, spec)
    assert params["kernel"].shape == (*kernel, channels // groups, filters)
    x = normal((2, *size, channels), seed=7)
    expected = np_conv(
        x,
        params["kernel"],
        params["bias"],
        layer.strides,
        padding,
        layer.dilation_rate,
        groups,
    )
    for y in run_both(layer, params, x):
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    assert layer.compute_output_spec(spec).shape == expected.shape[1:]


def test_same_padding_puts_the_odd_element_at_the_end():
    assert same_padding(4, 2, 1) == (0, 1)
    assert same_padding(5, 4, 1) == (1, 2)
    assert same_padding(7, 3, 2) == (1, 1)
    assert same_padding(6, 3, 2) == (0, 1)
    assert same_padding(5, 3, 1, 2) == (2, 2)
    assert same_padding(3, 1, 3) == (0, 0)
    # A hand-computed case: kernel [1, 10] over [1, 2, 3], "same", one zero at the end.
    layer = Conv1D(1, 2, padding="same", use_bias=False)
    params = {"kernel": jnp.array([1.0, 10.0]).reshape(2, 1, 1)}
    y, _ = layer.apply(params, {}, jnp.array([1.0, 2.0, 3.0]).reshape(1, 3, 1))
    np.testing.assert_allclose(y.ravel(), [21.0, 32.0, 3.0])


def test_causal_output_ignores_the_future():
    layer = Conv1D(2, 3, padding="causal", dilation_rate=2)
    params = random_params(layer, jax.ShapeDtypeStruct((9, 2), jnp.float32))
    x = normal((1, 9, 2))
    changed = x.copy()
    changed[:, 5:] = 100.0
    y, _ = layer.apply(params, {}, x)
    y_changed, _ = layer.apply(params, {}, changed)
    np.testing.assert_array_equal(y[:, :5], y_changed[:, :5])
    assert not np.allclose(y[:, 5:], y_changed[:, 5:])


def test_activation_bias_and_params():
    layer = Conv2D(3, 2, activation="relu", bias_initializer="ones")
    spec = jax.ShapeDtypeStruct((4, 4, 2), jnp.float32)
    params, state = layer.init(jax.random.key(0), spec)
    assert state == {}
    assert sorted(params) == ["bias", "kernel"]
    np.testing.assert_array_equal(params["bias"], np.ones(3))
    x = normal((2, 4, 4, 2))
    linear = np_conv(
        x, np.asarray(params["kernel"]), np.ones(3), (1, 1), "valid", (1, 1), 1
    )
    for y in run_both(layer, params, x):
        np.testing.assert_allclose(y, np.maximum(linear, 0.0), rtol=1e-5, atol=1e-5)
    assert (linear < 0).any()

    no_bias = Conv2D(3, 2, use_bias=False)
    shapes, _ = jax.eval_shape(lambda k: no_bias.init(k, spec), jax.random.key(0))
    assert sorted(shapes) == ["kernel"]


def test_default_bias_is_zero_and_kernel_is_glorot_uniform_in_keras_layout():
    layer = Conv2D(16, (3, 2), groups=2)
    spec = jax.ShapeDtypeStruct((5, 5, 8), jnp.float32)
    params, _ = layer.init(jax.random.key(0), spec)
    np.testing.assert_array_equal(params["bias"], np.zeros(16))
    # Keras fans for a conv kernel: receptive field times in/out channels.
    fan_in, fan_out = 3 * 2 * (8 // 2), 3 * 2 * 16
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    kernel = np.asarray(params["kernel"])
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.9 * limit
    other, _ = layer.init(jax.random.key(1), spec)
    assert not np.allclose(kernel, other["kernel"])


def test_output_spec_has_a_symbolic_batch_and_follows_jit_shapes():
    layer = Conv2D(5, 3, strides=2, padding="same")
    spec = jax.ShapeDtypeStruct((9, 7, 3), jnp.float32)
    out = layer.compute_output_spec(spec)
    assert out.shape == (5, 4, 5)
    params = random_params(layer, spec)
    apply = jax.jit(lambda p, x: layer.apply(p, {}, x))
    for batch in (1, 3):
        y, _ = apply(params, np.ones((batch, 9, 7, 3), np.float32))
        assert y.shape == (batch, *out.shape)


@pytest.mark.parametrize(
    "layer",
    [
        Conv1D(4, 3, strides=2, padding="causal", activation="tanh", name="c1"),
        Conv2D(
            6,
            (3, 1),
            dilation_rate=(2, 1),
            padding="same",
            groups=3,
            use_bias=False,
            kernel_initializer="he_normal",
            kernel_regularizer="l2",
        ),
        Conv2D(2, 2, padding="SAME", data_format="channels_last", dtype="bfloat16"),
    ],
)
def test_get_config_round_trip(layer):
    config = layer.get_config()
    restored = type(layer).from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config
    assert restored is not layer
    spec_shape = (6, 3) if isinstance(layer, Conv1D) else (6, 5, 3)
    spec = jax.ShapeDtypeStruct(spec_shape, jnp.float32)
    params = random_params(layer, spec)
    x = normal((2, *spec_shape))
    np.testing.assert_array_equal(
        layer.apply(params, {}, x)[0], restored.apply(params, {}, x)[0]
    )


def test_config_is_normalized_like_keras():
    layer = Conv2D(4, 3, padding="Same")
    assert layer.kernel_size == (3, 3)
    assert layer.strides == (1, 1)
    assert layer.dilation_rate == (1, 1)
    assert layer.padding == "same"
    assert layer.data_format == "channels_last"
    config = Conv1D(2, 5).get_config()
    assert config["kernel_size"] == [5]
    assert config["kernel_initializer"] == "glorot_uniform"
    assert config["bias_initializer"] == "zeros"
    assert config["groups"] == 1


@pytest.mark.parametrize(
    "make,error,words",
    [
        (
            lambda: Conv2D(4, 3, padding="full"),
            ValueError,
            ["padding", "'valid'", "'same'", "full"],
        ),
        (lambda: Conv1D(4, 3, padding="full"), ValueError, ["'causal'", "full"]),
        (
            lambda: Conv2D(4, 3, padding="causal"),
            ValueError,
            ["Conv2D", "padding", "causal"],
        ),
        (lambda: Conv2D(5, 3, groups=2), ValueError, ["filters=5", "groups=2"]),
        (
            lambda: Conv2D(4, 3, strides=2, dilation_rate=2),
            ValueError,
            ["strides", "dilation_rate"],
        ),
        (lambda: Conv1D(4, 3, strides=(1, 2)), ValueError, ["strides", "1 ints"]),
        (lambda: Conv2D(4, (3, 3, 3)), ValueError, ["kernel_size"]),
        (lambda: Conv2D(4, 0), ValueError, ["kernel_size", ">= 1"]),
        (lambda: Conv2D(0, 3), ValueError, ["filters", ">= 1"]),
        (lambda: Conv2D("4", 3), TypeError, ["filters"]),
        (
            lambda: Conv2D(4, 3, data_format="channels_first"),
            ValueError,
            ["channels_first", "channels_last"],
        ),
        (
            lambda: Conv2D(4, 3, data_format="nhwc"),
            ValueError,
            ["data_format", "channels_last"],
        ),
        (lambda: Conv2D(4, 3, use_bias=1), TypeError, ["use_bias"]),
        (
            lambda: Conv2D(4, 3, activation="relux"),
            ValueError,
            ["Conv2D", "activation", "relux"],
        ),
        (
            lambda: Conv2D(4, 3, kernel_initializer="glorot"),
            ValueError,
            ["kernel_initializer"],
        ),
    ],
)
def test_config_errors(make, error, words):
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value)


def test_init_rejects_channels_not_divisible_by_groups():
    layer = Conv2D(6, 3, groups=3)
    with pytest.raises(ValueError) as info:
        layer.init(jax.random.key(0), jax.ShapeDtypeStruct((5, 5, 4), jnp.float32))
    message = str(info.value)
    assert "Conv2D()" in message and "groups=3" in message
    assert "multiple of 3" in message and "got 4" in message


@pytest.mark.parametrize(
    "layer,shape,words",
    [
        (
            Conv2D(4, 3, name="c"),
            (5, 5),
            ["Conv2D(name='c')", "rank 4", "(None, 5, 5)"],
        ),
        (Conv1D(4, 3), (5, 5, 2), ["Conv1D()", "rank 3", "(batch, steps, channels)"]),
        (Conv2D(4, 3), (2, 5, 1), ["padding='valid'", "(3, 3)", "(None, 2, 5, 1)"]),
        (Conv1D(4, 3, dilation_rate=3), (6, 1), ["(7,)", "padding='same'"]),
    ],
)
def test_init_rejects_bad_input_shapes(layer, shape, words):
    with pytest.raises(ValueError) as info:
        layer.init(jax.random.key(0), jax.ShapeDtypeStruct(shape, jnp.float32))
    for word in words:
        assert word in str(info.value)


def test_apply_rejects_a_channel_count_other_than_init():
    layer = Conv2D(4, 3)
    spec = jax.ShapeDtypeStruct((5, 5, 2), jnp.float32)
    params = random_params(layer, spec)
    with pytest.raises(ValueError, match="expected the last axis of `x` to be 2"):
        layer.apply(params, {}, np.ones((1, 5, 5, 3), np.float32))
    with pytest.raises(TypeError, match="single input"):
        layer.init(jax.random.key(0), [spec, spec])


@pytest.mark.parametrize(
    "layer,shape",
    [
        (Conv1D(2, 3, strides=2, padding="same", activation="tanh"), (5, 2)),
        (Conv2D(2, (2, 3), padding="same", dilation_rate=(1, 2), groups=2), (3, 4, 2)),
    ],
)
def test_gradients_match_finite_differences(layer, shape):
    params = random_params(layer, jax.ShapeDtypeStruct(shape, jnp.float32))
    x = normal((2, *shape), seed=3)

    def f(kernel, bias, x):
        y, _ = layer.apply({"kernel": kernel, "bias": bias}, {}, x)
        return y

    check_grads(
        f,
        (params["kernel"], params["bias"], x),
        order=1,
        modes=("fwd", "rev"),
        atol=1e-2,
        rtol=1e-2,
        eps=1e-2,
    )


def test_penalty_uses_the_kernel_regularizer():
    layer = Conv1D(2, 2, kernel_regularizer="l2")
    params = random_params(layer, jax.ShapeDtypeStruct((4, 3), jnp.float32))
    # Keras' "l2" regularizer: 0.01 * sum(w ** 2).
    expected = 0.01 * np.sum(np.asarray(params["kernel"]) ** 2)
    np.testing.assert_allclose(layer.penalty(params), expected, rtol=1e-6)
    assert float(Conv1D(2, 2).penalty(params)) == 0.0


@pytest.mark.parametrize(
    "layer,shape",
    [
        (Conv1D(4, 3, padding="causal", dtype="bfloat16"), (6, 3)),
        (Conv2D(4, 3, padding="same", groups=2, dtype="bfloat16"), (5, 4, 2)),
    ],
)
def test_bfloat16_runs_and_stays_close(layer, shape):
    spec = jax.ShapeDtypeStruct(shape, jnp.bfloat16)
    params, _ = layer.init(jax.random.key(0), spec)
    assert params["kernel"].dtype == jnp.bfloat16
    assert params["bias"].dtype == jnp.bfloat16
    x = normal((2, *shape), dtype=jnp.bfloat16)
    expected = np_conv(
        np.asarray(x, np.float32),
        np.asarray(params["kernel"], np.float32),
        None,
        layer.strides,
        layer.padding,
        layer.dilation_rate,
        layer.groups,
    )
    for y in run_both(layer, params, x):
        assert y.dtype == jnp.bfloat16
        np.testing.assert_allclose(
            np.asarray(y, np.float32), expected, rtol=5e-2, atol=5e-2
        )
    assert layer.compute_output_spec(spec).dtype == jnp.bfloat16


def test_inputs_are_cast_to_the_layer_dtype():
    layer = Conv1D(2, 2)
    params = random_params(layer, jax.ShapeDtypeStruct((3, 1), jnp.float32))
    x_int = jnp.array([[[1], [2], [3]]], jnp.int32)
    y, _ = layer.apply(params, {}, x_int)
    assert y.dtype == jnp.float32
    y_float, _ = layer.apply(params, {}, x_int.astype(jnp.float32))
    np.testing.assert_array_equal(y, y_float)
    y_bf16, _ = layer.apply(params, {}, x_int.astype(jnp.bfloat16))
    assert y_bf16.dtype == jnp.float32
