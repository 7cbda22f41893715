"""`ModelCheckpoint`: save the model (or its weights) during `fit`."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from typing import Any

from funkeras._validation import check_float, check_int
from funkeras.callbacks.callback import _check_save_freq, _SaveCounter
from funkeras.callbacks.monitor import MonitorCallback
from funkeras.saving.format import check_file_name, save_model, save_weights

__all__ = ["ModelCheckpoint"]

_FIELD_BASE = re.compile(r"[^.\[]*")


def _template_fields(owner: str, filepath: str) -> dict[str, str]:
    """`{field: format spec}` of a `str.format` template; positional fields refused."""
    fields: dict[str, str] = {}
    try:
        parsed = list(string.Formatter().parse(filepath))
    except ValueError as e:
        raise ValueError(
            f"{owner}: `filepath` {filepath!r} is not a valid template: {e}."
        ) from None
    for _, field, spec, _ in parsed:
        if field is None:
            continue
        name = _FIELD_BASE.match(field).group(0)  # type: ignore[union-attr]
        if not name or name.isdigit():
            raise ValueError(
                f"{owner}: `filepath` {filepath!r} has a positional field "
                f"{{{field}}}; name the value, e.g. {{epoch:02d}} or {{val_loss:.2f}}."
            )
        fields[name] = spec or ""
    return fields


def _known_log_names(model: Any) -> list[str] | None:
    """The keys `fit` will log (training and validation), or None if not known."""
    runner = getattr(model, "runner", None)
    objective = getattr(runner, "objective", None)
    if objective is None or getattr(runner, "custom_train_step", None) is not None:
        return None
    names = list(objective.log_names)
    return names + [f"val_{n}" for n in names]


class ModelCheckpoint(MonitorCallback):
    """Saves the model or its weights every epoch or every `save_freq` batches.

    `filepath` may hold `str.format` fields: `{epoch}` (1-based, as Keras),
    `{batch}` (1-based, with batch-level saving) and any logged value
    (`"ckpt-{epoch:02d}-{val_loss:.3f}.fkz"`). The template is checked when
    training starts: a field that is neither `epoch`/`batch` nor a key `fit`
    logs, or a format spec that does not fit its value, fails before the first
    step. A `val_*` field needs validation data in every epoch that saves.

    Every save is atomic (the saving code writes a temporary file and renames
    it), so a crash never leaves a half-written checkpoint.

    Args:
        filepath: Where to save, under the same file-name rule as `model.save`
            (`funkeras.saving.format.check_file_name`): a full model goes to a
            `.fkz` file; with `save_weights_only=True` the weights go to a
            `.weights.safetensors` (or `.safetensors`) file. A name claiming
            another format (`.keras`, `.h5`, `.weights.h5`, or `.fkz` for
            weights) is refused when the callback is made.
        monitor: The logs key compared with `save_best_only`.
        verbose: 1 prints a line for every save decision.
        save_best_only: Save only when `monitor` improves on the best so far
            (a template without fields is then overwritten by each better model).
            While `monitor` is missing from the logs (one `MonitorWarning`), it
            saves every time, as Keras does.
        save_weights_only: Save the weights only.
        mode: `"min"`, `"max"` or `"auto"` for `monitor`.
        save_freq: `"epoch"`, or a number of batches between saves. With
            `steps_per_execution=K` batch hooks run once per K steps, so the
            count is checked every K batches (as in Keras). Logs seen mid-epoch
            cover the epoch so far.
        initial_value_threshold: With `save_best_only`, the value to beat for
            the first save.

    Example:
        >>> import os, tempfile, numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(2,)), fk.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> folder = tempfile.mkdtemp()
        >>> save = fk.callbacks.ModelCheckpoint(os.path.join(folder, "m-{epoch}.fkz"))
        >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, verbose=0,
        ...               callbacks=[save])
        >>> sorted(os.listdir(folder))
        ['m-1.fkz', 'm-2.fkz']
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__(monitor, mode, 0.0)
        owner = "ModelCheckpoint"
        if not isinstance(filepath, str | os.PathLike):
            raise TypeError(
                f"{owner}: `filepath` must be a str or path, got {filepath!r}."
            )
        self.filepath = os.fspath(filepath)
        for arg, value in (
            ("save_best_only", save_best_only),
            ("save_weights_only", save_weights_only),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"{owner}: `{arg}` must be a bool, got {value!r}.")
        self.verbose = check_int(owner, "verbose", verbose, minimum=0)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        save_freq = _check_save_freq(owner, save_freq)
        self.save_freq = save_freq
        self.initial_value_threshold = (
            None
            if initial_value_threshold is None
            else check_float(owner, "initial_value_threshold", initial_value_threshold)
        )
        # The one file-name rule of `save`/`save_weights` (a `.keras` or `.h5`
        # name is refused: the file would not be in Keras' format).
        check_file_name(
            owner, self.filepath, "weights" if save_weights_only else "model"
        )
        self._fields = _template_fields(owner, self.filepath)
        self.best: float | None = self.initial_value_threshold
        self._counter = _SaveCounter(save_freq)
        self._current_epoch = 0

    # -- the template ---------------------------------------------------------

    def _check_template(self) -> None:
        owner = "ModelCheckpoint"
        allowed = {"epoch"} | ({"batch"} if self.save_freq != "epoch" else set())
        known = _known_log_names(self.model)
        unknown = [
            f
            for f in self._fields
            if f not in allowed
            and (f == "batch" or (known is not None and f not in known))
        ]
        if unknown:
            extra = ""
            if "batch" in unknown:
                extra = (
                    " `{batch}` is filled only with `save_freq` set to a number of "
                    "batches."
                )
            keys = "a logged key" if known is None else f"a logged key: {known}"
            raise ValueError(
                f"{owner}: `filepath` {self.filepath!r} uses unknown field(s) "
                f"{sorted(unknown)}. Fields may be {sorted(allowed)} or {keys}.{extra}"
            )
        sample = {f: (1 if f in ("epoch", "batch") else 0.5) for f in self._fields}
        try:
            self.filepath.format(**sample)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            raise ValueError(
                f"{owner}: `filepath` {self.filepath!r} cannot be formatted ({e}); "
                "`{epoch}`/`{batch}` are ints and logged values are floats, e.g. "
                "{epoch:03d} and {val_loss:.4f}."
            ) from None

    def _file_path(
        self, epoch: int, batch: int | None, logs: Mapping[str, float]
    ) -> str:
        values: dict[str, Any] = {k: logs[k] for k in self._fields if k in logs}
        values["epoch"] = epoch + 1
        if batch is not None:
            values["batch"] = batch + 1
        missing = [f for f in self._fields if f not in values]
        if missing:
            raise ValueError(
                f"ModelCheckpoint: `filepath` {self.filepath!r} needs {missing}, which "
                f"the logs of epoch {epoch + 1} do not have (they have "
                f"{sorted(logs)}). "
                "`val_*` values exist only in epochs with validation."
            )
        return self.filepath.format(**values)

    # -- hooks ------------------------------------------------------------------

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._check_template()
        if not self._begin_fit():
            self.best = self.initial_value_threshold
            self._counter.since = 0

    def on_epoch_begin(
        self, epoch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        self._current_epoch = epoch
        self._counter.new_epoch()

    def on_train_batch_end(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        if self.save_freq == "epoch":
            return
        if self._counter.due(batch):
            self._save(self._current_epoch, batch, logs or {})

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _save(self, epoch: int, batch: int | None, logs: Mapping[str, float]) -> None:
        path = self._file_path(epoch, batch, logs)
        if self.save_best_only:
            current = self._monitor_value(logs, f"epoch {epoch + 1}")
            if current is not None:
                previous = "None" if self.best is None else f"{self.best:.5f}"
                if not self._is_improvement(current, self.best):
                    if self.verbose > 0:
                        print(
                            f"Epoch {epoch + 1}: {self.monitor} did not improve "
                            f"from {previous}"
                        )
                    return
                if self.verbose > 0:
                    print(
                        f"Epoch {epoch + 1}: {self.monitor} improved from {previous} "
                        f"to {current:.5f}, saving model to {path}"
                    )
                self.best = current
        elif self.verbose > 0:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if os.path.isdir(path):
            raise IsADirectoryError(
                f"ModelCheckpoint: {path!r} is a directory; give `filepath` a file "
                "name."
            )
        self._write(path)

    def _write(self, path: str) -> None:
        model = self.model
        if self.save_weights_only:
            method = getattr(model, "save_weights", None)
            if method is not None:
                method(path)
            else:
                save_weights(model, path)
        else:
            method = getattr(model, "save", None)
            if method is not None:
                method(path)
            else:
                save_model(model, path)

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best, "batches_since_save": self._counter.since}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self._counter.since = int(state["batches_since_save"])
        self._restored = True
