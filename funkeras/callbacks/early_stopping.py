"""`EarlyStopping`: stop `fit` when a monitored quantity stops improving."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from funkeras._validation import check_float, check_int
from funkeras.callbacks.monitor import MonitorCallback

__all__ = ["EarlyStopping"]


class EarlyStopping(MonitorCallback):
    """Stops training once `monitor` has not improved for `patience` epochs.

    At every epoch end from `start_from_epoch` on, the monitored value is
    compared with the best so far; an improvement (by more than `min_delta`)
    resets the count of epochs without one. When the count reaches `patience`
    (and at least one epoch has run), `model.stop_training` is set and `fit`
    ends after this epoch.

    With a `baseline`, an improvement resets the count only if it also beats
    the baseline: when no epoch beats it, training runs `patience` epochs and
    (with `restore_best_weights`) keeps the best of them. This is Keras'
    documented rule; Keras' code keeps training for as long as the value
    improves, even without ever reaching the baseline.

    With `restore_best_weights=True` a copy of the weights of the best epoch
    (host memory, one copy of the params and state) is kept and put back when
    training ends, whether it stopped early or not. The counters and the best
    weights survive a resume by `BackupAndRestore`.

    Args:
        monitor: The logs key to watch. An unknown key gives one
            `MonitorWarning` per `fit` naming the keys there.
        min_delta: Smallest change (absolute) that counts as an improvement.
        patience: Epochs without improvement after which training stops.
        verbose: 1 prints when it stops and when it restores weights.
        mode: `"min"`, `"max"`, or `"auto"` (from the name: losses and errors
            go down, accuracies up).
        baseline: A value the monitored quantity must beat to count as
            progress (None: no baseline).
        restore_best_weights: Put back the weights of the best epoch at the end.
        start_from_epoch: Epochs of warm-up during which nothing is watched.

    Attributes:
        stopped_epoch: The epoch (0-based) at which training was stopped (0 if
            it was not).
        best: The best monitored value seen.
        best_epoch: The epoch (0-based) of `best`.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> stop = fk.callbacks.EarlyStopping(monitor="loss", mode="max", patience=2)
        >>> h = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=10, verbose=0,
        ...               callbacks=[stop])
        >>> len(h.history["loss"]), stop.stopped_epoch
        (3, 2)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        owner = "EarlyStopping"
        self.patience = check_int(owner, "patience", patience, minimum=0)
        self.verbose = check_int(owner, "verbose", verbose, minimum=0)
        self.baseline = (
            None if baseline is None else check_float(owner, "baseline", baseline)
        )
        if not isinstance(restore_best_weights, bool):
            raise TypeError(
                f"{owner}: `restore_best_weights` must be a bool, got "
                f"{restore_best_weights!r}."
            )
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = check_int(
            owner, "start_from_epoch", start_from_epoch, minimum=0
        )
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    def _copy_weights(self) -> list[np.ndarray]:
        return [np.array(w, copy=True) for w in self.model.get_weights()]

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        if not self._begin_fit():
            self._reset()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        current = self._monitor_value(logs, f"epoch {epoch + 1}")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # The first watched epoch's weights are the best until beaten.
            self.best_weights = self._copy_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self._copy_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
                return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)

    def get_state(self) -> dict[str, Any]:
        return {
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_weights": self.best_weights,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.stopped_epoch = int(state["stopped_epoch"])
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        weights = state["best_weights"]
        self.best_weights = (
            None if weights is None else [np.asarray(w) for w in weights]
        )
        self._restored = True
