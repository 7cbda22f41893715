"""TerminateOnNaN: training stops and the model keeps its last finite weights."""

import numpy as np
import pytest
from callback_helpers import linear_data, linear_model

import funkeras as fk
from funkeras.callbacks.lambda_callback import LambdaCallback
from funkeras.callbacks.terminate_on_nan import TerminateOnNaN


def overflowing_data(first_bad_row):
    """Finite data whose rows from `first_bad_row` on overflow the float32 loss."""
    x, y = linear_data()
    x[first_bad_row:] = 1e30
    return x, y


@pytest.mark.parametrize(
    "execution, steps_per_execution", [("jit", 1), ("jit", 4), ("eager", 1)]
)
def test_keeps_the_last_finite_weights(execution, steps_per_execution, capsys):
    x, y = overflowing_data(first_bad_row=20)  # batches of 4: steps 0-4 are finite
    losses = []
    model = linear_model()
    model.compile(
        optimizer=fk.optimizers.SGD(0.05),
        loss="mse",
        execution=execution,
        steps_per_execution=steps_per_execution,
    )
    record = LambdaCallback(
        on_train_batch_end=lambda b, logs: losses.append(logs["loss"])
    )
    h = model.fit(
        x,
        y,
        batch_size=4,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[record, TerminateOnNaN()],
    )
    assert len(h.history["loss"]) == 1  # stopped in the first epoch
    assert np.isnan(losses[-1]) and np.isfinite(losses[:-1]).all()
    assert "Invalid loss, terminating training" in capsys.readouterr().out
    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)

    # The same model trained on the five finite batches only.
    reference = linear_model()
    reference.compile(optimizer=fk.optimizers.SGD(0.05), loss="mse")
    reference.fit(x[:20], y[:20], batch_size=4, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(weights, reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_without_the_callback_the_loss_gate_keeps_finite_weights_and_warns_once():
    # The default gate (on in every fit): steps whose loss is not finite are not
    # applied; training goes on, and one warning names the first such batch.
    x, y = overflowing_data(first_bad_row=20)
    model = linear_model()
    model.compile(optimizer=fk.optimizers.SGD(0.05), loss="mse")
    with pytest.warns(RuntimeWarning, match="the first was batch 5 of epoch 0") as got:
        h = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert len([w for w in got if "non-finite loss" in str(w.message)]) == 1
    assert len(h.history["loss"]) == 2
    reference = linear_model()
    reference.compile(optimizer=fk.optimizers.SGD(0.05), loss="mse")
    reference.fit(x[:20], y[:20], batch_size=4, epochs=2, shuffle=False, verbose=0)
    for got_w, want in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got_w, want, rtol=1e-6)
