"""`LearningRateScheduler`: set the learning rate at the start of every epoch."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from funkeras import optimizers
from funkeras._validation import check_int
from funkeras.callbacks.callback import Callback

__all__ = ["LearningRateScheduler"]


def _takes_two(schedule: Callable[..., Any]) -> bool:
    """Whether `schedule` accepts `(epoch, lr)` (Keras' API) rather than `(epoch)`."""
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):
        return True
    positional = 0
    for p in signature.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 2


class LearningRateScheduler(Callback):
    """Sets the learning rate to `schedule(epoch, lr)` at the start of each epoch.

    `epoch` is 0-based and `lr` is the current rate (a Python float). A
    schedule of one argument, `schedule(epoch)`, also works, as in Keras. The
    rate is written into the optimizer state with
    `funkeras.optimizers.set_learning_rate`: no recompile, effective from the
    epoch's first step.

    Args:
        schedule: `(epoch, lr) -> new lr`, a real number >= 0.
        verbose: 1 prints the new rate every epoch.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.layers.Dense(1)])
        >>> model.compile(optimizer=fk.optimizers.SGD(0.1), loss="mse")
        >>> halve = fk.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
        >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, verbose=0,
        ...               callbacks=[halve])
        >>> round(fk.optimizers.get_learning_rate(model.opt_state), 6)
        0.025
    """

    def __init__(self, schedule: Callable[..., Any], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(
                "LearningRateScheduler: `schedule` must be callable "
                f"(epoch, lr) -> lr, got {schedule!r}."
            )
        self.schedule = schedule
        self.verbose = check_int("LearningRateScheduler", "verbose", verbose, minimum=0)
        self._two = _takes_two(schedule)

    def on_epoch_begin(
        self, epoch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        if self._two:
            value = self.schedule(
                epoch, optimizers.get_learning_rate(self.model.opt_state)
            )
        else:
            value = self.schedule(epoch)
        ok = (
            not isinstance(value, bool)
            and isinstance(value, int | float | np.number | np.ndarray)
            and np.ndim(value) == 0
        )
        if not ok or not math.isfinite(float(value)) or float(value) < 0:
            raise ValueError(
                f"LearningRateScheduler: the schedule returned {value!r} for epoch "
                f"{epoch}; it must return a finite real number >= 0."
            )
        self.model.opt_state = optimizers.set_learning_rate(
            self.model.opt_state, float(value)
        )
        if self.verbose > 0:
            print(
                f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                f"{float(value)}."
            )
