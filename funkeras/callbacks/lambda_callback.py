"""`LambdaCallback`: a callback made of plain functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from funkeras.callbacks.callback import Callback

__all__ = ["LambdaCallback"]

_HOOKS = tuple(sorted(name for name in dir(Callback) if name.startswith("on_")))
# Keras' older spellings of the training batch hooks.
_ALIASES = {
    "on_batch_begin": "on_train_batch_begin",
    "on_batch_end": "on_train_batch_end",
}


class LambdaCallback(Callback):
    """A callback whose hooks are the functions given (the others do nothing).

    The functions take the hook's arguments: `on_epoch_begin(epoch, logs)`,
    `on_epoch_end(epoch, logs)`, `on_train_begin(logs)`, `on_train_end(logs)`,
    `on_train_batch_begin(batch, logs)`, `on_train_batch_end(batch, logs)`. Any
    other hook of `Callback` (`on_test_end=...`, `on_predict_batch_end=...`)
    can be given by keyword too. Only the hooks given are dispatched, so a
    `LambdaCallback` without batch hooks adds no work per step.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> seen = []
        >>> log = fk.callbacks.LambdaCallback(
        ...     on_epoch_end=lambda epoch, logs: seen.append(epoch))
        >>> model = fk.Sequential([fk.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=2, verbose=0,
        ...               callbacks=[log])
        >>> seen
        [0, 1]
    """

    def __init__(
        self,
        on_epoch_begin: Callable[..., Any] | None = None,
        on_epoch_end: Callable[..., Any] | None = None,
        on_train_begin: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
        on_train_batch_begin: Callable[..., Any] | None = None,
        on_train_batch_end: Callable[..., Any] | None = None,
        **kwargs: Callable[..., Any],
    ) -> None:
        super().__init__()
        hooks: dict[str, Any] = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
        }
        for name, fn in kwargs.items():
            hook = _ALIASES.get(name, name)
            if hook not in _HOOKS:
                raise TypeError(
                    f"LambdaCallback: unknown hook {name!r}; hooks are {list(_HOOKS)}."
                )
            if hooks.get(hook) is not None:
                raise TypeError(f"LambdaCallback: {hook!r} is given twice.")
            hooks[hook] = fn
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(
                    f"LambdaCallback: `{name}` must be callable, got {fn!r}."
                )
            # An instance attribute: `CallbackList` dispatches only the hooks set.
            setattr(self, name, fn)
