"""`TerminateOnNaN`: stop at the first non-finite step, keeping finite weights."""

from __future__ import annotations

import math
from collections.abc import Mapping

from funkeras.callbacks.callback import Callback

__all__ = ["TerminateOnNaN"]


class TerminateOnNaN(Callback):
    """Stops training when a step's loss or update is not finite.

    It turns on the train step's in-graph finite check (`finite_gate`): a step
    whose loss, new weights, layer state or optimizer state holds a NaN or an
    infinity is not committed, so the model keeps the weights of its last
    finite step (Keras keeps the NaN ones). This holds with donation and inside
    a K-step block (`steps_per_execution=K`), where the check runs per step and
    the block's logs report the refusal. The batch logs then show `loss` as NaN
    and training stops after the current block.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.layers.Dense(1)])
        >>> model.compile(optimizer=fk.optimizers.SGD(1e30), loss="mse")
        >>> h = model.fit(np.full((8, 2), 1e10), np.ones((8, 1)), epochs=3, verbose=0,
        ...               callbacks=[fk.callbacks.TerminateOnNaN()])
        Batch 0: Invalid loss, terminating training
        >>> all(np.isfinite(w).all() for w in model.get_weights())
        True
    """

    finite_gate = True

    def on_train_batch_end(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
