"""`CSVLogger`: one CSV row of logs per epoch."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from typing import Any

from funkeras.callbacks.callback import Callback

__all__ = ["CSVLogger"]


class CSVLogger(Callback):
    """Writes each epoch's logs as a row of a CSV file (Keras' columns and format).

    The columns are `epoch` (0-based, as Keras writes it) then the log keys in
    sorted order, fixed by the first epoch; when that epoch has no validation
    keys, `val_` columns for every key are added (they read `NA` until
    validation runs). Values are written with Python's `repr`, so they read
    back exactly. The file is flushed and closed after every row: it is
    complete whenever training stops. Resumed by `BackupAndRestore`, the file
    is cut back to the rows of the backed-up epochs and continued.

    Args:
        filename: The CSV file.
        separator: The column separator.
        append: Append to an existing file (its header is kept) instead of
            overwriting it.

    Example:
        >>> import csv, os, tempfile, numpy as np, funkeras as fk
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> model = fk.Sequential([fk.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> h = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, verbose=0,
        ...               callbacks=[fk.callbacks.CSVLogger(path)])
        >>> with open(path, newline="") as f:
        ...     rows = list(csv.DictReader(f))
        >>> [r["epoch"] for r in rows], float(rows[1]["loss"]) == h.history["loss"][1]
        (['0', '1'], True)
    """

    def __init__(
        self,
        filename: str | os.PathLike[str],
        separator: str = ",",
        append: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(filename, str | os.PathLike):
            raise TypeError(f"CSVLogger: `filename` must be a path, got {filename!r}.")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(
                f"CSVLogger: `separator` must be one character, got {separator!r}."
            )
        if not isinstance(append, bool):
            raise TypeError(f"CSVLogger: `append` must be a bool, got {append!r}.")
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys: list[str] | None = None
        self._write_header = True
        self._size = 0
        self._restored = False

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        if self._restored:
            # Resumed: drop rows written after the backup, then continue the file.
            self._restored = False
            if (
                os.path.exists(self.filename)
                and os.path.getsize(self.filename) > self._size
            ):
                os.truncate(self.filename, self._size)
            return
        self.keys = None
        if self.append:
            self._write_header = not (
                os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
            )
        else:
            folder = os.path.dirname(self.filename)
            if folder:
                os.makedirs(folder, exist_ok=True)
            with open(self.filename, "w", newline=""):
                pass
            self._write_header = True
        self._size = (
            os.path.getsize(self.filename) if os.path.exists(self.filename) else 0
        )

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                # Validation may run only every `validation_freq` epochs.
                self.keys += [f"val_{k}" for k in self.keys]
        sep = self.sep

        class Dialect(csv.excel):
            delimiter = sep

        with open(self.filename, "a", newline="") as f:
            writer = csv.DictWriter(
                f, fieldnames=["epoch", *self.keys], dialect=Dialect
            )
            if self._write_header:
                writer.writeheader()
                self._write_header = False
            row: dict[str, Any] = {"epoch": epoch}
            row.update(
                {k: (repr(float(logs[k])) if k in logs else "NA") for k in self.keys}
            )
            writer.writerow(row)
        self._size = os.path.getsize(self.filename)

    def get_state(self) -> dict[str, Any]:
        return {
            "keys": self.keys,
            "size": self._size,
            "write_header": self._write_header,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.keys = None if state["keys"] is None else [str(k) for k in state["keys"]]
        self._size = int(state["size"])
        self._write_header = bool(state["write_header"])
        self._restored = True
