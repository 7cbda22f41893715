"""`History`: the per-epoch logs of `fit`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from funkeras.callbacks.callback import Callback, Logs

__all__ = ["History"]


class History(Callback):
    """Records every epoch's logs; `fit` returns it (also as `model.history`).

    Attributes:
        history: `{"loss": [...], "val_loss": [...], ...}`, one value per epoch.
        epoch: The epoch numbers recorded.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> h = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, verbose=0)
        >>> len(h.history["loss"])
        2
    """

    def __init__(self) -> None:
        super().__init__()
        self._history: dict[str, list[float]] = {}
        self._pending: list[Mapping[str, float]] = []
        self.epoch: list[int] = []

    @property
    def history(self) -> dict[str, list[float]]:
        """`{"loss": [...], ...}`: one float per epoch."""
        # Epoch logs that `fit` left on the device (nothing asked for them during
        # training) become floats here, in one transfer per epoch.
        pending, self._pending = self._pending, []
        for logs in pending:
            for k, v in logs.items():
                self._history.setdefault(k, []).append(float(v))
        return self._history

    @history.setter
    def history(self, value: dict[str, list[float]]) -> None:
        self._pending = []
        self._history = value

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        del logs

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self.epoch.append(epoch)
        if isinstance(logs, Logs):
            self._pending.append(logs)  # read later: no host sync per epoch
            return
        history = self.history
        for k, v in (logs or {}).items():
            history.setdefault(k, []).append(float(v))

    def get_state(self) -> dict[str, Any]:
        return {"history": self.history, "epoch": self.epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        self.history = {k: list(v) for k, v in state.get("history", {}).items()}
        self.epoch = list(state.get("epoch", []))
