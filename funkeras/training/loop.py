"""The fit / evaluate / predict loops: plain Python around compiled step programs.

`Runner` holds one compile configuration (apply, objective, optimizer, executor,
steps per execution) and caches the step programs built from it. It talks to the
object being trained only through the `TrainHost` protocol (`training/host.py`:
params, state, optimizer state, stop flag, progress; the model facade is one)
and to callbacks only through the `Callback` interface.

Rules of the hot path: no host sync unless something asks for a value (a
callback reading logs, the epoch end); one compiled program per shape; the train
state is donated and re-read from the host only when a callback changed it.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras.callbacks.callback import CallbackList, Logs
from funkeras.callbacks.history import History
from funkeras.training.data import ArrayData, IterableData
from funkeras.training.executors import Executor
from funkeras.training.host import TrainHost
from funkeras.training.objective import Objective
from funkeras.training.state import (
    Batch,
    TrainState,
    batch_to_device,
    constrain_batch,
    copy_tree,
    placement,
    to_device,
)
from funkeras.training.steps import (
    BAD_LABELS,
    NONFINITE,
    PROBES,
    StepConfig,
    make_predict_step,
    make_test_step,
    make_train_step,
)

__all__ = ["Runner", "deferred_interrupt"]


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Defer Ctrl-C to the next step boundary; yields `pending() -> bool`."""
    pending = [False]
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum: int, frame: Any) -> None:
        del signum, frame
        pending[0] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not allowed here (embedded interpreters)
        yield lambda: False
        return
    try:
        yield lambda: pending[0]
    finally:
        signal.signal(signal.SIGINT, previous)


def prefetch(batches: Iterator[tuple[Batch, int]], depth: int = 2) -> Iterator[Any]:
    """Copy the next `depth` batches to the device while the current step runs."""
    queue: list[tuple[Batch, int]] = []
    for batch, n in batches:
        queue.append((batch_to_device(batch), n))
        if len(queue) > depth - 1:
            yield queue.pop(0)
    yield from queue


def _deleted(tree: Any) -> bool:
    return any(getattr(a, "is_deleted", lambda: False)() for a in jax.tree.leaves(tree))


def _last(tree: Any) -> Any:
    return jax.tree.map(lambda a: a[-1], tree)


def _merge_logs(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Logs after one more step of a block: flags OR-ed, probes kept, else newest."""
    out = {}
    for k, v in new.items():
        if k in (NONFINITE, BAD_LABELS):
            out[k] = old[k] | v
        elif k == PROBES:
            out[k] = jax.tree.map(lambda o, n: jnp.where(jnp.isnan(n), o, n), old[k], v)
        else:
            out[k] = v
    return out


def _rows(a: jax.Array, rows: jax.Array) -> jax.Array:
    """`a[rows]` along axis 0, for indices known to be in bounds (no clamping)."""
    dims = jax.lax.GatherDimensionNumbers(
        offset_dims=tuple(range(1, a.ndim)),
        collapsed_slice_dims=(0,),
        start_index_map=(0,),
    )
    return jax.lax.gather(
        a,
        rows[:, None],
        dims,
        (1, *a.shape[1:]),
        mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )


def _slice_order(order: jax.Array, i: jax.Array, batch_size: int) -> tuple[Any, Any]:
    """Rows and row mask of batch `i` of an encoded order (`data.encode_order`)."""
    code = jax.lax.dynamic_slice(
        order, (i * batch_size,), (batch_size,), allow_negative_indices=False
    )
    mask = code >= 0
    return jnp.where(mask, code, ~code), mask


def _gather(data: Any, order: jax.Array, i: jax.Array, batch_size: int) -> Batch:
    """Batch `i` of the epoch's order from the device-resident data, with its mask."""
    x, y, sw = data
    rows, mask = _slice_order(order, i, batch_size)

    def take(tree: Any) -> Any:
        return None if tree is None else jax.tree.map(lambda a: _rows(a, rows), tree)

    # Under a distribution each device gathers only its rows of the batch.
    return constrain_batch(Batch(take(x), take(y), take(sw), mask))


_jit_gather = jax.jit(_gather, static_argnums=3)


@jax.jit
def _epoch_inputs(metrics: Any, epoch: Any, batch: Any, order: Any) -> Any:
    """A fresh copy of the metric state, the epoch and batch counters, and the order.

    One compiled call per epoch moves them all to the device (Python ints and a
    NumPy vector go in through jit's fast argument path).
    """
    return (
        jax.tree.map(jnp.copy, metrics),
        jnp.asarray(epoch, jnp.int32),
        jnp.asarray(batch, jnp.int32),
        None if order is None else jnp.asarray(order, jnp.int32),
    )


@jax.jit
def _count_first(flags: list[jax.Array]) -> tuple[jax.Array, jax.Array]:
    """How many of `flags` are set, and the position of the first one set."""
    f = jnp.stack(flags)
    return jnp.sum(f, dtype=jnp.int32), jnp.argmax(f)


class _Refusals:
    """Which steps the finite gate refused, read by the host once per epoch.

    Each program call's `NONFINITE` flag (a device scalar) is kept with the
    batches it covers; at an epoch's end one compiled call reduces them to a
    count and the first position, still on the device. `report` reads them
    (when the host syncs anyway) and warns once per fit, naming the first batch.
    """

    def __init__(self) -> None:
        self.flags: list[jax.Array] = []
        self.spans: list[tuple[int, int]] = []
        self.epochs: list[tuple[int, list[tuple[int, int]], Any]] = []
        self.told = False
        self.epoch = 0  # the epoch being trained

    def add(self, logs: dict[str, Any], first: int, last: int) -> None:
        if NONFINITE in logs and not self.told:
            self.flags.append(logs[NONFINITE])
            self.spans.append((first, last))

    def close_epoch(self) -> None:
        if self.flags:
            self.epochs.append((self.epoch, self.spans, _count_first(self.flags)))
        self.flags, self.spans = [], []

    def report(self, what: str = "fit") -> None:
        if not self.epochs:
            return
        read = jax.device_get([r for _, _, r in self.epochs])
        total, first = 0, None
        for (epoch, spans, _), (count, pos) in zip(self.epochs, read, strict=True):
            if int(count) and first is None:
                first = (epoch, spans[int(pos)])
            total += int(count)
        self.epochs = []
        if not total or self.told or first is None:
            return
        self.told = True
        epoch, (lo, hi) = first
        where = f"batch {lo}" if lo == hi else f"one of batches {lo}-{hi}"
        warnings.warn(
            f"{what}: {total} step(s) gave a non-finite loss and were not applied "
            f"(the weights keep their last finite values); the first was {where} "
            f"of epoch {epoch}. Look for NaN or infinite values in that batch, or "
            "lower the learning rate.",
            RuntimeWarning,
            stacklevel=4,
        )


@dataclass
class _FitRun:
    """The settings of one `fit` call, shared by its parts.

    `lazy_epochs`: only History wants epoch logs, so they stay on the device
    until read and the host never waits for the device between epochs (array
    data without the finite gate: the step count is then known on the host).
    """

    data: ArrayData | IterableData
    callbacks: CallbackList
    steps_per_epoch: int | None
    seed: int
    shuffle: bool
    validation: Callable[[], dict[str, float]] | None
    validation_freq: int
    flags: dict[str, Any]
    batch_hooks: bool
    lazy_epochs: bool
    interrupted: Callable[[], bool]
    order: Any = None  # the current epoch's row order, on the device
    refused: _Refusals = field(default_factory=lambda: _Refusals())

    @classmethod
    def create(
        cls,
        runner: Runner,
        data: ArrayData | IterableData,
        callbacks: CallbackList,
        *,
        validation: Callable[[], dict[str, float]] | None,
        **settings: Any,
    ) -> _FitRun:
        # A gate guards every update: a step with a non-finite loss is not
        # committed, whatever the source (data, weights, a generator batch);
        # a callback asking for the thorough gate (TerminateOnNaN) gets every
        # new value checked and the per-batch logs. The flags stay on the
        # device; the host reads them once per epoch (see `_Refusals`), so the
        # gate adds no host sync.
        flags = dict(
            probe_every=callbacks.probe_every,
            finite_gate=callbacks.finite_gate,
            loss_gate=not callbacks.finite_gate,
            sparse_check=runner.sparse_check is not None
            and isinstance(data, IterableData),
        )
        lazy_epochs = (
            validation is None
            and isinstance(data, ArrayData)
            and not callbacks.finite_gate
            and callbacks.only("on_epoch_end", (History,))
        )
        refused = _Refusals()
        # TerminateOnNaN tells the user itself (and stops the fit).
        refused.told = callbacks.finite_gate
        return cls(
            data=data,
            callbacks=callbacks,
            validation=validation,
            refused=refused,
            flags=flags,
            batch_hooks=callbacks.has_train_batch_hooks or callbacks.finite_gate,
            lazy_epochs=lazy_epochs,
            **settings,
        )


class Runner:
    """A compile configuration and the step programs built from it.

    Args:
        apply_fn: The model's pure `apply`.
        objective: Losses and metrics.
        optimizer: The optax transformation (frozen weights already masked).
        executor: How the programs run (`"jit"`, `"eager"`, `"layerwise"`).
        steps_per_execution: K: steps per program call (one host round trip).
        penalty_fn: The regularization penalty of the params.
        loss_fn: A model's `compute_loss` override, if any.
        train_step: A model's `train_step` override, if any (same signature as
            the built step).
        test_step: A model's `test_step` override, if any:
            `(params, state, metrics, batch) -> (metrics, logs)`.
        predict_step: A model's `predict_step` override, if any:
            `(params, state, x) -> y`.
        graph: The model's graph description (for the layerwise executor).
        sparse_check: Optional `check(y) -> bool` flagging out-of-range labels.
        uses_key: Whether `apply` draws random numbers (else no step key).
        distribution: A `funkeras.distribution` distribution (the executor
            must be the jit one built with it), or None for one device.
        masked_apply_fn: Optional `apply` that also returns the outputs'
            sequence masks, `(y, state, output_masks)` (a model's
            `apply_masked`); the built-in train and test steps use it so that
            masked timesteps count for nothing in the loss and metrics.
    """

    def __init__(
        self,
        *,
        apply_fn: Callable[..., Any],
        objective: Objective,
        optimizer: Any,
        executor: Executor,
        steps_per_execution: int = 1,
        penalty_fn: Callable[[Any], jax.Array] | None = None,
        loss_fn: Callable[..., jax.Array] | None = None,
        train_step: Callable[..., Any] | None = None,
        test_step: Callable[..., Any] | None = None,
        predict_step: Callable[..., Any] | None = None,
        graph: Any = None,
        sparse_check: Callable[[Any], jax.Array] | None = None,
        uses_key: bool = True,
        distribution: Any = None,
        masked_apply_fn: Callable[..., Any] | None = None,
    ) -> None:
        self.distribution = distribution
        self._weight_layouts: dict[Any, Any] = {}
        self.apply_fn = apply_fn
        self.masked_apply_fn = masked_apply_fn
        self.objective = objective
        self.optimizer = optimizer
        self.executor = executor
        self.k = int(steps_per_execution)
        self.penalty_fn = penalty_fn
        self.loss_fn = loss_fn
        self.custom_train_step = train_step
        self.custom_test_step = test_step
        self.custom_predict_step = predict_step
        self.graph = graph
        self.sparse_check = sparse_check
        self.uses_key = uses_key
        self._programs: dict[Any, Callable[..., Any]] = {}
        self._metric_init: Any = None
        self._live: TrainState | None = None
        # Held while a train step is dispatched (it donates the train state) and
        # while another thread takes a snapshot of the weights (`snapshot`).
        self._lock = threading.RLock()
        self._counts: dict[int, jax.Array] = {}  # block lengths, on the device
        self._keys: dict[int, np.ndarray] = {}

    @property
    def fused(self) -> bool:
        """Whether K > 1 steps run as one compiled program (the executor fuses)."""
        return self.executor.fuses_steps and self.k > 1

    @property
    def steps_per_call(self) -> int:
        """Steps each compiled program call runs: K when fused, else 1."""
        return self.k if self.fused else 1

    # -- step functions ------------------------------------------------------------

    def train_step(
        self,
        *,
        probe_every: int = 0,
        finite_gate: bool = False,
        loss_gate: bool = False,
        skip_empty: bool = False,
        sparse_check: bool = False,
    ) -> Callable[..., Any]:
        """The pure train step for these options (a model override wins)."""
        if self.custom_train_step is not None:
            return self.custom_train_step
        return self.default_train_step(
            probe_every=probe_every, finite_gate=finite_gate, loss_gate=loss_gate,
            skip_empty=skip_empty, sparse_check=sparse_check,
        )

    def default_train_step(self, *, probe_every: int = 0, finite_gate: bool = False,
                           loss_gate: bool = False, skip_empty: bool = False,
                           sparse_check: bool = False,
                           results: bool = True) -> Callable[..., Any]:
        """The built-in train step (what a `train_step` override may call).

        With `results=False` its logs leave out the metric results (a fused
        block reads them once, after its last step).
        """
        config = StepConfig(
            penalty_fn=self.penalty_fn,
            loss_fn=self.loss_fn,
            probe_every=probe_every,
            finite_gate=finite_gate,
            loss_gate=loss_gate,
            skip_empty=skip_empty,
            sparse_check=self.sparse_check if sparse_check else None,
            results=results,
            uses_key=self.uses_key,
            output_masks=self.masked_apply_fn is not None,
        )
        cache_key = ("default_step", config)
        if cache_key in self._programs:
            return self._programs[cache_key]
        step = self.executor.make_train_step(
            make_train_step(
                self.masked_apply_fn or self.apply_fn,
                self.objective,
                self.optimizer,
                config,
            ),
            graph=self.graph,
            objective=self.objective,
            optimizer=self.optimizer,
            config=config,
        )
        self._programs[cache_key] = step
        return step

    def _metrics0(self) -> Any:
        """The metrics' initial state, on the device (shared: copy before donating)."""
        if self._metric_init is None:
            self._metric_init = to_device(self.objective.init_metrics())
        return self._metric_init

    def _key_data(self, seed: int) -> np.ndarray:
        """The raw key data of `jax.random.key(seed)`, on the host (cached)."""
        data = self._keys.get(seed)
        if data is None:
            data = self._keys[seed] = np.asarray(
                jax.random.key_data(jax.random.key(seed))
            )
        return data

    def init_metrics(self) -> Any:
        """A fresh copy of the metrics' initial state, on the device."""
        return copy_tree(self._metrics0())

    def _program(
        self,
        key: Any,
        build: Callable[[], Callable[..., Any]],
        name: str,
        donate: tuple[int, ...] = (),
        train: bool = False,
    ) -> Callable[..., Any]:
        prog = self._programs.get(key)
        if prog is None:
            prog = self.executor.wrap(build(), name, donate_argnums=donate, train=train)
            self._programs[key] = prog
        return prog

    def train_array_program(self, batch_size: int, **flags: Any) -> Callable[..., Any]:
        """`(ts, data, order) -> (ts, logs)`: K steps on device-resident data."""
        fuse = self.fused
        k = self.steps_per_call

        def build() -> Callable[..., Any]:
            # A fused block of the built-in step computes the metric results once,
            # after its last step, rather than after every step.
            late_results = k > 1 and self.custom_train_step is None
            if late_results:
                step = self.default_train_step(**flags, results=False)
            else:
                step = self.train_step(**flags)

            # Unfused executors run the step without an outer jit: gather the
            # batch with one compiled call rather than op by op. (Under a
            # distribution the step is always jitted, and the gather's batch
            # split must be traced with it, not cached from another run.)
            gather = _gather if fuse or self.distribution is not None else _jit_gather

            def one(ts: TrainState, data: Any, order: jax.Array) -> Any:
                batch = gather(data, order, ts.batch, batch_size)
                ts, logs = step(ts, batch)
                return ts._replace(batch=ts.batch + 1), logs

            if k == 1:
                return one

            def block(ts: TrainState, data: Any, order: Any, count: jax.Array) -> Any:
                # `count` real steps (K, or fewer in an epoch's last block) in one
                # compiled loop: no padding step runs, and one program serves all.
                _, shapes = jax.eval_shape(one, ts, data, order)
                logs0 = {
                    k: jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), v)
                    if k == PROBES
                    else jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), v)
                    for k, v in shapes.items()
                }

                def body(_: Any, carry: Any) -> Any:
                    ts, logs = carry
                    ts, new = one(ts, data, order)
                    return ts, _merge_logs(logs, new)

                ts, logs = jax.lax.fori_loop(0, count, body, (ts, logs0))
                if late_results:
                    logs = {**self.objective.results(ts.metrics), **logs}
                return ts, logs

            return block

        return self._program(
            ("train_array", batch_size, k, tuple(sorted(flags.items()))),
            build,
            "train_step",
            donate=(0,),
            train=True,
        )

    def train_host_program(self, **flags: Any) -> Callable[..., Any]:
        """`(ts, batch) -> (ts, logs)`: one step on a batch from the host."""

        def build() -> Callable[..., Any]:
            return self.train_step(**flags)

        return self._program(
            ("train_host", tuple(sorted(flags.items()))),
            build,
            "train_step_host",
            donate=(0,),
            train=True,
        )

    def default_test_step(self) -> Callable[..., Any]:
        """The built-in `(params, state, metrics, batch) -> (metrics, logs)` (what
        a `test_step` override may call)."""
        return make_test_step(
            self.masked_apply_fn or self.apply_fn,
            self.objective,
            penalty_fn=self.penalty_fn,
            loss_fn=self.loss_fn,
            output_masks=self.masked_apply_fn is not None,
        )

    def default_predict_step(self) -> Callable[..., Any]:
        """The built-in `(params, state, x) -> y` (what a `predict_step` override
        may call)."""
        return make_predict_step(self.apply_fn)

    def _test_step(self) -> Callable[..., Any]:
        if self.custom_test_step is not None:
            return self.custom_test_step
        return self.default_test_step()

    def _predict_step(self) -> Callable[..., Any]:
        if self.custom_predict_step is not None:
            return self.custom_predict_step
        return self.default_predict_step()

    def test_array_program(self, batch_size: int) -> Callable[..., Any]:
        k = self.steps_per_call

        def build() -> Callable[..., Any]:
            step = self._test_step()

            def one(
                params: Any, state: Any, carry: Any, data: Any, order: jax.Array
            ) -> Any:
                metrics, i = carry
                metrics, logs = step(
                    params, state, metrics, _gather(data, order, i, batch_size)
                )
                return (metrics, i + 1), logs

            if k == 1:
                return one

            def block(
                params: Any, state: Any, carry: Any, data: Any, order: Any
            ) -> Any:
                carry, logs = jax.lax.scan(
                    lambda c, _: one(params, state, c, data, order),
                    carry,
                    None,
                    length=k,
                )
                return carry, _last(logs)

            return block

        return self._program(
            ("test_array", batch_size, k), build, "test_step", donate=(2,)
        )

    def test_host_program(self) -> Callable[..., Any]:
        return self._program(
            ("test_host",), self._test_step, "test_step_host", donate=(2,)
        )

    def predict_array_program(self, batch_size: int) -> Callable[..., Any]:
        k = self.steps_per_call
        predict = self._predict_step()

        def build() -> Callable[..., Any]:
            def one(params: Any, state: Any, i: Any, x: Any, order: Any) -> Any:
                rows, _ = _slice_order(order, i, batch_size)
                xb = constrain_batch(jax.tree.map(lambda a: _rows(a, rows), x))
                return predict(params, state, xb), i + 1

            if k == 1:
                return one

            def block(params: Any, state: Any, i: Any, x: Any, order: Any) -> Any:
                def body(c: Any, _: Any) -> Any:
                    y, c = one(params, state, c, x, order)
                    return c, y

                i, ys = jax.lax.scan(body, i, None, length=k)
                ys = jax.tree.map(lambda a: a.reshape(k * batch_size, *a.shape[2:]), ys)
                return ys, i

            return block

        return self._program(("predict_array", batch_size, k), build, "predict_step")

    def predict_host_program(self) -> Callable[..., Any]:
        return self._program(
            ("predict_host",),
            self._predict_step,
            "predict_step_host",
        )

    def ordered_logs(self, logs: dict[str, Any]) -> dict[str, Any]:
        """Public logs in Keras' order (loss, output losses, metrics), as given."""
        names = self.objective.log_names if self.objective is not None else []
        keys = [k for k in names if k in logs]
        keys += [k for k in logs if k not in keys and not k.startswith("_")]
        return {k: logs[k] for k in keys}

    def host_logs(self, logs: dict[str, Any]) -> dict[str, float]:
        """Public logs as Python floats, in Keras' order (loss, output losses, metrics)."""
        ordered = self.ordered_logs(logs)
        values = jax.device_get(ordered)  # one transfer (keys come back sorted)
        return {k: float(np.asarray(values[k])) for k in ordered}

    # -- host <-> train state --------------------------------------------------------

    def snapshot(self, host: TrainHost) -> tuple[Any, Any]:
        """`(params, state)` to evaluate or predict with, safe during a `fit`.

        While a fit runs (in this thread's callbacks or in another thread), the
        newest train state's weights are copied under the lock that train steps
        are dispatched with, so no step donates them mid-read; otherwise the
        host's own weights are used as they are.
        """
        with self._lock:
            live = self._live
            if live is not None and not _deleted((live.params, live.state)):
                return copy_tree((live.params, live.state))
            return to_device((host.params, host.state))

    @staticmethod
    def publish(host: TrainHost, ts: TrainState) -> tuple[Any, Any, Any]:
        """Make the train state's arrays the host's (no copy); return them."""
        host.publish(ts.params, ts.state, ts.opt_state)
        return ts.params, ts.state, ts.opt_state

    def reread(
        self, host: TrainHost, ts: TrainState, published: tuple[Any, Any, Any]
    ) -> TrainState:
        """Pick up weights or optimizer state a callback replaced (copied, as donated)."""
        p, s, o = published
        if host.params is p and host.state is s and host.opt_state is o:
            return ts
        if self.distribution is not None:  # back into their layout first
            params, state, opt_state = self.place_weights(
                host.params, host.state, host.opt_state
            )
        else:
            params, state, opt_state = host.params, host.state, host.opt_state
        if host.params is not p:
            ts = ts._replace(params=copy_tree(params))
        if host.state is not s:
            ts = ts._replace(state=copy_tree(state))
        if host.opt_state is not o:
            ts = ts._replace(opt_state=copy_tree(opt_state))
        return ts

    # -- placement over a distribution's mesh ------------------------------------------

    def scope(self) -> Any:
        """A `with` block placing arrays on this runner's distribution's mesh."""
        return placement(self.distribution)

    def weight_shardings(self, params: Any, state: Any) -> tuple[Any, Any]:
        """The distribution's `NamedSharding` per weight (checked once per tree)."""
        key = (jax.tree.structure(params), jax.tree.structure(state))
        found = self._weight_layouts.get(key)
        if found is None:
            found = self._weight_layouts[key] = self.distribution.weight_shardings(
                params, state
            )
        return found

    def place_weights(self, params: Any, state: Any, opt_state: Any = None) -> Any:
        """`(params, state, opt_state)` in their layout on the mesh (moved only
        where they are not there yet); on the default device without one."""
        if self.distribution is None:
            return to_device((params, state, opt_state))
        ps, ss = self.weight_shardings(params, state)
        os_ = (
            None if opt_state is None
            else self.distribution.like_params(opt_state, params, ps)
        )
        return jax.device_put((params, state, opt_state), (ps, ss, os_))

    def init_optimizer_state(self, params: Any, state: Any) -> Any:
        """The optimizer state of `params`, created directly in its layout (a
        moment mirrors its weight's sharding; counts are replicated)."""
        if self.distribution is None:
            return self.optimizer.init(params)
        params = self.place_weights(params, state)[0]
        shapes = jax.eval_shape(self.optimizer.init, params)
        ps = self.weight_shardings(params, state)[0]
        shardings = self.distribution.like_params(shapes, params, ps)
        return jax.jit(self.optimizer.init, out_shardings=shardings)(params)

    # -- loops --------------------------------------------------------------------

    def _dispatch(
        self, program: Callable[..., Any], run: _FitRun, first: int, last: int,
        *args: Any,
    ) -> tuple[TrainState, dict[str, Any]]:
        """One call of a train program on batches `first..last`: under the lock
        (it donates the train state another thread may be copying, see
        `snapshot`), its result kept as the live train state and its gate flag
        noted for the epoch's report."""
        with self._lock:
            ts, logs = program(*args)
            self._live = ts
        run.refused.add(logs, first, last)
        return ts, logs

    def fit(
        self, host: TrainHost, data: ArrayData | IterableData, **kwargs: Any
    ) -> TrainState:
        """Train from `initial_epoch` to `epochs` (see `_fit`), on the mesh of the
        runner's distribution if it has one."""
        if self.distribution is not None and isinstance(data, ArrayData):
            self._check_array_data("fit")
            self.distribution.check_batch_size(data.batch_size, "fit")
        with self.scope():
            return self._fit(host, data, **kwargs)

    @staticmethod
    def _check_array_data(what: str) -> None:
        """Array data is placed whole on every device: one process only."""
        if jax.process_count() > 1:
            raise ValueError(
                f"{what}: in a run of {jax.process_count()} processes, pass each "
                "process' own part of the data as an iterable of batches (a "
                "generator or loader; `batch_size` is per process). Arrays are "
                "placed whole on every device, which holds in one process only."
            )

    def _fit(
        self,
        host: TrainHost,
        data: ArrayData | IterableData,
        *,
        epochs: int,
        initial_epoch: int,
        steps_per_epoch: int | None,
        callbacks: CallbackList,
        seed: int,
        shuffle: bool,
        validation: Callable[[], dict[str, float]] | None,
        validation_freq: int,
    ) -> TrainState:
        """Train from `initial_epoch` to `epochs`; return the final train state.

        The optimizer step count continues from `host.progress.step`; a resume
        point a callback sets in `on_train_begin` moves the start (`_resume`).
        """
        # What the steps donate is copied, by one compiled call for all of it.
        params, state, opt_state = host.params, host.state, host.opt_state
        if self.distribution is not None:
            params, state, opt_state = self.place_weights(params, state, opt_state)
        ts = TrainState.create(
            params,
            state,
            opt_state,
            self._metrics0(),
            self._key_data(seed),
            step=host.progress.step,
            epoch=initial_epoch,
        )
        published = self.publish(host, ts)
        host.stop_training = False
        epoch_logs: Any = {}
        with deferred_interrupt() as interrupted:
            run = _FitRun.create(
                self, data, callbacks, steps_per_epoch=steps_per_epoch, seed=seed,
                shuffle=shuffle, validation=validation,
                validation_freq=validation_freq, interrupted=interrupted,
            )
            try:
                callbacks.call("on_train_begin", Logs({}))
                ts = self.reread(host, ts, published)
                ts, epoch, epochs, first_batch = self._resume(
                    host, ts, data, initial_epoch=initial_epoch, epochs=epochs
                )
                while epoch < epochs:
                    start_step = host.progress.step
                    ts = self._begin_epoch(host, ts, run, epoch, first_batch)
                    ts, logs = self._train_epoch(host, ts, run, first_step=first_batch)
                    first_batch = 0
                    run.refused.close_epoch()
                    if logs is None:  # an iterable ran dry before this epoch
                        break
                    ts, epoch_logs = self._end_epoch(
                        host, ts, run, epoch, logs, start_step
                    )
                    epoch += 1
                    if host.stop_training or interrupted():
                        break
            finally:
                # The newest train state, even when an error ended an epoch midway:
                # the model keeps the weights of the last completed step.
                with self._lock:
                    if self._live is not None and _deleted(ts):
                        ts = self._live
                    self.publish(host, ts)
                    self._live = None
                host.progress.step = int(ts.step)
                run.refused.close_epoch()
                run.refused.report()
            if interrupted():
                raise KeyboardInterrupt
        callbacks.call("on_train_end", epoch_logs)
        return ts

    @staticmethod
    def _resume(
        host: TrainHost,
        ts: TrainState,
        data: ArrayData | IterableData,
        *,
        initial_epoch: int,
        epochs: int,
    ) -> tuple[TrainState, int, int, int]:
        """Where training starts: `(ts, epoch, end_epoch, first_batch)`.

        A callback restoring a checkpoint (BackupAndRestore) set the host's
        weights and optimizer state, and `progress.resume`: the epoch to
        continue from and the step count reached. It is consumed here.
        """
        resume = host.progress.resume
        if resume is None:
            return ts, initial_epoch, epochs, 0
        host.progress.resume = None
        if resume.fit_start is not None:
            # End where the interrupted fit would have ended.
            epochs = int(resume.fit_start) + (epochs - initial_epoch)
        ts = ts._replace(step=to_device(np.asarray(resume.step, np.int32)))
        first_batch = 0
        if isinstance(data, ArrayData):
            # A backup taken inside an epoch: continue at its batch; the
            # epoch's order is a function of (seed, epoch).
            first_batch = int(resume.batch or 0)
            host.progress.step = int(resume.step) - first_batch
        return ts, int(resume.epoch), epochs, first_batch

    def _begin_epoch(
        self,
        host: TrainHost,
        ts: TrainState,
        run: _FitRun,
        epoch: int,
        first_batch: int,
    ) -> TrainState:
        """The epoch's order, fresh metrics and counters; `on_epoch_begin`."""
        data = run.data
        order = (
            data.order(run.seed, epoch, run.shuffle)
            if isinstance(data, ArrayData)
            else None
        )
        inputs = _epoch_inputs(self._metrics0(), epoch, first_batch, order)
        if self.distribution is not None:
            inputs = to_device(inputs)
        metrics, epoch_arr, batch_arr, run.order = inputs
        ts = ts._replace(metrics=metrics, epoch=epoch_arr, batch=batch_arr)
        run.refused.epoch = epoch
        published = self.publish(host, ts)
        run.callbacks.call("on_epoch_begin", epoch, Logs({}))
        ts = self.reread(host, ts, published)
        self._live = ts
        return ts

    def _end_epoch(
        self,
        host: TrainHost,
        ts: TrainState,
        run: _FitRun,
        epoch: int,
        logs: dict[str, Any],
        start_step: int,
    ) -> tuple[TrainState, Logs]:
        """Epoch logs, the label check, validation, progress and `on_epoch_end`."""
        if run.lazy_epochs:
            epoch_logs = Logs(self.ordered_logs(logs))
        else:
            epoch_logs = self.host_logs(logs)
        if BAD_LABELS in logs and bool(np.asarray(logs[BAD_LABELS])):
            raise ValueError(
                f"fit: a batch of epoch {epoch} holds sparse labels outside "
                f"[0, num_classes); such labels have no loss to learn from."
            )
        if not run.lazy_epochs:
            run.refused.report()
        published = self.publish(host, ts)
        if run.validation is not None and (epoch + 1) % run.validation_freq == 0:
            epoch_logs.update({f"val_{k}": v for k, v in run.validation().items()})
        host.progress.epoch = epoch + 1
        if run.lazy_epochs:
            # Known on the host without asking the device (see `_FitRun`).
            host.progress.step = start_step + run.data.steps(run.steps_per_epoch)
        else:
            host.progress.step = int(ts.step)
        run.callbacks.call("on_epoch_end", epoch, epoch_logs)
        return self.reread(host, ts, published), epoch_logs

    def _train_epoch(
        self,
        host: TrainHost,
        ts: TrainState,
        run: _FitRun,
        *,
        first_step: int = 0,
    ) -> tuple[TrainState, dict[str, Any] | None]:
        """The epoch's steps, with the batch callbacks once per K-step block."""
        data, callbacks, batch_hooks = run.data, run.callbacks, run.batch_hooks
        interrupted, flags = run.interrupted, run.flags
        logs: dict[str, Any] | None = None
        if isinstance(data, ArrayData):
            steps = data.steps(run.steps_per_epoch)
            program = self.train_array_program(data.batch_size, **flags)
            fused = self.fused
            arrays, order = data.device_arrays, run.order
            counts = self._counts
            step_index = first_step
            if step_index >= steps:  # resumed after the epoch's last batch
                return ts, self.objective.results(ts.metrics)
            if not (fused or batch_hooks):
                # Nothing runs between two steps but the Ctrl-C check.
                for i in range(step_index, steps):
                    ts, logs = self._dispatch(program, run, i, i, ts, arrays, order)
                    if interrupted():
                        break
                return ts, logs
            while step_index < steps:
                block_end = min(step_index + self.k, steps)
                if batch_hooks:
                    published = self.publish(host, ts)
                    callbacks.call("on_train_batch_begin", step_index, Logs({}))
                    ts = self.reread(host, ts, published)
                if fused:
                    n = block_end - step_index
                    if n not in counts:
                        counts[n] = to_device(np.asarray(n, np.int32))
                    ts, logs = self._dispatch(
                        program, run, step_index, block_end - 1,
                        ts, arrays, order, counts[n],
                    )
                else:
                    while step_index < block_end:
                        ts, logs = self._dispatch(
                            program, run, step_index, step_index, ts, arrays, order
                        )
                        step_index += 1
                step_index = block_end
                ts = self._after_block(
                    host, ts, logs, block_end - 1, callbacks, batch_hooks
                )
                if host.stop_training or interrupted():
                    break
            return ts, logs

        program = self.train_host_program(**flags)
        index = 0
        for batch, _n in prefetch(data.batches()):
            if batch_hooks and index % self.k == 0:
                published = self.publish(host, ts)
                callbacks.call("on_train_batch_begin", index, Logs({}))
                ts = self.reread(host, ts, published)
            ts, logs = self._dispatch(program, run, index, index, ts, batch)
            index += 1
            if index % self.k == 0:
                ts = self._after_block(
                    host, ts, logs, index - 1, callbacks, batch_hooks
                )
                if host.stop_training or interrupted():
                    break
        if logs is not None and index % self.k != 0:
            ts = self._after_block(host, ts, logs, index - 1, callbacks, batch_hooks)
        return ts, logs

    def _after_block(
        self,
        host: TrainHost,
        ts: TrainState,
        logs: dict[str, Any],
        index: int,
        callbacks: CallbackList,
        batch_hooks: bool,
    ) -> TrainState:
        if not batch_hooks:
            return ts
        values = dict(logs)
        if NONFINITE in values and bool(np.asarray(values[NONFINITE])):
            values["loss"] = float("nan")
        published = self.publish(host, ts)
        callbacks.call("on_train_batch_end", index, Logs(values, values.get(PROBES)))
        return self.reread(host, ts, published)

    def evaluate(
        self, host: TrainHost, data: ArrayData | IterableData, **kwargs: Any
    ) -> dict[str, float]:
        """Run the test step over `data`; return the final logs as floats (see
        `_evaluate`), on the mesh of the runner's distribution if it has one."""
        if self.distribution is not None and isinstance(data, ArrayData):
            self._check_array_data("evaluate")
            self.distribution.check_batch_size(data.batch_size, "evaluate")
        with self.scope():
            return self._evaluate(host, data, **kwargs)

    def _evaluate(
        self,
        host: TrainHost,
        data: ArrayData | IterableData,
        *,
        steps: int | None,
        callbacks: CallbackList,
    ) -> dict[str, float]:
        """Run the test step over `data`; return the final logs as floats."""
        params, state = self.snapshot(host)
        if self.distribution is not None:  # into their layout on the mesh
            params, state, _ = self.place_weights(params, state)
        metrics = self.init_metrics()
        logs: dict[str, Any] | None = None
        callbacks.call("on_test_begin", Logs({}))
        hooks = callbacks.has("on_test_batch_end") or callbacks.has(
            "on_test_batch_begin"
        )
        if isinstance(data, ArrayData):
            n_steps = data.steps(steps)
            per_call = self.steps_per_call
            order = to_device(data.order(0, 0, False, n_steps, per_call))
            program = self.test_array_program(data.batch_size)
            carry = (metrics, to_device(np.zeros((), np.int32)))
            for b in range(0, math.ceil(n_steps / per_call)):
                if hooks:
                    callbacks.call("on_test_batch_begin", b * per_call, Logs({}))
                carry, logs = program(params, state, carry, data.device_arrays, order)
                if hooks:
                    callbacks.call("on_test_batch_end", b * per_call, Logs(logs))
        else:
            program = self.test_host_program()
            for b, (batch, _n) in enumerate(data.batches()):
                if hooks:
                    callbacks.call("on_test_batch_begin", b, Logs({}))
                if self.distribution is not None:
                    batch = batch_to_device(batch)
                metrics, logs = program(params, state, metrics, batch)
                if hooks:
                    callbacks.call("on_test_batch_end", b, Logs(logs))
        if logs is None:
            raise ValueError("evaluate: the data yielded no batch.")
        out = self.host_logs(logs)
        callbacks.call("on_test_end", out)
        return out

    def predict(self, host: TrainHost, x: Any, **kwargs: Any) -> Any:
        """Outputs for every row of `x` (NumPy), in order (see `_predict`), on
        the mesh of the runner's distribution if it has one."""
        if self.distribution is not None and not kwargs.get("iterable"):
            self._check_array_data("predict")
        with self.scope():
            return self._predict(host, x, **kwargs)

    def _predict(
        self,
        host: TrainHost,
        x: Any,
        *,
        batch_size: int,
        steps: int | None,
        callbacks: CallbackList,
        iterable: bool,
    ) -> Any:
        """Outputs for every row of `x` (NumPy), in order."""
        params, state = self.snapshot(host)
        if self.distribution is not None:  # into their layout on the mesh
            params, state, _ = self.place_weights(params, state)
        outs: list[Any] = []
        callbacks.call("on_predict_begin", Logs({}))
        begin_hooks = callbacks.has("on_predict_batch_begin")
        hooks = callbacks.has("on_predict_batch_end")
        if not iterable:
            data = ArrayData(x, None, None, batch_size)
            # Fewer rows than a batch: one batch of exactly those rows (as Keras).
            batch_size = data.batch_size = min(batch_size, data.n)
            if self.distribution is not None:
                # Rounded up to split evenly: the extra rows are padding, cut below.
                shards = self.distribution.batch_shards
                batch_size = data.batch_size = -(-batch_size // shards) * shards
            n_steps = data.steps(steps)
            per_call = self.steps_per_call
            order = to_device(data.order(0, 0, False, n_steps, per_call))
            program = self.predict_array_program(batch_size)
            i = to_device(np.zeros((), np.int32))
            for b in range(math.ceil(n_steps / per_call)):
                if begin_hooks:
                    callbacks.call("on_predict_batch_begin", b * per_call, Logs({}))
                y, i = program(params, state, i, data.device_arrays[0], order)
                outs.append(y)
                if hooks:
                    callbacks.call("on_predict_batch_end", b * per_call, {"outputs": y})
            n_rows = min(data.n, n_steps * batch_size)
            ys = jax.tree.map(
                lambda *a: np.concatenate([np.asarray(v) for v in a])[:n_rows], *outs
            )
        else:
            program = self.predict_host_program()
            source = IterableData(x, steps)
            counts = []
            for b, (batch, n) in enumerate(source.batches()):
                if begin_hooks:
                    callbacks.call("on_predict_batch_begin", b, Logs({}))
                if self.distribution is not None:
                    batch = batch_to_device(batch)
                y = program(params, state, batch.x)
                outs.append(y)
                counts.append(n)
                if hooks:
                    callbacks.call("on_predict_batch_end", b, {"outputs": y})
            if not outs:
                raise ValueError("predict: the data yielded no batch.")
            ys = jax.tree.map(
                lambda *a: np.concatenate(
                    [np.asarray(v)[:c] for v, c in zip(a, counts, strict=True)]
                ),
                *outs,
            )
        callbacks.call("on_predict_end", Logs({}))
        return ys
