"""A training run for test_backup_and_restore.py, in its own process.

    python backup_worker.py MODE BACKUP_DIR OUT_PREFIX

MODE "full" trains 6 epochs; "crash" raises in the middle of epoch 3 (the process
ends with status 3); "resume" calls the same `fit` again. Writes OUT_PREFIX.npz
(the weights after the last epoch, then the best epoch's weights that
EarlyStopping put back), OUT_PREFIX.json (history, EarlyStopping state) and the
CSVLogger file OUT_PREFIX.csv.
"""

import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import funkeras as fk  # noqa: E402

L = fk.layers


def build(units=1):
    inp = fk.Input(shape=(5,))
    h = L.Dense(8, activation="relu")(inp)
    h = L.BatchNormalization()(h)
    h = L.Dropout(0.3)(h)
    out = L.Dense(units)(h)
    model = fk.Model(inp, out, seed=11)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    noise = 0.1 * rng.normal(size=(40, 1))
    y = (np.sin(x).sum(1, keepdims=True) + noise).astype(np.float32)
    return x, y


class LastWeights(fk.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.weights = self.model.get_weights()


class Crash(fk.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.model.progress.epoch == 3 and batch == 1:
            raise RuntimeError("injected crash")


def main(mode, backup_dir, out):
    model = build()
    last = LastWeights()
    stop = fk.callbacks.EarlyStopping(
        monitor="val_loss", patience=100, restore_best_weights=True
    )
    callbacks = [
        last,
        stop,
        fk.callbacks.CSVLogger(out + ".csv", append=False),
        fk.callbacks.BackupAndRestore(backup_dir),
    ]
    if mode == "crash":
        callbacks.append(Crash())
    x, y = data()
    try:
        history = model.fit(
            x,
            y,
            batch_size=8,
            epochs=6,
            validation_split=0.2,
            shuffle=True,
            seed=5,
            verbose=0,
            callbacks=callbacks,
        )
    except RuntimeError:
        sys.exit(3)
    np.savez(out + ".npz", *last.weights, *model.get_weights())
    with open(out + ".json", "w") as f:
        json.dump(
            {
                "history": history.history,
                "epochs": history.epoch,
                "best": stop.best,
                "best_epoch": stop.best_epoch,
                "wait": stop.wait,
                "steps": model.progress.step,
            },
            f,
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
