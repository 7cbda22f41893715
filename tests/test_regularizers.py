"""Regularizers against NumPy formulas; get/serialize; `Layer.penalty` sums them."""

import json
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from funkeras import regularizers
from funkeras.layers.base import Layer
from funkeras.regularizers import L1, L1L2, L2

W = np.random.default_rng(0).normal(size=(4, 3, 5)).astype(np.float32)


def np_l1(x, l1):
    return l1 * sum(abs(float(v)) for v in x.ravel())


def np_l2(x, l2):
    return l2 * sum(float(v) ** 2 for v in x.ravel())


CASES = [
    (L1(), lambda x: np_l1(x, 0.01)),
    (L1(0.3), lambda x: np_l1(x, 0.3)),
    (L2(), lambda x: np_l2(x, 0.01)),
    (L2(2.0), lambda x: np_l2(x, 2.0)),
    (L1L2(), lambda x: 0.0),
    (L1L2(l1=0.2), lambda x: np_l1(x, 0.2)),
    (L1L2(l2=0.4), lambda x: np_l2(x, 0.4)),
    (L1L2(0.2, 0.4), lambda x: np_l1(x, 0.2) + np_l2(x, 0.4)),
]


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize(("reg", "ref"), CASES, ids=[repr(c[0]) for c in CASES])
def test_matches_numpy(reg, ref, jit):
    f = jax.jit(reg) if jit else reg
    got = f(jnp.asarray(W))
    assert got.shape == () and got.dtype == jnp.float32
    assert float(got) == pytest.approx(ref(W), rel=1e-5, abs=1e-7)


def test_gradients():
    x = jnp.asarray(W)
    g = jax.grad(L1L2(0.2, 0.4))(x)
    np.testing.assert_allclose(g, 0.2 * np.sign(W) + 2 * 0.4 * W, rtol=1e-6, atol=1e-6)


def test_keeps_dtype():
    assert L2()(jnp.ones((3,), jnp.bfloat16)).dtype == jnp.bfloat16
    assert L1L2()(jnp.ones((3,), jnp.bfloat16)).dtype == jnp.bfloat16


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("l1", L1(0.01)),
        ("l2", L2(0.01)),
        ("l1_l2", L1L2(0.01, 0.01)),
        ("L2", L2(0.01)),
        ("L1L2", L1L2(0.01, 0.01)),
    ],
)
def test_names_give_keras_defaults(name, expected):
    reg = regularizers.get(name)
    assert reg == expected and type(reg) is type(expected)


def test_get_other_identifiers():
    assert regularizers.get(None) is None
    assert regularizers.get({"class_name": "L2", "config": {"l2": 1e-4}}) == L2(1e-4)
    assert regularizers.get({"class_name": "L1L2", "config": {}}) == L1L2(0.0, 0.0)
    assert regularizers.get({"class_name": "l1_l2", "config": {"l1": 0.5}}) == L1L2(0.5)
    assert regularizers.get(L1) == L1(0.01)
    instance = L2(0.5)
    assert regularizers.get(instance) is instance

    def custom(x):
        return jnp.sum(x**4)

    assert regularizers.get(custom) is custom


def test_get_errors():
    with pytest.raises(ValueError, match="Unknown regularizer 'l1_l3'") as info:
        regularizers.get("l1_l3")
    assert "Did you mean 'l1_l2'" in str(info.value) and "'l2'" in str(info.value)
    with pytest.raises(ValueError, match="Unknown regularizer class 'L3'"):
        regularizers.get({"class_name": "L3", "config": {}})
    with pytest.raises(ValueError, match="must look like"):
        regularizers.get({"l2": 0.1})
    with pytest.raises(TypeError, match="L2: bad config"):
        regularizers.get({"class_name": "L2", "config": {"l1": 0.1}})
    with pytest.raises(TypeError, match="Could not interpret regularizer"):
        regularizers.get(0.01)


@pytest.mark.parametrize(
    "reg", [L1(), L1(0.5), L2(1e-4), L1L2(), L1L2(0.1, 0.2)], ids=repr
)
def test_serialize_round_trip(reg):
    data = json.loads(json.dumps(regularizers.serialize(reg)))
    back = regularizers.get(data)
    assert back == reg and type(back) is type(reg)
    assert float(back(jnp.asarray(W))) == float(reg(jnp.asarray(W)))


def test_serialize_forms():
    assert regularizers.serialize(L2(0.1)) == {
        "class_name": "L2",
        "config": {"l2": 0.1},
    }
    assert regularizers.serialize("l1_l2") == "l1_l2"
    assert regularizers.serialize(None) is None
    with pytest.raises(ValueError, match="Cannot serialize regularizer"):
        regularizers.serialize(lambda x: jnp.sum(x))
    with pytest.raises(ValueError, match="Unknown regularizer"):
        regularizers.serialize("l5")


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (
            lambda: L1(-0.1),
            ValueError,
            "L1: `l1` must be a finite non-negative number, got -0.1",
        ),
        (
            lambda: L2(float("nan")),
            ValueError,
            "L2: `l2` must be a finite non-negative",
        ),
        (lambda: L1L2(l2=float("inf")), ValueError, "L1L2: `l2` must be a finite"),
        (lambda: L1L2(l1=-1), ValueError, "L1L2: `l1` must be a finite non-negative"),
        (lambda: L2("0.1"), TypeError, "L2: `l2` must be a number"),
    ],
)
def test_argument_validation(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_none_factor_means_default():
    assert L1(None) == L1(0.01) and L2(None) == L2(0.01) and L1L2(None, None) == L1L2()


@dataclass(eq=False)
class _Affine(Layer):
    """A tiny layer holding a kernel and a bias, for `Layer.penalty`."""

    units: int = 2
    kernel_regularizer: Any = None
    bias_regularizer: Any = None

    def init(self, key, input_spec):
        kernel = jax.random.normal(key, (input_spec.shape[-1], self.units))
        return {
            "kernel": kernel,
            "bias": jnp.arange(self.units, dtype=jnp.float32) - 3.0,
        }, {}

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return x @ params["kernel"] + params["bias"], state


SPEC = jax.ShapeDtypeStruct((3,), jnp.float32)


@pytest.mark.parametrize(
    ("kernel_reg", "l2"),
    [("l2", 0.01), (L2(0.5), 0.5), ({"class_name": "L2", "config": {"l2": 0.2}}, 0.2)],
)
def test_layer_penalty_sums_kernel_regularizer(kernel_reg, l2):
    layer = _Affine(kernel_regularizer=kernel_reg)
    params, _ = layer.init(jax.random.key(0), SPEC)
    kernel = np.asarray(params["kernel"])
    expected = np_l2(kernel, l2)
    assert float(layer.penalty(params)) == pytest.approx(expected, rel=1e-5)
    assert float(jax.jit(layer.penalty)(params)) == pytest.approx(expected, rel=1e-5)


def test_layer_penalty_adds_every_regularized_variable():
    layer = _Affine(
        kernel_regularizer=L1(0.1), bias_regularizer=lambda b: jnp.sum(b**4)
    )
    params, _ = layer.init(jax.random.key(1), SPEC)
    expected = np_l1(np.asarray(params["kernel"]), 0.1) + (3.0**4 + 2.0**4)
    assert float(layer.penalty(params)) == pytest.approx(expected, rel=1e-5)


def test_layer_penalty_is_zero_without_regularizers():
    layer = _Affine()
    params, _ = layer.init(jax.random.key(0), SPEC)
    assert float(layer.penalty(params)) == 0.0
