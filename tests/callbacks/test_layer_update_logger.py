"""LayerUpdateLogger: the reported norms equal ones computed from weight snapshots."""

import csv

import numpy as np
import optax
import pytest
from callback_helpers import Snapshots, linear_data

import funkeras as fk
from funkeras.callbacks._common import flatten_paths
from funkeras.callbacks.layer_update_logger import LayerUpdateLogger, ProbeWarning

L = fk.layers
LR = 0.1


def two_layer_model():
    return fk.Sequential(
        [fk.Input(shape=(3,)), L.Dense(4, activation="tanh"), L.Dense(1)], seed=3
    )


def fit_logged(
    execution="jit", steps_per_execution=1, every=3, extra=(), epochs=2, **logger_kwargs
):
    x, y = linear_data()  # batches of 4: 8 steps per epoch
    model = two_layer_model()
    model.compile(
        optimizer=optax.sgd(LR),
        loss="mse",
        execution=execution,
        steps_per_execution=steps_per_execution,
    )
    reports = {}
    logger_kwargs.setdefault("to", reports.__setitem__)
    logger = LayerUpdateLogger(every=every, **logger_kwargs)
    model.fit(x, y, batch_size=4, epochs=epochs, verbose=0, callbacks=[*extra, logger])
    return model, reports, logger


def norm(tree):
    return {
        name: float(np.sqrt(np.sum(np.asarray(a, np.float64) ** 2)))
        for name, a in flatten_paths(tree)
    }


@pytest.mark.parametrize("execution", ["jit", "eager", "layerwise"])
def test_norms_equal_those_of_consecutive_snapshots(execution):
    snaps = Snapshots(batches=True)
    # Two epochs under jit; one (8 steps) in the slower eager and layerwise modes.
    epochs = 2 if execution == "jit" else 1
    _, reports, _ = fit_logged(execution, extra=[snaps], epochs=epochs)
    assert sorted(reports) == [3, 6, 9, 12, 15][: 2 * epochs + epochs // 2]
    for step, norms in reports.items():
        before, after = snaps.before[step - 1], snaps.after[step - 1]
        delta = {
            name: np.asarray(after_leaf, np.float64)
            - np.asarray(before_leaf, np.float64)
            for (name, after_leaf), (_, before_leaf) in zip(
                flatten_paths(after), flatten_paths(before), strict=True
            )
        }
        param, update = norm(after), norm(delta)
        assert set(norms) == {
            "dense/kernel",
            "dense/bias",
            "dense_1/kernel",
            "dense_1/bias",
        }
        for name, values in norms.items():
            np.testing.assert_allclose(values["param_norm"], param[name], rtol=1e-6)
            # SGD without momentum: update = -LR * gradient.
            np.testing.assert_allclose(values["update_norm"], update[name], rtol=1e-4)
            np.testing.assert_allclose(
                values["grad_norm"], update[name] / LR, rtol=1e-4
            )
            np.testing.assert_allclose(
                values["update_ratio"], update[name] / param[name], rtol=1e-4
            )


def test_steps_per_execution_rounds_every_to_a_multiple():
    # every=3 with K=4 logs every 4 steps; the values equal a K=1 run logging every 4.
    _, fused, logger = fit_logged(steps_per_execution=4, every=3)
    _, plain, _ = fit_logged(steps_per_execution=1, every=4)
    assert logger.probe_every == 4
    assert sorted(fused) == sorted(plain) == [4, 8, 12, 16]
    for step in fused:
        for name, values in fused[step].items():
            for stat, value in values.items():
                np.testing.assert_allclose(value, plain[step][name][stat], rtol=1e-5)


def test_csv_and_tensorboard_outputs(tmp_path):
    pytest.importorskip("tensorboardX")
    from callback_helpers import scalars

    path = tmp_path / "updates.csv"
    _, reports, _ = fit_logged(every=8, log_dir=tmp_path / "tb", csv_path=path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 4  # steps 8 and 16, four variables
    for row in rows:
        values = reports[int(row["step"])][row["variable"]]
        for stat in ("param_norm", "grad_norm", "update_norm", "update_ratio"):
            assert float(row[stat]) == values[stat]
    board = scalars(tmp_path / "tb" / "train")
    assert board["grad_norm/dense/kernel"] == {
        s: np.float32(reports[s]["dense/kernel"]["grad_norm"]) for s in (8, 16)
    }
    assert len(board) == 4 * 4


def test_print_report(capsys):
    fit_logged(every=8, to="print", epochs=1)
    out = capsys.readouterr().out
    assert out.startswith("LayerUpdateLogger: step 8\n")
    assert "dense_1/kernel" in out and "update_ratio" in out


def test_eager_blocks_report_the_blocks_last_step():
    # Unfused K-step blocks pass on their last step's logs: the probed one.
    _, reports, _ = fit_logged("eager", steps_per_execution=2, every=2, epochs=1)
    assert sorted(reports) == [2, 4, 6, 8]


def test_unaligned_probes_warn_once():
    # 3 steps per epoch in unfused blocks of 2: the second epoch's blocks start
    # at step 3, so the probed step 4 (count) ends no block and is lost.
    x, y = linear_data()
    model = two_layer_model()
    model.compile(optimizer=optax.sgd(LR), loss="mse", execution="eager",
                  steps_per_execution=2)
    logger = LayerUpdateLogger(every=2, to=None)
    with pytest.warns(ProbeWarning, match="steps_per_execution=1") as record:
        model.fit(x[:12], y[:12], batch_size=4, epochs=2, verbose=0, callbacks=[logger])
    assert len(record) == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="every"):
        LayerUpdateLogger(every=0)
    with pytest.raises(TypeError, match="`to`"):
        LayerUpdateLogger(to="stdout")
