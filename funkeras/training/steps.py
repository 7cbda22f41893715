"""Pure step builders: train, test and predict steps, in-graph probes and gates.

The builders take pure pieces (an `apply`, an `Objective`, an optax
transformation, a penalty) and never the `Model` class, so a user with a
hand-written `apply` can use them, and the loop directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from funkeras.training.objective import Objective
from funkeras.training.state import Batch, TrainState, step_key

__all__ = [
    "make_train_step",
    "make_test_step",
    "make_predict_step",
    "all_finite",
    "layer_probes",
    "ApplyFn",
]

ApplyFn = Callable[..., tuple[Any, Any]]


def all_finite(*trees: Any) -> jax.Array:
    """True when every floating-point leaf of `trees` is finite (one reduction each)."""
    flags = [
        jnp.all(jnp.isfinite(leaf))
        for leaf in jax.tree.leaves(trees)
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)
    ]
    if not flags:
        return jnp.asarray(True)
    return jnp.stack(flags).all()


def _norm(x: jax.Array) -> jax.Array:
    x = x.astype(jnp.float32)
    return jnp.sqrt(jnp.sum(x * x))


def layer_probes(params: Any, grads: Any, updates: Any) -> dict[str, Any]:
    """Per-variable norms of the params (after the update), gradients and updates.

    Returns three pytrees shaped like `params` with one float32 scalar per variable.
    """
    return {
        "param_norm": jax.tree.map(_norm, params),
        "grad_norm": jax.tree.map(_norm, grads),
        "update_norm": jax.tree.map(_norm, updates),
    }


def make_train_step(
    apply_fn: ApplyFn,
    objective: Objective,
    optimizer: optax.GradientTransformation,
    *,
    penalty_fn: Callable[[Any], jax.Array] | None = None,
    loss_fn: Callable[..., jax.Array] | None = None,
    probe_every: int = 0,
    finite_gate: bool = False,
    skip_empty: bool = False,
    sparse_check: Callable[[Any], jax.Array] | None = None,
    results: bool = True,
    uses_key: bool = True,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """Build the pure `train_step(train_state, batch) -> (train_state, logs)`.

    Args:
        apply_fn: `apply(params, state, x, *, training, key, mask) -> (y, state)`.
        objective: The compiled losses and metrics.
        optimizer: Any optax transformation (frozen weights already masked out).
        penalty_fn: `penalty(params) -> scalar`, the regularization loss.
        loss_fn: Overrides the loss: `loss_fn(x, y, y_pred, sample_weight, mask)`
            returning a scalar (a model's `compute_loss`).
        probe_every: When > 0, on every `probe_every`-th step the logs carry per-variable
            norms of params, gradients and updates under `"_probes"` (computed in
            the compiled step; the other steps skip the reductions).
        finite_gate: When True, a step whose loss, params, state or optimizer state
            is not finite is not committed: the old train state is kept and
            `logs["_nonfinite"]` is set.
        skip_empty: When True, a batch with no real row leaves the train state
            untouched (the trailing steps of a K-step block).
        sparse_check: Optional `check(y) -> bool` flagging out-of-range labels; the
            flag is returned as `logs["_bad_labels"]`.
        results: When False, the logs leave out the metric results (a caller
            running many steps in one program reads them once, from the final
            `train_state.metrics`, with `objective.results`).
        uses_key: When False, `apply` gets `key=None` (no layer draws random
            numbers), and the step derives no key.

    Returns:
        The pure train step.
    """

    # The pieces that are not the model's code (loss reduction, optimizer update,
    # metrics) are compiled on their own: under the outer jit they are inlined;
    # in eager mode only the layers run op by op, the rest costs one dispatch each.
    objective_loss = jax.jit(objective.loss) if objective is not None else None
    penalty = jax.jit(penalty_fn) if penalty_fn is not None else None

    @jax.jit
    def update(grads: Any, opt_state: Any, params: Any) -> Any:
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), updates, opt_state

    update_metrics = jax.jit(objective.update_metrics) if objective is not None else None

    def compute(ts: TrainState, batch: Batch) -> tuple[TrainState, dict[str, Any], Any]:
        key = step_key(ts) if uses_key else None

        def loss_of(params: Any) -> tuple[jax.Array, Any]:
            y_pred, new_state = apply_fn(
                params, ts.state, batch.x, training=True, key=key, mask=batch.mask
            )
            if loss_fn is not None:
                total = jnp.asarray(
                    loss_fn(batch.x, batch.y, y_pred, batch.sample_weight, batch.mask),
                    jnp.float32,
                )
                parts: dict[str, jax.Array] = {}
            else:
                total, parts = objective_loss(
                    batch.y, y_pred, batch.sample_weight, batch.mask
                )
            if penalty is not None:
                total = total + penalty(params)
            return total, (y_pred, new_state, parts)

        (loss, (y_pred, new_state, parts)), grads = jax.value_and_grad(
            loss_of, has_aux=True
        )(ts.params)
        params, updates, opt_state = update(grads, ts.opt_state, ts.params)
        metrics = update_metrics(
            ts.metrics, batch.y, y_pred, batch.sample_weight, batch.mask, loss, parts
        )
        new = ts._replace(
            params=params,
            state=new_state,
            opt_state=opt_state,
            metrics=metrics,
            step=ts.step + 1,
        )
        extras: dict[str, Any] = {}
        if probe_every > 0:
            extras["_probes"] = jax.lax.cond(
                # The last step of every `probe_every`: with K-step blocks (K
                # dividing probe_every) that is a block's last step, whose logs
                # reach the callbacks.
                (ts.step + 1) % probe_every == 0,
                lambda: layer_probes(params, grads, updates),
                lambda: jax.tree.map(
                    lambda _: jnp.full((), jnp.nan, jnp.float32),
                    layer_probes(params, grads, updates),
                ),
            )
        if sparse_check is not None:
            extras["_bad_labels"] = sparse_check(batch.y)
        return new, extras, loss

    def logs_of(ts: TrainState, extras: dict[str, Any]) -> dict[str, Any]:
        return {**objective.results(ts.metrics), **extras} if results else extras

    def train_step(ts: TrainState, batch: Batch) -> tuple[TrainState, dict[str, Any]]:
        if not (finite_gate or skip_empty):
            new, extras, _ = compute(ts, batch)
            return new, logs_of(new, extras)

        new, extras, loss = compute(ts, batch)
        commit = jnp.asarray(True)
        if skip_empty:
            commit = commit & jnp.any(batch.mask)
        if finite_gate:
            finite = all_finite(loss, new.params, new.state, new.opt_state)
            extras["_nonfinite"] = jnp.any(batch.mask) & ~finite
            commit = commit & finite
        # Keep the step counter moving only for committed steps; the old state is
        # returned whole otherwise (TerminateOnNaN keeps the last finite weights).
        kept = jax.lax.cond(commit, lambda: new, lambda: ts)
        return kept, logs_of(kept, extras)

    return train_step


def make_test_step(
    apply_fn: ApplyFn,
    objective: Objective,
    *,
    penalty_fn: Callable[[Any], jax.Array] | None = None,
    loss_fn: Callable[..., jax.Array] | None = None,
) -> Callable[..., tuple[Any, dict[str, jax.Array]]]:
    """Build `test_step(params, state, metrics, batch) -> (metrics, logs)`.

    Runs in inference mode; the loss includes the regularization penalty (as
    Keras' `evaluate` does); padding rows change nothing.
    """

    def test_step(params: Any, state: Any, metrics: Any, batch: Batch) -> Any:
        y_pred, _ = apply_fn(
            params, state, batch.x, training=False, key=None, mask=batch.mask
        )
        if loss_fn is not None:
            loss = jnp.asarray(
                loss_fn(batch.x, batch.y, y_pred, batch.sample_weight, batch.mask),
                jnp.float32,
            )
            parts: dict[str, jax.Array] = {}
        else:
            loss, parts = objective.loss(
                batch.y, y_pred, batch.sample_weight, batch.mask
            )
        if penalty_fn is not None:
            loss = loss + penalty_fn(params)
        metrics = objective.update_metrics(
            metrics, batch.y, y_pred, batch.sample_weight, batch.mask, loss, parts
        )
        return metrics, objective.results(metrics)

    return test_step


def make_predict_step(apply_fn: ApplyFn) -> Callable[[Any, Any, Any], Any]:
    """Build `predict_step(params, state, x) -> y` (inference mode, no key)."""

    def predict_step(params: Any, state: Any, x: Any) -> Any:
        y, _ = apply_fn(params, state, x, training=False, key=None, mask=None)
        return y

    return predict_step
