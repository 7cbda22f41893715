"""Tests of `funkeras.layers.pooling` against loop-based NumPy pooling."""

import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from funkeras.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)

POOLS = {
    ("max", 1): MaxPooling1D,
    ("max", 2): MaxPooling2D,
    ("average", 1): AveragePooling1D,
    ("average", 2): AveragePooling2D,
}


def np_pool(x, reduction, pool, strides, padding):
    """Channels-last N-D pooling by explicit loops over windows.

    "same" pads as TensorFlow does (the odd element at the end); a window only
    ever sees real elements, so the max ignores the border and the mean divides
    by the number of real elements in the window.
    """
    rank = x.ndim - 2
    sizes = x.shape[1:-1]
    if padding == "valid":
        before = [0] * rank
        out = [(sizes[i] - pool[i]) // strides[i] + 1 for i in range(rank)]
    else:
        out = [math.ceil(sizes[i] / strides[i]) for i in range(rank)]
        totals = [
            max((out[i] - 1) * strides[i] + pool[i] - sizes[i], 0) for i in range(rank)
        ]
        before = [t // 2 for t in totals]
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    for pos in itertools.product(*(range(n) for n in out)):
        values = []  # the real elements of the window, each (batch, channels)
        for tap in itertools.product(*(range(k) for k in pool)):
            idx = [pos[i] * strides[i] - before[i] + tap[i] for i in range(rank)]
            if all(0 <= idx[i] < sizes[i] for i in range(rank)):
                values.append(x[(slice(None), *idx, slice(None))].astype(np.float64))
        reduce = np.max if reduction == "max" else np.mean
        y[(slice(None), *pos, slice(None))] = reduce(np.stack(values), axis=0)
    return y


def normal(shape, seed=0, dtype=np.float32):
    """Standard-normal test data from NumPy (no XLA compile per shape)."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def run_both(layer, x):
    """The layer's output eagerly and under `jax.jit`."""
    eager, _ = layer.apply({}, {}, x)
    jitted, _ = jax.jit(lambda x: layer.apply({}, {}, x))(x)
    return eager, jitted


POOL_CASES = [
    # rank, pool_size, strides, padding, spatial shape
    (1, 2, None, "valid", (7,)),
    (1, 3, 1, "valid", (6,)),
    (1, 3, 2, "same", (7,)),
    (1, 2, 1, "same", (5,)),  # odd total padding: the extra element at the end
    (1, 4, 3, "same", (8,)),
    (1, 3, 2, "same", (2,)),  # window larger than the input
    (2, (2, 2), None, "valid", (5, 4)),
    (2, (3, 2), (1, 2), "valid", (5, 5)),
    (2, (2, 2), None, "same", (3, 5)),
    (2, (3, 3), (2, 1), "same", (5, 4)),
    (2, (2, 3), 1, "same", (4, 4)),
]


@pytest.mark.parametrize("reduction", ["max", "average"])
@pytest.mark.parametrize("rank,pool,strides,padding,spatial", POOL_CASES)
def test_pooling_matches_loop_reference(
    reduction, rank, pool, strides, padding, spatial
):
    layer = POOLS[reduction, rank](pool_size=pool, strides=strides, padding=padding)
    spec = jax.ShapeDtypeStruct((*spatial, 3), jnp.float32)
    params, state = layer.init(jax.random.key(0), spec)
    assert (params, state) == ({}, {})
    x = normal((2, *spatial, 3))
    expected = np_pool(x, reduction, layer.pool_size, layer.strides, padding)
    for y in run_both(layer, x):
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    out_spec = layer.compute_output_spec(spec)
    assert out_spec.shape == expected.shape[1:]
    assert out_spec.dtype == jnp.float32


def test_same_padding_split_and_border_count_by_hand():
    x = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
    # pool 2, stride 1: one padded step, at the end (TensorFlow/Keras).
    y, _ = MaxPooling1D(2, 1, "same").apply({}, {}, x)
    np.testing.assert_array_equal(y.ravel(), [2.0, 3.0, 4.0, 4.0])
    y, _ = AveragePooling1D(2, 1, "same").apply({}, {}, x)
    np.testing.assert_array_equal(y.ravel(), [1.5, 2.5, 3.5, 4.0])
    # pool 3, stride 1: one padded step on each side, neither counted.
    y, _ = AveragePooling1D(3, 1, "same").apply({}, {}, x)
    np.testing.assert_allclose(y.ravel(), [1.5, 2.0, 3.0, 3.5])
    # 3x3 image, 2x2 windows with stride 2: bottom-right window holds one element.
    image = jnp.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    y, _ = AveragePooling2D(padding="same").apply({}, {}, image)
    np.testing.assert_array_equal(y[0, :, :, 0], [[3.0, 4.5], [7.5, 9.0]])
    # Negative values: the padding never wins the max.
    y, _ = MaxPooling2D(padding="same").apply({}, {}, -image)
    np.testing.assert_array_equal(y[0, :, :, 0], [[-1.0, -3.0], [-7.0, -9.0]])


@pytest.mark.parametrize(
    "layer_class,axes",
    [
        (GlobalAveragePooling1D, (1,)),
        (GlobalAveragePooling2D, (1, 2)),
        (GlobalMaxPooling1D, (1,)),
        (GlobalMaxPooling2D, (1, 2)),
    ],
)
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling(layer_class, axes, keepdims):
    layer = layer_class(keepdims=keepdims)
    spatial = (5,) if len(axes) == 1 else (3, 4)
    spec = jax.ShapeDtypeStruct((*spatial, 2), jnp.float32)
    assert layer.init(jax.random.key(0), spec) == ({}, {})
    x = normal((3, *spatial, 2))
    expected = np.zeros((3, 2))
    for b, c in itertools.product(range(3), range(2)):
        values = x[b, ..., c].ravel().tolist()
        expected[b, c] = (
            max(values) if "Max" in layer_class.__name__ else sum(values) / len(values)
        )
    if keepdims:
        expected = expected.reshape(3, *(1,) * len(axes), 2)
    for y in run_both(layer, x):
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    assert layer.compute_output_spec(spec).shape == expected.shape[1:]


def test_defaults_follow_keras():
    assert MaxPooling1D().pool_size == (2,)
    assert MaxPooling1D().strides == (2,)
    assert AveragePooling1D().pool_size == (2,)
    assert MaxPooling2D().pool_size == (2, 2)
    assert AveragePooling2D(pool_size=3).strides == (3, 3)
    assert MaxPooling2D(strides=1).strides == (1, 1)
    assert MaxPooling2D().padding == "valid"
    assert MaxPooling2D().data_format == "channels_last"
    assert GlobalMaxPooling2D().keepdims is False


@pytest.mark.parametrize(
    "layer",
    [
        MaxPooling1D(3, padding="same", name="pool"),
        MaxPooling2D((2, 3), strides=(1, 2)),
        AveragePooling1D(strides=1),
        AveragePooling2D(padding="SAME", dtype="bfloat16"),
        GlobalAveragePooling1D(keepdims=True),
        GlobalMaxPooling2D(data_format="channels_last"),
    ],
)
def test_get_config_round_trip(layer):
    config = layer.get_config()
    restored = type(layer).from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config
    assert restored is not layer


def test_config_stores_strides_as_pool_size_when_none():
    config = MaxPooling2D(pool_size=3).get_config()
    assert config["pool_size"] == [3, 3]
    assert config["strides"] == [3, 3]
    assert config["padding"] == "valid"


@pytest.mark.parametrize(
    "make,error,words",
    [
        (
            lambda: MaxPooling2D(padding="full"),
            ValueError,
            ["padding", "'valid'", "'same'", "full"],
        ),
        (
            lambda: AveragePooling1D(padding="causal"),
            ValueError,
            ["AveragePooling1D", "causal"],
        ),
        (lambda: MaxPooling2D((2, 2, 2)), ValueError, ["pool_size"]),
        (lambda: MaxPooling1D(0), ValueError, ["pool_size", ">= 1"]),
        (lambda: AveragePooling2D(strides=(1, 0)), ValueError, ["strides", ">= 1"]),
        (lambda: MaxPooling1D(2.0), ValueError, ["pool_size"]),
        (
            lambda: MaxPooling2D(data_format="channels_first"),
            ValueError,
            ["channels_first", "channels_last"],
        ),
        (
            lambda: GlobalAveragePooling2D(data_format="channels_first"),
            ValueError,
            ["channels_first"],
        ),
        (lambda: GlobalMaxPooling1D(keepdims=1), TypeError, ["keepdims"]),
    ],
)
def test_config_errors(make, error, words):
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "layer,shape,words",
    [
        (
            MaxPooling2D(name="p"),
            (4, 4),
            ["MaxPooling2D(name='p')", "rank 4", "(None, 4, 4)"],
        ),
        (AveragePooling1D(), (4, 4, 1), ["rank 3", "(batch, steps, channels)"]),
        (
            MaxPooling2D(3),
            (2, 5, 1),
            ["padding='valid'", "pool_size=(3, 3)", "(None, 2, 5, 1)"],
        ),
        (GlobalMaxPooling2D(), (4, 1), ["GlobalMaxPooling2D()", "rank 4"]),
        (GlobalAveragePooling1D(), (4,), ["rank 3"]),
    ],
)
def test_init_rejects_bad_input_shapes(layer, shape, words):
    with pytest.raises(ValueError) as info:
        layer.init(jax.random.key(0), jax.ShapeDtypeStruct(shape, jnp.float32))
    for word in words:
        assert word in str(info.value)
    with pytest.raises(ValueError):
        layer.apply({}, {}, jnp.ones((1, *shape)))


def test_average_pooling_gradients_match_finite_differences():
    layer = AveragePooling2D((2, 3), strides=(1, 2), padding="same")
    x = normal((2, 3, 5, 2))
    check_grads(
        lambda x: layer.apply({}, {}, x)[0],
        (x,),
        order=1,
        modes=("fwd", "rev"),
        atol=1e-2,
        rtol=1e-2,
        eps=1e-2,
    )


def test_max_pooling_gradient_goes_to_the_window_maximum():
    layer = MaxPooling2D(padding="same")
    # Distinct values, so every window has one maximum.
    x = np.random.default_rng(0).permutation(18).astype(np.float32).reshape(1, 3, 3, 2)
    grad = jax.grad(lambda x: jnp.sum(layer.apply({}, {}, x)[0]))(jnp.asarray(x))
    expected = np.zeros_like(x)
    for i, j, c in itertools.product(range(2), range(2), range(2)):
        window = x[0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, c]
        a, b = np.unravel_index(np.argmax(window), window.shape)
        expected[0, 2 * i + a, 2 * j + b, c] = 1.0
    np.testing.assert_array_equal(grad, expected)


@pytest.mark.parametrize(
    "layer,reduction",
    [
        (MaxPooling2D(padding="same", dtype="bfloat16"), "max"),
        (AveragePooling1D(3, 2, padding="same", dtype="bfloat16"), "average"),
        (AveragePooling2D(dtype="bfloat16"), "average"),
    ],
)
def test_bfloat16_runs_and_stays_close(layer, reduction):
    shape = (5, 3) if isinstance(layer, AveragePooling1D) else (5, 4, 3)
    x = normal((2, *shape), dtype=jnp.bfloat16)
    expected = np_pool(
        np.asarray(x, np.float32),
        reduction,
        layer.pool_size,
        layer.strides,
        layer.padding,
    )
    for y in run_both(layer, x):
        assert y.dtype == jnp.bfloat16
        np.testing.assert_allclose(
            np.asarray(y, np.float32), expected, rtol=1e-2, atol=1e-2
        )
    spec = jax.ShapeDtypeStruct(shape, jnp.bfloat16)
    assert layer.compute_output_spec(spec).dtype == jnp.bfloat16


@pytest.mark.parametrize(
    "layer",
    [GlobalAveragePooling2D(dtype="bfloat16"), GlobalMaxPooling1D(dtype="bfloat16")],
)
def test_global_pooling_bfloat16(layer):
    shape = (4, 4, 3) if isinstance(layer, GlobalAveragePooling2D) else (6, 3)
    x = normal((2, *shape), dtype=jnp.bfloat16)
    axes = tuple(range(1, len(shape)))
    x32 = np.asarray(x, np.float32)
    expected = x32.mean(axes) if "Average" in type(layer).__name__ else x32.max(axes)
    for y in run_both(layer, x):
        assert y.dtype == jnp.bfloat16
        np.testing.assert_allclose(
            np.asarray(y, np.float32), expected, rtol=1e-2, atol=1e-2
        )


def test_input_dtypes_follow_keras_casting():
    x_int = np.array([1, 5, 2, 7], np.int32).reshape(1, 4, 1)
    y, _ = MaxPooling1D().apply({}, {}, x_int)
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(y.ravel(), [5, 7])
    y, _ = AveragePooling1D().apply({}, {}, x_int)
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(y.ravel(), [3.0, 4.5])
    y, _ = GlobalAveragePooling1D().apply({}, {}, x_int)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y.ravel(), [3.75])
    y, _ = MaxPooling1D().apply({}, {}, x_int.astype(jnp.bfloat16))
    assert y.dtype == jnp.float32
