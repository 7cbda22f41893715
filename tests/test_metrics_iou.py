"""IoU, MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU against Keras 3 and NumPy."""

import json
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras import metrics as M

RNG = np.random.default_rng(0)
Y_TRUE = RNG.integers(0, 4, (6, 5, 5))
SCORES = RNG.standard_normal((6, 5, 5, 4)).astype(np.float32)
PROBS = RNG.random((6, 5, 5)).astype(np.float32)

CASES = [
    ("MeanIoU", dict(num_classes=4, sparse_y_pred=False), Y_TRUE, SCORES),
    ("MeanIoU", dict(num_classes=4), Y_TRUE, SCORES.argmax(-1)),
    (
        "IoU",
        dict(num_classes=4, target_class_ids=[1, 3], ignore_class=0),
        Y_TRUE,
        SCORES.argmax(-1),
    ),
    ("BinaryIoU", dict(threshold=0.3), (Y_TRUE > 1).astype(int), PROBS),
    ("BinaryIoU", dict(target_class_ids=[1]), (Y_TRUE > 1).astype(int), PROBS),
    ("OneHotMeanIoU", dict(num_classes=4), np.eye(4)[Y_TRUE], SCORES),
    (
        "OneHotIoU",
        dict(num_classes=4, target_class_ids=[0, 2]),
        np.eye(4)[Y_TRUE],
        SCORES,
    ),
]


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras is not on the JAX backend")
    return keras


@pytest.mark.parametrize("name,kwargs,y_true,y_pred", CASES)
def test_matches_keras_over_two_batches(keras, name, kwargs, y_true, y_pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(keras.metrics, name)(**kwargs)
        theirs.update_state(y_true[:4], y_pred[:4])
        theirs.update_state(y_true[4:], y_pred[4:])
        expected = float(theirs.result())
    ours = getattr(M, name)(**kwargs)
    update = jax.jit(ours.update)
    state = update(ours.init(), y_true[:4], y_pred[:4])
    state = update(state, y_true[4:], y_pred[4:])
    np.testing.assert_allclose(float(ours.result(state)), expected, rtol=1e-6)
    # The config round-trips through JSON and rebuilds the same metric.
    config = json.loads(json.dumps(ours.get_config()))
    again = type(ours).from_config(config)
    assert again.get_config() == ours.get_config()


def np_mean_iou(t, p, n):
    ious = []
    for c in range(n):
        inter = np.sum((t == c) & (p == c))
        union = np.sum((t == c) | (p == c))
        if union:
            ious.append(inter / union)
    return np.mean(ious)


def test_mean_iou_against_numpy_and_masked_rows_count_for_nothing():
    m = M.MeanIoU(4)
    pred = SCORES.argmax(-1)
    mask = np.array([True, True, True, False, True, False])
    state = m.update(m.init(), Y_TRUE, pred, mask=mask)
    np.testing.assert_allclose(
        float(m.result(state)), np_mean_iou(Y_TRUE[mask], pred[mask], 4), rtol=1e-5
    )
    # Row weights scale every label of their row.
    weighted = m.update(
        m.init(), Y_TRUE, pred, sample_weight=mask.astype(np.float32) * 2
    )
    np.testing.assert_allclose(
        weighted["total_confusion_matrix"], 2 * state["total_confusion_matrix"]
    )


def test_mean_iou_in_compile_for_segmentation():
    inp = fk.Input(shape=(4, 4, 1))
    out = fk.layers.Conv2D(3, 1)(inp)
    model = fk.Model(inp, out, seed=0)
    model.compile(
        optimizer="adam",
        loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[M.MeanIoU(3, sparse_y_pred=False)],
    )
    x = RNG.standard_normal((8, 4, 4, 1)).astype(np.float32)
    y = RNG.integers(0, 3, (8, 4, 4))
    logs = model.evaluate(x, y, return_dict=True, verbose=0)
    pred = model.predict(x, verbose=0).argmax(-1)
    np.testing.assert_allclose(logs["mean_io_u"], np_mean_iou(y, pred, 3), rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="IoU.*out of range"):
        M.IoU(num_classes=2, target_class_ids=[2])
    with pytest.raises(ValueError, match="MeanIoU.*num_classes"):
        M.MeanIoU(0)
    m = M.IoU(3, [0])
    with pytest.raises(ValueError, match="IoU.*same number"):
        m.update(m.init(), jnp.zeros((2, 3)), jnp.zeros((2, 4)))
