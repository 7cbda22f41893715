"""`LayerUpdateLogger`: per-variable parameter, gradient and update norms in `fit`."""

from __future__ import annotations

import csv
import math
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from funkeras._validation import check_int
from funkeras.callbacks._common import (
    epoch_start_step,
    flatten_paths,
    steps_per_execution,
    summary_writer,
)
from funkeras.callbacks.callback import Callback

__all__ = ["LayerUpdateLogger", "ProbeWarning"]

STATS = ("param_norm", "grad_norm", "update_norm", "update_ratio")


class ProbeWarning(UserWarning):
    """The per-layer values of a step did not reach the host."""


def _ratio(update: float, param: float) -> float:
    if param > 0:
        return update / param
    return 0.0 if update == 0 else math.inf


def _print_report(step: int, norms: dict[str, dict[str, float]]) -> None:
    width = max(len(name) for name in norms)
    lines = [f"LayerUpdateLogger: step {step}"]
    for name, values in norms.items():
        cells = "  ".join(f"{stat} {values[stat]:.4e}" for stat in STATS)
        lines.append(f"  {name:<{width}}  {cells}")
    print("\n".join(lines))


class LayerUpdateLogger(Callback):
    """Logs, per layer and variable, how much training changes it, every N steps.

    For each variable (`dense/kernel`, `dense/bias`...) it reports the L2 norm
    of the parameter after the update (`param_norm`), of the gradient
    (`grad_norm`), of the applied update (`update_norm`, the change of the
    parameter in that step) and the ratio `update_norm / param_norm`
    (`update_ratio`; about 1e-3 is a common healthy value, much larger means
    the step is too big for that layer, much smaller that it barely learns).

    The norms come from the train step's in-graph probes (`probe_every`): under
    `execution="jit"` they are a few reductions inside the compiled step,
    computed only on the logged steps (no second pass), and reach the host
    only when logged; under `"eager"` they are computed as the step runs.

    With `steps_per_execution=K`, batch hooks run once per K-step block, so
    `every` is rounded up to a multiple of K and the logged step is the one of
    the block whose count is a multiple of it. Under `"eager"` (or with an
    iterable dataset) a K-step block runs as K separate steps and only the
    block's last step reaches the hooks: use `steps_per_execution=1` there
    (otherwise a `ProbeWarning` says the values were lost).

    Args:
        every: Steps between reports (reports after steps `every`, `2 * every`, ...).
        to: `"print"`, None (no printing), or a callable `to(step, norms)`
            receiving the 1-based step count and `{variable: {"param_norm",
            "grad_norm", "update_norm", "update_ratio"}}` of Python floats.
        log_dir: Also write the values to TensorBoard (tags `<stat>/<variable>`
            in `log_dir/train`, at the step count); needs `tensorboardX`.
        csv_path: Also write them to a CSV file: `step, variable, param_norm,
            grad_norm, update_norm, update_ratio` (overwritten by the first
            `fit`, appended to by later ones).

    Example:
        >>> import numpy as np, funkeras as fk
        >>> seen = {}
        >>> watch = fk.callbacks.LayerUpdateLogger(every=2, to=seen.__setitem__)
        >>> model = fk.Sequential([fk.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> _ = model.fit(np.ones((16, 2)), np.ones((16, 1)), batch_size=4, epochs=1,
        ...               verbose=0, callbacks=[watch])
        >>> sorted(seen), sorted(seen[2])
        ([2, 4], ['dense/bias', 'dense/kernel'])
    """

    def __init__(
        self,
        every: int = 100,
        to: str | Callable[[int, dict[str, dict[str, float]]], Any] | None = "print",
        log_dir: str | os.PathLike[str] | None = None,
        csv_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        owner = "LayerUpdateLogger"
        self.every = check_int(owner, "every", every, minimum=1)
        if not (to is None or to == "print" or callable(to)):
            raise TypeError(
                f"{owner}: `to` must be 'print', None or a callable, got {to!r}."
            )
        for arg, value in (("log_dir", log_dir), ("csv_path", csv_path)):
            if value is not None and not isinstance(value, str | os.PathLike):
                raise TypeError(
                    f"{owner}: `{arg}` must be a path or None, got {value!r}."
                )
        self.to = to
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.csv_path = None if csv_path is None else os.fspath(csv_path)
        self.probe_every = self.every
        self._writer: Any = None
        self._csv_started = False
        self._epoch_start = 0
        self._next = 0
        self._warned = False

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        k = steps_per_execution(model)
        self.probe_every = -(-self.every // k) * k

    def on_train_begin(self, logs: Mapping[str, float] | None = None) -> None:
        self._warned = False
        if self.log_dir is not None and self._writer is None:
            self._writer = summary_writer(
                "LayerUpdateLogger", os.path.join(self.log_dir, "train")
            )
        if self.csv_path is not None and not self._csv_started:
            folder = os.path.dirname(self.csv_path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            with open(self.csv_path, "w", newline="") as f:
                csv.writer(f).writerow(["step", "variable", *STATS])
            self._csv_started = True

    def on_epoch_begin(
        self, epoch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        self._epoch_start = epoch_start_step(self.model)
        self._next = self._epoch_start

    def on_train_batch_end(
        self, batch: int, logs: Mapping[str, float] | None = None
    ) -> None:
        # The block just run covered steps [first, end) (0-based step counts).
        first, end = self._next, self._epoch_start + batch + 1
        self._next = end
        n = self.probe_every
        # The compiled step probes the steps whose 1-based count is a multiple of
        # n (the last step of a block when K divides n).
        probed = -(-(first + 1) // n) * n - 1
        if probed >= end:
            return
        probes = getattr(logs, "probes", None)
        norms = self._norms(probes)
        if norms is None:
            if not self._warned:
                self._warned = True
                warnings.warn(
                    ProbeWarning(
                        "LayerUpdateLogger: the per-layer values of step "
                        f"{probed + 1} did not reach the callbacks. With "
                        "steps_per_execution > 1, eager execution or iterable data "
                        "run a block as separate steps and pass on only the last "
                        "one's logs; use steps_per_execution=1."
                    ),
                    stacklevel=2,
                )
            return
        self._emit(probed + 1, norms)

    @staticmethod
    def _norms(probes: Any) -> dict[str, dict[str, float]] | None:
        if probes is None:
            return None
        columns = {
            stat: dict(flatten_paths(probes[stat]))
            for stat in ("param_norm", "grad_norm", "update_norm")
        }
        params = columns["param_norm"]
        if all(math.isnan(v) for v in params.values()):
            return None
        norms = {}
        for name, param in params.items():
            update = columns["update_norm"][name]
            norms[name] = {
                "param_norm": param,
                "grad_norm": columns["grad_norm"][name],
                "update_norm": update,
                "update_ratio": _ratio(update, param),
            }
        return norms

    def _emit(self, step: int, norms: dict[str, dict[str, float]]) -> None:
        if self.to == "print":
            _print_report(step, norms)
        elif callable(self.to):
            self.to(step, norms)
        if self._writer is not None:
            for name, values in norms.items():
                for stat in STATS:
                    self._writer.add_scalar(
                        f"{stat}/{name}", values[stat], global_step=step
                    )
        if self.csv_path is not None:
            with open(self.csv_path, "a", newline="") as f:
                writer = csv.writer(f)
                for name, values in norms.items():
                    writer.writerow([step, name, *(repr(values[s]) for s in STATS)])

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        if self._writer is not None:
            self._writer.flush()

    def on_train_end(self, logs: Mapping[str, float] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
