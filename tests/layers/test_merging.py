"""Tests of funkeras.layers.merging: the elementwise merges and Concatenate."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from funkeras.layers.merging import (
    Add,
    Average,
    Concatenate,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
)

KEY = jax.random.key(0)


def spec(shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(dtype))


def specs_of(xs):
    return [spec(x.shape[1:], x.dtype) for x in xs]


def run(layer, xs, *, jit):
    params, state = layer.init(KEY, specs_of(xs))
    fn = lambda xs: layer.apply(params, state, xs)[0]  # noqa: E731
    return (jax.jit(fn) if jit else fn)(xs)


def inputs(n, shape=(2, 3, 4), dtype=jnp.float32):
    keys = jax.random.split(jax.random.key(1), n)
    return [jax.random.normal(k, shape).astype(dtype) for k in keys]


def np_elementwise(op, xs):
    """Elementwise reference, one element at a time."""
    xs = [np.asarray(x, np.float64) for x in xs]
    out = np.empty(xs[0].shape)
    for idx in np.ndindex(*out.shape):
        values = [float(x[idx]) for x in xs]
        if op == "add":
            out[idx] = sum(values)
        elif op == "subtract":
            out[idx] = values[0] - values[1]
        elif op == "multiply":
            out[idx] = float(np.prod(values))
        elif op == "average":
            out[idx] = sum(values) / len(values)
        elif op == "maximum":
            out[idx] = max(values)
        elif op == "minimum":
            out[idx] = min(values)
    return out


ELEMENTWISE = [
    (Add, "add"),
    (Subtract, "subtract"),
    (Multiply, "multiply"),
    (Average, "average"),
    (Maximum, "maximum"),
    (Minimum, "minimum"),
]
MULTI = [(cls, op) for cls, op in ELEMENTWISE if cls is not Subtract]


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("cls, op", ELEMENTWISE)
def test_elementwise_two_inputs(jit, cls, op):
    xs = inputs(2)
    y = run(cls(), xs, jit=jit)
    assert y.shape == xs[0].shape and y.dtype == jnp.float32
    np.testing.assert_allclose(
        np.asarray(y), np_elementwise(op, xs), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("cls, op", MULTI)
def test_elementwise_three_inputs_as_tuple(cls, op):
    xs = tuple(inputs(3, shape=(4, 5)))
    eager = run(cls(), xs, jit=False)
    jitted = run(cls(), xs, jit=True)
    np.testing.assert_allclose(
        np.asarray(eager), np_elementwise(op, xs), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(eager), np.asarray(jitted), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("cls, op", ELEMENTWISE)
def test_elementwise_output_spec_state_and_bfloat16(cls, op):
    layer = cls(dtype="bfloat16")
    xs = inputs(2, shape=(3, 2, 5), dtype=jnp.bfloat16)
    out = layer.compute_output_spec(specs_of(xs))
    y = run(layer, xs, jit=True)
    assert out.shape == y.shape[1:] == (2, 5)
    assert out.dtype == y.dtype == jnp.bfloat16
    ref = np_elementwise(op, [np.asarray(x, np.float32) for x in xs])
    np.testing.assert_allclose(np.asarray(y, np.float32), ref, rtol=2e-2, atol=2e-2)
    params, _ = layer.init(KEY, specs_of(xs))
    marker = {"marker": jnp.arange(2.0)}
    assert layer.apply(params, marker, xs)[1] is marker


def test_merge_casts_floating_inputs_to_layer_dtype():
    a = jnp.ones((2, 3), jnp.bfloat16)
    b = jnp.ones((2, 3), jnp.float32)
    assert run(Add(), [a, b], jit=False).dtype == jnp.float32
    assert run(Add(dtype="bfloat16"), [a, b], jit=False).dtype == jnp.bfloat16
    ints = [jnp.arange(6).reshape(2, 3)] * 2
    y = run(Maximum(), ints, jit=False)
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(y), np.asarray(ints[0]))


@pytest.mark.parametrize("cls, _", ELEMENTWISE)
def test_elementwise_shape_mismatch_at_init(cls, _):
    layer = cls(name="merge")
    with pytest.raises(ValueError) as info:
        layer.init(KEY, [spec((3,)), spec((4,))])
    message = str(info.value)
    assert f"{cls.__name__}(name='merge')" in message
    assert "[(None, 3), (None, 4)]" in message
    with pytest.raises(ValueError, match="same shape"):
        layer.compute_output_spec([spec((2, 3)), spec((3, 2))])


def test_elementwise_shape_mismatch_in_apply():
    layer = Add()
    params, state = layer.init(KEY, [spec((3,)), spec((3,))])
    with pytest.raises(ValueError, match=r"\[\(None, 3\), \(None, 4\)\]"):
        layer.apply(params, state, [jnp.zeros((2, 3)), jnp.zeros((2, 4))])


@pytest.mark.parametrize("cls", [Add, Multiply, Average, Maximum, Minimum, Concatenate])
def test_merge_needs_two_inputs(cls):
    with pytest.raises(ValueError, match=r"at least 2 inputs, got 1"):
        cls().init(KEY, [spec((3,))])
    with pytest.raises(TypeError, match=r"expected a list"):
        cls().init(KEY, spec((3,)))
    with pytest.raises(TypeError, match=r"expected a list"):
        cls().init(KEY, {"a": spec((3,)), "b": spec((3,))})


def test_subtract_needs_exactly_two_inputs():
    with pytest.raises(
        ValueError, match=r"Subtract\(\): expects exactly 2 inputs, got 3"
    ):
        Subtract().init(KEY, [spec((3,))] * 3)
    params, state = Subtract().init(KEY, [spec((3,))] * 2)
    with pytest.raises(ValueError, match="exactly 2"):
        Subtract().apply(params, state, [jnp.zeros((1, 3))] * 3)


@pytest.mark.parametrize("cls", [Add, Subtract, Multiply, Average, Maximum, Minimum])
def test_elementwise_config_round_trip(cls):
    layer = cls(name="m", dtype="bfloat16")
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    assert set(config) == {"name", "trainable", "dtype"}
    clone = cls.from_config(config)
    assert type(clone) is cls and clone.get_config() == config


def test_elementwise_grads():
    xs = inputs(2, shape=(3, 4))
    grads = jax.grad(lambda xs: run(Average(), xs, jit=False).sum())(xs)
    for g in grads:
        np.testing.assert_allclose(np.asarray(g), 0.5)
    grads = jax.grad(lambda xs: run(Maximum(), xs, jit=False).sum())(xs)
    bigger = np.asarray(xs[0]) > np.asarray(xs[1])
    np.testing.assert_array_equal(np.asarray(grads[0]), bigger.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(grads[1]), (~bigger).astype(np.float32))


# ---------------------------------------------------------------------------
# Concatenate
# ---------------------------------------------------------------------------


def np_concatenate(xs, axis):
    """Concatenation by copying blocks along `axis` (batch included)."""
    xs = [np.asarray(x) for x in xs]
    axis = axis % xs[0].ndim
    total = sum(x.shape[axis] for x in xs)
    shape = list(xs[0].shape)
    shape[axis] = total
    out = np.empty(shape, xs[0].dtype)
    offset = 0
    for x in xs:
        for idx in np.ndindex(*x.shape):
            dst = list(idx)
            dst[axis] += offset
            out[tuple(dst)] = x[idx]
        offset += x.shape[axis]
    return out


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize(
    "axis, shapes",
    [
        (-1, [(2, 3, 4), (2, 3, 1), (2, 3, 2)]),
        (2, [(2, 3, 4), (2, 3, 5)]),
        (1, [(2, 1, 4), (2, 3, 4)]),
        (-2, [(2, 2, 4), (2, 3, 4)]),
        (1, [(2, 3), (2, 5)]),
    ],
)
def test_concatenate_matches_numpy(jit, axis, shapes):
    keys = jax.random.split(KEY, len(shapes))
    xs = [jax.random.normal(k, s) for k, s in zip(keys, shapes, strict=True)]
    layer = Concatenate(axis=axis)
    y = run(layer, xs, jit=jit)
    np.testing.assert_array_equal(np.asarray(y), np_concatenate(xs, axis))
    out = layer.compute_output_spec(specs_of(xs))
    assert out.shape == y.shape[1:] and out.dtype == y.dtype


def test_concatenate_bfloat16_and_mixed_inputs():
    layer = Concatenate(dtype="bfloat16")
    xs = [jnp.ones((2, 3), jnp.float32), jnp.ones((2, 1), jnp.bfloat16)]
    y = run(layer, xs, jit=True)
    assert y.shape == (2, 4) and y.dtype == jnp.bfloat16
    assert layer.compute_output_spec(specs_of(xs)) == spec((4,), jnp.bfloat16)


@pytest.mark.parametrize(
    "axis, shapes, match",
    [
        (-1, [(3, 4), (2, 4)], r"except on the concatenation axis -1"),
        (1, [(3, 4), (3, 5)], r"except on the concatenation axis 1"),
        (-1, [(3, 4), (4,)], r"same rank"),
        (0, [(3,), (3,)], r"`axis`=0 is not a non-batch axis"),
        (3, [(3, 4), (3, 4)], r"`axis`=3 is not a non-batch axis.*1..2 or -2..-1"),
        (-3, [(3, 4), (3, 4)], r"`axis`=-3 is not a non-batch axis"),
    ],
)
def test_concatenate_shape_errors(axis, shapes, match):
    layer = Concatenate(axis=axis, name="cat")
    with pytest.raises(ValueError, match=match) as info:
        layer.init(KEY, [spec(s) for s in shapes])
    message = str(info.value)
    assert "Concatenate(name='cat')" in message
    assert ", ".join(f"(None, {', '.join(map(str, s))})" for s in shapes) in message


def test_concatenate_config():
    layer = Concatenate(axis=1, name="cat")
    config = layer.get_config()
    assert json.loads(json.dumps(config)) == config
    assert config["axis"] == 1
    clone = Concatenate.from_config(config)
    assert clone.axis == 1 and clone.get_config() == config
    assert Concatenate().axis == -1
    with pytest.raises(TypeError, match=r"Concatenate: `axis` must be an int"):
        Concatenate(axis=1.0)
    with pytest.raises(TypeError, match="axis"):
        Concatenate(axis="last")
