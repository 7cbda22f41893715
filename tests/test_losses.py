"""Tests for funkeras.losses against NumPy formulas written here (float64)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from funkeras import losses as L
from funkeras.losses.probabilistic import loss_kind

EPS = 1e-7
B, C = 6, 4


@pytest.fixture(autouse=True)
def _strict_rank_promotion():
    # A (B,) against (B, 1) silently becoming (B, B) is the bug this catches.
    with jax.numpy_rank_promotion("raise"):
        yield


# ----------------------------------------------------------------------------
# NumPy references (per-sample, last axis reduced, as Keras' formulas).
# ----------------------------------------------------------------------------


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def np_mse(t, p):
    return ((t - p) ** 2).mean(-1)


def np_mae(t, p):
    return np.abs(t - p).mean(-1)


def np_mape(t, p):
    return 100.0 * (np.abs(t - p) / np.maximum(np.abs(t), EPS)).mean(-1)


def np_msle(t, p):
    return ((np.log1p(np.maximum(p, EPS)) - np.log1p(np.maximum(t, EPS))) ** 2).mean(-1)


def np_huber(t, p, delta=1.0):
    e = p - t
    a = np.abs(e)
    return np.where(a <= delta, 0.5 * e**2, delta * a - 0.5 * delta**2).mean(-1)


def np_log_cosh(t, p):
    return np.log(np.cosh(p - t)).mean(-1)


def np_bce(t, p, from_logits=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        # max(x, 0) - x t + log(1 + exp(-|x|)): the exact logistic loss.
        values = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))
    else:
        p = np.clip(p, EPS, 1 - EPS)
        values = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return values.mean(-1)


def np_focal(t, p, balancing=False, alpha=0.25, gamma=2.0, from_logits=False, ls=0.0):
    t = t * (1 - ls) + 0.5 * ls
    if from_logits:
        p = np_sigmoid(p)
    pc = np.clip(p, EPS, 1 - EPS)
    bce = -(t * np.log(pc) + (1 - t) * np.log(1 - pc))
    p_t = t * p + (1 - t) * (1 - p)
    values = (1 - p_t) ** gamma * bce
    if balancing:
        values = (t * alpha + (1 - t) * (1 - alpha)) * values
    return values.mean(-1)


def np_cce(t, p, from_logits=False, label_smoothing=0.0):
    num_classes = t.shape[-1]
    t = t * (1 - label_smoothing) + label_smoothing / num_classes
    if from_logits:
        logp = np_log_softmax(p)
    else:
        logp = np.log(np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS))
    return -(t * logp).sum(-1)


def np_scce(labels, p, from_logits=False, ignore_class=None):
    labels = np.asarray(labels).reshape(p.shape[:-1])
    logp = (
        np_log_softmax(p)
        if from_logits
        else np.log(np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS))
    )
    out = np.zeros(labels.shape)
    for idx in np.ndindex(labels.shape):
        if ignore_class is not None and labels[idx] == ignore_class:
            continue
        out[idx] = -logp[idx + (int(labels[idx]),)]
    return out


def np_kld(t, p):
    t, p = np.clip(t, EPS, 1), np.clip(p, EPS, 1)
    return (t * np.log(t / p)).sum(-1)


def np_poisson(t, p):
    return (p - t * np.log(p + EPS)).mean(-1)


def _hinge_labels(t):
    return 2 * t - 1 if np.all((t == 0) | (t == 1)) else t


def np_hinge(t, p):
    return np.maximum(1 - _hinge_labels(t) * p, 0).mean(-1)


def np_squared_hinge(t, p):
    return (np.maximum(1 - _hinge_labels(t) * p, 0) ** 2).mean(-1)


def np_categorical_hinge(t, p):
    pos = (t * p).sum(-1)
    neg = ((1 - t) * p).max(-1)
    return np.maximum(neg - pos + 1, 0)


def np_cosine(t, p):
    tn = t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), EPS)
    pn = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), EPS)
    return -(tn * pn).sum(-1)


def np_per_sample(values):
    return values.reshape(values.shape[0], -1).mean(1)


# ----------------------------------------------------------------------------
# Data.
# ----------------------------------------------------------------------------


def _data(kind, shape, seed=0):
    rng = np.random.default_rng(seed)
    if kind == "regression":
        return rng.normal(size=shape), rng.normal(size=shape)
    if kind == "positive":
        return rng.uniform(0.2, 3.0, size=shape), rng.uniform(0.2, 3.0, size=shape)
    if kind == "binary":
        return rng.integers(0, 2, size=shape).astype(float), rng.uniform(
            0.02, 0.98, size=shape
        )
    if kind == "binary_logits":
        return rng.integers(0, 2, size=shape).astype(float), rng.normal(
            0, 3, size=shape
        )
    if kind == "signs":
        return rng.choice([-1.0, 1.0], size=shape), rng.normal(size=shape)
    if kind == "probs":
        t = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
        return t, rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    if kind == "onehot":
        labels = rng.integers(0, shape[-1], size=shape[:-1])
        p = rng.uniform(0.05, 1.0, size=shape)
        return np.eye(shape[-1])[labels], p / p.sum(-1, keepdims=True)
    if kind == "onehot_logits":
        labels = rng.integers(0, shape[-1], size=shape[:-1])
        return np.eye(shape[-1])[labels], rng.normal(0, 2, size=shape)
    raise ValueError(kind)


ELEMENTWISE = [
    # (function, kwargs, reference, data kind)
    (L.mean_squared_error, {}, np_mse, "regression"),
    (L.mean_absolute_error, {}, np_mae, "regression"),
    (L.mean_absolute_percentage_error, {}, np_mape, "positive"),
    (L.mean_squared_logarithmic_error, {}, np_msle, "positive"),
    (L.huber, {}, np_huber, "regression"),
    (L.huber, {"delta": 0.3}, lambda t, p: np_huber(t, p, 0.3), "regression"),
    (L.log_cosh, {}, np_log_cosh, "regression"),
    (L.binary_crossentropy, {}, np_bce, "binary"),
    (
        L.binary_crossentropy,
        {"from_logits": True},
        lambda t, p: np_bce(t, p, True),
        "binary_logits",
    ),
    (
        L.binary_crossentropy,
        {"label_smoothing": 0.2},
        lambda t, p: np_bce(t, p, label_smoothing=0.2),
        "binary",
    ),
    (
        L.binary_crossentropy,
        {"from_logits": True, "label_smoothing": 0.1},
        lambda t, p: np_bce(t, p, True, 0.1),
        "binary_logits",
    ),
    (L.binary_focal_crossentropy, {}, np_focal, "binary"),
    (
        L.binary_focal_crossentropy,
        {
            "apply_class_balancing": True,
            "alpha": 0.4,
            "gamma": 1.5,
            "from_logits": True,
            "label_smoothing": 0.1,
        },
        lambda t, p: np_focal(t, p, True, 0.4, 1.5, True, 0.1),
        "binary_logits",
    ),
    (L.categorical_crossentropy, {}, np_cce, "onehot"),
    (
        L.categorical_crossentropy,
        {"from_logits": True},
        lambda t, p: np_cce(t, p, True),
        "onehot_logits",
    ),
    (
        L.categorical_crossentropy,
        {"label_smoothing": 0.1},
        lambda t, p: np_cce(t, p, label_smoothing=0.1),
        "onehot",
    ),
    (
        L.categorical_crossentropy,
        {"from_logits": True, "label_smoothing": 0.3},
        lambda t, p: np_cce(t, p, True, 0.3),
        "onehot_logits",
    ),
    (L.kl_divergence, {}, np_kld, "probs"),
    (L.poisson, {}, np_poisson, "positive"),
    (L.hinge, {}, np_hinge, "signs"),
    (L.hinge, {}, np_hinge, "binary"),  # {0, 1} labels are converted to {-1, 1}
    (L.squared_hinge, {}, np_squared_hinge, "signs"),
    (L.squared_hinge, {}, np_squared_hinge, "binary"),
    (L.categorical_hinge, {}, np_categorical_hinge, "onehot"),
    (L.cosine_similarity, {}, np_cosine, "regression"),
]


def _ids(cases):
    return [f"{c[0].__name__}-{i}" for i, c in enumerate(cases)]


@pytest.mark.parametrize("fn,kwargs,ref,kind", ELEMENTWISE, ids=_ids(ELEMENTWISE))
def test_per_sample_matches_numpy_eager_and_jit(fn, kwargs, ref, kind):
    t, p = _data(kind, (B, C))
    expected = ref(t, p)
    eager = fn(jnp.asarray(t, jnp.float32), jnp.asarray(p, jnp.float32), **kwargs)
    jitted = jax.jit(lambda a, b: fn(a, b, **kwargs))(
        jnp.asarray(t, jnp.float32), jnp.asarray(p, jnp.float32)
    )
    assert eager.shape == (B,)
    np.testing.assert_allclose(eager, expected, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(jitted, eager, rtol=1e-6, atol=1e-6)


RANK3 = [ELEMENTWISE[i] for i in (0, 4, 7, 11)]


@pytest.mark.parametrize("fn,kwargs,ref,kind", RANK3, ids=_ids(RANK3))
def test_rank3_per_sample_is_mean_over_non_batch_axes(fn, kwargs, ref, kind):
    t, p = _data(kind, (B, 3, C), seed=1)
    out = fn(jnp.asarray(t, jnp.float32), jnp.asarray(p, jnp.float32), **kwargs)
    assert out.shape == (B,)
    np.testing.assert_allclose(out, np_per_sample(ref(t, p)), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize(
    "fn,ref",
    [
        (L.mean_squared_error, np_mse),
        (L.binary_crossentropy, np_bce),
        (L.huber, np_huber),
    ],
)
@pytest.mark.parametrize(
    "true_shape,pred_shape", [((B,), (B, 1)), ((B, 1), (B,)), ((B,), (B,))]
)
def test_vector_against_column_is_one_value_per_sample(fn, ref, true_shape, pred_shape):
    t, p = _data("binary", (B, 1), seed=2)
    out = fn(jnp.asarray(t.reshape(true_shape)), jnp.asarray(p.reshape(pred_shape)))
    assert out.shape == (B,)
    np.testing.assert_allclose(out, ref(t, p), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("label_shape", [(B,), (B, 1)])
def test_sparse_categorical_crossentropy(from_logits, label_shape):
    kind = "onehot_logits" if from_logits else "onehot"
    onehot, p = _data(kind, (B, C), seed=3)
    labels = onehot.argmax(-1)
    out = L.sparse_categorical_crossentropy(
        jnp.asarray(labels.reshape(label_shape)),
        jnp.asarray(p, jnp.float32),
        from_logits,
    )
    np.testing.assert_allclose(
        out, np_scce(labels, p, from_logits), rtol=2e-5, atol=2e-5
    )
    dense = L.categorical_crossentropy(jnp.asarray(onehot), jnp.asarray(p), from_logits)
    np.testing.assert_allclose(out, dense, rtol=1e-5, atol=1e-6)


def test_sparse_categorical_ignore_class_function_and_class():
    onehot, p = _data("onehot_logits", (B, 5, C), seed=4)
    labels = onehot.argmax(-1)
    labels[0, :2] = -1
    labels[3, 4] = -1
    per_sample = L.sparse_categorical_crossentropy(
        jnp.asarray(labels),
        jnp.asarray(p, jnp.float32),
        from_logits=True,
        ignore_class=-1,
    )
    elements = np_scce(labels, p, True, ignore_class=-1)
    np.testing.assert_allclose(
        per_sample, np_per_sample(elements), rtol=2e-5, atol=2e-6
    )
    # The class reduces over the non-ignored entries only (Keras' mask).
    loss = L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    got = loss(jnp.asarray(labels), jnp.asarray(p, jnp.float32))
    np.testing.assert_allclose(got, elements.sum() / (labels != -1).sum(), rtol=2e-5)


def test_ignore_class_with_probabilities_has_finite_gradients():
    labels = jnp.array([0, 2, 255, 1])
    probs = jax.nn.softmax(jax.random.normal(jax.random.key(0), (4, 3)))

    def f(p):
        return L.SparseCategoricalCrossentropy(ignore_class=255)(labels, p)

    grad = jax.jit(jax.grad(f))(probs)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad[2], 0.0)


# ----------------------------------------------------------------------------
# Reductions, sample weights and masks.
# ----------------------------------------------------------------------------


def np_reduce(values, weights, reduction):
    weighted = values * weights
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if reduction == "mean_with_sample_weight":
        return weighted.sum() / weights.sum()
    return weighted.sum() / values.size


REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_class_reductions_and_sample_weights(reduction, weighted):
    t, p = _data("binary_logits", (B, C), seed=5)
    w = np.random.default_rng(6).uniform(0.1, 2.0, size=B) if weighted else np.ones(B)
    loss = L.BinaryCrossentropy(from_logits=True, reduction=reduction)
    got = loss(
        jnp.asarray(t),
        jnp.asarray(p),
        sample_weight=jnp.asarray(w) if weighted else None,
    )
    np.testing.assert_allclose(
        got, np_reduce(np_bce(t, p, True), w, reduction), rtol=2e-5
    )
    jitted = jax.jit(lambda a, b, c: loss(a, b, sample_weight=c))(
        jnp.asarray(t), jnp.asarray(p), jnp.asarray(w)
    )
    np.testing.assert_allclose(
        jitted, np_reduce(np_bce(t, p, True), w, reduction), rtol=2e-5
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mask_gives_the_loss_of_the_real_rows(reduction):
    t, p = _data("onehot_logits", (B, C), seed=7)
    w = np.random.default_rng(8).uniform(0.1, 2.0, size=B)
    real = np.array([True, True, False, True, False, False])
    padded_p = p.copy()
    padded_p[~real] = np.nan  # padding must not leak, not even a NaN
    loss = L.CategoricalCrossentropy(from_logits=True, reduction=reduction)
    masked = jax.jit(lambda a, b, c, m: loss(a, b, c, mask=m))(
        jnp.asarray(t), jnp.asarray(padded_p), jnp.asarray(w), jnp.asarray(real)
    )
    real_only = loss(jnp.asarray(t[real]), jnp.asarray(p[real]), jnp.asarray(w[real]))
    if reduction == "none":
        np.testing.assert_allclose(masked[real], real_only, rtol=2e-5)
        np.testing.assert_array_equal(masked[~real], 0.0)
    else:
        np.testing.assert_allclose(masked, real_only, rtol=2e-5)
        np.testing.assert_allclose(
            masked,
            np_reduce(np_cce(t[real], p[real], True), w[real], reduction),
            rtol=2e-5,
        )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reduce_loss_with_mask_equals_real_rows(reduction):
    values = np.array([1.0, 2.0, 7.0, 4.0, -3.0])
    w = np.array([0.5, 1.0, 3.0, 2.0, 1.0])
    real = np.array([True, True, False, True, False])
    got = L.reduce_loss(
        jnp.asarray(values), jnp.asarray(w), jnp.asarray(real), reduction
    )
    if reduction == "none":
        np.testing.assert_allclose(got, np.where(real, values * w, 0.0))
    else:
        np.testing.assert_allclose(
            got, np_reduce(values[real], w[real], reduction), rtol=1e-6
        )
    assert float(L.reduce_loss(jnp.ones(3), mask=jnp.zeros(3, bool))) == 0.0


def test_grad_of_masked_loss_ignores_padded_rows():
    t, p = _data("binary_logits", (4, 2), seed=9)
    mask = jnp.array([True, False, True, False])
    loss = L.BinaryCrossentropy(from_logits=True)
    g = jax.jit(jax.grad(lambda x: loss(t, x, mask=mask)))(jnp.asarray(p))
    np.testing.assert_array_equal(g[1], 0.0)
    g_real = jax.jit(jax.grad(lambda x: loss(t[[0, 2]], x)))(jnp.asarray(p[[0, 2]]))
    np.testing.assert_allclose(g[jnp.array([0, 2])], g_real, rtol=1e-5)


def test_rank3_class_reduction_matches_keras_elementwise_reduction():
    # Keras returns (batch, steps) losses and reduces every element; a (batch, steps)
    # sample weight weights each step.
    t, p = _data("regression", (B, 3, C), seed=10)
    w = np.random.default_rng(11).uniform(0.5, 2.0, size=(B, 3))
    elements = np_mse(t, p)
    for reduction in ("sum", "sum_over_batch_size", "mean_with_sample_weight"):
        got = L.MeanSquaredError(reduction=reduction)(
            jnp.asarray(t), jnp.asarray(p), jnp.asarray(w)
        )
        np.testing.assert_allclose(got, np_reduce(elements, w, reduction), rtol=2e-5)


def test_keras_documented_values():
    y_true = jnp.array([[0.0, 1.0], [0.0, 0.0]])
    logits = jnp.array([[-18.6, 0.51], [2.94, -12.8]])
    bce = L.BinaryCrossentropy(from_logits=True)
    np.testing.assert_allclose(bce(y_true, logits), 0.8654, atol=1e-3)
    np.testing.assert_allclose(
        bce(y_true, logits, jnp.array([0.8, 0.2])), 0.243, atol=1e-3
    )
    np.testing.assert_allclose(
        L.BinaryCrossentropy(from_logits=True, reduction="sum")(y_true, logits),
        1.730,
        atol=1e-3,
    )
    np.testing.assert_allclose(
        L.BinaryCrossentropy(from_logits=True, reduction=None)(y_true, logits),
        [0.235, 1.496],
        atol=1e-3,
    )
    focal = L.BinaryFocalCrossentropy
    np.testing.assert_allclose(
        focal(gamma=3, from_logits=True)(y_true, logits), 0.647, atol=1e-3
    )
    np.testing.assert_allclose(
        focal(apply_class_balancing=True, gamma=3, from_logits=True)(y_true, logits),
        0.482,
        atol=1e-3,
    )
    np.testing.assert_allclose(
        focal(gamma=3, from_logits=True)(y_true, logits, jnp.array([0.8, 0.2])),
        0.133,
        atol=1e-3,
    )
    np.testing.assert_allclose(
        focal(gamma=4, from_logits=True, reduction="sum")(y_true, logits),
        1.222,
        atol=1e-3,
    )
    np.testing.assert_allclose(
        focal(apply_class_balancing=True, gamma=5, from_logits=True, reduction=None)(
            y_true, logits
        ),
        [0.0004, 0.8670],
        atol=1e-3,
    )
    cce = L.CategoricalCrossentropy()
    onehot = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    probs = jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    np.testing.assert_allclose(cce(onehot, probs), 1.177, atol=1e-3)
    np.testing.assert_allclose(
        cce(onehot, probs, jnp.array([0.3, 0.7])), 0.814, atol=1e-3
    )
    np.testing.assert_allclose(
        L.huber([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]]), [0.18, 0.13]
    )


# ----------------------------------------------------------------------------
# Gradients.
# ----------------------------------------------------------------------------


GRAD_CASES = [
    (L.binary_crossentropy, {}, "binary"),
    (
        L.binary_crossentropy,
        {"from_logits": True, "label_smoothing": 0.1},
        "binary_logits",
    ),
    (L.binary_focal_crossentropy, {"apply_class_balancing": True}, "binary"),
    (L.binary_focal_crossentropy, {"from_logits": True}, "binary_logits"),
    (L.categorical_crossentropy, {"label_smoothing": 0.1}, "onehot"),
    (L.categorical_crossentropy, {"from_logits": True}, "onehot_logits"),
    (L.huber, {"delta": 0.7}, "regression"),
    (L.log_cosh, {}, "regression"),
]


@pytest.mark.parametrize("fn,kwargs,kind", GRAD_CASES, ids=_ids(GRAD_CASES))
def test_check_grads(fn, kwargs, kind):
    t, p = _data(kind, (3, C), seed=12)
    if fn is L.huber:
        p = np.where(np.abs(p - t - 0.7) < 0.05, p + 0.2, p)  # away from the kink
    t = jnp.asarray(t, jnp.float32)
    check_grads(
        jax.jit(lambda x: jnp.sum(fn(t, x, **kwargs))),
        (jnp.asarray(p, jnp.float32),),
        order=1,
        modes=("rev",),
        eps=1e-3,
        atol=2e-2,
        rtol=2e-2,
    )


@pytest.mark.parametrize("from_logits", [False, True])
def test_check_grads_sparse(from_logits):
    onehot, p = _data("onehot_logits" if from_logits else "onehot", (3, C), seed=13)
    labels = jnp.asarray(onehot.argmax(-1))
    check_grads(
        jax.jit(
            lambda x: jnp.sum(L.sparse_categorical_crossentropy(labels, x, from_logits))
        ),
        (jnp.asarray(p, jnp.float32),),
        order=1,
        modes=("rev",),
        eps=1e-3,
        atol=2e-2,
        rtol=2e-2,
    )


def test_cosine_similarity_gradient_is_finite_at_zero_vector():
    g = jax.jit(jax.grad(lambda x: jnp.sum(L.cosine_similarity(jnp.ones((2, 3)), x))))(
        jnp.zeros((2, 3))
    )
    assert np.all(np.isfinite(g))


def test_low_precision_predictions_are_computed_in_float32():
    t, p = _data("binary", (B, C), seed=14)
    out = L.binary_crossentropy(jnp.asarray(t), jnp.asarray(p, jnp.bfloat16))
    assert out.dtype == jnp.float32
    p_bf16 = np.asarray(jnp.asarray(p, jnp.bfloat16).astype(jnp.float32))
    np.testing.assert_allclose(out, np_bce(t, p_bf16), rtol=1e-5)


# ----------------------------------------------------------------------------
# Label shape errors and label checks.
# ----------------------------------------------------------------------------


def test_one_hot_labels_to_sparse_loss_raise():
    onehot, p = _data("onehot", (B, C))
    with pytest.raises(ValueError, match="look one-hot.*categorical_crossentropy"):
        L.sparse_categorical_crossentropy(jnp.asarray(onehot), jnp.asarray(p))
    with pytest.raises(ValueError, match="look one-hot"):
        jax.jit(L.SparseCategoricalCrossentropy())(jnp.asarray(onehot), jnp.asarray(p))


@pytest.mark.parametrize("label_shape", [(B,), (B, 1)])
def test_sparse_labels_to_categorical_loss_raise(label_shape):
    _, p = _data("onehot", (B, C))
    labels = jnp.zeros(label_shape, jnp.int32)
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        L.categorical_crossentropy(labels, jnp.asarray(p))
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        L.CategoricalCrossentropy(from_logits=True)(labels, jnp.asarray(p))


def test_other_shape_errors():
    with pytest.raises(ValueError, match="binary_crossentropy.*same shape"):
        L.binary_crossentropy(jnp.zeros((B,)), jnp.full((B, 3), 0.5))
    with pytest.raises(ValueError, match="mean_squared_error.*same shape"):
        L.mean_squared_error(jnp.zeros((B, 2)), jnp.zeros((B, 3)))
    with pytest.raises(ValueError, match="single class"):
        L.categorical_crossentropy(jnp.ones((B, 1)), jnp.ones((B, 1)))
    with pytest.raises(ValueError, match="does not fit"):
        L.sparse_categorical_crossentropy(
            jnp.zeros((B, 2), jnp.int32), jnp.ones((B, 5, 3))
        )
    with pytest.raises(ValueError, match="sample_weight"):
        L.MeanSquaredError()(jnp.zeros((B, 2)), jnp.zeros((B, 2)), jnp.ones((B, 3)))
    with pytest.raises(ValueError, match="one value per sample"):
        L.LossFunctionWrapper(lambda t, p: jnp.mean(t - p))(
            jnp.zeros((B, 2)), jnp.zeros((B, 2))
        )


def test_shape_checks_accept_a_symbolic_batch():
    (b,) = jax.export.symbolic_shape("b")
    labels = jax.ShapeDtypeStruct((b,), jnp.int32)
    preds = jax.ShapeDtypeStruct((b, C), jnp.float32)
    out = jax.eval_shape(L.sparse_categorical_crossentropy, labels, preds)
    assert out.shape == (b,)
    loss = jax.eval_shape(L.CategoricalCrossentropy(), preds, preds)
    assert loss.shape == ()
    with pytest.raises(ValueError, match="look one-hot"):
        jax.eval_shape(L.sparse_categorical_crossentropy, preds, preds)


def test_check_sparse_labels():
    L.check_sparse_labels(np.array([0, 3, 2]), 4)
    L.check_sparse_labels(np.array([0.0, 3.0]), 4)
    L.check_sparse_labels(np.array([[0, 255], [1, 2]]), 3, ignore_class=255)
    with pytest.raises(
        ValueError, match=r"label 7 at index \(1, 0\).*\[0, 3\).*1 of 4"
    ):
        L.check_sparse_labels(np.array([[0, 1], [7, 2]]), 3)
    with pytest.raises(ValueError, match=r"label -1 .*\[0, 3\)"):
        L.check_sparse_labels(np.array([-1, 1]), 3)
    with pytest.raises(ValueError, match="label 1.5"):
        L.check_sparse_labels(np.array([1.5]), 3)


def test_sparse_labels_out_of_range_in_graph():
    f = jax.jit(lambda y: L.sparse_labels_out_of_range(y, 3))
    assert not bool(f(jnp.array([0, 1, 2])))
    assert bool(f(jnp.array([0, 3])))
    assert bool(f(jnp.array([-1, 0])))
    assert not bool(
        L.sparse_labels_out_of_range(jnp.array([0, -1]), 3, ignore_class=-1)
    )


# ----------------------------------------------------------------------------
# Lookup, configs, validation.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,expected",
    [
        ("mse", L.mean_squared_error),
        ("MAE", L.mean_absolute_error),
        ("mape", L.mean_absolute_percentage_error),
        ("msle", L.mean_squared_logarithmic_error),
        ("bce", L.binary_crossentropy),
        ("kld", L.kl_divergence),
        ("kullback_leibler_divergence", L.kl_divergence),
        ("logcosh", L.log_cosh),
        ("huber_loss", L.huber),
        ("sparse_categorical_crossentropy", L.sparse_categorical_crossentropy),
        ("cosine_similarity", L.cosine_similarity),
    ],
)
def test_get_names_and_aliases(name, expected):
    assert L.get(name) is expected


def test_get_other_identifiers():
    assert L.get(None) is None
    assert isinstance(L.get("Huber"), L.Huber)
    loss = L.SparseCategoricalCrossentropy(from_logits=True)
    assert L.get(loss) is loss
    assert isinstance(L.get(L.Poisson), L.Poisson)
    custom = lambda t, p: (t - p) ** 2  # noqa: E731
    assert L.get(custom) is custom
    got = L.get(
        {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": True}}
    )
    assert got.get_config()["from_logits"] is True
    with pytest.raises(ValueError, match="Did you mean 'mean_squared_error'"):
        L.get("mean_squared_eror")
    with pytest.raises(ValueError, match="Unknown loss 'foo'"):
        L.get("foo")
    with pytest.raises(TypeError):
        L.get(3)


ALL_CLASSES = [
    (L.MeanSquaredError(), "regression"),
    (L.MeanAbsoluteError(reduction="sum"), "regression"),
    (L.MeanAbsolutePercentageError(), "positive"),
    (L.MeanSquaredLogarithmicError(), "positive"),
    (L.Huber(delta=0.5, name="h"), "regression"),
    (L.LogCosh(), "regression"),
    (L.BinaryCrossentropy(from_logits=True, label_smoothing=0.1), "binary_logits"),
    (L.BinaryFocalCrossentropy(apply_class_balancing=True, gamma=1.0), "binary"),
    (L.CategoricalCrossentropy(label_smoothing=0.2), "onehot"),
    (L.KLDivergence(), "probs"),
    (L.Poisson(), "positive"),
    (L.Hinge(), "signs"),
    (L.SquaredHinge(), "signs"),
    (L.CategoricalHinge(), "onehot"),
    (L.CosineSimilarity(axis=-1), "regression"),
    (L.LossFunctionWrapper(L.huber, delta=2.0), "regression"),
]


@pytest.mark.parametrize(
    "loss,kind", ALL_CLASSES, ids=[type(c[0]).__name__ for c in ALL_CLASSES]
)
def test_class_matches_function_and_config_round_trips(loss, kind):
    t, p = _data(kind, (B, C), seed=15)
    t, p = jnp.asarray(t, jnp.float32), jnp.asarray(p, jnp.float32)
    per_sample = loss.call(t, p)
    assert per_sample.shape == (B,)
    reduced = L.reduce_loss(per_sample, reduction=loss.reduction)
    np.testing.assert_allclose(loss(t, p), reduced, rtol=1e-6)
    config = L.serialize(loss)
    import json

    rebuilt = L.deserialize(json.loads(json.dumps(config)))
    assert type(rebuilt) is type(loss) and rebuilt.get_config() == loss.get_config()
    np.testing.assert_allclose(rebuilt(t, p), loss(t, p), rtol=1e-6)


def test_scce_class_config_round_trip():
    loss = L.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=0, reduction="sum"
    )
    rebuilt = L.get(L.serialize(loss))
    assert rebuilt.get_config() == loss.get_config()


def test_serialize_functions():
    assert L.serialize(L.hinge) == {"class_name": "function", "config": "hinge"}
    assert L.deserialize(L.serialize(L.hinge)) is L.hinge
    with pytest.raises(ValueError, match="Cannot serialize"):
        L.serialize(lambda t, p: t - p)


def test_config_validation():
    with pytest.raises(ValueError, match="reduction"):
        L.MeanSquaredError(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        L.BinaryCrossentropy(label_smoothing=1.5)
    with pytest.raises(TypeError, match="from_logits"):
        L.CategoricalCrossentropy(from_logits="yes")
    with pytest.raises(ValueError, match="delta"):
        L.Huber(delta=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        L.BinaryFocalCrossentropy(alpha=2.0)
    with pytest.raises(ValueError, match="batch axis"):
        L.categorical_crossentropy(jnp.ones((2, 3)), jnp.ones((2, 3)), axis=0)
    with pytest.raises(TypeError, match="must define"):
        L.Loss()(jnp.ones((2, 1)), jnp.ones((2, 1)))
    assert L.MeanSquaredError(reduction=None).reduction == "none"


def test_loss_kind_reads_types_and_functions_not_names():
    assert loss_kind(L.SparseCategoricalCrossentropy(from_logits=True)) == "sparse"
    assert loss_kind(L.sparse_categorical_crossentropy) == "sparse"
    assert loss_kind(L.LossFunctionWrapper(L.binary_crossentropy)) == "binary"
    assert loss_kind(L.BinaryFocalCrossentropy()) == "binary"
    renamed = L.CategoricalCrossentropy(name="sparse_categorical_crossentropy")
    assert loss_kind(renamed) == "categorical"
    assert loss_kind(L.MeanSquaredError()) is None

    def sparse_categorical_crossentropy(y_true, y_pred):
        return y_pred

    assert loss_kind(sparse_categorical_crossentropy) is None


def test_catalogue_names_and_round_trips():
    assert L.get("MSE") is L.get("mse") is L.mean_squared_error
    assert L.serialize(L.get("huber_loss")) == {
        "class_name": "function",
        "config": "huber",
    }
    with pytest.raises(ValueError, match="is a class"):
        L.deserialize({"class_name": "function", "config": "Huber"})
    with pytest.raises(ValueError, match="not a Loss class"):
        L.deserialize({"class_name": "x"}, custom_objects={"x": dict})
    with pytest.raises(ValueError, match="Cannot serialize"):
        L.serialize(L.Huber)
    wrapper = L.LossFunctionWrapper(L.huber, delta=0.5)
    assert wrapper.fn_kwargs == {"delta": 0.5}
    rebuilt = L.deserialize(L.serialize(wrapper))
    assert rebuilt.fn is L.huber and rebuilt.fn_kwargs == {"delta": 0.5}
