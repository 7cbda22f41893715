"""TensorBoard: event files written without TensorFlow parse back to the logs."""

import os

import numpy as np
import pytest
from callback_helpers import Snapshots, histograms, linear_data, linear_model, scalars

import funkeras as fk

pytest.importorskip("tensorboardX")

from funkeras.callbacks.lambda_callback import LambdaCallback  # noqa: E402
from funkeras.callbacks.tensorboard import TensorBoard  # noqa: E402


def test_epoch_scalars_learning_rate_and_histograms(tmp_path):
    x, y = linear_data()
    model = linear_model()
    model.compile(optimizer=fk.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    snaps = Snapshots()
    halve = LambdaCallback(
        on_epoch_end=lambda e, logs: setattr(
            model,
            "opt_state",
            fk.optimizers.set_learning_rate(model.opt_state, 0.05 / 2 ** (e + 1)),
        )
    )
    board = TensorBoard(tmp_path, histogram_freq=2)
    h = model.fit(
        x,
        y,
        epochs=3,
        validation_split=0.25,
        verbose=0,
        callbacks=[snaps, halve, board],
    )
    assert sorted(os.listdir(tmp_path)) == ["train", "validation"]
    train = scalars(tmp_path / "train")
    val = scalars(tmp_path / "validation")
    assert set(train) == {"epoch_loss", "epoch_mae", "epoch_learning_rate"}
    assert set(val) == {"epoch_loss", "epoch_mae"}
    for key in ("loss", "mae"):
        assert train[f"epoch_{key}"] == {
            e: np.float32(v) for e, v in enumerate(h.history[key])
        }
        assert val[f"epoch_{key}"] == {
            e: np.float32(v) for e, v in enumerate(h.history[f"val_{key}"])
        }
    # The rate read at each epoch end (after `halve` changed it for the next epoch).
    assert train["epoch_learning_rate"] == {
        e: np.float32(0.05 / 2 ** (e + 1)) for e in range(3)
    }

    hist = histograms(tmp_path / "train")
    assert set(hist) == {"dense/kernel", "dense/bias"}
    kernel_index = 0  # get_weights order: kernel, bias
    for epoch in (0, 2):
        proto = hist["dense/kernel"][epoch]
        weights = snaps.epochs[epoch][kernel_index].astype(np.float64)
        assert proto.num == weights.size
        assert proto.min == pytest.approx(weights.min())
        assert proto.max == pytest.approx(weights.max())
        assert proto.sum == pytest.approx(weights.sum())
        assert proto.sum_squares == pytest.approx((weights**2).sum())
        assert sum(proto.bucket) == weights.size
    assert set(hist["dense/kernel"]) == {0, 2}


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_batch_scalars_every_n_batches(tmp_path, steps_per_execution):
    x, y = linear_data()  # batches of 4: 8 steps per epoch
    model = linear_model()
    model.compile(
        optimizer=fk.optimizers.SGD(0.05),
        loss="mse",
        steps_per_execution=steps_per_execution,
    )
    batch_losses = {}
    step = [0]

    def record(batch, logs):
        step[0] += steps_per_execution
        batch_losses[step[0]] = logs["loss"]

    h = model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        verbose=0,
        shuffle=False,
        callbacks=[
            LambdaCallback(on_train_batch_end=record),
            TensorBoard(tmp_path, update_freq=4),
        ],
    )
    train = scalars(tmp_path / "train")
    assert train["batch_loss"] == {
        s: np.float32(batch_losses[s]) for s in (4, 8, 12, 16)
    }
    assert train["epoch_loss"] == {
        e: np.float32(v) for e, v in enumerate(h.history["loss"])
    }


def test_bad_update_freq():
    with pytest.raises(ValueError, match="update_freq"):
        TensorBoard(update_freq="sometimes")
    with pytest.raises(ValueError, match="histogram_freq"):
        TensorBoard(histogram_freq=-1)
