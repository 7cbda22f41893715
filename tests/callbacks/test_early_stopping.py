"""EarlyStopping: the epoch it stops at, restored best weights, warnings, state."""

import numpy as np
import pytest
from callback_helpers import Snapshots, linear_data, linear_model

import funkeras as fk
from funkeras.callbacks.early_stopping import EarlyStopping
from funkeras.callbacks.lambda_callback import LambdaCallback
from funkeras.callbacks.monitor import MonitorWarning, infer_direction


def compiled(lr=0.05, metrics=None):
    model = linear_model()
    model.compile(optimizer=fk.optimizers.SGD(lr), loss="mse", metrics=metrics)
    return model


def set_rate_after(epoch_to_change, rate):
    def begin(epoch, logs):
        if epoch == epoch_to_change:
            model = begin.model
            model.opt_state = fk.optimizers.set_learning_rate(model.opt_state, rate)

    cb = LambdaCallback(on_epoch_begin=begin)
    return cb, begin


def test_stops_patience_epochs_after_the_best_and_restores_its_weights():
    # Full-batch gradient descent lowers val_loss for epochs 0-2; from epoch 3 a
    # learning rate far too large makes it grow. Best epoch 2; patience 2 -> the
    # run stops at the end of epoch 4 and the weights of epoch 2 come back.
    x, y = linear_data()
    model = compiled()
    diverge, begin = set_rate_after(3, 5.0)
    begin.model = model
    snaps = Snapshots()
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    h = model.fit(
        x,
        y,
        batch_size=24,
        epochs=20,
        validation_split=0.25,
        shuffle=False,
        verbose=0,
        callbacks=[diverge, snaps, stop],
    )
    val = h.history["val_loss"]
    assert int(np.argmin(val)) == 2 and val[3] > val[2] and val[4] > val[2]
    assert len(val) == 5
    assert stop.stopped_epoch == 4 and stop.best_epoch == 2 and stop.best == val[2]
    for got, want in zip(model.get_weights(), snaps.epochs[2], strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.allclose(snaps.epochs[4][0], snaps.epochs[2][0])


def test_without_restore_the_last_weights_stay():
    x, y = linear_data()
    model = compiled()
    snaps = Snapshots()
    stop = EarlyStopping(monitor="loss", mode="max", patience=1)
    h = model.fit(x, y, batch_size=32, epochs=10, verbose=0, callbacks=[snaps, stop])
    # Training lowers the loss, so in "max" mode only epoch 0 counts as best.
    assert len(h.history["loss"]) == 2 and stop.stopped_epoch == 1
    for got, want in zip(model.get_weights(), snaps.epochs[-1], strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "kwargs, expected_epochs",
    [
        # Loss keeps falling but never beats the baseline: stop after `patience`.
        (dict(monitor="loss", baseline=0.0, patience=2), 2),
        # Improving by less than min_delta is no improvement.
        (dict(monitor="loss", min_delta=1e6, patience=3), 4),
        # Warm-up: epochs 0-2 are not watched; epoch 3 is the first best.
        (dict(monitor="loss", mode="max", patience=0, start_from_epoch=3), 5),
    ],
)
def test_baseline_min_delta_and_warm_up(kwargs, expected_epochs):
    x, y = linear_data()
    model = compiled()
    h = model.fit(
        x, y, batch_size=32, epochs=10, verbose=0, callbacks=[EarlyStopping(**kwargs)]
    )
    assert len(h.history["loss"]) == expected_epochs
    assert all(b < a for a, b in zip(h.history["loss"], h.history["loss"][1:]))


def test_unknown_monitor_warns_once_naming_the_available_keys():
    x, y = linear_data()
    model = compiled(metrics=["mae"])
    with pytest.warns(MonitorWarning, match=r"'val_loss'.*\['loss', 'mae'\]") as record:
        h = model.fit(x, y, epochs=3, verbose=0, callbacks=[EarlyStopping(patience=0)])
    assert len(record) == 1
    assert len(h.history["loss"]) == 3  # it did nothing, and nothing crashed


def test_mode_auto_reads_the_metric_kind():
    model = compiled(metrics=["mae", fk.metrics.BinaryAccuracy(name="hits")])
    model.fit(*linear_data(), epochs=1, verbose=0)
    assert infer_direction("val_hits", model) == "max"
    assert infer_direction("mae", model) == "min"
    assert infer_direction("val_accuracy") == "max"
    assert infer_direction("out_loss") == "min"
    assert infer_direction("zebra") is None
    stop = EarlyStopping(monitor="zebra")
    stop.set_model(model)
    with pytest.raises(ValueError, match="mode='min'"):
        stop.on_epoch_end(0, {"zebra": 1.0})


def test_state_round_trip_survives_on_train_begin():
    x, y = linear_data()
    model = compiled()
    first = EarlyStopping(
        monitor="loss", mode="max", patience=5, restore_best_weights=True
    )
    model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[first])
    state = first.get_state()
    assert state["wait"] == 2 and state["best_epoch"] == 0
    second = EarlyStopping(
        monitor="loss", mode="max", patience=5, restore_best_weights=True
    )
    second.set_state(state)
    second.set_model(model)
    second.on_train_begin()
    assert second.wait == 2 and second.best == first.best
    for a, b in zip(second.best_weights, first.best_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    second.on_train_begin()  # a later fit without a restore starts afresh
    assert second.wait == 0 and second.best is None and second.best_weights is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)
    with pytest.raises(TypeError, match="restore_best_weights"):
        EarlyStopping(restore_best_weights="yes")
