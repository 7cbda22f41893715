"""Executors: how a pure step function is run.

`"jit"` (the static graph) compiles the whole step with `jax.jit`, donating the
train state, and fuses `steps_per_execution=K` steps with `lax.scan`. `"eager"`
(the dynamic graph) runs the same step with no outer `jax.jit`, op by op. Both
count how often each step function is traced (a trace under `jax.jit` is a
compile), which `Model.compile_stats()` reports.

An executor has one job: turn a pure function into something to call. A
graph-walking executor (`"layerwise"`) supplies its own train step through
`make_train_step`, runs the train programs (`wrap(..., train=True)`) as Python,
and runs blocks as Python loops (`fuses_steps = False`).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

import jax
import optax

from funkeras.training.objective import Objective
from funkeras.training.steps import StepConfig

__all__ = [
    "Executor",
    "JitExecutor",
    "EagerExecutor",
    "get_executor",
    "register_executor",
    "EXECUTIONS",
]


class Executor:
    """Base executor: runs functions as given and counts their traces.

    Attributes:
        name: The `compile(execution=...)` value.
        fuses_steps: Whether K-step blocks run as one `lax.scan` program.
        traces: Per-function count of traces (compiles under jit).
        trace_seconds: Per-function time spent in the first call (trace and
            compile, plus one run).
    """

    name = "eager"
    fuses_steps = False

    def __init__(self) -> None:
        self.traces: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self.trace_seconds: dict[str, float] = {}

    def _counted(self, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            self.traces[name] += 1
            return fn(*args)

        counted.__name__ = counted.__qualname__ = name  # names JAX's compile events
        return counted

    def _timed(self, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        """`fn`, counting its calls and timing its first (trace and compile) call."""
        calls = self.calls
        seconds = self.trace_seconds

        def run(*args: Any) -> Any:
            calls[name] += 1
            if name in seconds:
                return fn(*args)
            start = time.perf_counter()
            out = fn(*args)
            seconds[name] = time.perf_counter() - start
            return out

        return run

    def wrap(
        self,
        fn: Callable[..., Any],
        name: str,
        *,
        donate_argnums: tuple[int, ...] = (),
        train: bool = False,
    ) -> Callable[..., Any]:
        """Return `fn` ready to call; `name` labels it in the compile report.

        `train` marks a program that runs the train step `make_train_step`
        returned (an executor with its own train step may run it differently).
        """
        del donate_argnums, train
        calls = self.calls

        def run(*args: Any) -> Any:
            calls[name] += 1
            return fn(*args)

        return run

    def make_train_step(
        self,
        default: Callable[..., Any],
        *,
        graph: Any,
        objective: Objective,
        optimizer: optax.GradientTransformation,
        config: StepConfig = StepConfig(),
    ) -> Callable[..., Any]:
        """The train step this executor runs (the shared pure step by default).

        Args:
            default: The pure step `make_train_step` built from these pieces.
            graph: The model's graph description, or None (a hand-written `apply`).
            objective: The losses and metrics.
            optimizer: The optax transformation.
            config: The step's options (the ones `default` was built with).
        """
        del graph, objective, optimizer, config
        return default

    def report(self) -> dict[str, dict[str, Any]]:
        names = sorted(set(self.traces) | set(self.calls))
        return {
            n: {
                "compiles": self.traces.get(n, 0),
                "calls": self.calls.get(n, 0),
                "first_call_seconds": self.trace_seconds.get(n),
            }
            for n in names
        }


_EXECUTORS: dict[str, type[Executor]] = {}


def register_executor(cls: type[Executor]) -> type[Executor]:
    """Class decorator: make `cls` what `get_executor(cls.name)` returns."""
    _EXECUTORS[cls.name] = cls
    return cls


@register_executor
class EagerExecutor(Executor):
    """The dynamic graph: the step runs op by op with concrete arrays between ops.

    Inside a layer's `apply` during training, arrays are autodiff tracers whose
    printed form shows their values; `print()` and `breakpoint()` work, while
    `float(x)` does not (a JAX rule). During predict and evaluate every value
    is a concrete array.
    """

    name = "eager"


@register_executor
class JitExecutor(Executor):
    """The static graph: each step function compiled once with `jax.jit`."""

    name = "jit"
    fuses_steps = True

    def wrap(
        self,
        fn: Callable[..., Any],
        name: str,
        *,
        donate_argnums: tuple[int, ...] = (),
        train: bool = False,
    ) -> Callable[..., Any]:
        del train
        jitted = jax.jit(self._counted(fn, name), donate_argnums=donate_argnums)
        return self._timed(jitted, name)


EXECUTIONS = ("jit", "eager", "layerwise")


def get_executor(execution: str) -> Executor:
    """An executor by name: `"jit"`, `"eager"` or `"layerwise"`."""
    cls = _EXECUTORS.get(execution)
    if cls is None:
        raise ValueError(
            f"compile: `execution` must be one of {list(EXECUTIONS)}, got "
            f"{execution!r}."
        )
    return cls()
