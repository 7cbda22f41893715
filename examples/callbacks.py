"""Callbacks: early stopping, checkpoints, and resuming after a crash.

Part 1. A wide MLP on a small, noisy data set overfits: the validation loss
bottoms out and rises again. `EarlyStopping(patience=..., restore_best_weights=True)`
stops the run and puts back the weights of the best epoch, and
`ModelCheckpoint(save_best_only=True)` keeps those weights on disk as well.

Part 2. A run that crashes midway (a callback raises, as a killed job or an
out-of-memory error would end it) is resumed by `BackupAndRestore`: a fresh model
(as in a new process) calling `fit` again with the same backup folder continues at
the interrupted epoch, with the optimizer state, the step count and the other
callbacks' state restored. Data order is a function of `(seed, epoch)`, so the
resumed run ends with the same weights as a run that never crashed.

    python examples/callbacks.py
    python examples/callbacks.py --smoke
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import funkeras as fk
from funkeras.saving import load_weights


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy regression: `y = sin(x0) + x1 * x2 + 0.3 * noise`, 20 features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20)).astype(np.float32)
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2] + 0.3 * rng.normal(size=n)
    return x, y[:, None].astype(np.float32)


def build_model(width: int, seed: int = 0) -> fk.Model:
    model = fk.Sequential(
        [
            fk.Input(shape=(20,)),
            fk.layers.Dense(width, activation="relu"),
            fk.layers.Dense(width, activation="relu"),
            fk.layers.Dense(1),
        ],
        seed=seed,
    )
    model.compile(optimizer=fk.optimizers.Adam(3e-3), loss="mse")
    return model


class CrashAt(fk.callbacks.Callback):
    """Raises `RuntimeError` when epoch `epoch` (0-based) begins: a simulated crash."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError(f"simulated crash at the start of epoch {epoch + 1}")


def early_stopping_and_checkpoints(folder: str, *, smoke: bool) -> dict[str, float]:
    """Part 1: return the best validation loss and what the model ends with."""
    x, y = make_data(300 if smoke else 400)
    model = build_model(width=64 if smoke else 256)
    best_path = os.path.join(folder, "best.weights.safetensors")
    stop = fk.callbacks.EarlyStopping(
        monitor="val_loss", patience=3, restore_best_weights=True, verbose=1
    )
    keep_best = fk.callbacks.ModelCheckpoint(
        best_path, monitor="val_loss", save_best_only=True, save_weights_only=True
    )
    history = model.fit(
        x,
        y,
        batch_size=32,
        epochs=30 if smoke else 200,
        validation_split=0.25,
        callbacks=[stop, keep_best],
        verbose=0,
    )
    val_losses = history.history["val_loss"]
    x_val, y_val = x[-len(x) // 4 :], y[-len(y) // 4 :]  # validation_split's rows
    final = float(model.evaluate(x_val, y_val, verbose=0))

    on_disk = build_model(width=64 if smoke else 256, seed=1)
    load_weights(on_disk, best_path)
    from_file = float(on_disk.evaluate(x_val, y_val, verbose=0))
    print(
        f"ran {len(val_losses)} epochs; val_loss was lowest at epoch "
        f"{stop.best_epoch + 1} ({min(val_losses):.4f}) and ended at "
        f"{val_losses[-1]:.4f}; the model now scores {final:.4f}, the checkpoint "
        f"file {from_file:.4f}"
    )
    return {
        "epochs_run": float(len(val_losses)),
        "best_val_loss": float(min(val_losses)),
        "last_val_loss": float(val_losses[-1]),
        "restored_val_loss": final,
        "checkpoint_val_loss": from_file,
    }


def crash_and_resume(folder: str, *, smoke: bool) -> dict[str, float]:
    """Part 2: return the weight difference between resumed and uninterrupted runs."""
    x, y = make_data(512)
    width, epochs, crash_epoch = (32, 4, 2) if smoke else (128, 10, 6)
    backup_dir = os.path.join(folder, "backup")

    first = build_model(width)
    try:
        first.fit(
            x,
            y,
            batch_size=32,
            epochs=epochs,
            seed=0,
            verbose=0,
            callbacks=[CrashAt(crash_epoch), fk.callbacks.BackupAndRestore(backup_dir)],
        )
    except RuntimeError as e:
        print(
            f"first run: {e}; backup kept in {backup_dir}: "
            f"{sorted(os.listdir(backup_dir))}"
        )

    # A new process would rebuild the model from code and call fit again.
    resumed = build_model(width)
    history = resumed.fit(
        x,
        y,
        batch_size=32,
        epochs=epochs,
        seed=0,
        verbose=0,
        callbacks=[fk.callbacks.BackupAndRestore(backup_dir)],
    )
    print(
        f"second run: resumed at epoch {crash_epoch + 1} and trained up to epoch "
        f"{epochs}; its History holds all {len(history.history['loss'])} epochs (the "
        f"first {crash_epoch} restored from the backup); backup folder removed: "
        f"{not os.path.exists(backup_dir)}"
    )

    reference = build_model(width)  # the same run without the crash
    reference.fit(x, y, batch_size=32, epochs=epochs, seed=0, verbose=0)
    difference = max(
        float(np.abs(a - b).max())
        for a, b in zip(resumed.get_weights(), reference.get_weights(), strict=True)
    )
    print(
        f"resumed against uninterrupted run: max |weight difference| {difference:.1e}"
    )
    return {
        "history_epochs": float(len(history.history["loss"])),
        "resume_max_difference": difference,
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run both parts; return their figures in one dict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        results = early_stopping_and_checkpoints(folder, smoke=args.smoke)
        results |= crash_and_resume(folder, smoke=args.smoke)
    return results


if __name__ == "__main__":
    main()
