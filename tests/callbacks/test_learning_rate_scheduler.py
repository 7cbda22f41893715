"""LearningRateScheduler: per-epoch rates, used by the steps, without a recompile."""

import numpy as np
import pytest
from callback_helpers import gd_reference, linear_data, linear_model

import funkeras as fk
from funkeras.callbacks.lambda_callback import LambdaCallback
from funkeras.callbacks.learning_rate_scheduler import LearningRateScheduler


@pytest.mark.parametrize(
    "execution, two_args", [("jit", True), ("jit", False), ("eager", True)]
)
def test_schedule_sets_the_rate_each_epoch(execution, two_args):
    x, y = linear_data()
    model = linear_model()
    model.compile(optimizer=fk.optimizers.SGD(0.2), loss="mse", execution=execution)
    kernel, bias = model.get_weights()
    calls = []
    if two_args:

        def schedule(epoch, lr):
            calls.append((epoch, lr))
            return lr * 0.5 if epoch else lr
    else:

        def schedule(epoch):
            calls.append((epoch,))
            return 0.2 / (epoch + 1)

    used = []
    record = LambdaCallback(
        on_epoch_end=lambda e, logs: used.append(
            fk.optimizers.get_learning_rate(model.opt_state)
        )
    )
    model.fit(
        x,
        y,
        batch_size=32,
        epochs=4,
        verbose=0,
        callbacks=[LearningRateScheduler(schedule), record],
    )
    expected = (
        [0.2, 0.1, 0.05, 0.025] if two_args else [0.2 / (e + 1) for e in range(4)]
    )
    np.testing.assert_allclose(used, expected, rtol=1e-6)
    if two_args:
        assert [c[0] for c in calls] == [0, 1, 2, 3]
        np.testing.assert_allclose(
            [c[1] for c in calls], [0.2, 0.2, 0.1, 0.05], rtol=1e-6
        )
    else:
        assert calls == [(0,), (1,), (2,), (3,)]
    want_k, want_b = gd_reference(x, y, kernel, bias, used)
    got_k, got_b = model.get_weights()
    np.testing.assert_allclose(got_k, want_k, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_b, want_b, rtol=1e-5, atol=1e-6)
    if execution == "jit":
        assert model.compile_stats()["train_step"]["compiles"] == 1


@pytest.mark.parametrize("bad", [-1.0, "0.1", float("nan"), True, np.ones(2)])
def test_schedule_must_return_a_rate(bad):
    x, y = linear_data()
    model = linear_model()
    model.compile(optimizer=fk.optimizers.SGD(0.2), loss="mse")
    before = model.get_weights()
    with pytest.raises(ValueError, match="schedule returned"):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[LearningRateScheduler(lambda epoch, lr: bad)],
        )
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_schedule_must_be_callable():
    with pytest.raises(TypeError, match="callable"):
        LearningRateScheduler(0.1)
