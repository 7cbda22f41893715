"""fk.ops against Keras 3's keras.ops (JAX backend) on the same inputs, op by op."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
if (
    keras.backend.backend() != "jax"
):  # pragma: no cover - another backend already loaded
    pytest.skip("keras is not on the JAX backend", allow_module_level=True)
kops = keras.ops

rng = np.random.default_rng(0)
A = rng.normal(size=(3, 4)).astype(np.float32)
B = rng.normal(size=(3, 4)).astype(np.float32)
M = rng.normal(size=(4, 2)).astype(np.float32)
V = rng.normal(size=(4,)).astype(np.float32)
P = rng.uniform(0.05, 0.95, size=(3, 4)).astype(np.float32)
I = np.array([[3, 1, 2], [0, 4, 4]], np.int32)  # noqa: E741
POS = np.abs(A) + 0.1
IMG = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
SEQ = rng.normal(size=(2, 7, 3)).astype(np.float32)
Q = rng.normal(size=(2, 5, 2, 4)).astype(np.float32)


def _body(i, v):
    return v * 2.0 + i


# name -> (args, kwargs); each runs as fk.ops.name(*args, **kwargs) and as Keras'.
CASES: dict[str, list[tuple[tuple, dict]]] = {
    "abs": [((A,), {})],
    "absolute": [((A,), {})],
    "add": [((A, B), {}), ((I, 1.5), {})],
    "all": [((A > 0,), {"axis": 1})],
    "any": [((A > 0,), {})],
    "arange": [((5,), {}), ((1.0, 3.0, 0.5), {}), ((0, 6, 2), {"dtype": "float32"})],
    "argmax": [((A,), {"axis": 1})],
    "argmin": [((A,), {"axis": 0, "keepdims": True})],
    "argsort": [((V,), {})],
    "array": [(([1.0, 2.0],), {}), (([1, 2],), {"dtype": "float32"})],
    # Keras 3.15's JAX pooling mishandles `strides=None` (it expands pool_size
    # twice); strides are given here and strides=None is checked by formula below.
    "average_pool": [
        ((IMG, 2, 2), {}),
        ((IMG, 3, 2, "same"), {}),
        ((SEQ, 2, 2), {"padding": "same"}),
    ],
    "binary_crossentropy": [((P > 0.5, P), {}), ((P, A), {"from_logits": True})],
    "broadcast_to": [((V, (3, 4)), {})],
    "cast": [((A, "int32"), {}), ((I, "float16"), {})],
    "categorical_crossentropy": [((P, P), {}), ((P, A), {"from_logits": True})],
    "ceil": [((A,), {}), ((I,), {})],
    "clip": [((A, -0.5, 0.5), {})],
    "concatenate": [(([A, B],), {"axis": 1})],
    "cond": [((True, lambda: jnp.ones(2), lambda: jnp.zeros(2)), {})],
    "conv": [
        ((IMG, rng.normal(size=(3, 3, 3, 4)).astype(np.float32)), {}),
        (
            (IMG, rng.normal(size=(2, 2, 3, 2)).astype(np.float32)),
            {"strides": 2, "padding": "same"},
        ),
        ((SEQ, rng.normal(size=(3, 3, 5)).astype(np.float32)), {"dilation_rate": 2}),
    ],
    "convert_to_numpy": [((A,), {})],
    "convert_to_tensor": [((A,), {}), (([1, 2],), {"dtype": "float32"})],
    "cos": [((A,), {})],
    "cumprod": [((A,), {"axis": 1})],
    "cumsum": [((A,), {"axis": 0}), ((I,), {})],
    "diag": [((V,), {}), ((A,), {})],
    "divide": [((A, POS), {})],
    "dot": [((A, M), {}), ((V, V), {})],
    "dot_product_attention": [((Q, Q, Q), {}), ((Q, Q, Q), {"is_causal": True})],
    "dtype": [((A,), {}), ((I,), {})],
    "einsum": [(("ij,jk->ik", A, M), {})],
    "elu": [((A,), {}), ((A, 0.5), {})],
    "equal": [((A, A), {})],
    "erf": [((A,), {})],
    "exp": [((A,), {})],
    "expand_dims": [((A, 1), {})],
    "eye": [((3,), {}), ((2, 3, 1), {})],
    "flip": [((A,), {"axis": 1}), ((A,), {})],
    "floor": [((A,), {}), ((I,), {})],
    "fori_loop": [((0, 3, _body, 1.0), {})],
    "full": [(((2, 3), 4.0), {}), (((2,), 1), {"dtype": "float32"})],
    "full_like": [((A, 2.0), {})],
    "gelu": [((A,), {}), ((A,), {"approximate": False})],
    "greater": [((A, B), {})],
    "greater_equal": [((A, B), {})],
    "hard_sigmoid": [((A * 4,), {})],
    "identity": [((3,), {})],
    "is_tensor": [((jnp.ones(2),), {})],
    "isfinite": [((A,), {})],
    "isinf": [((A,), {})],
    "isnan": [((A,), {})],
    "leaky_relu": [((A,), {}), ((A,), {"negative_slope": 0.1})],
    "less": [((A, B), {})],
    "less_equal": [((A, B), {})],
    "linspace": [((0.0, 1.0, 5), {}), ((0, 4, 3), {"endpoint": False})],
    "log": [((POS,), {})],
    "log1p": [((POS,), {})],
    "log_sigmoid": [((A,), {})],
    "log_softmax": [((A,), {}), ((A,), {"axis": 0})],
    "logical_and": [((A > 0, B > 0), {})],
    "logical_not": [((A > 0,), {})],
    "logical_or": [((A > 0, B > 0), {})],
    "logsumexp": [((A,), {"axis": 1}), ((A,), {})],
    "matmul": [((A, M), {})],
    "max": [((A,), {"axis": 1}), ((A,), {})],
    "max_pool": [((IMG, 2, 2), {}), ((IMG, 3, 2, "same"), {}), ((SEQ, 2, 1), {})],
    "maximum": [((A, B), {})],
    "mean": [((A,), {"axis": [0, 1]}), ((I,), {"axis": 1})],
    "min": [((A,), {"axis": 0, "keepdims": True})],
    "minimum": [((A, B), {})],
    "moments": [((A, [0]), {}), ((IMG, [0, 1, 2]), {"keepdims": True})],
    "moveaxis": [((IMG, 3, 1), {})],
    "multi_hot": [((I, 5), {})],
    "multiply": [((A, B), {})],
    "negative": [((A,), {})],
    "norm": [((A,), {}), ((A,), {"axis": 1, "ord": 1}), ((I,), {"axis": -1})],
    "normalize": [((A,), {}), ((A,), {"axis": 0, "order": 1})],
    "not_equal": [((A, B), {})],
    "one_hot": [((I, 5), {}), ((I[0], 4), {"axis": 0})],
    "ones": [(((2, 3),), {}), (((2,),), {"dtype": "int32"})],
    "ones_like": [((A,), {})],
    "pad": [
        ((A, [[1, 0], [0, 2]]), {}),
        ((A, [[1, 1], [1, 1]]), {"mode": "reflect"}),
        ((A, [[1, 1], [0, 0]]), {"constant_values": 3.0}),
    ],
    "power": [((POS, 2.5), {})],
    "prod": [((A,), {"axis": 1})],
    "relu": [((A,), {})],
    "relu6": [((A * 8,), {})],
    "repeat": [((A, 2), {"axis": 0}), ((V, 3), {})],
    "reshape": [((A, (2, 6)), {}), ((A, (-1,)), {})],
    "round": [((A * 10,), {}), ((A,), {"decimals": 2})],
    "scan": [((lambda c, x: (c + x, c * x), jnp.zeros(4), A), {})],
    "scatter": [
        (
            (
                np.array([[0, 1], [2, 3], [0, 1]]),
                np.array([1.0, 2.0, 3.0], np.float32),
                (3, 4),
            ),
            {},
        )
    ],
    "scatter_update": [
        ((A, np.array([[0, 1], [2, 3]]), np.array([9.0, 8.0], np.float32)), {})
    ],
    "segment_max": [((V, np.array([0, 0, 1, 2])), {"num_segments": 3})],
    "segment_sum": [((A, np.array([0, 1, 1])), {"num_segments": 2})],
    "selu": [((A,), {})],
    "shape": [((A,), {})],
    "sigmoid": [((A,), {})],
    "sign": [((A,), {})],
    "silu": [((A,), {})],
    "sin": [((A,), {})],
    "slice": [((A, (1, 1), (2, 2)), {})],
    "slice_update": [((A, (1, 2), np.ones((2, 2), np.float32)), {})],
    "softmax": [((A,), {}), ((A,), {"axis": 0})],
    "softplus": [((A,), {})],
    "softsign": [((A,), {})],
    "sparse_categorical_crossentropy": [
        ((np.array([1, 0, 3]), P), {}),
        ((np.array([[1], [0], [3]]), A), {"from_logits": True}),
    ],
    "split": [((A, 2), {"axis": 1}), ((V, [1, 3]), {})],
    "sqrt": [((POS,), {})],
    "square": [((A,), {})],
    "squeeze": [((A[None],), {}), ((A[:, None],), {"axis": 1})],
    "stack": [(([A, B],), {"axis": 1})],
    "std": [((A,), {"axis": 1})],
    "stop_gradient": [((A,), {})],
    "subtract": [((A, B), {})],
    "sum": [((A,), {"axis": 1, "keepdims": True}), ((I,), {})],
    "swapaxes": [((IMG, 0, 3), {})],
    "take": [((A, np.array([2, 0])), {"axis": 1}), ((A, np.array([5])), {})],
    "take_along_axis": [((A, np.argsort(A, axis=1)), {"axis": 1})],
    "tan": [((A,), {})],
    "tanh": [((A,), {})],
    "tile": [((A, (2, 1)), {})],
    "top_k": [((A, 2), {})],
    "transpose": [((IMG,), {}), ((IMG, (0, 3, 1, 2)), {})],
    "tril": [((A,), {}), ((A, 1), {})],
    "triu": [((A,), {"k": -1})],
    "true_divide": [((A, POS), {})],
    "var": [((A,), {"axis": 0})],
    "vectorized_map": [((lambda r: jnp.sum(r * 2), A), {})],
    "where": [((A > 0, A, B), {}), ((A > 0,), {})],
    "while_loop": [
        ((lambda i, s: i < 3, lambda i, s: (i + 1, s * 2.0), (0, 1.0)), {}),
        ((lambda i: i < 10, lambda i: i + 1, 0), {"maximum_iterations": 4}),
    ],
    "zeros": [(((2, 3),), {})],
    "zeros_like": [((A,), {}), ((A,), {"dtype": "int32"})],
}


def test_every_exported_op_has_a_keras_case():
    assert sorted(CASES) == sorted(fk.ops.__all__)


def _compare(mine, theirs, where):
    if isinstance(theirs, list | tuple):
        assert isinstance(mine, list | tuple) and len(mine) == len(theirs), where
        for a, b in zip(mine, theirs, strict=True):
            _compare(a, b, where)
        return
    if isinstance(theirs, str | bool | int) and not isinstance(theirs, np.integer):
        assert mine == theirs, where
        return
    mine_np, theirs_np = np.asarray(mine), np.asarray(theirs)
    assert mine_np.shape == theirs_np.shape, (
        f"{where}: shape {mine_np.shape} vs {theirs_np.shape}"
    )
    assert mine_np.dtype == theirs_np.dtype, (
        f"{where}: dtype {mine_np.dtype} vs {theirs_np.dtype}"
    )
    np.testing.assert_allclose(
        mine_np.astype(np.float64),
        theirs_np.astype(np.float64),
        rtol=2e-5,
        atol=2e-6,
        err_msg=where,
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_keras(name):
    for i, (args, kwargs) in enumerate(CASES[name]):
        mine = getattr(fk.ops, name)(*args, **kwargs)
        theirs = getattr(kops, name)(*args, **kwargs)
        _compare(mine, theirs, f"{name} case {i}")


def test_formulas_against_numpy():
    np.testing.assert_allclose(
        fk.ops.softmax(A), np.exp(A) / np.exp(A).sum(-1, keepdims=True), rtol=1e-6
    )
    m, v = fk.ops.moments(A, axes=[1])
    np.testing.assert_allclose(m, A.mean(1), rtol=1e-6)
    np.testing.assert_allclose(v, A.var(1), rtol=1e-5)
    np.testing.assert_allclose(
        fk.ops.normalize(A), A / np.linalg.norm(A, axis=-1, keepdims=True), rtol=1e-5
    )
    values, indices = fk.ops.top_k(A, 2)
    np.testing.assert_array_equal(indices, np.argsort(-A, axis=1)[:, :2])
    np.testing.assert_allclose(values, -np.sort(-A, axis=1)[:, :2])
    np.testing.assert_allclose(
        fk.ops.sparse_categorical_crossentropy(np.array([1, 0, 3]), P),
        -np.log((P / P.sum(-1, keepdims=True))[np.arange(3), [1, 0, 3]]),
        rtol=1e-5,
    )
    pooled = fk.ops.average_pool(SEQ, 2)
    np.testing.assert_allclose(
        pooled, SEQ[:, :6].reshape(2, 3, 2, 3).mean(2), rtol=1e-6
    )
    pooled = fk.ops.max_pool(IMG, 2, data_format="channels_last")
    np.testing.assert_allclose(pooled, IMG.reshape(2, 3, 2, 3, 2, 3).max((2, 4)))
    first = fk.ops.max_pool(np.moveaxis(IMG, -1, 1), 2, data_format="channels_first")
    np.testing.assert_allclose(np.moveaxis(np.asarray(first), 1, -1), pooled)


def test_ops_work_under_jit_and_grad():
    f = jax.jit(
        lambda x: fk.ops.sum(
            fk.ops.softmax(x) * fk.ops.one_hot(fk.ops.array([0, 1, 2]), 4)
        )
    )
    g = jax.grad(lambda x: fk.ops.mean(fk.ops.square(fk.ops.relu(x))))(A)
    assert np.isfinite(float(f(A)))
    np.testing.assert_allclose(g, 2 * np.maximum(A, 0) / A.size, rtol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="one_hot: `num_classes`"):
        fk.ops.one_hot(I, 2.5)
    with pytest.raises(ValueError, match="where: pass both"):
        fk.ops.where(A > 0, A)
    with pytest.raises(ValueError, match="conv: `padding`"):
        fk.ops.conv(IMG, np.ones((3, 3, 3, 4), np.float32), padding="full")
    with pytest.raises(ValueError, match="binary_crossentropy"):
        fk.ops.binary_crossentropy(A, V)
