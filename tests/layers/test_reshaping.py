"""Tests of funkeras.layers.reshaping: Flatten, Reshape, Permute."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from funkeras.layers.reshaping import Flatten, Permute, Reshape

KEY = jax.random.key(0)


def spec(shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype))


def run(layer, x, *, jit):
    params, state = layer.init(KEY, spec(x.shape[1:], x.dtype))
    fn = lambda x: layer.apply(params, state, x)[0]  # noqa: E731
    return (jax.jit(fn) if jit else fn)(x)


def check_output_spec(layer, x):
    """`compute_output_spec` (symbolic batch) agrees with a real call."""
    out = layer.compute_output_spec(spec(x.shape[1:], x.dtype))
    y = run(layer, x, jit=False)
    assert out.shape == y.shape[1:] and out.dtype == y.dtype


def check_state_passthrough(layer, x):
    params, _ = layer.init(KEY, spec(x.shape[1:], x.dtype))
    marker = {"marker": jnp.arange(2.0)}
    assert layer.apply(params, marker, x)[1] is marker
    _, out = jax.jit(lambda s: layer.apply(params, s, x))(marker)
    np.testing.assert_array_equal(np.asarray(out["marker"]), [0.0, 1.0])


def np_flatten(x):
    """Row-major flattening of each example, written as an explicit loop."""
    x = np.asarray(x)
    rows = []
    for example in x:
        rows.append([example[idx] for idx in np.ndindex(*example.shape)])
    return np.asarray(rows, x.dtype)


def np_permute(x, dims):
    """`out[b, i_1..i_n] = x[b, j]` where `j[dims[k] - 1] = i_k`, by loops."""
    x = np.asarray(x)
    out_shape = (x.shape[0], *(x.shape[d] for d in dims))
    out = np.empty(out_shape, x.dtype)
    for b in range(x.shape[0]):
        for idx in np.ndindex(*out_shape[1:]):
            src = [0] * len(dims)
            for k, d in enumerate(dims):
                src[d - 1] = idx[k]
            out[(b, *idx)] = x[(b, *src)]
    return out


# ---------------------------------------------------------------------------
# Flatten
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("in_shape", [(), (4,), (2, 3), (2, 3, 4)])
def test_flatten_matches_numpy(jit, in_shape):
    x = jax.random.normal(KEY, (3, *in_shape))
    y = run(Flatten(), x, jit=jit)
    expected_size = int(np.prod(in_shape)) if in_shape else 1
    assert y.shape == (3, expected_size)
    ref = np_flatten(x).reshape(3, expected_size)
    np.testing.assert_array_equal(np.asarray(y), ref)


@pytest.mark.parametrize("in_shape", [(), (5,), (2, 3, 4)])
def test_flatten_symbolic_batch(in_shape):
    layer = Flatten()
    check_output_spec(layer, jnp.zeros((2, *in_shape)))
    size = int(np.prod(in_shape)) if in_shape else 1
    assert layer.compute_output_spec(spec(in_shape)) == spec((size,))
    check_state_passthrough(layer, jnp.zeros((2, *in_shape)))


def test_flatten_dtypes():
    x = jnp.ones((2, 3, 2), jnp.bfloat16)
    assert run(Flatten(dtype="bfloat16"), x, jit=True).dtype == jnp.bfloat16
    ints = jnp.arange(12).reshape(2, 3, 2)
    y = run(Flatten(), ints, jit=False)
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(y), np_flatten(ints))


def test_flatten_config_round_trip():
    layer = Flatten(name="flat")
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    assert Flatten.from_config(config).get_config() == config


# ---------------------------------------------------------------------------
# Reshape
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(
    "in_shape, target, out_shape",
    [
        ((12,), (3, 4), (3, 4)),
        ((12,), (-1, 2), (6, 2)),
        ((2, 6), (3, -1), (3, 4)),
        ((2, 3, 2), (-1,), (12,)),
        ((4,), (1, 4, 1), (1, 4, 1)),
    ],
)
def test_reshape_matches_numpy(jit, in_shape, target, out_shape):
    x = jax.random.normal(KEY, (2, *in_shape))
    layer = Reshape(target)
    y = run(layer, x, jit=jit)
    assert y.shape == (2, *out_shape)
    # Row-major reshape: the flattened examples are identical.
    np.testing.assert_array_equal(np_flatten(y), np_flatten(x))
    check_output_spec(layer, x)


def test_reshape_state_dtype_and_config():
    layer = Reshape([2, -1], name="rs", dtype="bfloat16")
    assert layer.target_shape == (2, -1)
    x = jnp.ones((3, 4), jnp.float32)
    assert run(layer, x, jit=True).dtype == jnp.bfloat16
    check_state_passthrough(layer, x)
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    assert config["target_shape"] == [2, -1]
    clone = Reshape.from_config(config)
    assert clone.target_shape == (2, -1) and clone.get_config() == config


@pytest.mark.parametrize(
    "in_shape, target, match",
    [
        ((12,), (5,), r"\(12,\) \(12 elements\) to \(5,\) \(5 elements\)"),
        ((2, 5), (3, -1), r"10 is not a multiple of 3"),
        ((3,), (2, 2), r"4 elements"),
    ],
)
def test_reshape_size_mismatch_at_init(in_shape, target, match):
    layer = Reshape(target, name="rs")
    with pytest.raises(ValueError, match=match) as info:
        layer.init(KEY, spec(in_shape))
    assert "Reshape(name='rs')" in str(info.value)
    with pytest.raises(ValueError, match=match):
        layer.compute_output_spec(spec(in_shape))


@pytest.mark.parametrize(
    "target, error, match",
    [
        ((-1, -1), ValueError, "at most one -1"),
        ((0, 3), ValueError, "target_shape"),
        ((-2, 3), ValueError, "target_shape"),
        ((2.0, 3), TypeError, "target_shape"),
        (6, TypeError, "target_shape"),
        ("23", TypeError, "target_shape"),
    ],
)
def test_reshape_config_errors(target, error, match):
    with pytest.raises(error, match=match) as info:
        Reshape(target)
    assert "Reshape" in str(info.value)


# ---------------------------------------------------------------------------
# Permute
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("dims", [(1,), (2, 1), (1, 2), (3, 1, 2), (2, 3, 1)])
def test_permute_matches_numpy(jit, dims):
    in_shape = (2, 3, 4)[: len(dims)]
    x = jax.random.normal(KEY, (2, *in_shape))
    layer = Permute(dims)
    y = run(layer, x, jit=jit)
    np.testing.assert_array_equal(np.asarray(y), np_permute(x, dims))
    check_output_spec(layer, x)


def test_permute_state_dtype_and_config():
    layer = Permute([2, 1], name="perm", dtype="bfloat16")
    assert layer.dims == (2, 1)
    x = jnp.ones((3, 4, 5))
    y = run(layer, x, jit=True)
    assert y.shape == (3, 5, 4) and y.dtype == jnp.bfloat16
    check_state_passthrough(layer, x)
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    assert config["dims"] == [2, 1]
    assert Permute.from_config(config).get_config() == config


@pytest.mark.parametrize(
    "dims, error",
    [
        ((1, 1), ValueError),
        ((0, 1), ValueError),
        ((1, 3), ValueError),
        ((1.0, 2), TypeError),
        (2, TypeError),
    ],
)
def test_permute_config_errors(dims, error):
    with pytest.raises(error, match="dims") as info:
        Permute(dims)
    assert "Permute" in str(info.value)


def test_permute_rank_mismatch():
    layer = Permute((2, 1), name="perm")
    with pytest.raises(
        ValueError, match=r"Permute\(name='perm'\).*2 axes.*3 non-batch"
    ):
        layer.init(KEY, spec((2, 3, 4)))
    params, state = layer.init(KEY, spec((2, 3)))
    with pytest.raises(ValueError, match="non-batch axes"):
        layer.apply(params, state, jnp.zeros((2, 2, 3, 4)))


@pytest.mark.parametrize("layer", [Flatten(), Reshape((4,)), Permute((1,))])
def test_reshaping_layers_take_one_input(layer):
    with pytest.raises(TypeError, match="single input"):
        layer.init(KEY, [spec((4,)), spec((4,))])
