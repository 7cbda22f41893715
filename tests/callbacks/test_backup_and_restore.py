"""BackupAndRestore: a crashed fit resumed in a new process equals an unbroken one."""

import json
import os
import subprocess
import sys

import backup_worker
import numpy as np
import pytest

import funkeras as fk
from funkeras.callbacks.backup_and_restore import BackupAndRestore
from funkeras.errors import CheckpointMismatchError, WeightsMismatchError
from funkeras.saving.checkpoints import CheckpointManager

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _backups(folder):
    """The backup files in `folder` (not the hidden lock of a run)."""
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def run_worker(mode, backup_dir, out):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [
            sys.executable,
            os.path.join(HERE, "backup_worker.py"),
            mode,
            str(backup_dir),
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def load(out):
    with np.load(str(out) + ".npz") as f:
        weights = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    with open(str(out) + ".json") as f:
        info = json.load(f)
    with open(str(out) + ".csv") as f:
        csv_text = f.read()
    return weights, info, csv_text


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("backup")
    backup_worker.main("full", str(root / "full_backup"), str(root / "full"))
    crash = run_worker("crash", root / "backup", root / "resumed")
    assert crash.returncode == 3, crash.stderr
    left = _backups(root / "backup")
    with open(root / "resumed.csv") as f:
        rows_after_crash = f.read().count("\n") - 1
    resume = run_worker("resume", root / "backup", root / "resumed")
    assert resume.returncode == 0, resume.stderr
    return root, left, rows_after_crash


def test_resumed_fit_equals_the_uninterrupted_one_exactly(runs):
    root, left, rows_after_crash = runs
    assert left == ["ckpt_12.fkc"]  # 4 steps per epoch: the end of epoch 2 (3rd)
    assert rows_after_crash == 3
    full_weights, full_info, full_csv = load(root / "full")
    weights, info, csv_text = load(root / "resumed")
    # The trained weights, then the best epoch's that EarlyStopping put back: bit for
    # bit. The best epoch came before the crash, so its weights went through the
    # backup as EarlyStopping's state.
    assert info["best_epoch"] < 3
    assert len(weights) == len(full_weights) == 2 * 8  # 2 Dense + BatchNorm, twice
    for got, want in zip(weights, full_weights, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not all(np.array_equal(a, b) for a, b in zip(weights[:8], weights[8:]))
    # Every callback's state came back: the whole History, EarlyStopping's counters,
    # and the CSV file continues (the crashed epoch's partial work is gone).
    assert info == full_info
    assert info["epochs"] == [0, 1, 2, 3, 4, 5] and info["steps"] == 24
    assert csv_text == full_csv
    assert not os.path.exists(root / "backup")  # deleted after a normal end
    assert not os.path.exists(root / "full_backup")


def _small(units=1, optimizer="adam"):
    model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(units)], seed=0)
    model.compile(optimizer=optimizer, loss="mse")
    return model


class _Crash(fk.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("crash")


def _crash_once(backup_dir):
    x, y = np.ones((8, 3), np.float32), np.ones((8, 1), np.float32)
    model = _small()
    with pytest.raises(RuntimeError, match="crash"):
        model.fit(
            x,
            y,
            epochs=3,
            verbose=0,
            callbacks=[_Crash(), BackupAndRestore(backup_dir)],
        )
    return x, y


def test_backup_of_another_model_is_refused(tmp_path):
    x, y = _crash_once(tmp_path / "b")
    assert _backups(tmp_path / "b") == ["ckpt_1.fkc"]
    other = _small(units=2)
    before = other.get_weights()
    with pytest.raises(CheckpointMismatchError, match="different model"):
        other.fit(
            x,
            np.ones((8, 2), np.float32),
            epochs=3,
            verbose=0,
            callbacks=[BackupAndRestore(tmp_path / "b")],
        )
    for got, want in zip(other.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert _backups(tmp_path / "b") == ["ckpt_1.fkc"]  # left as it was


def test_backup_of_another_optimizer_is_refused(tmp_path):
    x, y = _crash_once(tmp_path / "b")
    with pytest.raises(WeightsMismatchError, match="another optimizer"):
        _small(optimizer="sgd").fit(
            x, y, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path / "b")]
        )


def test_batch_frequency_writes_mid_epoch_backups(tmp_path):
    x, y = np.ones((32, 3), np.float32), np.ones((32, 1), np.float32)
    seen = []

    class Look(fk.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(sorted(_backups(tmp_path / "b")))

    model = _small()
    model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        verbose=0,
        callbacks=[
            Look(),
            BackupAndRestore(tmp_path / "b", save_freq=3, delete_checkpoint=False),
        ],
    )
    # Look runs before the backup in each hook: it sees the previous block's files.
    assert seen == [[], [], [], ["ckpt_3.fkc"]]
    assert _backups(tmp_path / "b") == ["ckpt_4.fkc"]  # the epoch end


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="save_freq"):
        BackupAndRestore(tmp_path, save_freq="batch")
    with pytest.raises(TypeError, match="delete_checkpoint"):
        BackupAndRestore(tmp_path, delete_checkpoint=1)


class _CrashAt(fk.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("crash")


def test_resume_in_the_same_process_ends_where_the_interrupted_fit_would(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = x[:, :1].copy()

    def model():
        m = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(1)], seed=0)
        m.compile(optimizer="sgd", loss="mse")
        return m

    whole = model()
    whole.fit(x, y, epochs=4, verbose=0)
    crashed = model()
    backup = BackupAndRestore(str(tmp_path / "b"))
    with pytest.raises(RuntimeError, match="crash"):
        crashed.fit(x, y, epochs=4, verbose=0, callbacks=[backup, _CrashAt(1)])
    history = crashed.fit(x, y, epochs=4, verbose=0, callbacks=[backup])
    assert history.epoch == [0, 1, 2, 3]  # the restored History continues
    for a, b in zip(whole.get_weights(), crashed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


class _CrashAtBatch(fk.callbacks.Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise RuntimeError("crash")


@pytest.mark.parametrize("spe", [1, 2])
def test_resume_inside_an_epoch_is_exact(tmp_path, spe):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = x[:, :1] * 2.0

    def model():
        m = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(4, activation="tanh"),
                           fk.layers.Dropout(0.2), fk.layers.Dense(1)], seed=0)
        m.compile(optimizer="adam", loss="mse", steps_per_execution=spe)
        return m

    whole = model()
    whole.fit(x, y, batch_size=4, epochs=3, verbose=0, seed=5)
    crashed = model()
    backup = BackupAndRestore(str(tmp_path / "b"), save_freq=2)
    with pytest.raises(RuntimeError, match="crash"):
        crashed.fit(x, y, batch_size=4, epochs=3, verbose=0, seed=5,
                    callbacks=[backup, _CrashAtBatch(1, 5)])
    resumed = model()  # as a new process would build it
    resumed.fit(x, y, batch_size=4, epochs=3, verbose=0, seed=5,
                callbacks=[BackupAndRestore(str(tmp_path / "b"), save_freq=2)])
    for a, b in zip(whole.get_weights(), resumed.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# -- hostile folders and values: a backup belongs to its run ----------------------


def _crash_with_meta(backup_dir, monkeypatch, **meta_changes):
    """Crash a fit after one epoch, its backup's metadata altered as given.

    The file is written by the real writer, so its hashes are valid: only the
    values are hostile.
    """
    original = CheckpointManager.save

    def save(self, step, tree, metadata=None):
        return original(self, step, tree, {**metadata, **meta_changes})

    monkeypatch.setattr(CheckpointManager, "save", save)
    try:
        return _crash_once(backup_dir)
    finally:
        monkeypatch.setattr(CheckpointManager, "save", original)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"fit_start": 99}, "fit_start"),
        ({"batch": -5}, "batch"),
        ({"epoch": 10**6 * 10**6}, "epoch"),
        ({"step": 10**12}, "step"),
        ({"epoch": True}, "epoch"),
        ({"batch": 0}, "batch"),
    ],
)
def test_hostile_counters_are_ignored(tmp_path, monkeypatch, changes, match):
    x, y = _crash_with_meta(tmp_path / "b", monkeypatch, **changes)
    model = _small()
    with pytest.warns(UserWarning, match=match):
        model.fit(x, y, epochs=1, verbose=0,
                  callbacks=[BackupAndRestore(tmp_path / "b")])
    # Ignored, not resumed: the fit started afresh from the model's own weights.
    assert model.progress.epoch == 1
    assert model.progress.step == 1


def test_stray_files_do_not_block_a_resume(tmp_path):
    x, y = _crash_once(tmp_path / "b")
    (tmp_path / "b" / "ckpt_0999999.fkc").write_bytes(b"not ours")
    (tmp_path / "b" / "ckpt_00016.fkc").write_bytes(b"not ours")
    (tmp_path / "b" / "notes.txt").write_text("a user's file")
    model = _small()
    model.fit(x, y, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path / "b")])
    assert model.progress.epoch == 3  # resumed after epoch 1, trained epochs 2-3


def test_an_unreadable_newest_backup_is_ignored_with_a_warning(tmp_path):
    x, y = _crash_once(tmp_path / "b")
    (tmp_path / "b" / "ckpt_99.fkc").write_bytes(b"garbage under a backup's name")
    model = _small()
    with pytest.warns(UserWarning, match="ckpt_99.fkc.*not a readable backup"):
        model.fit(x, y, epochs=3, verbose=0,
                  callbacks=[BackupAndRestore(tmp_path / "b")])
    assert model.progress.epoch == 3  # the real backup (epoch 1) was resumed


def test_a_second_live_run_on_the_folder_is_refused(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (folder / ".lock").write_text(json.dumps({"pid": live.pid}))
        model = _small()
        before = model.get_weights()
        x, y = np.ones((8, 3), np.float32), np.ones((8, 1), np.float32)
        with pytest.raises(RuntimeError, match=f"process {live.pid}"):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(folder)])
        for got, want in zip(model.get_weights(), before, strict=True):
            np.testing.assert_array_equal(got, want)
    finally:
        live.kill()
        live.wait()
    # The run has ended: its lock is taken over, and removed at the end.
    model.fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(folder)])
    assert not folder.exists()


def test_temporaries_of_killed_saves_do_not_keep_the_folder(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / ".ckpt_4.fkc.0123456789ab.tmp").write_bytes(b"half a checkpoint")
    x, y = np.ones((8, 3), np.float32), np.ones((8, 1), np.float32)
    _small().fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(folder)])
    assert not folder.exists()


def test_a_backup_of_another_run_is_refused_and_says_what_differs(tmp_path):
    x, y = _crash_once(tmp_path / "b")  # seed 0, rows of ones
    other_x = np.full_like(x, 2.0)
    model = _small()
    before = model.get_weights()
    with pytest.raises(CheckpointMismatchError, match="training data differ"):
        model.fit(other_x, y, epochs=3, verbose=0,
                  callbacks=[BackupAndRestore(tmp_path / "b")])
    with pytest.raises(CheckpointMismatchError, match="seed differ.*seed: 0 then, 7"):
        model.fit(x, y, epochs=3, verbose=0, seed=7,
                  callbacks=[BackupAndRestore(tmp_path / "b")])
    for got, want in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert _backups(tmp_path / "b") == ["ckpt_1.fkc"]  # left as it was
    # The same run resumes.
    model.fit(x, y, epochs=3, verbose=0, callbacks=[BackupAndRestore(tmp_path / "b")])
    assert model.progress.epoch == 3
