"""Tests for funkeras.metrics: stateful accumulation against NumPy references."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from funkeras import losses as L
from funkeras import metrics as M

EPS = 1e-7
C = 4


@pytest.fixture(autouse=True)
def _strict_rank_promotion():
    with jax.numpy_rank_promotion("raise"):
        yield


# ----------------------------------------------------------------------------
# Data and references. A reference takes all rows at once, with row weights.
# ----------------------------------------------------------------------------


def _data(kind, n, seed):
    rng = np.random.default_rng(seed)
    if kind == "labels":
        return rng.integers(0, 3, size=(n, 1)), rng.integers(0, 3, size=(n, 1))
    if kind == "binary":
        return rng.integers(0, 2, size=(n, 1)).astype(float), rng.uniform(size=(n, 1))
    if kind == "multilabel":
        return rng.integers(0, 2, size=(n, C)).astype(float), rng.uniform(size=(n, C))
    if kind == "onehot":
        return np.eye(C)[rng.integers(0, C, size=n)], rng.dirichlet(np.ones(C), size=n)
    if kind == "sparse":
        return rng.integers(0, C, size=n), rng.normal(size=(n, C))
    if kind == "regression":
        return rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    if kind == "positive":
        return rng.uniform(0.5, 2.0, size=(n, 3)), rng.uniform(0.5, 2.0, size=(n, 3))
    raise ValueError(kind)


def wmean(values, w):
    return (values * w).sum() / w.sum()


def np_in_top_k(labels, scores, k):
    target = scores[np.arange(len(labels)), labels]
    return ((scores > target[:, None]).sum(-1) < k).astype(float)


def np_counts(t, p, w, thresholds):
    """tp, fp, fn, tn per threshold, by explicit comparison `p > threshold`."""
    t = (t != 0).reshape(len(w), -1)
    p = p.reshape(len(w), -1)
    ww = np.broadcast_to(w[:, None], t.shape)
    out = []
    for thr in thresholds:
        pos = p > thr
        out.append(
            [
                (ww * (t & pos)).sum(),
                (ww * (~t & pos)).sum(),
                (ww * (t & ~pos)).sum(),
                (ww * (~t & ~pos)).sum(),
            ]
        )
    return np.array(out).T  # (4, T)


def np_auc_keras(t, p, w, num_thresholds=200, curve="ROC", summation="interpolation"):
    """Keras' AUC: counts at epsilon-padded thresholds, then its Riemann sums."""
    inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    thresholds = [-EPS, *inner, 1 + EPS]
    tp, fp, fn, tn = np_counts(t, p, w, thresholds)
    n = len(thresholds)
    if curve == "PR" and summation == "interpolation":
        total = 0.0
        for i in range(n - 1):
            dtp = tp[i] - tp[i + 1]
            p_a, p_b = tp[i] + fp[i], tp[i + 1] + fp[i + 1]
            slope = dtp / (p_a - p_b) if p_a - p_b > 0 else 0.0
            intercept = tp[i + 1] - slope * p_b
            ratio = p_a / p_b if p_a > 0 and p_b > 0 else 1.0
            denom = tp[i + 1] + fn[i + 1]
            if denom > 0:
                total += slope * (dtp + intercept * np.log(ratio)) / denom
        return total

    def ratio(a, b):
        return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)

    recall = ratio(tp, tp + fn)
    if curve == "ROC":
        x, y = ratio(fp, fp + tn), recall
    else:
        x, y = recall, ratio(tp, tp + fp)
    if summation == "interpolation":
        h = (y[:-1] + y[1:]) / 2
    elif summation == "minoring":
        h = np.minimum(y[:-1], y[1:])
    else:
        h = np.maximum(y[:-1], y[1:])
    return float(((x[:-1] - x[1:]) * h).sum())


def np_r2(t, p, w, aggregation="uniform_average"):
    w = w[:, None]
    mean = (w * t).sum(0) / w.sum(0)
    ss_tot = (w * (t - mean) ** 2).sum(0)
    ss_res = (w * (t - p) ** 2).sum(0)
    raw = 1 - ss_res / ss_tot
    if aggregation == "uniform_average":
        return raw.mean()
    if aggregation == "variance_weighted_average":
        return (ss_tot * raw).sum() / ss_tot.sum()
    return raw


def np_fbeta(t, p, w, average=None, threshold=None, beta=1.0):
    if threshold is None:
        pred = (p >= p.max(-1, keepdims=True)) & (np.abs(p) > 1e-9)
    else:
        pred = p > threshold
    pred = pred.astype(float)
    ww = w[:, None]
    axis = None if average == "micro" else 0
    tp = (ww * pred * t).sum(axis)
    fp = (ww * pred * (1 - t)).sum(axis)
    fn = (ww * (1 - pred) * t).sum(axis)
    support = (ww * t).sum(axis)
    precision = tp / (tp + fp + EPS)
    recall = tp / (tp + fn + EPS)
    score = (1 + beta**2) * precision * recall / (beta**2 * precision + recall + EPS)
    if average == "weighted":
        return (score * support / (support.sum() + EPS)).sum()
    if average is not None:
        return score.mean()
    return score


CASES = [
    # (metric factory, data kind, reference(t, p, w))
    (M.Accuracy, "labels", lambda t, p, w: wmean((t == p).mean(-1), w)),
    (M.BinaryAccuracy, "binary", lambda t, p, w: wmean(((p > 0.5) == t).mean(-1), w)),
    (
        lambda: M.BinaryAccuracy(threshold=0.3),
        "multilabel",
        lambda t, p, w: wmean(((p > 0.3) == t).mean(-1), w),
    ),
    (
        M.CategoricalAccuracy,
        "onehot",
        lambda t, p, w: wmean(t.argmax(-1) == p.argmax(-1), w),
    ),
    (
        M.SparseCategoricalAccuracy,
        "sparse",
        lambda t, p, w: wmean(t == p.argmax(-1), w),
    ),
    (
        lambda: M.TopKCategoricalAccuracy(k=2),
        "onehot",
        lambda t, p, w: wmean(np_in_top_k(t.argmax(-1), p, 2), w),
    ),
    (
        lambda: M.SparseTopKCategoricalAccuracy(k=2),
        "sparse",
        lambda t, p, w: wmean(np_in_top_k(t, p, 2), w),
    ),
    (
        M.MeanSquaredError,
        "regression",
        lambda t, p, w: wmean(((t - p) ** 2).mean(-1), w),
    ),
    (
        M.MeanAbsoluteError,
        "regression",
        lambda t, p, w: wmean(np.abs(t - p).mean(-1), w),
    ),
    (
        M.RootMeanSquaredError,
        "regression",
        lambda t, p, w: np.sqrt(wmean(((t - p) ** 2).mean(-1), w)),
    ),
    (
        M.MeanAbsolutePercentageError,
        "positive",
        lambda t, p, w: wmean(100 * (np.abs(t - p) / np.abs(t)).mean(-1), w),
    ),
    (
        M.MeanSquaredLogarithmicError,
        "positive",
        lambda t, p, w: wmean(((np.log1p(p) - np.log1p(t)) ** 2).mean(-1), w),
    ),
    (
        M.LogCoshError,
        "regression",
        lambda t, p, w: wmean(np.log(np.cosh(p - t)).mean(-1), w),
    ),
    (M.R2Score, "regression", np_r2),
    (
        M.Precision,
        "binary",
        lambda t, p, w: (lambda c: c[0] / (c[0] + c[1]))(
            np_counts(t, p, w, [0.5])[:, 0]
        ),
    ),
    (
        M.Recall,
        "multilabel",
        lambda t, p, w: (lambda c: c[0] / (c[0] + c[2]))(
            np_counts(t, p, w, [0.5])[:, 0]
        ),
    ),
    (
        lambda: M.Recall(thresholds=[0.0, 0.25, 0.5, 0.75, 1.0]),  # evenly spaced path
        "multilabel",
        lambda t, p, w: (lambda c: c[0] / (c[0] + c[2]))(
            np_counts(t, p, w, [0.0, 0.25, 0.5, 0.75, 1.0])
        ),
    ),
    (M.AUC, "binary", np_auc_keras),
    (
        lambda: M.AUC(num_thresholds=50, curve="PR"),
        "multilabel",
        lambda t, p, w: np_auc_keras(t, p, w, 50, "PR"),
    ),
    (M.F1Score, "onehot", np_fbeta),
    (
        lambda: M.F1Score(average="micro", threshold=0.5),
        "multilabel",
        lambda t, p, w: np_fbeta(t, p, w, "micro", 0.5),
    ),
]


def _spec(p):
    return jax.ShapeDtypeStruct(p.shape[1:], jnp.float32)


def _accumulate(metric, batches, *, jit):
    state = metric.init(_spec(batches[0][1]))
    update = jax.jit(metric.update) if jit else metric.update
    for t, p, w, mask in batches:
        state = update(state, jnp.asarray(t), jnp.asarray(p), w, mask)
    return state


def _case_id(case):
    metric = case[0]()
    return f"{type(metric).__name__}-{case[1]}"


@pytest.mark.parametrize("factory,kind,ref", CASES, ids=[_case_id(c) for c in CASES])
def test_accumulated_result_matches_numpy(factory, kind, ref):
    """Three batches: unweighted, then weighted with padded rows (NaN predictions)."""
    metric = factory()
    rng = np.random.default_rng(0)
    batches, real_t, real_p, real_w = [], [], [], []
    for i in range(3):
        t, p = _data(kind, 6, seed=i + 10)  # one shape: one compile per trace
        if i == 0:
            batches.append((t, p, None, None))
            w, keep = np.ones(6), np.ones(6, bool)
        else:
            w = rng.uniform(0.2, 2.0, size=6)
            keep = np.ones(6, bool)
            keep[rng.choice(6, 2 * i - 2, replace=False)] = False
            p_in = p
            if np.issubdtype(p.dtype, np.floating):
                p_in = np.where(keep.reshape((6,) + (1,) * (p.ndim - 1)), p, np.nan)
            batches.append((t, p_in, jnp.asarray(w), jnp.asarray(keep)))
        real_t.append(t[keep])
        real_p.append(p[keep])
        real_w.append(w[keep])
    expected = ref(
        np.concatenate(real_t), np.concatenate(real_p), np.concatenate(real_w)
    )
    eager = _accumulate(metric, batches, jit=False)
    jitted = _accumulate(metric, batches, jit=True)
    for key in eager:
        np.testing.assert_allclose(jitted[key], eager[key], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(metric.result(eager), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        jax.jit(metric.result)(jitted), expected, rtol=1e-4, atol=1e-5
    )


# ----------------------------------------------------------------------------
# Specific behaviours.
# ----------------------------------------------------------------------------


def _one_state(metric, kind, n=40, seed=20):
    t, p = _data(kind, n, seed)
    w = np.random.default_rng(seed).uniform(0.2, 2.0, size=n)
    state = jax.jit(metric.update)(
        metric.init(_spec(p)), jnp.asarray(t), jnp.asarray(p), w
    )
    return state, t, p, w


@pytest.mark.parametrize("curve", ["ROC", "PR"])
def test_auc_summation_methods(curve):
    state, t, p, w = _one_state(M.AUC(num_thresholds=30), "multilabel")
    for method in ("interpolation", "minoring", "majoring"):
        m = M.AUC(num_thresholds=30, curve=curve, summation_method=method)
        np.testing.assert_allclose(
            m.result(state), np_auc_keras(t, p, w, 30, curve, method), rtol=1e-5
        )


def test_r2_and_fbeta_aggregations():
    state, t, p, w = _one_state(M.R2Score(), "regression")
    for aggregation in ("uniform_average", "variance_weighted_average", None):
        m = M.R2Score(class_aggregation=aggregation)
        np.testing.assert_allclose(
            m.result(state), np_r2(t, p, w, aggregation), rtol=1e-5
        )
    state, t, p, w = _one_state(M.FBetaScore(threshold=0.4), "multilabel")
    for average in (None, "macro", "weighted"):
        for beta in (0.5, 1.0, 2.0):
            m = M.FBetaScore(average=average, beta=beta, threshold=0.4)
            np.testing.assert_allclose(
                m.result(state), np_fbeta(t, p, w, average, 0.4, beta), rtol=1e-5
            )
    precision = M.Precision(thresholds=[0.2, 0.5, 0.7])
    state, t, p, w = _one_state(precision, "multilabel")
    c = np_counts(t, p, w, [0.2, 0.5, 0.7])
    np.testing.assert_allclose(precision.result(state), c[0] / (c[0] + c[1]), rtol=1e-5)


def test_auc_keras_documented_values():
    m = M.AUC(num_thresholds=3)
    state = m.update(m.init(), jnp.array([0, 0, 1, 1]), jnp.array([0.0, 0.5, 0.3, 0.9]))
    np.testing.assert_allclose(m.result(state), 0.75)
    state = m.update(
        m.init(),
        jnp.array([0, 0, 1, 1]),
        jnp.array([0.0, 0.5, 0.3, 0.9]),
        sample_weight=jnp.array([1.0, 0.0, 0.0, 1.0]),
    )
    np.testing.assert_allclose(m.result(state), 1.0)


def test_auc_equals_exact_roc_auc_on_well_separated_scores():
    # 40 distinct scores on a grid coarser than the 199 threshold intervals: every
    # interval holds at most one score, so the trapezoid sum is the exact AUC.
    rng = np.random.default_rng(1)
    scores = (rng.permutation(40) + 0.5) / 40
    labels = (rng.uniform(size=40) < scores).astype(float)
    pos, neg = scores[labels == 1], scores[labels == 0]
    exact = (pos[:, None] > neg[None, :]).mean()
    m = M.AUC()
    state = m.update(m.init(), jnp.asarray(labels), jnp.asarray(scores))
    np.testing.assert_allclose(m.result(state), exact, rtol=1e-6)
    # Logits give the same curve.
    logits = np.log(scores / (1 - scores))
    ml = M.AUC(from_logits=True)
    np.testing.assert_allclose(
        ml.result(ml.update(ml.init(), jnp.asarray(labels), jnp.asarray(logits))),
        exact,
        rtol=1e-5,
    )


def test_auc_explicit_thresholds_and_multi_label():
    t, p = _data("multilabel", 30, seed=3)
    thresholds = [0.1, 0.35, 0.6, 0.9]
    m = M.AUC(thresholds=thresholds)
    state = jax.jit(m.update)(m.init(), jnp.asarray(t), jnp.asarray(p))
    tp, fp, fn, tn = np_counts(t, p, np.ones(30), [-EPS, *thresholds, 1 + EPS])
    np.testing.assert_allclose(state["true_positives"], tp)
    np.testing.assert_allclose(state["true_negatives"], tn)
    assert m.get_config()["thresholds"] == thresholds
    # multi_label: one curve per label, averaged (weighted by label_weights).
    lw = [1.0, 2.0, 0.5, 1.5]
    mm = M.AUC(num_thresholds=40, multi_label=True, label_weights=lw)
    state = jax.jit(mm.update)(mm.init(_spec(p)), jnp.asarray(t), jnp.asarray(p))
    assert state["true_positives"].shape == (40, C)
    per_label = [np_auc_keras(t[:, j], p[:, j], np.ones(30), 40) for j in range(C)]
    np.testing.assert_allclose(
        mm.result(state), np.average(per_label, weights=lw), rtol=1e-5
    )


def test_precision_recall_top_k_and_class_id():
    t = np.array([[0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 1, 1]], float)
    p = np.array([[0.9, 0.8, 0.1, 0.3], [0.6, 0.2, 0.7, 0.1], [0.2, 0.3, 0.4, 0.95]])
    m = M.Precision(top_k=2)
    state = m.update(m.init(), jnp.asarray(t), jnp.asarray(p))
    # Top-2 per row: {0,1}, {2,0}, {3,2} -> hits 1 + 1 + 2 of 6.
    np.testing.assert_allclose(m.result(state), 4 / 6, rtol=1e-6)
    r = M.Recall(class_id=3)
    state = r.update(r.init(), jnp.asarray(t), jnp.asarray(p))
    np.testing.assert_allclose(
        r.result(state), 0.5
    )  # class 3: true in rows 1, 2; 0.95 found
    rk = M.Recall(top_k=1, class_id=2)
    state = rk.update(rk.init(), jnp.asarray(t), jnp.asarray(p))
    np.testing.assert_allclose(rk.result(state), 0.0)
    with pytest.raises(ValueError, match="class_id"):
        M.Precision(class_id=7).update(M.Precision(class_id=7).init(), t, p)


def test_top_k_ties_count_as_hits():
    scores = jnp.array([[0.5, 0.5, 0.5, 0.1]])
    assert (
        float(M.sparse_top_k_categorical_accuracy(jnp.array([2]), scores, k=1)[0])
        == 1.0
    )
    assert (
        float(M.sparse_top_k_categorical_accuracy(jnp.array([3]), scores, k=3)[0])
        == 0.0
    )
    assert (
        float(M.sparse_top_k_categorical_accuracy(jnp.array([3]), scores, k=9)[0])
        == 1.0
    )


def test_mean_and_sum_values_and_scalars():
    m = M.Mean()
    state = m.update(m.init(), jnp.array([[1.0, 3.0], [5.0, 7.0]]))
    state = m.update(state, jnp.asarray(10.0), sample_weight=2.0)
    state = m.update(state, jnp.asarray(4.0), mask=jnp.array([True, True, False]))
    np.testing.assert_allclose(m.result(state), (2 + 6 + 20 + 8) / 6)
    s = M.Sum()
    state = s.update(
        s.init(), jnp.array([[1.0, 3.0], [5.0, 7.0]]), mask=jnp.array([True, False])
    )
    np.testing.assert_allclose(s.result(state), 4.0)
    assert float(m.result(m.init())) == 0.0


def test_mean_metric_wrapper_of_a_loss_and_r2_adjusted():
    t, p = _data("binary", 8, seed=4)
    m = M.MeanMetricWrapper(L.binary_crossentropy, label_smoothing=0.1)
    state = m.update(m.init(), jnp.asarray(t), jnp.asarray(p))
    np.testing.assert_allclose(
        m.result(state),
        np.mean(L.binary_crossentropy(t, p, label_smoothing=0.1)),
        rtol=1e-6,
    )
    assert m.name == "binary_crossentropy"
    t, p = _data("regression", 12, seed=5)
    r2 = M.R2Score(num_regressors=3)
    state = r2.update(r2.init(_spec(p)), jnp.asarray(t), jnp.asarray(p))
    n, k = 36.0, 3.0  # Keras counts every element as a sample
    plain = np_r2(t, p, np.ones(12))
    np.testing.assert_allclose(
        r2.result(state), 1 - (1 - plain) * (n - 1) / (n - k - 1), rtol=1e-5
    )
    few = M.R2Score(num_regressors=100)
    state = few.update(few.init(_spec(p)), jnp.asarray(t), jnp.asarray(p))
    np.testing.assert_allclose(few.result(state), plain, rtol=1e-5)


def test_subclass_with_mask():
    class CountPositives(M.Metric):
        def init(self, y_pred_spec=None):
            return {"count": jnp.zeros(())}

        def update(self, state, y_true, y_pred, sample_weight=None, mask=None):
            w = M.row_weights(y_pred, sample_weight, mask)
            hits = (y_pred[:, 0] > 0).astype(jnp.float32)
            hits = hits if w is None else hits * w
            return {"count": state["count"] + jnp.sum(hits)}

        def result(self, state):
            return state["count"]

    m = CountPositives()
    assert m.name == "count_positives"
    y = jnp.array([[1.0], [2.0], [-1.0], [3.0]])
    state = jax.jit(m.update)(
        m.init(), y, y, None, jnp.array([True, True, True, False])
    )
    assert float(m.result(state)) == 2.0
    with pytest.raises(TypeError, match="must define `init`"):
        M.Metric().init()


# ----------------------------------------------------------------------------
# Shape errors.
# ----------------------------------------------------------------------------


def test_label_shape_errors():
    onehot, p = _data("onehot", 4, seed=6)
    with pytest.raises(ValueError, match="look one-hot"):
        M.sparse_categorical_accuracy(jnp.asarray(onehot), jnp.asarray(p))
    with pytest.raises(ValueError, match="sparse_categorical_accuracy"):
        M.categorical_accuracy(jnp.zeros((4,), jnp.int32), jnp.asarray(p))
    with pytest.raises(ValueError, match="sparse_top_k_categorical_accuracy"):
        M.top_k_categorical_accuracy(jnp.zeros((4, 1)), jnp.asarray(p))
    with pytest.raises(ValueError, match="same shape"):
        M.BinaryAccuracy().update(
            M.BinaryAccuracy().init(), jnp.zeros((4,)), jnp.zeros((4, 3))
        )
    with pytest.raises(ValueError, match="needs `y_pred_spec`"):
        M.R2Score().init()
    with pytest.raises(ValueError, match="3 outputs"):
        r2 = M.R2Score()
        r2.update(
            r2.init(jax.ShapeDtypeStruct((3,), jnp.float32)),
            jnp.zeros((4, 2)),
            jnp.zeros((4, 2)),
        )
    with pytest.raises(ValueError, match="mask"):
        M.row_weights(jnp.zeros((4, 2)), mask=jnp.ones((4, 2), bool))


def test_vector_labels_against_column_predictions_do_not_broadcast():
    t = jnp.array([1.0, 0.0, 1.0])
    p = jnp.array([[0.9], [0.8], [0.2]])
    assert M.binary_accuracy(t, p).shape == (3,)
    np.testing.assert_allclose(M.binary_accuracy(t, p), [1.0, 0.0, 0.0])
    m = M.Precision()
    np.testing.assert_allclose(m.result(m.update(m.init(), t, p)), 0.5)


# ----------------------------------------------------------------------------
# Lookup, names and configs.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,cls,threshold",
    [
        ({"loss": "binary_crossentropy"}, M.BinaryAccuracy, 0.5),
        ({"loss": L.BinaryCrossentropy(from_logits=True)}, M.BinaryAccuracy, 0.0),
        ({"loss": "bce", "output_shape": (5,)}, M.BinaryAccuracy, 0.5),
        ({"loss": L.binary_focal_crossentropy}, M.BinaryAccuracy, 0.5),
        (
            {"loss": "sparse_categorical_crossentropy"},
            M.SparseCategoricalAccuracy,
            None,
        ),
        (
            {"loss": L.SparseCategoricalCrossentropy(True)},
            M.SparseCategoricalAccuracy,
            None,
        ),
        ({"loss": "CategoricalCrossentropy"}, M.CategoricalAccuracy, None),
        ({"loss": "mse", "output_shape": (1,)}, M.BinaryAccuracy, 0.5),
        ({"output_shape": ()}, M.BinaryAccuracy, 0.5),
        (
            {"output_shape": (10,), "label_shape": ()},
            M.SparseCategoricalAccuracy,
            None,
        ),
        (
            {"output_shape": (10,), "label_shape": (1,)},
            M.SparseCategoricalAccuracy,
            None,
        ),
        (
            {"output_shape": (10,), "label_shape": (10,)},
            M.CategoricalAccuracy,
            None,
        ),
        ({}, M.Accuracy, None),
    ],
)
@pytest.mark.parametrize("name", ["accuracy", "acc"])
def test_accuracy_resolution(kwargs, cls, threshold, name):
    metric = M.get(name, **kwargs)
    assert type(metric) is cls
    assert metric.name == name
    if threshold is not None:
        assert metric.threshold == threshold


def test_accuracy_resolution_from_specs_and_ambiguity():
    out = jax.ShapeDtypeStruct((10,), jnp.float32)
    labels = jax.ShapeDtypeStruct((), jnp.int32)
    assert (
        type(M.get("accuracy", None, out, label_shape=labels))
        is M.SparseCategoricalAccuracy
    )
    with pytest.raises(ValueError, match="label_shape"):
        M.get("accuracy", output_shape=(10,))


@pytest.mark.parametrize(
    "name,cls",
    [
        ("mae", M.MeanAbsoluteError),
        ("mse", M.MeanSquaredError),
        ("rmse", M.RootMeanSquaredError),
        ("mape", M.MeanAbsolutePercentageError),
        ("msle", M.MeanSquaredLogarithmicError),
        ("mean_absolute_error", M.MeanAbsoluteError),
        ("binary_accuracy", M.BinaryAccuracy),
        ("categorical_accuracy", M.CategoricalAccuracy),
        ("sparse_categorical_accuracy", M.SparseCategoricalAccuracy),
        ("top_k_categorical_accuracy", M.TopKCategoricalAccuracy),
        ("sparse_top_k_categorical_accuracy", M.SparseTopKCategoricalAccuracy),
        ("auc", M.AUC),
        ("precision", M.Precision),
        ("recall", M.Recall),
        ("r2_score", M.R2Score),
        ("log_cosh_error", M.LogCoshError),
        ("f1_score", M.F1Score),
        ("AUC", M.AUC),
        ("RootMeanSquaredError", M.RootMeanSquaredError),
    ],
)
def test_get_names_keep_the_given_name(name, cls):
    metric = M.get(name)
    assert type(metric) is cls
    assert metric.name == name


def test_get_loss_names_functions_and_errors():
    bce = M.get("binary_crossentropy")
    assert isinstance(bce, M.MeanMetricWrapper) and bce.fn is L.binary_crossentropy
    assert bce.name == "binary_crossentropy"
    kld = M.get("kld")
    assert kld.fn is L.kl_divergence and kld.name == "kld"
    custom = M.get(lambda t, p: jnp.abs(t - p)[:, 0])
    assert isinstance(custom, M.MeanMetricWrapper)
    wrapped = M.get(L.Huber(delta=0.5))
    assert wrapped.fn is L.huber and wrapped.get_config()["delta"] == 0.5
    assert M.get(None) is None
    auc = M.AUC()
    assert M.get(auc) is auc
    with pytest.raises(ValueError, match="Did you mean 'precision'"):
        M.get("precison")
    with pytest.raises(ValueError, match="Unknown metric"):
        M.get("banana")
    with pytest.raises(TypeError):
        M.get(3.5)


CONFIG_CASES = [
    M.Mean(name="m"),
    M.Sum(),
    M.Accuracy(),
    M.BinaryAccuracy(threshold=0.3),
    M.TopKCategoricalAccuracy(k=3),
    M.RootMeanSquaredError(),
    M.R2Score(class_aggregation=None, num_regressors=2),
    M.Precision(thresholds=[0.3, 0.6], class_id=1),
    M.Recall(top_k=2),
    M.AUC(num_thresholds=50, curve="PR", from_logits=True),
    M.AUC(
        thresholds=[0.2, 0.4], multi_label=True, num_labels=3, label_weights=[1, 2, 3]
    ),
    M.F1Score(average="macro", threshold=0.4),
    M.FBetaScore(beta=0.5),
    M.MeanMetricWrapper(L.huber, name="h", delta=0.5),
    M.MeanMetricWrapper(M.binary_accuracy, threshold=0.2),
]


@pytest.mark.parametrize("metric", CONFIG_CASES, ids=[repr(m) for m in CONFIG_CASES])
def test_config_round_trip(metric):
    config = json.loads(json.dumps(M.serialize(metric)))
    rebuilt = M.get(config)
    assert type(rebuilt) is type(metric)
    assert rebuilt.get_config() == metric.get_config()


def test_config_validation():
    with pytest.raises(ValueError, match="curve"):
        M.AUC(curve="XY")
    with pytest.raises(ValueError, match="summation_method"):
        M.AUC(summation_method="simpson")
    with pytest.raises(ValueError, match="num_thresholds"):
        M.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="thresholds"):
        M.Precision(thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match="average"):
        M.F1Score(average="mean")
    with pytest.raises(ValueError, match="threshold"):
        M.F1Score(threshold=0.0)
    with pytest.raises(ValueError, match="class_aggregation"):
        M.R2Score(class_aggregation="max")
    with pytest.raises(ValueError, match="k"):
        M.TopKCategoricalAccuracy(k=0)
    with pytest.raises(ValueError, match="num_labels"):
        M.AUC(num_labels=3)
