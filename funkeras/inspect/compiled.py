"""The compiled programs made visible: their text, and what compiling them cost.

`compiled_text` gives the jaxpr, the StableHLO or the optimized HLO of a model's
predict or train step. `compile_events` records JAX's compile events (trace,
lowering and XLA compile durations, from `jax.monitoring`), and
`compile_report` puts them beside the model's own count of compiles and calls
per step function.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax

from funkeras.training.state import TrainState, copy_tree
from funkeras.training.steps import make_predict_step, make_train_step

__all__ = [
    "compiled_text",
    "compile_events",
    "CompileEvents",
    "compile_report",
    "CompileReport",
    "CompileRow",
]

_STEPS = ("predict", "train")
_FORMS = ("jaxpr", "stablehlo", "hlo")


def compiled_text(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    step: str = "predict",
    form: str = "jaxpr",
    sample_weight: Any = None,
) -> str:
    """The program of the model's predict or train step for a batch like `x`, as text.

    Args:
        model: A model (compiled with a loss for `step="train"`).
        x: A batch of inputs (its shapes and dtypes fix the program).
        y: Targets, needed for `step="train"`.
        step: `"predict"` (inference: `apply` with `training=False`) or
            `"train"` (the whole training step as `execution="jit"` compiles it:
            forward, loss, gradients, optimizer update, metrics).
        form: `"jaxpr"` (JAX's program), `"stablehlo"` (the lowered MLIR module
            XLA receives) or `"hlo"` (XLA's optimized program for this backend).
        sample_weight: Optional per-row weights (train step).

    Returns:
        The program text.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])
        >>> text = compiled_text(model, np.ones((4, 3), np.float32))
        >>> "dot_general" in text
        True
    """
    what = "compiled_text"
    if step not in _STEPS:
        raise ValueError(f"{what}: `step` must be one of {list(_STEPS)}, got {step!r}.")
    if form not in _FORMS:
        raise ValueError(f"{what}: `form` must be one of {list(_FORMS)}, got {form!r}.")
    if step == "predict":
        batch = model.make_batch(x)
        fn: Any = make_predict_step(model.apply)
        args: tuple[Any, ...] = (model.params, model.state, batch.x)
    else:
        if not model.compiled or model.loss is None:
            raise ValueError(
                f"{what}: the train step needs a model compiled with a loss: "
                "`model.compile(optimizer=..., loss=...)`."
            )
        if y is None:
            raise ValueError(f"{what}: `step='train'` needs targets `y`.")
        batch = model.make_batch(x, y, sample_weight)
        runner = model.make_runner()
        fn = make_train_step(
            runner.apply_fn,
            runner.objective,
            runner.optimizer,
            penalty_fn=runner.penalty_fn,
            loss_fn=runner.loss_fn,
        )
        opt_state = (
            model.opt_state
            if model.opt_state is not None
            else runner.optimizer.init(model.params)
        )
        ts = TrainState.create(
            copy_tree(model.params),
            copy_tree(model.state),
            copy_tree(opt_state),
            runner.init_metrics(),
            jax.random.key(0),
            step=int(model.progress.step),
        )
        args = (ts, batch)
    if form == "jaxpr":
        return str(jax.make_jaxpr(fn)(*args))
    lowered = jax.jit(fn).lower(*args)
    if form == "stablehlo":
        return lowered.as_text()
    return lowered.compile().as_text()


# ----------------------------------------------------------------------------
# Compile events.
# ----------------------------------------------------------------------------

_KINDS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
}
_recorders: list[CompileEvents] = []
_lock = threading.Lock()
_installed = False


def _listener(event: str, duration: float, **kwargs: Any) -> None:
    kind = _KINDS.get(event)
    if kind is None or not _recorders:
        return
    name = str(kwargs.get("fun_name", ""))
    if name.startswith("jit(") and name.endswith(")"):
        name = name[4:-1]
    for recorder in list(_recorders):
        recorder.records.append(CompileEvent(kind, name, float(duration)))


class CompileEvent(NamedTuple):
    """One of JAX's compile events: `kind` is "trace", "lower" or "compile"."""

    kind: str
    name: str
    seconds: float


class CompileEvents:
    """JAX's compile events recorded while a `compile_events()` block ran.

    Attributes:
        records: Every `CompileEvent`, in order. `name` is the compiled
            function's name (the layerwise executor names each per-layer
            function after the layer: `"forward[dense]"`).
    """

    def __init__(self) -> None:
        self.records: list[CompileEvent] = []

    def count(self, kind: str = "compile", name: str | None = None) -> int:
        """How many events of `kind` (for the function `name`, or all)."""
        return sum(
            1
            for r in self.records
            if r.kind == kind and (name is None or r.name == name)
        )

    def seconds(self, kind: str = "compile", name: str | None = None) -> float:
        """Total seconds of events of `kind` (for the function `name`, or all)."""
        return sum(
            r.seconds
            for r in self.records
            if r.kind == kind and (name is None or r.name == name)
        )

    def names(self) -> list[str]:
        """The functions seen, in order of first event."""
        return list(dict.fromkeys(r.name for r in self.records))


@contextlib.contextmanager
def compile_events() -> Iterator[CompileEvents]:
    """Record JAX's trace, lowering and compile events inside the block.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> with compile_events() as events:
        ...     _ = jax.jit(lambda v: v * 3.0)(jnp.ones(5))
        >>> events.count("compile", "<lambda>")
        1
    """
    global _installed
    with _lock:
        if not _installed:
            jax.monitoring.register_event_duration_secs_listener(_listener)
            _installed = True
    recorder = CompileEvents()
    _recorders.append(recorder)
    try:
        yield recorder
    finally:
        _recorders.remove(recorder)


@dataclass
class CompileRow:
    """One compiled step function in a `CompileReport`.

    Attributes:
        name: The function's name in `model.compile_stats()`.
        compiles: How many times the executor traced (compiled) it.
        calls: How many times it ran.
        first_call_seconds: Wall time of its first call (trace, compile, run).
        traces, trace_seconds, lower_seconds, compile_seconds: From JAX's compile
            events for this function (None without recorded events).
    """

    name: str
    compiles: int
    calls: int
    first_call_seconds: float | None
    traces: int | None = None
    trace_seconds: float | None = None
    lower_seconds: float | None = None
    compile_seconds: float | None = None


@dataclass
class CompileReport:
    """Every compiled step function of a model's runner; `str()` gives a table.

    Attributes:
        execution: The model's execution mode.
        rows: One `CompileRow` per step function.
        other: Compile events of functions not in `rows` (`{name: CompileRow}`),
            such as the per-operation programs JAX compiles op by op.
    """

    execution: str | None
    rows: list[CompileRow]
    other: list[CompileRow]

    def __str__(self) -> str:
        def sec(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        def num(v: int | None) -> str:
            return "-" if v is None else str(v)

        head = [
            "function",
            "compiles",
            "calls",
            "first call s",
            "traces",
            "trace s",
            "lower s",
            "XLA compile s",
        ]
        table = [head]
        for r in self.rows + self.other:
            table.append(
                [
                    r.name,
                    num(r.compiles),
                    num(r.calls),
                    sec(r.first_call_seconds),
                    num(r.traces),
                    sec(r.trace_seconds),
                    sec(r.lower_seconds),
                    sec(r.compile_seconds),
                ]
            )
        widths = [max(len(t[i]) for t in table) for i in range(len(head))]
        lines = [f"Compile report (execution={self.execution!r})"]
        for i, t in enumerate(table):
            lines.append(
                "  ".join(
                    c.ljust(w) if j == 0 else c.rjust(w)
                    for j, (c, w) in enumerate(zip(t, widths, strict=True))
                )
            )
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


def compile_report(model: Any, events: CompileEvents | None = None) -> CompileReport:
    """List the model's compiled step functions: compiles, calls, compile time.

    From `model.compile_stats()` (per step function: compiles, calls, first-call
    seconds) and, when `events` from a `compile_events()` block are given, JAX's
    own trace, lowering and XLA compile times for each function; events of
    other functions are listed under `other`.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(2,)), fk.layers.Dense(1)])
        >>> model.compile(optimizer="sgd", loss="mse", execution="layerwise")
        >>> with compile_events() as events:
        ...     _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0)
        >>> rows = {r.name: r for r in compile_report(model, events).rows}
        >>> rows["forward[dense]"].compiles, rows["forward[dense]"].traces
        (1, 1)
    """
    stats = model.compile_stats() if hasattr(model, "compile_stats") else {}
    rows = []
    for name, s in stats.items():
        row = CompileRow(
            name,
            int(s.get("compiles", 0)),
            int(s.get("calls", 0)),
            s.get("first_call_seconds"),
        )
        if events is not None:
            row.traces = events.count("trace", name)
            row.trace_seconds = events.seconds("trace", name)
            row.lower_seconds = events.seconds("lower", name)
            row.compile_seconds = events.seconds("compile", name)
        rows.append(row)
    other: list[CompileRow] = []
    if events is not None:
        for name in events.names():
            if name in stats:
                continue
            other.append(
                CompileRow(
                    name,
                    events.count("compile", name),
                    0,
                    None,
                    traces=events.count("trace", name),
                    trace_seconds=events.seconds("trace", name),
                    lower_seconds=events.seconds("lower", name),
                    compile_seconds=events.seconds("compile", name),
                )
            )
    runner = getattr(model, "runner", None)
    execution = getattr(model, "execution", None) if runner is not None else None
    return CompileReport(execution, rows, other)
