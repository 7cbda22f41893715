"""Timing: funkeras' `fit` and the hand-written loops, in one process, alternating.

For each workload every variant (funkeras in each execution mode, the
hand-written loops) is built and warmed up first; then the timed rounds run
in turns: round 1 of every variant, round 2 of every variant (the order
rotated each time), and so on, so that a noisy neighbour slows every variant
alike. A round is one `fit` call (or one hand-written loop) of a fixed number
of steps, ended with `jax.block_until_ready`; its time divided by its steps is
one sample, and the reported step time is the median of the samples.

What is measured, per variant:

* `first_step_s`: wall time of the first step: trace, compile and one run
  (for funkeras under jit, the step program's first call as
  `compile_stats()` times it; op by op, the first `fit` call, which compiles
  the per-operation executables JAX caches, less the steady time of its other
  steps). `first_fit_s`: the wall time of funkeras' first `fit` call (one
  epoch of a round).
* `xla_compiles`, `xla_compile_s`: XLA compilations and their seconds during
  warm-up, from JAX's monitoring events; `recompiles`: compilations during
  the timed rounds (0 means no re-tracing).
* `step_ms`: the median steady-state time per step; `samples_per_s` from it.
* `compiles`: for funkeras, the train step's compile count from
  `model.compile_stats()`; for the hand-written loops, the traces of the
  jitted function.
* `held_mb`: bytes of the live JAX arrays the variant added (from
  `jax.live_arrays()`): its parameters and optimizer state, and the data it
  keeps on the device (for funkeras read inside `fit`, at an epoch's end,
  where the dataset's device copy is alive). Not a peak: the temporaries
  inside a compiled step are not counted. Accelerators also report the
  process' peak device memory per workload (`device_peak_mb`); the process'
  resident set size before and after each workload is in `workloads`.
"""

from __future__ import annotations

import gc
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from funkeras.bench.handwritten import HandWritten
from funkeras.bench.workloads import Workload, make_optimizer
from funkeras.callbacks import Callback

__all__ = [
    "MODES",
    "HAND_MODES",
    "CompileEvents",
    "Result",
    "run_workload",
    "live_bytes",
    "rss_mb",
    "plan_epochs",
]

#: funkeras execution modes the harness knows (`--modes`).
MODES = ("jit", "jit-spe", "eager", "layerwise")
#: hand-written loops (always run: `jit`; `eager` next to op-by-op modes; `scan`
#: next to `jit-spe`).
HAND_MODES = ("jit", "eager", "scan")
_OP_BY_OP = ("eager", "layerwise")
_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


class CompileEvents:
    """Counts XLA compilations (and their seconds) through JAX's monitoring events."""

    _installed: CompileEvents | None = None

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    @classmethod
    def get(cls) -> CompileEvents:
        """The process-wide counter (registered with JAX once)."""
        if cls._installed is None:
            events = cls()

            def listener(event: str, duration: float, **kwargs: Any) -> None:
                del kwargs
                if event == _BACKEND_COMPILE:
                    events.count += 1
                    events.seconds += duration

            jax.monitoring.register_event_duration_secs_listener(listener)
            cls._installed = events
        return cls._installed

    def snapshot(self) -> tuple[int, float]:
        return self.count, self.seconds


def live_bytes() -> int:
    """Bytes held by live JAX arrays in this process."""
    total = 0
    for a in jax.live_arrays():
        try:
            total += a.nbytes
        except Exception:  # noqa: BLE001 - a deleted or odd array counts as 0
            continue
    return total


def rss_mb() -> tuple[float | None, float | None]:
    """`(current RSS, peak RSS)` of this process in MB (Linux `/proc`), else None."""
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return (
            int(fields["VmRSS"].split()[0]) / 1024,
            int(fields["VmHWM"].split()[0]) / 1024,
        )
    except (OSError, KeyError, ValueError):
        return None, None


@dataclass
class Result:
    """One row of the benchmark table (see the module docstring for the fields)."""

    model: str
    impl: str
    mode: str
    label: str
    batch_size: int
    status: str = "ok"
    reason: str = ""
    steps_per_round: int = 0
    epochs_per_round: int = 0
    steps_per_epoch: int = 0
    first_step_s: float | None = None
    xla_compiles: int | None = None
    xla_compile_s: float | None = None
    recompiles: int = 0
    compiles: int | None = None
    first_fit_s: float | None = None
    held_mb: float | None = None
    samples_ms: list[float] = field(default_factory=list)
    step_ms: float | None = None
    step_ms_min: float | None = None
    samples_per_s: float | None = None
    ratio_hand_jit: float | None = None
    ratio_funkeras_jit: float | None = None

    def finish(self, steps_per_epoch: int) -> None:
        if not self.samples_ms:
            return
        self.step_ms = statistics.median(self.samples_ms)
        self.step_ms_min = min(self.samples_ms)
        self.samples_per_s = self.batch_size / (self.step_ms / 1000)
        if self.first_step_s is None and self.first_fit_s is not None:
            # Op by op there is no single compiled program to time: the first
            # step is the first fit (one epoch) less its other steps' steady time.
            others = (steps_per_epoch - 1) * self.step_ms / 1000
            self.first_step_s = max(0.0, self.first_fit_s - others)


class _Variant:
    """What the alternating timer needs: a warm-up and a timed round."""

    result: Result
    epochs: int
    steps_per_epoch: int
    live_in_fit: int | None = None

    def warmup(self) -> None: ...
    def round(self, seed: int) -> None: ...
    def compiles(self) -> int | None: ...


class _Funkeras(_Variant):
    def __init__(
        self,
        workload: Workload,
        mode: str,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        epochs: int,
        steps_per_epoch: int,
        spe: int,
        optimizer: str,
        result: Result,
    ) -> None:
        self.workload, self.mode, self.x, self.y = workload, mode, x, y
        self.batch_size, self.epochs, self.steps_per_epoch = (
            batch_size,
            epochs,
            steps_per_epoch,
        )
        self.k = spe if mode == "jit-spe" else 1
        self.result = result
        execution = "jit" if mode.startswith("jit") else mode
        self.model = workload.build_model()
        self.model.compile(
            optimizer=make_optimizer(workload, optimizer),
            loss=workload.funkeras_loss(),
            execution=execution,
            steps_per_execution=self.k,
        )

    def _fit(self, epochs: int, steps: int, seed: int, callbacks: Any = None) -> None:
        self.model.fit(
            self.x,
            self.y,
            batch_size=self.batch_size,
            epochs=epochs,
            steps_per_epoch=steps,
            verbose=0,
            seed=seed,
            callbacks=callbacks,
        )
        jax.block_until_ready(self.model.params)

    def warmup(self) -> None:
        # The first fit has the rounds' steps per epoch: the epoch's index vector
        # is part of the compiled step's input shapes.
        class LiveBytes(Callback):
            """Reads the live JAX bytes at the end of the epoch (inside `fit`)."""

            def on_epoch_end(inner, epoch: int, logs: Any = None) -> None:  # noqa: N805
                del epoch, logs
                gc.collect()
                self.live_in_fit = live_bytes()

        start = time.perf_counter()
        self._fit(1, self.steps_per_epoch, 0, callbacks=[LiveBytes()])
        self.result.first_fit_s = time.perf_counter() - start
        stats = self.model.compile_stats().get("train_step", {})
        self.result.first_step_s = stats.get("first_call_seconds")

    def round(self, seed: int) -> None:
        self._fit(self.epochs, self.steps_per_epoch, seed)

    def compiles(self) -> int | None:
        stats = self.model.compile_stats()
        if self.mode in _OP_BY_OP and not any(
            s.get("compiles") for s in stats.values()
        ):
            return 0
        return sum(int(s.get("compiles") or 0) for s in stats.values())


class _Hand(_Variant):
    def __init__(
        self,
        workload: Workload,
        mode: str,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        epochs: int,
        steps_per_epoch: int,
        result: Result,
    ) -> None:
        self.loop = HandWritten(workload, mode, x, y, batch_size, steps_per_epoch)
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.result = result

    def warmup(self) -> None:
        self.result.first_step_s = self.loop.first_step()
        if self.loop.mode != "scan":  # a scan's first step is a whole epoch
            self.loop.run(1, 0)

    def round(self, seed: int) -> None:
        self.loop.run(self.epochs, seed)

    def compiles(self) -> int | None:
        return self.loop.compiles()


def plan_epochs(steps: int, rows: int, batch_size: int) -> tuple[int, int]:
    """`(epochs, steps_per_epoch)` covering about `steps` steps over `rows` rows."""
    per_epoch = max(1, min(steps, rows // batch_size))
    return max(1, round(steps / per_epoch)), per_epoch


def _reason(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _label(impl: str, mode: str, spe: int) -> str:
    if impl == "funkeras":
        return f"jit spe={spe}" if mode == "jit-spe" else mode
    return {"jit": "jit (reference)", "eager": "op by op", "scan": "lax.scan epoch"}[
        mode
    ]


def run_workload(
    workload: Workload,
    *,
    modes: tuple[str, ...] = MODES,
    batch_size: int | None = None,
    steps: int | None = None,
    eager_steps: int | None = None,
    rows: int | None = None,
    repeats: int | None = None,
    spe: int = 32,
    optimizer: str = "optax",
    hand_modes: tuple[str, ...] | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> tuple[list[Result], dict[str, Any]]:
    """Measure funkeras in `modes` and the hand-written loops on one workload.

    `hand_modes` chooses the hand-written loops (default: `jit`, plus `eager`
    next to an op-by-op mode and `scan` next to `jit-spe`).

    `repeats` defaults to the workload's own (fewer for the slow CNN).

    Returns:
        The result rows (funkeras modes first, then the hand-written loops)
        and per-workload facts (data shape, process RSS growth).
    """
    events = CompileEvents.get()
    batch_size = batch_size or workload.batch_size
    steps = steps or workload.steps
    eager_steps = eager_steps or workload.eager_steps
    rows = max(rows or workload.rows, batch_size)
    repeats = repeats or workload.repeats
    x, y = workload.make_data(rows, 0)
    rss_before, _ = rss_mb()

    if hand_modes is None:
        hand_modes = ("jit",)
        if any(m in _OP_BY_OP for m in modes):
            hand_modes += ("eager",)
        if "jit-spe" in modes:
            hand_modes += ("scan",)

    variants: list[_Variant] = []
    results: list[Result] = []
    specs = [("funkeras", m) for m in modes] + [("hand-written", m) for m in hand_modes]
    for impl, mode in specs:
        op_by_op = mode in _OP_BY_OP
        want = eager_steps if op_by_op else steps
        epochs, per_epoch = plan_epochs(want, rows, batch_size)
        result = Result(
            workload.name,
            impl,
            mode,
            _label(impl, mode, spe),
            batch_size,
            steps_per_round=epochs * per_epoch,
            epochs_per_round=epochs,
            steps_per_epoch=per_epoch,
        )
        results.append(result)
        gc.collect()
        before = live_bytes()
        count0, seconds0 = events.snapshot()
        try:
            if impl == "funkeras":
                variant: _Variant = _Funkeras(
                    workload,
                    mode,
                    x,
                    y,
                    batch_size,
                    epochs,
                    per_epoch,
                    spe,
                    optimizer,
                    result,
                )
            else:
                variant = _Hand(
                    workload, mode, x, y, batch_size, epochs, per_epoch, result
                )
        except Exception as e:  # noqa: BLE001 - an unavailable mode is reported, not fatal
            result.status, result.reason = "unavailable", _reason(e)
            log(
                f"  {workload.name} {impl} {result.label}: "
                f"unavailable ({result.reason})"
            )
            continue
        try:
            variant.warmup()
        except ImportError as e:  # a mode whose module is not there (yet)
            result.status, result.reason = "unavailable", _reason(e)
            log(
                f"  {workload.name} {impl} {result.label}: "
                f"unavailable ({result.reason})"
            )
            continue
        except Exception as e:  # noqa: BLE001 - reported in the table
            result.status, result.reason = "error", _reason(e)
            log(
                f"  {workload.name} {impl} {result.label}: error in warm-up\n"
                + traceback.format_exc(limit=3)
            )
            continue
        count1, seconds1 = events.snapshot()
        result.xla_compiles, result.xla_compile_s = count1 - count0, seconds1 - seconds0
        gc.collect()
        held = max(live_bytes(), variant.live_in_fit or 0)
        result.held_mb = (held - before) / 2**20
        variants.append(variant)
        first = (
            result.first_step_s
            if result.first_step_s is not None
            else result.first_fit_s
        )
        log(
            f"  {workload.name} {impl} {result.label}: warm (first "
            f"{'step' if result.first_step_s is not None else 'fit'} {first:.3f} s)"
        )

    for r in range(repeats):
        shift = r % max(1, len(variants))
        for variant in variants[shift:] + variants[:shift]:
            gc.collect()
            gc.disable()
            count0, _ = events.snapshot()
            try:
                start = time.perf_counter()
                variant.round(r + 1)
                elapsed = time.perf_counter() - start
            finally:
                gc.enable()
            variant.result.recompiles += events.snapshot()[0] - count0
            variant.result.samples_ms.append(
                1000 * elapsed / variant.result.steps_per_round
            )
    for variant in variants:
        variant.result.compiles = variant.compiles()
        variant.result.finish(variant.steps_per_epoch)

    ref = _find(results, "hand-written", "jit")
    fk_jit = _find(results, "funkeras", "jit")
    for res in results:
        if res.step_ms is None:
            continue
        if ref is not None and ref.step_ms:
            res.ratio_hand_jit = res.step_ms / ref.step_ms
        if res.impl == "funkeras" and fk_jit is not None and fk_jit.step_ms:
            res.ratio_funkeras_jit = res.step_ms / fk_jit.step_ms
    rss_after, peak = rss_mb()
    try:
        device_stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - not every backend reports memory
        device_stats = {}
    facts = {
        "model": workload.name,
        "title": workload.title,
        "rows": rows,
        "x_shape": list(x.shape),
        "batch_size": batch_size,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "rss_peak_mb": peak,
        # Accelerators report the process' peak device memory (not per variant).
        "device_peak_mb": (
            device_stats["peak_bytes_in_use"] / 2**20
            if "peak_bytes_in_use" in device_stats
            else None
        ),
    }
    return results, facts


def _find(results: list[Result], impl: str, mode: str) -> Result | None:
    for res in results:
        if res.impl == impl and res.mode == mode and res.step_ms is not None:
            return res
    return None
