"""ReduceLROnPlateau: the rate the optimizer really uses, without a recompile."""

import numpy as np
import pytest
from callback_helpers import gd_reference, linear_data, linear_model

import funkeras as fk
from funkeras.callbacks.lambda_callback import LambdaCallback
from funkeras.callbacks.monitor import MonitorWarning
from funkeras.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau


def rates_seen(model):
    seen = []
    begin = LambdaCallback(
        on_epoch_begin=lambda e, logs: seen.append(
            fk.optimizers.get_learning_rate(model.opt_state)
        )
    )
    return seen, begin


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        # In "max" mode the falling loss never improves after epoch 0: a reduction
        # after every `patience` epochs, then `cooldown` epochs of rest.
        (
            dict(factor=0.5, patience=1, cooldown=2),
            [0.1, 0.1, 0.05, 0.05, 0.025, 0.025],
        ),
        (dict(factor=0.5, patience=2), [0.1, 0.1, 0.1, 0.05, 0.05, 0.025]),
        # Never below min_lr, and no reduction once there.
        (dict(factor=0.5, patience=1, min_lr=0.03), [0.1, 0.1, 0.05, 0.03, 0.03, 0.03]),
    ],
)
def test_rate_schedule_and_the_weights_it_gives(kwargs, expected):
    x, y = linear_data()
    model = linear_model()
    model.compile(optimizer=fk.optimizers.SGD(0.1), loss="mse")
    kernel, bias = model.get_weights()
    seen, begin = rates_seen(model)
    reduce = ReduceLROnPlateau(monitor="loss", mode="max", min_delta=0.0, **kwargs)
    model.fit(x, y, batch_size=32, epochs=6, verbose=0, callbacks=[begin, reduce])
    np.testing.assert_allclose(seen, expected, rtol=1e-6)
    # The new rates were used by the next steps (full-batch gradient descent).
    want_k, want_b = gd_reference(x, y, kernel, bias, seen)
    got_k, got_b = model.get_weights()
    np.testing.assert_allclose(got_k, want_k, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_b, want_b, rtol=1e-5, atol=1e-6)
    assert model.compile_stats()["train_step"]["compiles"] == 1


def test_improvement_resets_the_wait():
    x, y = linear_data()
    model = linear_model()
    model.compile(optimizer=fk.optimizers.SGD(0.1), loss="mse")
    reduce = ReduceLROnPlateau(monitor="loss", patience=1, factor=0.5)
    model.fit(x, y, batch_size=32, epochs=4, verbose=0, callbacks=[reduce])
    assert fk.optimizers.get_learning_rate(model.opt_state) == pytest.approx(0.1)
    assert reduce.wait == 0 and reduce.best == model.history.history["loss"][-1]


def test_unknown_monitor_warns_once():
    x, y = linear_data()
    model = linear_model()
    model.compile(optimizer=fk.optimizers.SGD(0.1), loss="mse")
    with pytest.warns(MonitorWarning, match=r"val_loss.*\['loss'\]") as record:
        model.fit(x, y, epochs=2, verbose=0, callbacks=[ReduceLROnPlateau(patience=0)])
    assert len(record) == 1
    assert fk.optimizers.get_learning_rate(model.opt_state) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "kwargs", [dict(factor=1.0), dict(factor=-0.1), dict(cooldown=-1)]
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        ReduceLROnPlateau(**kwargs)
