"""Pure step builders: train, test and predict steps, in-graph probes and gates.

The builders take pure pieces (an `apply`, an `Objective`, an optax
transformation, a penalty) and never the `Model` class, so a user with a
hand-written `apply` can use them, and the loop directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import optax

from funkeras.layers.subclassing import collect_losses
from funkeras.training.objective import Objective
from funkeras.training.state import Batch, TrainState, step_key

__all__ = [
    "NONFINITE",
    "BAD_LABELS",
    "PROBES",
    "StepConfig",
    "batch_loss",
    "finish_step",
    "make_train_step",
    "make_test_step",
    "make_predict_step",
    "all_finite",
    "layer_probes",
    "ApplyFn",
    "run_apply",
]

ApplyFn = Callable[..., tuple[Any, Any]]

# The reserved log keys: a train step's logs carry these beside the metric
# results; the loop reads them, and their leading underscore keeps them out of
# what callbacks and the progress bar show.
NONFINITE = "_nonfinite"
"""Log key: True when the finite gate refused the step (some new value not finite)."""
BAD_LABELS = "_bad_labels"
"""Log key: True when a sparse label is out of range for its output."""
PROBES = "_probes"
"""Log key: the per-variable norms of `layer_probes` (NaN on steps not probed)."""


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


@dataclass(frozen=True, kw_only=True)
class StepConfig:
    """How a train step is built, beyond its `apply`, objective and optimizer.

    Frozen (a config is a cache key and is shared by every executor); an unknown
    field is a `TypeError`.

    Attributes:
        penalty_fn: `penalty(params) -> scalar`, the regularization loss.
        loss_fn: Overrides the loss: `loss_fn(x, y, y_pred, sample_weight, mask)`
            returning a scalar (a model's `compute_loss`).
        probe_every: When > 0, on every `probe_every`-th step the logs carry
            per-variable norms of params, gradients and updates under `PROBES`
            (computed in the compiled step; the other steps skip the reductions).
        finite_gate: When True, a step whose loss, params, state or optimizer state
            is not finite is not committed: the old train state is kept and
            `logs[NONFINITE]` is set.
        loss_gate: When True (what `fit` and `train_on_batch` use by default), a
            step whose loss is not finite is not committed: the old params,
            state, optimizer state, metrics and step count are kept and
            `logs[NONFINITE]` is set. Any NaN or infinity in the inputs, targets,
            sample weights or weights reaches the loss, so this guards every
            source; the old values are selected element by element, which fuses
            into the update (no measurable cost). `finite_gate` is the thorough
            form (every new value checked).
        skip_empty: When True, a batch with no real row leaves the train state
            untouched (the trailing steps of a K-step block).
        sparse_check: Optional `check(y) -> bool` flagging out-of-range labels; the
            flag is returned as `logs[BAD_LABELS]`.
        results: When False, the logs leave out the metric results (a caller
            running many steps in one program reads them once, from the final
            `train_state.metrics`, with `objective.results`).
        uses_key: When False, `apply` gets `key=None` (no layer draws random
            numbers), and the step derives no key.
        output_masks: When True, `apply` returns `(y, state, output_masks)`:
            the outputs' sequence masks (structured like `y`, None where an
            output has none; a model's `apply_masked`), and the loss and
            metrics skip masked timesteps as Keras does.
    """

    penalty_fn: Callable[[Any], jax.Array] | None = None
    loss_fn: Callable[..., jax.Array] | None = None
    probe_every: int = 0
    finite_gate: bool = False
    loss_gate: bool = False
    skip_empty: bool = False
    sparse_check: Callable[[Any], jax.Array] | None = None
    results: bool = True
    uses_key: bool = True
    output_masks: bool = False


def batch_loss(
    batch: Batch,
    y_pred: Any,
    *,
    objective_loss: Callable[..., tuple[jax.Array, dict[str, jax.Array]]],
    loss_fn: Callable[..., jax.Array] | None = None,
    output_masks: Any = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The loss of one batch: `(total, per-output losses)`, penalty not included.

    `loss_fn` (a model's `compute_loss`), when given, is the loss (and there are no
    per-output parts); otherwise `objective_loss(y, y_pred, sample_weight, mask)`,
    an `Objective.loss` (or a compiled copy of it), given the outputs' sequence
    masks as a fifth argument when there are any.
    """
    if loss_fn is not None:
        total = loss_fn(batch.x, batch.y, y_pred, batch.sample_weight, batch.mask)
        return jnp.asarray(total, jnp.float32), {}
    if output_masks is not None:
        return objective_loss(
            batch.y, y_pred, batch.sample_weight, batch.mask, output_masks
        )
    return objective_loss(batch.y, y_pred, batch.sample_weight, batch.mask)


def run_apply(
    apply_fn: ApplyFn, with_masks: bool, *args: Any, **kwargs: Any
) -> tuple[Any, Any, Any]:
    """`apply_fn(*args, **kwargs)` as `(y, state, output_masks)` (None masks
    for an `apply` that returns `(y, state)`)."""
    if with_masks:
        return apply_fn(*args, **kwargs)
    y, state = apply_fn(*args, **kwargs)
    return y, state, None


def _probes_due(
    step: jax.Array, every: int, params: Any, grads: Any, updates: Any
) -> Any:
    """`layer_probes` on the last step of every `every` (NaN on the other steps).

    With K-step blocks (K dividing `every`) that is a block's last step, whose logs
    reach the callbacks.
    """
    return jax.lax.cond(
        step % every == 0,
        lambda: layer_probes(params, grads, updates),
        lambda: jax.tree.map(
            lambda _: jnp.full((), jnp.nan, jnp.float32),
            layer_probes(params, grads, updates),
        ),
    )


def finish_step(
    ts: TrainState,
    batch: Batch,
    objective: Objective,
    config: StepConfig,
    *,
    loss: jax.Array,
    grads: Any,
    updates: Any,
    params: Any,
    state: Any,
    opt_state: Any,
    metrics: Any,
    update_gated: bool = False,
) -> tuple[TrainState, dict[str, Any]]:
    """The end of every train step, whichever executor computed the gradients.

    Builds the new `TrainState` from the new values (step + 1), attaches the
    probes (`PROBES`) and the label flag (`BAD_LABELS`) that `config` asks for,
    and applies the gates: with `config.finite_gate` a step with a non-finite
    loss, params, state or optimizer state keeps the old train state `ts` whole
    and sets `NONFINITE` (with `config.loss_gate`, a step with a non-finite
    loss; `update_gated` says the caller already kept the old params and
    optimizer state for such a step); with `config.skip_empty` a batch with no
    real row keeps it too. Returns `(train_state, logs)`: the metric results (unless
    `config.results` is False) and the flags.
    """
    new = ts._replace(
        params=params,
        state=state,
        opt_state=opt_state,
        metrics=metrics,
        step=ts.step + 1,
    )
    extras: dict[str, Any] = {}
    if config.probe_every > 0:
        extras[PROBES] = _probes_due(
            new.step, config.probe_every, params, grads, updates
        )
    if config.sparse_check is not None:
        extras[BAD_LABELS] = config.sparse_check(batch.y)
    if config.finite_gate or config.skip_empty:
        commit = jnp.asarray(True)
        if config.skip_empty:
            commit = commit & jnp.any(batch.mask)
        if config.finite_gate:
            finite = all_finite(loss, params, state, opt_state)
            extras[NONFINITE] = jnp.any(batch.mask) & ~finite
            commit = commit & finite
        # The step counter moves only for committed steps; the old state is kept
        # whole otherwise (TerminateOnNaN keeps the last finite weights).
        new = jax.lax.cond(commit, lambda: new, lambda: ts)
    elif config.loss_gate:
        finite = jnp.isfinite(loss)
        extras[NONFINITE] = jnp.any(batch.mask) & ~finite
        # A `cond` over the whole train state would copy it on every step; an
        # element-wise select costs one pass over what it selects.
        kept = ("params", "opt_state") if update_gated else ()
        new = new._replace(
            **{
                f: jax.tree.map(
                    lambda n, o: jnp.where(finite, n, o),
                    getattr(new, f),
                    getattr(ts, f),
                )
                for f in ("params", "state", "opt_state", "metrics", "step")
                if f not in kept
            }
        )
    if not config.results:
        return new, extras
    return new, {**objective.results(new.metrics), **extras}


def make_train_step(
    apply_fn: ApplyFn,
    objective: Objective,
    optimizer: optax.GradientTransformation,
    config: StepConfig | None = None,
    **options: Any,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """Build the pure `train_step(train_state, batch) -> (train_state, logs)`.

    Args:
        apply_fn: `apply(params, state, x, *, training, key, mask) -> (y, state)`.
        objective: The compiled losses and metrics.
        optimizer: Any optax transformation (frozen weights already masked out).
        config: The step's options (`StepConfig()` when None).
        **options: `StepConfig` fields, overriding those of `config`
            (`make_train_step(apply, objective, tx, finite_gate=True)`).

    Returns:
        The pure train step.
    """
    config = replace(config or StepConfig(), **options)
    penalty_fn, uses_key = config.penalty_fn, config.uses_key

    # The pieces that are not the model's code (loss reduction, optimizer update,
    # metrics) are compiled on their own: under the outer jit they are inlined;
    # in eager mode only the layers run op by op, the rest costs one dispatch each.
    objective_loss = jax.jit(objective.loss) if objective is not None else None
    penalty = jax.jit(penalty_fn) if penalty_fn is not None else None

    @jax.jit
    def update(grads: Any, opt_state: Any, params: Any) -> Any:
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), updates, opt_state

    update_metrics = (
        jax.jit(objective.update_metrics) if objective is not None else None
    )

    def train_step(ts: TrainState, batch: Batch) -> tuple[TrainState, dict[str, Any]]:
        key = step_key(ts) if uses_key else None

        def loss_of(params: Any) -> tuple[jax.Array, Any]:
            with collect_losses() as added:  # Keras-style `add_loss` of inputs
                y_pred, new_state, out_masks = run_apply(
                    apply_fn,
                    config.output_masks,
                    params,
                    ts.state,
                    batch.x,
                    training=True,
                    key=key,
                    mask=batch.mask,
                )
            total, parts = batch_loss(
                batch,
                y_pred,
                objective_loss=objective_loss,
                loss_fn=config.loss_fn,
                output_masks=out_masks,
            )
            total = total + sum(added, jnp.zeros((), jnp.float32))
            if penalty is not None:
                total = total + penalty(params)
            return total, (y_pred, new_state, parts, out_masks)

        (loss, (y_pred, new_state, parts, out_masks)), grads = jax.value_and_grad(
            loss_of, has_aux=True
        )(ts.params)
        if config.loss_gate and not config.finite_gate:
            # The optimizer runs only for a finite loss: a refused step costs
            # nothing, and a committed one no extra pass over the weights.
            finite = jnp.isfinite(loss)

            def skipped() -> Any:
                return ts.params, jax.tree.map(jnp.zeros_like, grads), ts.opt_state

            if isinstance(finite, jax.core.Tracer):
                params, updates, opt_state = jax.lax.cond(
                    finite, lambda: update(grads, ts.opt_state, ts.params), skipped
                )
            else:
                # Op by op (eager) the loss is concrete: a Python branch, since
                # a `cond` outside `jit` is traced and compiled again per call.
                params, updates, opt_state = (
                    update(grads, ts.opt_state, ts.params)
                    if bool(finite)
                    else skipped()
                )
        else:
            params, updates, opt_state = update(grads, ts.opt_state, ts.params)
        metrics = update_metrics(
            ts.metrics,
            batch.y,
            y_pred,
            batch.sample_weight,
            batch.mask,
            loss,
            parts,
            out_masks,
        )
        return finish_step(
            ts,
            batch,
            objective,
            config,
            loss=loss,
            grads=grads,
            updates=updates,
            params=params,
            state=new_state,
            opt_state=opt_state,
            metrics=metrics,
            update_gated=config.loss_gate and not config.finite_gate,
        )

    return train_step


def make_test_step(
    apply_fn: ApplyFn,
    objective: Objective,
    *,
    penalty_fn: Callable[[Any], jax.Array] | None = None,
    loss_fn: Callable[..., jax.Array] | None = None,
    output_masks: bool = False,
) -> Callable[..., tuple[Any, dict[str, jax.Array]]]:
    """Build `test_step(params, state, metrics, batch) -> (metrics, logs)`.

    Runs in inference mode; the loss includes the regularization penalty (as
    Keras' `evaluate` does); padding rows change nothing. With `output_masks`,
    `apply_fn` returns `(y, state, output_masks)` (see `StepConfig`).
    """

    def test_step(params: Any, state: Any, metrics: Any, batch: Batch) -> Any:
        with collect_losses() as added:
            y_pred, _, out_masks = run_apply(
                apply_fn,
                output_masks,
                params,
                state,
                batch.x,
                training=False,
                key=None,
                mask=batch.mask,
            )
        loss, parts = batch_loss(
            batch,
            y_pred,
            objective_loss=objective.loss,
            loss_fn=loss_fn,
            output_masks=out_masks,
        )
        loss = loss + sum(added, jnp.zeros((), jnp.float32))
        if penalty_fn is not None:
            loss = loss + penalty_fn(params)
        metrics = objective.update_metrics(
            metrics,
            batch.y,
            y_pred,
            batch.sample_weight,
            batch.mask,
            loss,
            parts,
            out_masks,
        )
        return metrics, objective.results(metrics)

    return test_step


def make_predict_step(apply_fn: ApplyFn) -> Callable[[Any, Any, Any], Any]:
    """Build `predict_step(params, state, x) -> y` (inference mode, no key)."""

    def predict_step(params: Any, state: Any, x: Any) -> Any:
        y, _ = apply_fn(params, state, x, training=False, key=None, mask=None)
        return y

    return predict_step
