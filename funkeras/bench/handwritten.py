"""The hand-written JAX training loops funkeras is measured against.

Three loops, each the one a JAX user would write for the workload, with the
same network, initialization, loss, optax optimizer and batch as funkeras:

* `jit` (the reference, ratio 1.00): one `jax.jit` step with the parameters
  and optimizer state donated, called on NumPy batches sliced from a
  pre-shuffled host array (the transfer happens in the call).
* `eager`: the same step function called without `jax.jit`: every operation
  dispatches on its own (the reference for funkeras' eager mode).
* `scan`: one `jax.jit` program per epoch running the steps in `lax.scan` over
  device-resident data (the reference for `steps_per_execution`).

Every loop reads the loss once per epoch (a float on the host, as a loop that
logs per epoch does), which is also what `fit` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from funkeras.bench.workloads import Workload, make_optimizer

__all__ = ["HandWritten", "make_step"]


def make_step(
    workload: Workload, tx: optax.GradientTransformation
) -> Callable[[Any, Any, Any, Any], tuple[Any, Any, jax.Array]]:
    """The pure step `(params, opt_state, x, y) -> (params, opt_state, loss)`."""

    def step(params: Any, opt_state: Any, x: Any, y: Any) -> tuple[Any, Any, jax.Array]:
        loss, grads = jax.value_and_grad(workload.hand_loss)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


class HandWritten:
    """One hand-written loop (`mode` = `"jit"`, `"eager"` or `"scan"`) on a workload.

    Args:
        workload: What to train.
        mode: Which loop.
        x, y: The data (NumPy); shuffled once here, then sliced in order.
        batch_size: Rows per step.
        steps_per_epoch: Steps per epoch (the scan length for `"scan"`).
    """

    impl = "hand-written"

    def __init__(
        self,
        workload: Workload,
        mode: str,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        steps_per_epoch: int,
    ) -> None:
        self.workload = workload
        self.mode = mode
        perm = np.random.default_rng(0).permutation(x.shape[0])
        rows = batch_size * steps_per_epoch
        self.x, self.y = x[perm][:rows].copy(), y[perm][:rows].copy()
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.traces = 0
        tx = make_optimizer(workload, "optax")
        step = make_step(workload, tx)

        def counted(*args: Any) -> Any:
            self.traces += 1
            return step(*args)

        self.params = workload.init_params(jax.random.key(0))
        self.opt_state = tx.init(self.params)
        if mode == "jit":
            self._step = jax.jit(counted, donate_argnums=(0, 1))
        elif mode == "eager":
            self._step = step
        elif mode == "scan":
            self._epoch = jax.jit(self._make_epoch(counted), donate_argnums=(0, 1))
            self.x_device, self.y_device = jax.device_put((self.x, self.y))
        else:
            raise ValueError(f"unknown hand-written mode {mode!r}")

    def _make_epoch(self, step: Callable[..., Any]) -> Callable[..., Any]:
        batch, steps = self.batch_size, self.steps_per_epoch

        def epoch(params: Any, opt_state: Any, x: jax.Array, y: jax.Array) -> Any:
            def body(carry: Any, i: jax.Array) -> Any:
                p, o = carry
                xb = jax.lax.dynamic_slice_in_dim(x, i * batch, batch)
                yb = jax.lax.dynamic_slice_in_dim(y, i * batch, batch)
                p, o, loss = step(p, o, xb, yb)
                return (p, o), loss

            (params, opt_state), losses = jax.lax.scan(
                body, (params, opt_state), jnp.arange(steps)
            )
            return params, opt_state, losses[-1]

        return epoch

    def first_step(self) -> float:
        """Run and time the first step (trace + compile + run); seconds."""
        start = time.perf_counter()
        if self.mode == "scan":
            self.params, self.opt_state, loss = self._epoch(
                self.params, self.opt_state, self.x_device, self.y_device
            )
        else:
            b = self.batch_size
            self.params, self.opt_state, loss = self._step(
                self.params, self.opt_state, self.x[:b], self.y[:b]
            )
        jax.block_until_ready((self.params, loss))
        return time.perf_counter() - start

    def run(self, epochs: int, seed: int) -> None:
        """Train `epochs` epochs of `steps_per_epoch` steps; wait for the result."""
        del seed  # the data were shuffled once; every epoch reads them in order
        params, opt_state = self.params, self.opt_state
        loss = None
        if self.mode == "scan":
            for _ in range(epochs):
                params, opt_state, loss = self._epoch(
                    params, opt_state, self.x_device, self.y_device
                )
                float(loss)
        else:
            step, x, y, b = self._step, self.x, self.y, self.batch_size
            for _ in range(epochs):
                for i in range(0, self.steps_per_epoch * b, b):
                    params, opt_state, loss = step(
                        params, opt_state, x[i : i + b], y[i : i + b]
                    )
                float(loss)
        jax.block_until_ready(params)
        self.params, self.opt_state = params, opt_state

    def compiles(self) -> int | None:
        """Traces of the jitted program (None for the op-by-op loop)."""
        return None if self.mode == "eager" else self.traces
