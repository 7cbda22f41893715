"""TruePositives, FalsePositives, TrueNegatives, FalseNegatives against Keras 3."""

import os
import warnings

import jax
import numpy as np
import pytest

from funkeras import metrics as M

RNG = np.random.default_rng(0)
Y_TRUE = RNG.integers(0, 2, (20, 3))
Y_PRED = RNG.random((20, 3)).astype(np.float32)
WEIGHTS = RNG.random(20).astype(np.float32)
NAMES = ["TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives"]


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras is not on the JAX backend")
    return keras


@pytest.mark.parametrize("thresholds", [None, 0.3, [0.1, 0.5, 0.9], [0.0, 0.5, 1.0]])
@pytest.mark.parametrize("name", NAMES)
def test_matches_keras(keras, name, thresholds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(keras.metrics, name)(thresholds=thresholds)
        theirs.update_state(Y_TRUE[:12], Y_PRED[:12], sample_weight=WEIGHTS[:12])
        theirs.update_state(Y_TRUE[12:], Y_PRED[12:])
        expected = np.asarray(theirs.result())
    ours = getattr(M, name)(thresholds=thresholds)
    update = jax.jit(ours.update)
    state = update(ours.init(), Y_TRUE[:12], Y_PRED[:12], WEIGHTS[:12])
    state = update(state, Y_TRUE[12:], Y_PRED[12:])
    np.testing.assert_allclose(ours.result(state), expected, rtol=1e-5)
    assert type(ours).from_config(ours.get_config()).thresholds == ours.thresholds


def test_counts_add_up_and_masked_rows_count_for_nothing():
    mask = np.arange(20) < 15
    cells = {
        name: float(
            getattr(M, name)().result(
                getattr(M, name)().update(
                    getattr(M, name)().init(), Y_TRUE, Y_PRED, mask=mask
                )
            )
        )
        for name in NAMES
    }
    assert sum(cells.values()) == 15 * 3
    positive = Y_PRED[mask] > 0.5
    assert cells["TruePositives"] == np.sum(positive & (Y_TRUE[mask] == 1))
    assert cells["TrueNegatives"] == np.sum(~positive & (Y_TRUE[mask] == 0))
    assert isinstance(M.get("TruePositives"), M.TruePositives)
    assert M.TruePositives().name == "true_positives"


def test_bad_thresholds():
    with pytest.raises(ValueError, match="FalseNegatives.*thresholds"):
        M.FalseNegatives(thresholds=1.5)
