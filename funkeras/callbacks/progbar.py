"""`ProgbarLogger`: Keras' progress display, drawn with tqdm."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

from funkeras.callbacks.callback import Callback

__all__ = ["ProgbarLogger"]


def _fmt(logs: Mapping[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class ProgbarLogger(Callback):
    """Prints training progress: a bar with running metrics (`verbose=1`) or one
    line per epoch (`verbose=2`).

    The bar reads the logs (a device-to-host copy) at most every `interval`
    seconds, so it does not slow the steps down.

    Args:
        verbose: 1 for a progress bar, 2 for one line per epoch.
        interval: Seconds between refreshes of the bar.
        file: Where to print (stdout by default).
    """

    def __init__(
        self, verbose: int = 1, interval: float = 0.2, file: Any = None
    ) -> None:
        super().__init__()
        self.verbose = verbose
        self.interval = interval
        self.file = file
        self._bar: Any = None
        self._last = 0.0
        self._start = 0.0
        self._seen = 0

    def _out(self) -> Any:
        return self.file or sys.stdout

    def on_epoch_begin(
        self, epoch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        epochs = self.params.get("epochs")
        print(f"Epoch {epoch + 1}/{epochs}", file=self._out())
        self._start = time.perf_counter()
        self._seen = 0
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.params.get("steps"),
                file=self._out(),
                unit="step",
                dynamic_ncols=True,
                leave=True,
                mininterval=self.interval,
            )

    def on_train_batch_end(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        if self._bar is None:
            return
        done = batch + 1
        self._bar.update(done - self._seen)
        self._seen = done
        now = time.perf_counter()
        if logs and now - self._last >= self.interval:
            self._last = now
            self._bar.set_postfix_str(_fmt(logs), refresh=False)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        elapsed = time.perf_counter() - self._start
        steps = max(self._seen, self.params.get("steps") or 1)
        if self._bar is not None:
            if logs:
                self._bar.set_postfix_str(_fmt(logs), refresh=False)
            self._bar.close()
            self._bar = None
        if self.verbose == 2:
            per_step = elapsed / steps * 1e3
            print(
                f"{steps}/{steps} - {elapsed:.2f}s - {per_step:.2f}ms/step - "
                f"{_fmt(logs or {})}",
                file=self._out(),
            )

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
