"""LambdaCallback: the given functions run at their hooks; no other is dispatched."""

import pytest
from callback_helpers import linear_data, linear_model

from funkeras.callbacks.callback import CallbackList
from funkeras.callbacks.lambda_callback import LambdaCallback


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_hooks_run_with_their_arguments(steps_per_execution):
    x, y = linear_data()  # 32 rows, batches of 8: 4 batches per epoch
    events = []
    cb = LambdaCallback(
        on_train_begin=lambda logs: events.append(("train_begin",)),
        on_epoch_begin=lambda e, logs: events.append(("epoch_begin", e)),
        on_train_batch_end=lambda b, logs: events.append(
            ("batch_end", b, sorted(logs))
        ),
        on_epoch_end=lambda e, logs: events.append(("epoch_end", e, sorted(logs))),
        on_train_end=lambda logs: events.append(("train_end",)),
        on_test_end=lambda logs: events.append(("test_end", sorted(logs))),
    )
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[cb])
    model.evaluate(x, y, verbose=0, callbacks=[cb])
    # Batch hooks run once per K-step block, with the block's last batch index.
    last = [b for b in range(4) if (b + 1) % steps_per_execution == 0]
    batches = [("batch_end", b, ["loss"]) for b in last]
    assert events == [
        ("train_begin",),
        ("epoch_begin", 0),
        *batches,
        ("epoch_end", 0, ["loss"]),
        ("epoch_begin", 1),
        *batches,
        ("epoch_end", 1, ["loss"]),
        ("train_end",),
        ("test_end", ["loss"]),
    ]


def test_only_the_given_hooks_are_dispatched():
    cbs = CallbackList([LambdaCallback(on_epoch_end=lambda e, logs: None)])
    assert cbs.has("on_epoch_end")
    assert not cbs.has_train_batch_hooks and not cbs.has("on_train_begin")
    aliased = CallbackList([LambdaCallback(on_batch_end=lambda b, logs: None)])
    assert aliased.has("on_train_batch_end")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(on_epoch_ending=print), "unknown hook"),
        (dict(on_epoch_end=3), "callable"),
        (dict(on_train_batch_end=print, on_batch_end=print), "given twice"),
    ],
)
def test_bad_hooks(kwargs, match):
    with pytest.raises(TypeError, match=match):
        LambdaCallback(**kwargs)
