"""`ReduceLROnPlateau`: lower the learning rate when a quantity stops improving."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from funkeras import optimizers
from funkeras._validation import check_float, check_int
from funkeras.callbacks.monitor import MonitorCallback

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the learning rate by `factor` after `patience` epochs of no progress.

    The learning rate lives in the optimizer state (`model.opt_state`), so it is
    changed with `funkeras.optimizers.set_learning_rate`, which keeps its dtype
    and placement: the compiled train step does not recompile, and the new rate
    applies from the next step. An optimizer whose learning rate is a schedule
    is refused with a clear error (optax recomputes it every step).

    Args:
        monitor: The logs key to watch (one `MonitorWarning` per `fit` if absent).
        factor: The rate is multiplied by this, in [0, 1).
        patience: Epochs without improvement before the rate is reduced.
        verbose: 1 prints each reduction.
        mode: `"min"`, `"max"` or `"auto"` (from the monitored name).
        min_delta: Smallest change (absolute) that counts as an improvement.
        cooldown: Epochs to wait after a reduction before counting again.
        min_lr: The rate is never reduced below this.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.layers.Dense(1)])
        >>> model.compile(optimizer=fk.optimizers.SGD(0.0), loss="mse")
        >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=3, verbose=0,
        ...   callbacks=[fk.callbacks.ReduceLROnPlateau("loss", factor=0.5, patience=1,
        ...                                             min_delta=0.0, min_lr=0.0)])
        >>> fk.optimizers.get_learning_rate(model.opt_state)
        0.0
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        owner = "ReduceLROnPlateau"
        self.factor = check_float(
            owner, "factor", factor, low=0.0, high=1.0, high_inclusive=False
        )
        self.patience = check_int(owner, "patience", patience, minimum=0)
        self.verbose = check_int(owner, "verbose", verbose, minimum=0)
        self.cooldown = check_int(owner, "cooldown", cooldown, minimum=0)
        self.min_lr = check_float(owner, "min_lr", min_lr, low=0.0)
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.cooldown_counter = 0
        self.best: float | None = None

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        if not self._begin_fit():
            self._reset()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        current = self._monitor_value(logs, f"epoch {epoch + 1}")
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
            return
        if self.in_cooldown():
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        old = optimizers.get_learning_rate(self.model.opt_state)
        if old > np.float32(self.min_lr):
            new = max(old * self.factor, self.min_lr)
            self.model.opt_state = optimizers.set_learning_rate(
                self.model.opt_state, new
            )
            if self.verbose > 0:
                print(
                    f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                    f"{new}."
                )
            self.cooldown_counter = self.cooldown
            self.wait = 0

    def get_state(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "cooldown_counter": self.cooldown_counter,
            "best": self.best,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.best = None if state["best"] is None else float(state["best"])
        self._restored = True
