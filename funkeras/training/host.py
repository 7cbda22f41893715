"""The contract between the training loop and what it trains.

`Runner.fit` reads and writes the object it trains (the `Model` facade, or any
object a user writes) only through `TrainHost`: its weights, optimizer state
and stop flag, one `publish` call that hands it the newest arrays, and one
`Progress` record (the epoch and step counters, and where an interrupted fit
resumes). Nothing else of the host is touched, so the loop knows nothing of
the `Model` class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from funkeras.typing import Params, State

__all__ = ["ResumePoint", "Progress", "TrainHost"]


@dataclass(frozen=True)
class ResumePoint:
    """Where a restored `fit` continues (set by a callback that restores a backup).

    Attributes:
        epoch: The epoch to continue from (0-based).
        step: The optimizer steps taken when the backup was written.
        fit_start: The first epoch of the interrupted `fit` (so the resumed one
            ends where it would have), or None to keep this `fit`'s own end.
        batch: Batches already done in `epoch` (a backup taken inside the
            epoch), or None for a backup taken at an epoch end.
    """

    epoch: int
    step: int
    fit_start: int | None = None
    batch: int | None = None


@dataclass
class Progress:
    """A host's training counters, which repeated `fit` calls continue.

    Attributes:
        epoch: Epochs completed: the next `fit` starts at this epoch.
        step: Optimizer steps taken (the step count dropout keys fold in).
            Updated at every epoch end and when `fit` returns, so read in
            `on_epoch_begin` it is the count the epoch starts from.
        resume: A pending resume point, consumed by the next `fit` after its
            `on_train_begin` callbacks ran; None when there is none.
    """

    epoch: int = 0
    step: int = 0
    resume: ResumePoint | None = None


@runtime_checkable
class TrainHost(Protocol):
    """What `Runner.fit` trains: weights, optimizer state, a stop flag, progress.

    Attributes:
        params: The current weights (read at the start of `fit`, and compared
            by identity after callbacks to notice weights they replaced).
        state: The current non-trainable state (same conventions).
        opt_state: The current optax optimizer state.
        stop_training: Set by a callback to end `fit` after the current block.
        progress: The epoch and step counters and the pending resume point.
    """

    params: Params
    state: State
    opt_state: Any
    stop_training: bool
    progress: Progress

    def publish(self, params: Params, state: State, opt_state: Any) -> None:
        """Take the loop's newest arrays as the current ones, as they are.

        Called between steps: it must not copy, validate or wait for the device
        (the arrays come from the loop's own train state, already checked).
        """
        ...
