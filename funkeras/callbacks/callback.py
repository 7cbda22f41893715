"""`Callback`, Keras' hook interface, and `CallbackList`, which dispatches to many.

Callbacks run on the host between steps. The logs they receive behave as a dict
of Python floats; values are fetched from the device only when a callback reads
them, so a progress bar that reads on a timer does not sync every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from funkeras._validation import check_int

__all__ = ["Callback", "CallbackList", "Logs"]

_BATCH_HOOKS = (
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class Logs(Mapping[str, float]):
    """Read-only logs whose device values become Python floats when read.

    Keys starting with `_` are internal and hidden. `probes` holds the per-layer
    norms of the step's in-graph probes (see `LayerUpdateLogger`) or None.
    """

    def __init__(self, values: Mapping[str, Any], probes: Any = None) -> None:
        self._raw = {k: v for k, v in values.items() if not k.startswith("_")}
        self._cache: dict[str, float] = {}
        self._probes = probes

    def __getitem__(self, key: str) -> float:
        if key not in self._cache:
            value = self._raw[key]
            self._cache[key] = (
                float(np.asarray(value)) if not isinstance(value, float) else value
            )
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    @property
    def probes(self) -> Any:
        """Per-variable `{"param_norm", "grad_norm", "update_norm"}` trees, or None."""
        if self._probes is None:
            return None
        import jax

        return jax.tree.map(lambda a: float(np.asarray(a)), self._probes)

    def to_dict(self) -> dict[str, float]:
        return {k: self[k] for k in self}

    def __repr__(self) -> str:
        return repr(self.to_dict())


class Callback:
    """Base class for callbacks, with all of Keras' hooks (each does nothing).

    Attributes:
        model: The model being trained (set by `fit`, `evaluate`, `predict`).
        params: The fit settings, as Keras gives them: `{"epochs", "steps",
            "verbose"}`.

    Arrays read from `self.model` during `fit` (its `params`, `state`,
    `opt_state`) are donated to the next compiled step: copy what you keep
    (`model.get_weights()` returns copies). Changing the model's weights or
    learning rate in a hook takes effect from the next step (the next K-step
    block with `steps_per_execution=K`). With `steps_per_execution=K`, batch
    hooks run once per K-step block, as in Keras.

    A callback that must survive a resume (`BackupAndRestore`) implements
    `get_state()` (JSON-safe data and arrays) and `set_state(state)`.

    Two attributes ask the compiled train step for more: `finite_gate = True`
    makes it refuse non-finite updates (the batch logs' `loss` is then NaN), and
    `probe_every = N` makes it compute per-layer norms every N steps (read them
    from `logs.probes` in `on_train_batch_end`).

    Example:
        >>> import funkeras as fk
        >>> class Count(fk.callbacks.Callback):
        ...     def on_train_begin(self, logs=None):
        ...         self.epochs = 0
        ...     def on_epoch_end(self, epoch, logs=None):
        ...         self.epochs += 1
    """

    finite_gate = False
    probe_every = 0
    # Gets every hook after the others, except `on_train_begin`, which it gets
    # first (`BackupAndRestore`: see `CallbackList`).
    _runs_last = False

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def _set_peers(self, callbacks: list[Callback]) -> None:
        """Told the whole list it runs in (a callback that saves the others' state)."""

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def get_state(self) -> dict[str, Any]:
        """State that must survive a resume (JSON-safe values and arrays)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what `get_state` returned."""
        del state

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_epoch_begin(
        self, epoch: int, logs: Mapping[str, float] | None = None
    ) -> None: ...
    def on_epoch_end(
        self, epoch: int, logs: Mapping[str, float] | None = None
    ) -> None: ...
    def on_train_batch_begin(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None: ...
    def on_train_batch_end(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None: ...
    def on_test_begin(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_test_end(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_test_batch_begin(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None: ...
    def on_test_batch_end(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None: ...
    def on_predict_begin(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_predict_end(self, logs: Mapping[str, float] | None = None) -> None: ...
    def on_predict_batch_begin(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None: ...
    def on_predict_batch_end(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None: ...


def _check_save_freq(owner: str, save_freq: Any) -> int | str:
    """`save_freq` as Keras takes it: `"epoch"` or a positive number of batches."""
    if save_freq == "epoch":
        return save_freq
    if isinstance(save_freq, str):
        raise ValueError(
            f"{owner}: `save_freq` must be 'epoch' or a positive int "
            f"(batches), got {save_freq!r}."
        )
    return check_int(owner, "save_freq", save_freq, minimum=1)


class _SaveCounter:
    """Counts the batches since the last save, as batch hooks report them.

    Batch hooks run once per K-step block, so each call advances the count by the
    batches the block covered. `due(batch)` says whether `every` batches have
    passed since the last save (and starts counting anew when they have).
    """

    def __init__(self, every: int | str) -> None:
        self.every = every
        self.since = 0
        self.last = -1

    def new_epoch(self) -> None:
        self.last = -1

    def due(self, batch: int) -> bool:
        self.since += batch - self.last
        self.last = batch
        if isinstance(self.every, int) and self.since >= self.every:
            self.since = 0
            return True
        return False


def _overrides(cb: Callback, hook: str) -> bool:
    """Whether `cb` defines `hook` on its class or instance (`LambdaCallback`)."""
    if hook in vars(cb):
        return True
    return getattr(type(cb), hook, None) is not getattr(Callback, hook)


class CallbackList:
    """Dispatches each hook to every callback that overrides it, in order."""

    def __init__(
        self,
        callbacks: Sequence[Callback] = (),
        *,
        model: Any = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks: expected fk.callbacks.Callback instances, got "
                    f"{type(cb).__name__}."
                )
            if model is not None:
                cb.set_model(model)
            if params is not None:
                cb.set_params(params)
        for cb in self.callbacks:
            cb._set_peers(self.callbacks)
        # A callback with `_runs_last = True` (`BackupAndRestore`) gets every hook
        # after the others, so its checkpoint holds their state after the epoch,
        # except `on_train_begin`, which it gets first: its restore (weights and
        # the others' `set_state`) precedes their `on_train_begin`.
        last = [cb for cb in self.callbacks if cb._runs_last]
        rest = [cb for cb in self.callbacks if cb not in last]
        self._hooks: dict[str, list[Callable[..., Any]]] = {}
        for name in [n for n in dir(Callback) if n.startswith("on_")]:
            order = last + rest if name == "on_train_begin" else rest + last
            self._hooks[name] = [
                getattr(cb, name) for cb in order if _overrides(cb, name)
            ]

    def has(self, hook: str) -> bool:
        """Whether any callback overrides `hook` (no dispatch happens otherwise)."""
        return bool(self._hooks.get(hook))

    @property
    def has_train_batch_hooks(self) -> bool:
        return self.has("on_train_batch_begin") or self.has("on_train_batch_end")

    @property
    def finite_gate(self) -> bool:
        return any(cb.finite_gate for cb in self.callbacks)

    @property
    def probe_every(self) -> int:
        """Probe interval serving every callback: the gcd of their `probe_every`."""
        every = [int(cb.probe_every) for cb in self.callbacks if cb.probe_every]
        return math.gcd(*every) if every else 0

    def only(self, hook: str, kinds: tuple[type, ...]) -> bool:
        """Whether every callback implementing `hook` is one of `kinds`."""
        return all(
            isinstance(getattr(fn, "__self__", None), kinds)
            for fn in self._hooks.get(hook, ())
        )

    def call(self, hook: str, *args: Any) -> None:
        for fn in self._hooks.get(hook, ()):
            fn(*args)

    def __iter__(self) -> Iterator[Callback]:
        return iter(self.callbacks)


_ = _BATCH_HOOKS
