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

Only `"jit"` runs under a distribution (`funkeras.distribution`): each program
is compiled once with its shardings, and an output that is fed back to the
next call (the train state, the metric carry, the batch counter) keeps the
sharding its argument had, so the second call reuses the first one's program;
the other outputs (logs, predictions) are replicated.
`"eager"` and `"layerwise"` refuse a distribution: they exist to look at
concrete values between ops or layers, which a sharded array spread over
devices does not serve.
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

    def __init__(self, distribution: Any = None) -> None:
        super().__init__()
        self.distribution = distribution

    def wrap(
        self,
        fn: Callable[..., Any],
        name: str,
        *,
        donate_argnums: tuple[int, ...] = (),
        train: bool = False,
    ) -> Callable[..., Any]:
        del train
        counted = self._counted(fn, name)
        if self.distribution is None:
            jitted = jax.jit(counted, donate_argnums=donate_argnums)
            return self._timed(jitted, name)
        compiled: list[Callable[..., Any]] = []

        def sharded(*args: Any) -> Any:
            # Built at the first call, when the arguments (placed by the loop)
            # show the shardings the fed-back outputs must keep.
            if not compiled:
                compiled.append(
                    jax.jit(
                        counted,
                        donate_argnums=donate_argnums,
                        out_shardings=_kept_shardings(
                            fn, args, self.distribution.replicated
                        ),
                    )
                )
            return compiled[0](*args)

        return self._timed(sharded, name)


def _signature(tree: Any) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((tuple(a.shape), a.dtype) for a in leaves)


def _kept_shardings(
    fn: Callable[..., Any], args: tuple[Any, ...], replicated: Any
) -> Any:
    """`out_shardings` for `fn(*args)`: an output with the structure, shapes and
    dtypes of an argument takes that argument's shardings; the others (logs,
    predictions) are replicated, so every process can read them."""
    out = jax.eval_shape(fn, *args)
    signatures = [(_signature(a), a) for a in args if jax.tree.leaves(a)]

    def match(value: Any) -> Any:
        sig = _signature(value)
        for arg_sig, arg in signatures:
            if arg_sig == sig:
                return jax.tree.map(lambda a: a.sharding, arg)
        return replicated

    if type(out) is tuple:
        return tuple(match(o) for o in out)
    return match(out)


EXECUTIONS = ("jit", "eager", "layerwise")


def get_executor(execution: str, distribution: Any = None) -> Executor:
    """An executor by name: `"jit"`, `"eager"` or `"layerwise"`.

    `distribution` (a `funkeras.distribution` object, or None) runs the programs
    over its mesh; only `"jit"` takes one.
    """
    cls = _EXECUTORS.get(execution)
    if cls is None:
        raise ValueError(
            f"compile: `execution` must be one of {list(EXECUTIONS)}, got "
            f"{execution!r}."
        )
    if distribution is None:
        return cls()
    if cls is not JitExecutor:
        raise ValueError(
            f"compile: `execution={execution!r}` runs on one device and cannot take "
            f"the distribution {type(distribution).__name__}; use `execution='jit'` "
            "(the default), or call `fk.distribution.set_distribution(None)` before "
            "`compile` to debug on one device."
        )
    return JitExecutor(distribution)
