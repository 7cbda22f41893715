"""`TensorBoard`: scalars and weight histograms for TensorBoard, with no TensorFlow."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from funkeras._validation import check_int
from funkeras.callbacks._common import (
    current_learning_rate,
    epoch_start_step,
    flatten_paths,
    summary_writer,
)
from funkeras.callbacks.callback import Callback

__all__ = ["TensorBoard"]


class TensorBoard(Callback):
    """Writes TensorBoard event files: metrics, learning rate and weight histograms.

    The files are written by `tensorboardX` (an optional dependency, `pip
    install tensorboardX`), a TensorFlow-free event writer; TensorBoard opens
    them as it opens Keras' (`tensorboard --logdir logs`). As in Keras, the run
    has a `train` and a `validation` folder:

    - every epoch: `epoch_<key>` for each training log at step `epoch`
      (0-based), the same tags for the `val_*` logs in `validation`, and
      `epoch_learning_rate` (when the rate can be read from the optimizer);
    - with `update_freq=N`: `batch_<key>` every N batches (checked once per
      K-step block with `steps_per_execution=K`), at the global step count;
      batch logs cover the epoch so far;
    - with `histogram_freq=N`: every N epochs a histogram of every weight
      (`dense/kernel`, `batch_normalization/moving_mean`...) at step `epoch`.

    Scalars are stored as 32-bit floats (TensorBoard's `simple_value`).
    Keras' `write_graph`, `write_images` and profiling are not offered.
    Keras' `embeddings_freq` and `embeddings_metadata` are accepted so that a
    Keras script runs, but no embeddings are written (TensorBoard's projector
    files are TensorFlow checkpoints); a nonzero `embeddings_freq` warns once
    (`UserWarning`, shown once per call site by Python's default filter).

    Args:
        log_dir: The run's folder.
        histogram_freq: Epochs between weight histograms (0: none).
        update_freq: `"epoch"`, `"batch"` (every batch) or a number of batches
            between batch scalars.
        embeddings_freq: Keras' argument, accepted (an int >= 0); embeddings
            are not written (see above).
        embeddings_metadata: Keras' argument (None, a path, or a dict of
            layer name to path), accepted and unused.

    Example:
        >>> import os, tempfile, numpy as np, funkeras as fk
        >>> logs = tempfile.mkdtemp()
        >>> model = fk.Sequential([fk.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, verbose=0,
        ...               callbacks=[fk.callbacks.TensorBoard(logs)])
        >>> os.listdir(logs)
        ['train']
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] = "logs",
        histogram_freq: int = 0,
        *,
        update_freq: str | int = "epoch",
        embeddings_freq: int = 0,
        embeddings_metadata: str | Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        owner = "TensorBoard"
        if not isinstance(log_dir, str | os.PathLike):
            raise TypeError(f"{owner}: `log_dir` must be a path, got {log_dir!r}.")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = check_int(
            owner, "histogram_freq", histogram_freq, minimum=0
        )
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch":
            if isinstance(update_freq, str):
                raise ValueError(
                    f"{owner}: `update_freq` must be 'epoch', 'batch' or a positive "
                    f"int (batches), got {update_freq!r}."
                )
            update_freq = check_int(owner, "update_freq", update_freq, minimum=1)
        self.update_freq = update_freq
        self.embeddings_freq = check_int(
            owner, "embeddings_freq", embeddings_freq, minimum=0
        )
        if embeddings_metadata is not None and not isinstance(
            embeddings_metadata, str | os.PathLike | Mapping
        ):
            raise TypeError(
                f"{owner}: `embeddings_metadata` must be None, a path or a dict "
                f"{{layer name: path}}, got {embeddings_metadata!r}."
            )
        self.embeddings_metadata = embeddings_metadata
        if self.embeddings_freq:
            warnings.warn(
                f"{owner}: `embeddings_freq={self.embeddings_freq}` is accepted but "
                "no embeddings are written: TensorBoard's projector reads TensorFlow "
                "checkpoints, which funkeras does not write. Scalars and histograms "
                "are written as usual.",
                UserWarning,
                stacklevel=2,
            )
        self._train: Any = None
        self._val: Any = None
        self._epoch_start = 0
        self._last_written = 0

    def _writer(self, which: str) -> Any:
        if which == "train":
            if self._train is None:
                self._train = summary_writer(
                    "TensorBoard", os.path.join(self.log_dir, "train")
                )
            return self._train
        if self._val is None:
            self._val = summary_writer(
                "TensorBoard", os.path.join(self.log_dir, "validation")
            )
        return self._val

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._writer("train")  # fail early if tensorboardX is missing
        self._last_written = epoch_start_step(self.model)

    def on_epoch_begin(
        self, epoch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        self._epoch_start = epoch_start_step(self.model)

    def on_train_batch_end(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        if self.update_freq == "epoch" or not logs:
            return
        step = self._epoch_start + batch + 1
        if step - self._last_written < self.update_freq:
            return
        self._last_written = step
        writer = self._writer("train")
        for key in logs:
            writer.add_scalar(f"batch_{key}", float(logs[key]), global_step=step)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        logs = logs or {}
        train = self._writer("train")
        for key, value in logs.items():
            if not key.startswith("val_"):
                train.add_scalar(f"epoch_{key}", float(value), global_step=epoch)
        learning_rate = current_learning_rate(self.model)
        if learning_rate is not None:
            train.add_scalar("epoch_learning_rate", learning_rate, global_step=epoch)
        val_keys = [k for k in logs if k.startswith("val_")]
        if val_keys:
            val = self._writer("validation")
            for key in val_keys:
                val.add_scalar(f"epoch_{key[4:]}", float(logs[key]), global_step=epoch)
            val.flush()
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            weights = {"params": self.model.params, "state": self.model.state}
            for path, value in flatten_paths(weights):
                name = path.split("/", 1)[1]
                train.add_histogram(
                    name, np.asarray(value, np.float64), global_step=epoch
                )
        train.flush()

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        for writer in (self._train, self._val):
            if writer is not None:
                writer.close()
        self._train = self._val = None
