"""Tests of BatchNormalization and LayerNormalization against NumPy formulas."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from funkeras import initializers, regularizers
from funkeras.layers.normalization import BatchNormalization, LayerNormalization

def run(layer, params, state, x, mode="jit", **kwargs):
    """`layer.apply` eagerly or under `jax.jit` (`training` is static)."""
    if mode == "eager":
        return layer.apply(params, state, x, **kwargs)
    mask = kwargs.pop("mask", None)

    @jax.jit
    def f(params, state, x, mask):
        return layer.apply(params, state, x, mask=mask, **kwargs)

    return f(params, state, x, mask)


def spec(shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(tuple(shape), dtype)


def random_bn(layer, shape, seed=0):
    """Init `layer` for `shape` (batch included) and randomize every variable."""
    params, state = layer.init(jax.random.key(seed), spec(shape[1:]))
    rng = np.random.default_rng(seed + 100)
    c = state["moving_mean"].shape[0]
    params = {k: jnp.asarray(rng.normal(size=c), v.dtype) for k, v in params.items()}
    state = {
        "moving_mean": jnp.asarray(rng.normal(size=c), jnp.float32),
        "moving_variance": jnp.asarray(rng.uniform(0.5, 2.0, size=c), jnp.float32),
    }
    return params, state


# ----------------------------------------------------------------------------
# NumPy references.
# ----------------------------------------------------------------------------


def np_moments(x, axis, rows=None):
    """Mean and biased variance per feature, over the real rows only."""
    x = np.asarray(x, np.float64)
    if rows is not None:
        x = x[np.asarray(rows, bool)]
    feats = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
    n = feats.shape[0]
    mean = feats.sum(0) / n
    var = ((feats - mean) ** 2).sum(0) / n
    return mean, var


def np_bn(x, mean, var, gamma, beta, axis, eps):
    x = np.asarray(x, np.float64)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    g = np.ones(shape) if gamma is None else np.asarray(gamma, np.float64)
    b = np.zeros(shape) if beta is None else np.asarray(beta, np.float64)
    g, b = g.reshape(shape), b.reshape(shape)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * g + b


def np_layer_norm(x, axes, gamma, beta, eps):
    x = np.asarray(x, np.float64)
    rest = [a for a in range(1, x.ndim) if a not in axes]
    # Explicit loop over examples and the non-normalized axes.
    moved = np.moveaxis(x, [0, *rest, *axes], list(range(x.ndim)))
    lead = moved.shape[: 1 + len(rest)]
    flat = moved.reshape(int(np.prod(lead)), -1)
    res = np.empty_like(flat)
    for i, row in enumerate(flat):
        mean = row.sum() / row.size
        var = ((row - mean) ** 2).sum() / row.size
        res[i] = (row - mean) / np.sqrt(var + eps)
    res = res.reshape(moved.shape)
    out = np.moveaxis(res, list(range(x.ndim)), [0, *rest, *axes])
    # Keras reshapes the params onto the normalized axes in positional order.
    shape = [1] * x.ndim
    for a in axes:
        shape[a] = x.shape[a]
    if gamma is not None:
        out = out * np.asarray(gamma, np.float64).reshape(shape)
    if beta is not None:
        out = out + np.asarray(beta, np.float64).reshape(shape)
    return out


# ----------------------------------------------------------------------------
# BatchNormalization numerics.
# ----------------------------------------------------------------------------

BN_CASES = [((6, 3), -1), ((4, 5, 3), -1), ((4, 3, 5), 1), ((2, 3, 4, 5), 2)]


@pytest.mark.parametrize("shape,axis", BN_CASES)
def test_bn_training_output_and_moving_stats(shape, axis):
    layer = BatchNormalization(axis=axis, momentum=0.9, epsilon=1e-3)
    params, state = random_bn(layer, shape)
    x = np.random.default_rng(1).normal(2.0, 3.0, size=shape).astype(np.float32)
    y, new_state = run(layer, params, state, x, "jit", training=True)

    ax = axis % len(shape)
    mean, var = np_moments(x, ax)
    want = np_bn(x, mean, var, params["gamma"], params["beta"], ax, 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        new_state["moving_mean"], np.asarray(state["moving_mean"]) * 0.9 + mean * 0.1,
        rtol=1e-5, atol=1e-5,
    )
    np.testing.assert_allclose(
        new_state["moving_variance"],
        np.asarray(state["moving_variance"]) * 0.9 + var * 0.1,
        rtol=1e-5, atol=1e-5,
    )
    assert y.dtype == jnp.float32 and y.shape == shape
    assert new_state["moving_mean"].dtype == jnp.float32


@pytest.mark.parametrize("shape,axis", BN_CASES)
def test_bn_inference_uses_moving_stats_and_keeps_state(shape, axis):
    layer = BatchNormalization(axis=axis)
    params, state = random_bn(layer, shape)
    x = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    y, new_state = run(layer, params, state, x, "jit", training=False)
    ax = axis % len(shape)
    want = np_bn(
        x, np.asarray(state["moving_mean"], np.float64),
        np.asarray(state["moving_variance"], np.float64),
        params["gamma"], params["beta"], ax, 1e-3,
    )
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    for k in state:
        np.testing.assert_array_equal(new_state[k], state[k])


@pytest.mark.parametrize("center,scale", [(False, True), (True, False), (False, False)])
def test_bn_center_scale_off(center, scale):
    layer = BatchNormalization(center=center, scale=scale)
    params, state = layer.init(jax.random.key(0), spec((3,)))
    assert set(params) == {n for n, on in (("gamma", scale), ("beta", center)) if on}
    assert set(state) == {"moving_mean", "moving_variance"}
    x = np.random.default_rng(3).normal(size=(5, 3)).astype(np.float32)
    params = {k: v + 0.5 for k, v in params.items()}
    y, _ = layer.apply(params, state, x, training=True)
    mean, var = np_moments(x, 1)
    want = np_bn(x, mean, var, params.get("gamma"), params.get("beta"), 1, 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


def test_bn_default_init_values():
    layer = BatchNormalization()
    params, state = layer.init(jax.random.key(0), spec((2, 4)))
    np.testing.assert_array_equal(params["gamma"], np.ones(4))
    np.testing.assert_array_equal(params["beta"], np.zeros(4))
    np.testing.assert_array_equal(state["moving_mean"], np.zeros(4))
    np.testing.assert_array_equal(state["moving_variance"], np.ones(4))


def test_bn_two_steps_thread_state():
    layer = BatchNormalization(momentum=0.5)
    params, state = layer.init(jax.random.key(0), spec((2,)))
    rng = np.random.default_rng(4)
    xs = [rng.normal(1.0, 2.0, size=(8, 2)).astype(np.float32) for _ in range(2)]
    mm, mv = np.zeros(2), np.ones(2)
    for x in xs:
        _, state = layer.apply(params, state, x, training=True)
        mean, var = np_moments(x, 1)
        mm, mv = mm * 0.5 + mean * 0.5, mv * 0.5 + var * 0.5
    np.testing.assert_allclose(state["moving_mean"], mm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state["moving_variance"], mv, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------
# Masked moments.
# ----------------------------------------------------------------------------

MASK_CASES = [((6, 3), -1), ((5, 4, 3), -1), ((5, 3, 4), 1)]


@pytest.mark.parametrize("shape,axis", MASK_CASES)
def test_bn_masked_moments_are_those_of_real_rows(shape, axis):
    layer = BatchNormalization(axis=axis, momentum=0.8)
    params, state = random_bn(layer, shape)
    x = np.random.default_rng(5).normal(1.0, 2.0, size=shape).astype(np.float32)
    rows = np.zeros(shape[0], bool)
    rows[[0, 2, 3]] = True
    y, new_state = run(
        layer, params, state, x, "jit", training=True, mask=jnp.asarray(rows)
    )

    ax = axis % len(shape)
    mean, var = np_moments(x, ax, rows)
    want = np_bn(x, mean, var, params["gamma"], params["beta"], ax, 1e-3)
    np.testing.assert_allclose(y[rows], want[rows], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        new_state["moving_mean"], np.asarray(state["moving_mean"]) * 0.8 + mean * 0.2,
        rtol=1e-5, atol=1e-5,
    )
    np.testing.assert_allclose(
        new_state["moving_variance"],
        np.asarray(state["moving_variance"]) * 0.8 + var * 0.2,
        rtol=1e-5, atol=1e-5,
    )
    # Same as running the unpadded batch of real rows alone.
    y_short, state_short = run(layer, params, state, x[rows], "jit", training=True)
    np.testing.assert_allclose(y[rows], y_short, rtol=1e-5, atol=1e-5)
    for k in state:
        np.testing.assert_allclose(new_state[k], state_short[k], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("garbage", [1e6, -3e4, np.nan, np.inf])
def test_bn_padded_rows_do_not_change_real_rows(garbage):
    layer = BatchNormalization(axis=-1)
    params, state = random_bn(layer, (6, 2, 3))
    x = np.random.default_rng(6).normal(size=(6, 2, 3)).astype(np.float32)
    rows = np.array([True, True, False, True, False, False])
    x_bad = x.copy()
    x_bad[~rows] = garbage
    out = [
        run(layer, params, state, xx, "jit", training=True, mask=jnp.asarray(rows))
        for xx in (x, x_bad)
    ]
    (y1, s1), (y2, s2) = out
    np.testing.assert_array_equal(y1[rows], y2[rows])
    for k in state:
        np.testing.assert_array_equal(s1[k], s2[k])
        assert np.all(np.isfinite(s2[k]))


def test_bn_mask_all_true_equals_no_mask():
    layer = BatchNormalization()
    params, state = random_bn(layer, (5, 3))
    x = np.random.default_rng(7).normal(size=(5, 3)).astype(np.float32)
    y1, s1 = layer.apply(params, state, x, training=True)
    y2, s2 = layer.apply(params, state, x, training=True, mask=jnp.ones(5, bool))
    np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-6)
    for k in state:
        np.testing.assert_allclose(s1[k], s2[k], rtol=1e-6, atol=1e-7)


def test_bn_all_padding_batch_keeps_state():
    layer = BatchNormalization()
    params, state = random_bn(layer, (4, 3))
    x = np.random.default_rng(8).normal(size=(4, 3)).astype(np.float32)
    _, new_state = run(layer, params, state, x, "jit", training=True,
                       mask=jnp.zeros(4, bool))
    for k in state:
        np.testing.assert_array_equal(new_state[k], state[k])


def test_bn_mask_ignored_in_inference():
    layer = BatchNormalization()
    params, state = random_bn(layer, (4, 3))
    x = np.random.default_rng(9).normal(size=(4, 3)).astype(np.float32)
    y1, _ = layer.apply(params, state, x)
    y2, s2 = layer.apply(params, state, x, mask=jnp.array([True, False, False, True]))
    np.testing.assert_array_equal(y1, y2)
    assert s2 is state


# ----------------------------------------------------------------------------
# Frozen layer, dtypes.
# ----------------------------------------------------------------------------


def test_frozen_bn_runs_in_inference_mode():
    frozen = BatchNormalization(trainable=False)
    live = BatchNormalization()
    params, state = random_bn(frozen, (6, 3))
    x = np.random.default_rng(10).normal(3.0, 2.0, size=(6, 3)).astype(np.float32)
    y, new_state = run(frozen, params, state, x, "jit", training=True,
                       mask=jnp.ones(6, bool))
    y_inf, _ = run(live, params, state, x, "jit", training=False)
    y_train, _ = run(live, params, state, x, "jit", training=True)
    np.testing.assert_array_equal(y, y_inf)
    assert not np.allclose(y, y_train)
    for k in state:
        np.testing.assert_array_equal(new_state[k], state[k])


@pytest.mark.parametrize("layer_dtype", ["float32", "bfloat16"])
def test_bn_bfloat16_input_float32_state(layer_dtype):
    layer = BatchNormalization(dtype=layer_dtype)
    params, state = layer.init(jax.random.key(0), spec((4,), jnp.bfloat16))
    assert params["gamma"].dtype == jnp.dtype(layer_dtype)
    assert state["moving_mean"].dtype == jnp.float32
    assert state["moving_variance"].dtype == jnp.float32
    # A large offset: bfloat16 statistics would lose the small spread entirely.
    x = (100.0 + np.random.default_rng(11).normal(size=(16, 4))).astype(jnp.bfloat16)
    y, new_state = run(layer, params, state, x, "jit", training=True)
    assert y.dtype == jnp.bfloat16
    assert new_state["moving_mean"].dtype == jnp.float32
    assert new_state["moving_variance"].dtype == jnp.float32

    x32 = np.asarray(x, np.float32)
    mean, var = np_moments(x32, 1)
    np.testing.assert_allclose(new_state["moving_mean"], 0.01 * mean, rtol=1e-5)
    np.testing.assert_allclose(
        new_state["moving_variance"], 0.99 + 0.01 * var, rtol=1e-5
    )
    want = np_bn(x32, mean, var, None, None, 1, 1e-3)
    np.testing.assert_allclose(np.asarray(y, np.float32), want, atol=3e-2)

    y_inf, s_inf = run(layer, params, new_state, x, "jit", training=False)
    assert y_inf.dtype == jnp.bfloat16 and s_inf["moving_mean"].dtype == jnp.float32


def test_bn_integer_input_gives_float32():
    layer = BatchNormalization()
    params, state = layer.init(jax.random.key(0), spec((2,), jnp.int32))
    y, _ = layer.apply(params, state, jnp.array([[1, 2], [3, 6]]), training=True)
    assert y.dtype == jnp.float32
    np.testing.assert_allclose(y, [[-1, -1], [1, 1]], atol=1e-3)


# ----------------------------------------------------------------------------
# Gradients.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("use_mask", [False, True])
def test_bn_training_path_grads(use_mask):
    layer = BatchNormalization(axis=1)
    with jax.enable_x64(True):
        params, state = random_bn(layer, (5, 3, 2))
        rng = np.random.default_rng(12)
        x = jnp.asarray(rng.normal(size=(5, 3, 2)))
        gamma = jnp.asarray(params["gamma"], jnp.float64)
        beta = jnp.asarray(params["beta"], jnp.float64)
        mask = jnp.array([True, False, True, True, False]) if use_mask else None

        def f(x, gamma, beta):
            y, new_state = layer.apply(
                {"gamma": gamma, "beta": beta}, state, x, training=True, mask=mask
            )
            assert y.dtype == jnp.float64
            return y * jnp.arange(y.size).reshape(y.shape) / y.size

        check_grads(jax.jit(f), (x, gamma, beta), order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("axis", [-1, [1, 2]])
def test_layer_norm_grads(axis):
    layer = LayerNormalization(axis=axis)
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(13).normal(size=(3, 4, 5)))
        params, _ = layer.init(jax.random.key(0), spec((4, 5), jnp.float64))
        rng = np.random.default_rng(14)
        gamma = jnp.asarray(rng.normal(size=params["gamma"].shape))
        beta = jnp.asarray(rng.normal(size=params["beta"].shape))

        def f(x, gamma, beta):
            y, _ = layer.apply({"gamma": gamma, "beta": beta}, {}, x)
            assert y.dtype == jnp.float64
            return y

        check_grads(jax.jit(f), (x, gamma, beta), order=1, modes=("fwd", "rev"))


# ----------------------------------------------------------------------------
# LayerNormalization numerics.
# ----------------------------------------------------------------------------

LN_CASES = [
    ((4, 6), -1),
    ((3, 4, 5), -1),
    ((3, 4, 5), 1),
    ((2, 3, 4, 5), [1, 2]),
    ((2, 3, 4, 5), [-2, -1]),
    ((2, 3, 4, 5), [3, 1]),  # unsorted: Keras' param layout follows `axis` order
    ((2, 3, 4, 5), [1, 2, 3]),
]


@pytest.mark.parametrize("shape,axis", LN_CASES)
def test_layer_norm_numerics(shape, axis):
    layer = LayerNormalization(axis=axis, epsilon=1e-3)
    params, state = layer.init(jax.random.key(0), spec(shape[1:]))
    axes = [a % len(shape) for a in (axis if isinstance(axis, list) else [axis])]
    assert params["gamma"].shape == tuple(shape[a] for a in axes)
    rng = np.random.default_rng(15)
    params = {k: jnp.asarray(rng.normal(size=v.shape), v.dtype)
              for k, v in params.items()}
    x = rng.normal(3.0, 2.0, size=shape).astype(np.float32)
    y, new_state = run(layer, params, state, x, "jit", training=False)
    want = np_layer_norm(x, axes, params["gamma"], params["beta"], 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    assert new_state == {} and y.dtype == jnp.float32


@pytest.mark.parametrize("center,scale", [(False, True), (True, False), (False, False)])
def test_layer_norm_center_scale_off(center, scale):
    layer = LayerNormalization(center=center, scale=scale)
    params, _ = layer.init(jax.random.key(0), spec((5,)))
    assert set(params) == {n for n, on in (("gamma", scale), ("beta", center)) if on}
    params = {k: v * 2.0 + 0.5 for k, v in params.items()}
    x = np.random.default_rng(16).normal(size=(3, 5)).astype(np.float32)
    y, _ = layer.apply(params, {}, x)
    want = np_layer_norm(x, [1], params.get("gamma"), params.get("beta"), 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    # Per-example statistics: training mode computes the same thing.
    y_train, state = layer.apply(params, {}, x, training=True)
    np.testing.assert_array_equal(y_train, y)
    assert state == {}


def test_layer_norm_bfloat16_computes_in_float32():
    layer = LayerNormalization()
    params, state = layer.init(jax.random.key(0), spec((8,), jnp.bfloat16))
    # Spread of ~1 around 200: a bfloat16 mean/variance would be badly off.
    x = (200.0 + np.random.default_rng(17).normal(size=(4, 8))).astype(jnp.bfloat16)
    y, _ = run(layer, params, state, x, "jit")
    assert y.dtype == jnp.bfloat16
    want = np_layer_norm(np.asarray(x, np.float32), [1], None, None, 1e-3)
    np.testing.assert_allclose(np.asarray(y, np.float32), want, atol=3e-2)


def test_layer_norm_default_epsilon_is_keras3():
    assert LayerNormalization().epsilon == 1e-3
    assert BatchNormalization().epsilon == 1e-3
    assert BatchNormalization().momentum == 0.99


# ----------------------------------------------------------------------------
# Eager and jit agree.
# ----------------------------------------------------------------------------

ROWS = np.array([True, False, True, True, False, True])
EAGER_JIT_CASES = [
    (lambda: BatchNormalization(), (6, 3), jnp.float32, {"training": True}),
    (lambda: BatchNormalization(), (6, 3), jnp.float32, {"training": False}),
    (lambda: BatchNormalization(axis=1), (6, 3, 4), jnp.float32,
     {"training": True, "mask": ROWS}),
    (lambda: BatchNormalization(trainable=False), (6, 3), jnp.float32,
     {"training": True}),
    (lambda: BatchNormalization(), (6, 3), jnp.bfloat16, {"training": True}),
    (lambda: LayerNormalization(), (6, 3), jnp.float32, {}),
    (lambda: LayerNormalization(axis=[2, 1]), (6, 3, 4), jnp.float32, {}),
    (lambda: LayerNormalization(), (6, 3), jnp.bfloat16, {}),
]


@pytest.mark.parametrize("make,shape,dtype,kwargs", EAGER_JIT_CASES)
def test_eager_equals_jit(make, shape, dtype, kwargs):
    layer = make()
    params, state = layer.init(jax.random.key(0), spec(shape[1:], dtype))
    params = {k: v + 0.25 for k, v in params.items()}
    x = jnp.asarray(np.random.default_rng(19).normal(1.0, 2.0, size=shape), dtype)
    kwargs = dict(kwargs)
    if "mask" in kwargs:
        kwargs["mask"] = jnp.asarray(kwargs["mask"])
    y_eager, s_eager = run(layer, params, state, x, "eager", **kwargs)
    y_jit, s_jit = run(layer, params, state, x, "jit", **kwargs)
    assert y_eager.dtype == y_jit.dtype == dtype
    np.testing.assert_allclose(
        np.asarray(y_eager, np.float32), np.asarray(y_jit, np.float32),
        rtol=1e-5, atol=1e-5,
    )
    assert set(s_eager) == set(s_jit) == set(state)
    for k in state:
        assert s_eager[k].dtype == s_jit[k].dtype == jnp.float32
        np.testing.assert_allclose(s_eager[k], s_jit[k], rtol=1e-6, atol=1e-7)
    if not (kwargs.get("training") and layer.trainable):
        assert s_eager is state


# ----------------------------------------------------------------------------
# Shapes with a symbolic batch.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer,in_shape",
    [
        (BatchNormalization(), (3,)),
        (BatchNormalization(axis=1), (3, 4)),
        (BatchNormalization(axis=-2), (5, 3, 4)),
        (LayerNormalization(), (7,)),
        (LayerNormalization(axis=[1, 2]), (3, 4)),
    ],
)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_compute_output_spec_symbolic_batch(layer, in_shape, dtype):
    out = layer.compute_output_spec(spec(in_shape, dtype))
    assert out.shape == in_shape and out.dtype == dtype


def test_bn_training_with_mask_exports_with_symbolic_batch():
    layer = BatchNormalization(axis=1)
    params, state = layer.init(jax.random.key(0), spec((3, 2)))
    (b,) = jax.export.symbolic_shape("b")

    def f(params, state, x, mask):
        return layer.apply(params, state, x, training=True, mask=mask)

    exported = jax.export.export(jax.jit(f))(
        params, state, spec((b, 3, 2)), spec((b,), jnp.bool_)
    )
    x = np.random.default_rng(18).normal(size=(5, 3, 2)).astype(np.float32)
    rows = np.array([True, True, False, True, False])
    y, new_state = exported.call(params, state, x, jnp.asarray(rows))
    y_ref, state_ref = f(params, state, x, jnp.asarray(rows))
    np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=1e-6)
    for k in state:
        np.testing.assert_allclose(new_state[k], state_ref[k], rtol=1e-6)


# ----------------------------------------------------------------------------
# Config, penalties and errors.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [
        BatchNormalization(),
        BatchNormalization(axis=1, momentum=0.5, epsilon=1e-5, center=False,
                           gamma_initializer="zeros", gamma_regularizer="l2",
                           name="bn", trainable=False, dtype="bfloat16"),
        BatchNormalization(gamma_initializer=initializers.Constant(2.0),
                           beta_initializer={"class_name": "Constant",
                                             "config": {"value": -1.0}},
                           beta_regularizer=regularizers.L2(0.5)),
        LayerNormalization(),
        LayerNormalization(axis=(1, 2), epsilon=1e-6, scale=False,
                           beta_initializer="ones", beta_regularizer="l1", name="ln"),
    ],
)
def test_config_round_trip(layer):
    config = layer.get_config()
    config = json.loads(json.dumps(config))
    clone = type(layer).from_config(config)
    assert clone is not layer
    assert clone.get_config() == config
    s = spec((3, 4))
    p1, s1 = layer.init(jax.random.key(0), s)
    p2, s2 = clone.init(jax.random.key(0), s)
    same = jax.tree.map(
        lambda a, b: np.array_equal(a, b) and a.dtype == b.dtype, (p1, s1), (p2, s2)
    )
    assert all(jax.tree.leaves(same))


def test_layer_norm_axis_tuple_becomes_list():
    assert LayerNormalization(axis=(1, -1)).get_config()["axis"] == [1, -1]
    assert LayerNormalization(axis=np.int64(2)).get_config()["axis"] == 2


def test_penalty_from_regularizers():
    bn = BatchNormalization(gamma_regularizer="l2")
    params, _ = bn.init(jax.random.key(0), spec((3,)))
    params = {"gamma": jnp.array([1.0, 2.0, 3.0]), "beta": jnp.array([5.0, 5.0, 5.0])}
    # Keras' default L2 factor is 0.01.
    np.testing.assert_allclose(bn.penalty(params), 0.01 * 14.0, rtol=1e-6)
    assert float(BatchNormalization().penalty(params)) == 0.0
    ln = LayerNormalization(beta_regularizer="l1")
    np.testing.assert_allclose(ln.penalty(params), 0.01 * 15.0, rtol=1e-6)


@pytest.mark.parametrize(
    "cls,kwargs,error,match",
    [
        (BatchNormalization, {"momentum": 1.5}, ValueError, "momentum"),
        (BatchNormalization, {"momentum": -0.1}, ValueError, "momentum"),
        (BatchNormalization, {"momentum": "high"}, TypeError, "momentum"),
        (BatchNormalization, {"epsilon": 0.0}, ValueError, "epsilon"),
        (BatchNormalization, {"epsilon": -1e-3}, ValueError, "epsilon"),
        (BatchNormalization, {"axis": 0}, ValueError, "batch axis"),
        (BatchNormalization, {"axis": 1.5}, TypeError, "axis"),
        (BatchNormalization, {"axis": [1, 2]}, TypeError, "axis"),
        (BatchNormalization, {"axis": True}, TypeError, "axis"),
        (BatchNormalization, {"center": "yes"}, TypeError, "center"),
        (BatchNormalization, {"scale": 1}, TypeError, "scale"),
        (BatchNormalization, {"gamma_initializer": "no_such_init"}, ValueError,
         "gamma_initializer"),
        (BatchNormalization, {"moving_variance_initializer": None}, ValueError,
         "moving_variance_initializer"),
        (BatchNormalization, {"beta_regularizer": "no_such_reg"}, ValueError,
         "beta_regularizer"),
        (LayerNormalization, {"axis": []}, ValueError, "axis"),
        (LayerNormalization, {"axis": [1, 0]}, ValueError, "batch axis"),
        (LayerNormalization, {"axis": "last"}, TypeError, "axis"),
        (LayerNormalization, {"axis": [1, 2.0]}, TypeError, "axis"),
        (LayerNormalization, {"epsilon": 0}, ValueError, "epsilon"),
        (LayerNormalization, {"center": None}, TypeError, "center"),
        (LayerNormalization, {"beta_initializer": "no_such_init"}, ValueError,
         "beta_initializer"),
        (LayerNormalization, {"gamma_regularizer": "no_such_reg"}, ValueError,
         "gamma_regularizer"),
    ],
)
def test_config_errors(cls, kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        cls(**kwargs)
    assert cls.__name__ in str(info.value)


@pytest.mark.parametrize(
    "layer,in_shape,match",
    [
        (BatchNormalization(axis=2), (4,), r"axis`=2.*rank 2.*\(None, 4\)"),
        (BatchNormalization(axis=-3), (4,), r"axis`=-3"),
        (BatchNormalization(), (), r"needs a feature axis"),
        (LayerNormalization(axis=3), (4, 5), r"axis`=3.*rank 3"),
        (LayerNormalization(axis=[-3]), (4, 5), r"axis`=\[-3\]"),
        (LayerNormalization(axis=[2, -1]), (4, 5), r"same axis twice"),
    ],
)
def test_init_errors_name_layer_axis_and_shape(layer, in_shape, match):
    layer.name = "norm"
    with pytest.raises(ValueError, match=match) as info:
        layer.init(jax.random.key(0), spec(in_shape))
    assert "(name='norm')" in str(info.value)


def test_init_rejects_non_spec():
    with pytest.raises(TypeError, match="ShapeDtypeStruct"):
        BatchNormalization().init(jax.random.key(0), [spec((3,)), spec((3,))])


def test_apply_shape_errors():
    bn = BatchNormalization(name="bn")
    params, state = bn.init(jax.random.key(0), spec((3,)))
    with pytest.raises(ValueError, match=r"3 features.*\(2, 4\)"):
        bn.apply(params, state, jnp.ones((2, 4)), training=True)
    with pytest.raises(ValueError, match=r"mask.*\(2, 1\)"):
        bn.apply(params, state, jnp.ones((2, 3)), training=True,
                 mask=jnp.ones((2, 1), bool))
    ln = LayerNormalization(name="ln")
    params, state = ln.init(jax.random.key(0), spec((3,)))
    with pytest.raises(ValueError, match=r"LayerNormalization\(name='ln'\).*gamma"):
        ln.apply(params, state, jnp.ones((2, 4)))
