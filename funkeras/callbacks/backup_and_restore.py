"""`BackupAndRestore`: resume an interrupted `fit` exactly, even in a new process."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras.callbacks._common import epoch_start_step, flatten_paths
from funkeras.callbacks.callback import Callback, _check_save_freq, _SaveCounter
from funkeras.errors import (
    CheckpointMismatchError,
    ConfigError,
    ModelLoadError,
    WeightsMismatchError,
)
from funkeras.saving import archive
from funkeras.saving.checkpoints import (
    ARRAYS,
    INFO,
    KIND,
    MAX_INFO_BYTES,
    CheckpointManager,
    config_fingerprint,
)
from funkeras.saving.safetensors_io import MAX_HEADER_BYTES
from funkeras.training.host import ResumePoint

__all__ = ["BackupAndRestore"]

_FORMAT = "funkeras.BackupAndRestore"
_VERSION = 1
_LOCK = ".lock"
# Counters read back from a backup are hostile input: they must be ints in range.
_MAX_EPOCH = 2**31 - 1
_MAX_STEP = 2**31 - 1  # the train state counts steps in int32


def _counter(meta: dict[str, Any], key: str, path: str, *, high: int) -> int:
    value = meta.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
        raise ConfigError(
            f"{path}: the backup's `{key}` must be an int in [0, {high}], got "
            f"{value!r:.40}."
        )
    return value


def _resume_point(meta: dict[str, Any], path: str) -> ResumePoint:
    """The backup's counters, range-checked and consistent with one another."""
    epoch = _counter(meta, "epoch", path, high=_MAX_EPOCH)
    step = _counter(meta, "step", path, high=_MAX_STEP)
    fit_start = None
    if meta.get("fit_start") is not None:  # absent in backups of older versions
        fit_start = _counter(meta, "fit_start", path, high=epoch)
    batch = meta.get("batch")
    if batch is not None:
        # A mid-epoch backup: `batch` batches of `epoch` are done, within `step`.
        batch = _counter(meta, "batch", path, high=step)
        if batch == 0:
            raise ConfigError(f"{path}: a mid-epoch backup must have `batch` >= 1.")
    return ResumePoint(epoch=epoch, step=step, fit_start=fit_start, batch=batch)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    except OSError:
        return False
    return True


class _FolderLock:
    """`<backup_dir>/.lock`: refuses a second live run on the same folder.

    The file holds the owner's process id. A lock whose process is gone (a
    killed run) or is this process (a `fit` interrupted by an exception) is
    taken over.
    """

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, _LOCK)
        self.held = False

    def acquire(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and owner != os.getpid() and _pid_alive(owner):
                    raise RuntimeError(
                        f"BackupAndRestore: another training run (process {owner}) "
                        f"is backing up into {os.path.dirname(self.path)!r}. Give "
                        "each run its own `backup_dir` (if that run has ended, "
                        f"delete {self.path!r})."
                    ) from None
                try:
                    os.unlink(self.path)  # a dead run's lock, or our own
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"pid": os.getpid()}, f)
            self.held = True
            return
        raise RuntimeError(
            f"BackupAndRestore: could not take the lock {self.path!r}; another run "
            "keeps taking it."
        )

    def _owner(self) -> int | None:
        try:
            with open(self.path, encoding="utf-8") as f:
                pid = json.loads(f.read(256)).get("pid")
        except (OSError, ValueError, AttributeError):
            return None
        return pid if isinstance(pid, int) and not isinstance(pid, bool) else None

    def release(self) -> None:
        if self.held and self._owner() == os.getpid():
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        self.held = False


def _nbytes(tree: Any) -> int:
    return sum(
        int(np.prod(np.shape(a))) * jnp.dtype(a.dtype).itemsize
        for a in jax.tree.leaves(tree)
    )


def _identity(model: Any) -> dict[str, Any]:
    """What makes a checkpoint this model's: its config and its weights' shapes."""
    weights = {
        path: [list(np.shape(a)), jnp.dtype(a.dtype).name]
        for path, a in flatten_paths({"params": model.params, "state": model.state})
    }
    identity: dict[str, Any] = {"weights": weights}
    try:
        config = dict(model.get_config())
        config.pop("seed", None)  # the seed of the initial weights, which are restored
        config_fingerprint({"model": config})
    except (TypeError, ValueError):
        return identity  # a config holding Python objects: the shapes identify it
    identity["model"] = config
    return identity


def _encode(owner: str, value: Any, arrays: list[np.ndarray], where: str) -> Any:
    """JSON data for a callback state; arrays are moved to `arrays` and referenced."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, np.ndarray | jax.Array):
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            raise TypeError(
                f"{owner}: {where} is a PRNG key array; store its seed instead."
            )
        arrays.append(np.asarray(value))
        return {"__array__": len(arrays) - 1}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{owner}: {where} has a non-str key {k!r}.")
            out[k] = _encode(owner, v, arrays, f"{where}[{k!r}]")
        if set(out) == {"__array__"}:
            raise TypeError(f"{owner}: {where} uses the reserved key '__array__'.")
        return out
    if isinstance(value, list | tuple):
        return [_encode(owner, v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(
        f"{owner}: {where} is a {type(value).__name__}; `get_state()` may hold None, "
        "bool, int, float, str, arrays, and lists and str-keyed dicts of these."
    )


def _decode(value: Any, arrays: list[np.ndarray], what: str) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            index = value["__array__"]
            if (
                not isinstance(index, int)
                or isinstance(index, bool)
                or not (0 <= index < len(arrays))
            ):
                raise ConfigError(f"{what}: a callback state names a missing array.")
            return arrays[index]
        return {k: _decode(v, arrays, what) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays, what) for v in value]
    return value


def _array_specs(meta: Any, what: str) -> list[jax.ShapeDtypeStruct]:
    specs = []
    entries = meta.get("callback_arrays") if isinstance(meta, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{what}: the backup metadata has no `callback_arrays` list.")
    for entry in entries:
        ok = isinstance(entry, dict) and set(entry) == {"shape", "dtype"}
        shape = entry.get("shape") if ok else None
        ok = (
            ok
            and isinstance(shape, list)
            and all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40
                for d in shape
            )
        )
        dtype = None
        if ok and isinstance(entry["dtype"], str):
            try:
                dtype = jnp.dtype(entry["dtype"])
            except TypeError:
                dtype = None
        if (
            not ok
            or dtype is None
            or dtype.kind not in "biuf"
            and dtype.name != "bfloat16"
        ):
            raise ConfigError(
                f"{what}: a `callback_arrays` entry is malformed: {entry!r:.200}."
            )
        specs.append(jax.ShapeDtypeStruct(tuple(shape), dtype))
    return specs


def _read_info(path: str, max_bytes: int) -> dict[str, Any]:
    """The JSON part of a checkpoint (its metadata and fingerprint), validated."""
    data = archive.read_file(path, max_bytes=max_bytes, what=path)
    members = archive.read_archive(data, kind=KIND, required={INFO, ARRAYS}, what=path)
    info = archive.parse_json(
        members[INFO],
        what=f"{path}: {INFO}",
        max_bytes=MAX_INFO_BYTES,
        allow_nonfinite=True,
    )
    if not isinstance(info, dict) or not isinstance(info.get("metadata"), dict):
        raise ConfigError(f"{path}: {INFO} has no metadata object.")
    return info


class BackupAndRestore(Callback):
    """Backs up the whole training state so that an interrupted `fit` resumes exactly.

    At every epoch end a checkpoint of the train state is written atomically
    to `backup_dir`: params, layer state, optimizer state (with its learning
    rate), the epoch and step counters, the `get_state()` of every other
    callback of the `fit` (`History`, `EarlyStopping`'s best weights and
    counters...) and a fingerprint of the model (its config and its weights'
    shapes). When `fit` is called again after a crash, a Ctrl-C or a killed
    process, even in a new process, the model, optimizer and callbacks are
    restored and training continues at the interrupted epoch.

    With array data the resume is exact: data order is a function of
    `(seed, epoch)` and dropout keys of `(seed, step)`, so the final weights
    equal an uninterrupted run's bit for bit on the same machine (pass the same
    `seed` to `fit`). Iterables cannot be rewound: they continue from wherever
    the new iterator starts.

    A checkpoint written for another model (a different config or weight
    shapes) is refused with `CheckpointMismatchError`, and one of another
    optimizer with `WeightsMismatchError`; nothing is mixed.

    This callback runs after the other callbacks in every hook, so its
    checkpoint holds their state after the epoch, except in `on_train_begin`,
    where it runs first: the others then see the restored weights, and their
    own state already set back by `set_state` (a callback that resets itself
    in `on_train_begin` should skip that after a `set_state`, as the built-in
    ones do). A callback whose state is not in the checkpoint (added since)
    keeps its fresh state.

    Args:
        backup_dir: A folder for this run's backups only (created if missing).
        save_freq: `"epoch"`, or a number of batches between backups (checked
            once per K-step block with `steps_per_execution=K`). A backup is
            written at every epoch end in both cases. With array data, a resume
            from a mid-epoch backup continues at the batch after it (the epoch's
            order is a function of the seed and the epoch), so the final weights
            equal an uninterrupted run's; the resumed epoch's logged metrics
            cover only its remaining batches. Iterables restart the epoch.
        delete_checkpoint: Delete the backup when training ends normally
            (including an early stop).

    Example:
        >>> import os, tempfile, numpy as np, funkeras as fk
        >>> folder = os.path.join(tempfile.mkdtemp(), "backup")
        >>> model = fk.Sequential([fk.Input(shape=(2,)), fk.layers.Dense(1)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, verbose=0,
        ...               callbacks=[fk.callbacks.BackupAndRestore(folder)])
        >>> os.path.exists(folder)  # deleted when training ended normally
        False
    """

    _runs_last = True

    def __init__(
        self,
        backup_dir: str | os.PathLike[str],
        save_freq: str | int = "epoch",
        delete_checkpoint: bool = True,
    ) -> None:
        super().__init__()
        owner = "BackupAndRestore"
        if not isinstance(backup_dir, str | os.PathLike) or not os.fspath(backup_dir):
            raise TypeError(
                f"{owner}: `backup_dir` must be a folder path, got {backup_dir!r}."
            )
        save_freq = _check_save_freq(owner, save_freq)
        if not isinstance(delete_checkpoint, bool):
            raise TypeError(
                f"{owner}: `delete_checkpoint` must be a bool, got "
                f"{delete_checkpoint!r}."
            )
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = delete_checkpoint
        self._peers: list[Callback] = []
        self._manager: Any = None
        self._epoch = 0
        self._epoch_start = 0
        self._fit_start = 0
        self._counter = _SaveCounter(save_freq)
        self._lock = _FolderLock(self.backup_dir)

    def _set_peers(self, callbacks: list[Callback]) -> None:
        self._peers = [cb for cb in callbacks if cb is not self]

    def _named_peers(self) -> list[tuple[str, Callback]]:
        counts: dict[str, int] = {}
        named = []
        for cb in self._peers:
            base = type(cb).__name__
            n = counts.get(base, 0)
            counts[base] = n + 1
            named.append((base if n == 0 else f"{base}_{n}", cb))
        return named

    # -- restore ----------------------------------------------------------------

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        model = self.model
        if model.opt_state is None:
            raise ValueError("BackupAndRestore: compile the model before `fit`.")
        identity = _identity(model)
        self._manager = CheckpointManager(
            self.backup_dir, max_to_keep=None, model_config=identity
        )
        self._counter.since = 0
        # The first epoch of the fit being backed up: a resumed fit trains up to
        # the same final epoch as the interrupted one, in any process.
        self._fit_start = int(self.params.get("initial_epoch", 0))
        self._lock.release()
        self._lock = _FolderLock(self.backup_dir)
        self._lock.acquire()
        try:
            self._restore_newest(identity)
        except BaseException:
            self._lock.release()  # a refused resume leaves the folder as it was
            raise

    def _restore_newest(self, identity: dict[str, Any]) -> None:
        for step in reversed(self._manager.all_steps()):
            try:
                self._restore(step, identity)
                return
            except (CheckpointMismatchError, WeightsMismatchError):
                raise  # a backup of another model: never mix, never skip silently
            except ModelLoadError as e:
                # Not a backup this callback wrote (unreadable or malformed):
                # ignored, so that a stray file cannot block the run.
                warnings.warn(
                    f"BackupAndRestore: ignoring {self._manager.path_for(step)!r}, "
                    f"which is not a readable backup ({e})",
                    stacklevel=2,
                )

    def _restore(self, step: int, identity: dict[str, Any]) -> None:
        model = self.model
        path = self._manager.path_for(step)
        current = {
            "params": model.params,
            "state": model.state,
            "opt_state": model.opt_state,
        }
        budget = 4 * _nbytes(current) + MAX_INFO_BYTES + 2 * MAX_HEADER_BYTES
        info = _read_info(path, budget)
        if info.get("fingerprint") != config_fingerprint(identity):
            raise CheckpointMismatchError(
                f"BackupAndRestore: {path!r} is a backup of a different model (its "
                "layers, config or weight shapes differ from this model's), so it is "
                "not restored into this one. Point `backup_dir` at this model's own "
                "folder, or delete the old backup to start afresh."
            )
        meta = info["metadata"]
        if meta.get("format") != _FORMAT or meta.get("version") != _VERSION:
            raise ConfigError(f"{path}: not a BackupAndRestore backup of this version.")
        self._check_run(path, meta.get("run"))
        point = _resume_point(meta, path)
        specs = _array_specs(meta, path)
        like = {**current, "callbacks": {str(i): s for i, s in enumerate(specs)}}
        try:
            restored = self._manager.restore(step, like=like).tree
        except WeightsMismatchError as e:
            raise WeightsMismatchError(
                f"BackupAndRestore: the backup in {self.backup_dir!r} does not fit "
                "this model's training state (was it written with another "
                f"optimizer?). {e}"
            ) from None
        arrays = [np.asarray(restored["callbacks"][str(i)]) for i in range(len(specs))]
        states = meta.get("callback_states", {})
        if not isinstance(states, dict):
            raise ConfigError(
                f"{path}: the backup's `callback_states` must be an object."
            )
        # Everything is read and checked before anything is set: a backup that
        # fails a check leaves the model and the callbacks as they were.
        decoded = [
            (cb, _decode(states[name], arrays, path))
            for name, cb in self._named_peers()
            if name in states
        ]
        model.params = restored["params"]
        model.state = restored["state"]
        model.opt_state = restored["opt_state"]
        for cb, state in decoded:
            cb.set_state(state)
        model.progress.epoch = point.epoch
        model.progress.step = point.step
        if point.fit_start is not None:
            self._fit_start = point.fit_start
        model.progress.resume = ResumePoint(
            epoch=point.epoch,
            step=point.step,
            fit_start=self._fit_start,
            batch=point.batch,
        )

    def _run(self) -> Any:
        """What this fit is (its seed and array data), from `fit`'s params."""
        return self.params.get("run")

    def _check_run(self, path: str, written: Any) -> None:
        """Refuse a backup that another run (other data or seed) wrote."""
        current = self._run()
        if written is None or current is None:
            return  # an older backup, or a fit that does not describe its run
        if not isinstance(written, dict):
            raise ConfigError(f"{path}: the backup's `run` must be an object.")
        differ = sorted(
            k for k in set(written) | set(current) if written.get(k) != current.get(k)
        )
        if differ:
            what = {"seed": "the fit's seed", "data": "the training data"}
            details = "; ".join(
                f"{k}: {written.get(k)!r:.120} then, {current.get(k)!r:.120} now"
                for k in differ
            )
            raise CheckpointMismatchError(
                f"BackupAndRestore: {path!r} was written by another run: "
                f"{' and '.join(what.get(k, k) for k in differ)} differ ({details}). "
                "A resume continues the same fit; give this run its own "
                "`backup_dir`, or delete the old backup to start afresh."
            )

    # -- backup -------------------------------------------------------------------

    def _save(self, epoch: int, step: int, batch: int | None) -> None:
        model = self.model
        arrays: list[np.ndarray] = []
        states = {}
        for name, cb in self._named_peers():
            state = cb.get_state()
            if state:
                states[name] = _encode(
                    "BackupAndRestore", state, arrays, f"{name}.get_state()"
                )
        tree = {
            "params": model.params,
            "state": model.state,
            "opt_state": model.opt_state,
            "callbacks": {str(i): a for i, a in enumerate(arrays)},
        }
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "epoch": epoch,
            "step": step,
            "batch": batch,
            "fit_start": self._fit_start,
            "run": self._run(),
            "callback_states": states,
            "callback_arrays": [
                {"shape": list(a.shape), "dtype": jnp.dtype(a.dtype).name}
                for a in arrays
            ],
        }
        self._manager.save(step, tree, meta)
        for old in self._manager.all_steps():
            if old != step:
                _unlink(self._manager.path_for(old))

    def on_epoch_begin(
        self, epoch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        self._epoch = epoch
        self._epoch_start = epoch_start_step(self.model)
        self._counter.new_epoch()

    def on_train_batch_end(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        if self.save_freq == "epoch":
            return
        if self._counter.due(batch):
            self._save(self._epoch, self._epoch_start + batch + 1, batch + 1)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._save(epoch + 1, int(self.model.progress.step), None)

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        self._lock.release()
        if not self.delete_checkpoint or self._manager is None:
            return
        for step in self._manager.all_steps():
            _unlink(self._manager.path_for(step))
        # Temporary files of saves killed mid-write (ours by their naming).
        for name in os.listdir(self.backup_dir):
            if name.startswith(".ckpt_") and name.endswith(".tmp"):
                base = name[1 : -len(".0123456789ab.tmp")]
                for tmp in archive.temporary_files(self.backup_dir, base):
                    _unlink(tmp)
        try:
            os.rmdir(self.backup_dir)
        except OSError:
            pass  # the folder holds other files: leave it


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
