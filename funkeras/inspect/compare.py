"""One training step in several execution modes, compared layer by layer.

The tool for "it works eagerly and gives NaN under jit": every mode takes one
step from the same train state on the same batch, and the activations,
parameter gradients and optimizer updates of every layer are compared with the
first mode's. The model is not changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from funkeras.graph import get_path, prepare_inputs
from funkeras.training.executors import EXECUTIONS
from funkeras.training.layerwise import LayerwiseExecutor, Plan, run_plan
from funkeras.training.state import TrainState, copy_tree
from funkeras.training.steps import StepConfig, make_train_step

__all__ = ["compare_executions", "ExecutionComparison", "LayerDifference", "Divergence"]


class _Recorded(NamedTuple):
    inner: Any
    grads: Any
    updates: Any


def _recording(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """`tx`, keeping the last gradients and updates in its state (read after a step)."""

    def init(params: Any) -> _Recorded:
        zeros = jax.tree.map(jnp.zeros_like, params)
        return _Recorded(tx.init(params), zeros, zeros)

    def update(grads: Any, state: _Recorded, params: Any = None) -> Any:
        updates, inner = tx.update(grads, state.inner, params)
        return updates, _Recorded(inner, grads, updates)

    return optax.GradientTransformation(init, update)


@dataclass
class LayerDifference:
    """The largest absolute differences of one layer against the reference mode.

    Attributes:
        name: The layer's path name.
        activation: `{execution: max |output - reference output|}`.
        grad: `{execution: max |param grad - reference|}` (absent without params).
        update: `{execution: max |update - reference|}` (absent without params).
    """

    name: str
    activation: dict[str, float] = field(default_factory=dict)
    grad: dict[str, float] = field(default_factory=dict)
    update: dict[str, float] = field(default_factory=dict)


class Divergence(NamedTuple):
    """Where a mode first parts from the reference."""

    execution: str
    layer: str
    quantity: str  # "activation", "grad" or "update"
    difference: float


@dataclass
class ExecutionComparison:
    """The result of `compare_executions`; `str()` gives a table.

    Attributes:
        reference: The mode the others are compared with (the first one).
        executions: Every mode compared.
        layers: One `LayerDifference` per layer, in graph order.
        losses: The batch loss in each mode.
        first_divergence: Per other mode, the first place it parts from the
            reference (activations in forward order, then gradients in backward
            order, then updates), or None when every difference is within
            tolerance.
        atol, rtol: The tolerance: values part when `|a - ref| > atol + rtol*|ref|`.
    """

    reference: str
    executions: tuple[str, ...]
    layers: list[LayerDifference]
    losses: dict[str, float]
    first_divergence: dict[str, Divergence | None]
    atol: float
    rtol: float

    @property
    def agree(self) -> bool:
        """True when no mode parts from the reference."""
        return all(d is None for d in self.first_divergence.values())

    def __str__(self) -> str:
        others = [e for e in self.executions if e != self.reference]
        head = ["layer"]
        for e in others:
            head += [f"act Δ {e}", f"grad Δ {e}", f"update Δ {e}"]
        rows = [head]

        def fmt(d: dict[str, float], e: str) -> str:
            return "-" if e not in d else f"{d[e]:.2e}"

        for layer in self.layers:
            row = [layer.name]
            for e in others:
                row += [
                    fmt(layer.activation, e),
                    fmt(layer.grad, e),
                    fmt(layer.update, e),
                ]
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [
            f"One train step per execution, compared with {self.reference!r} "
            f"(max |Δ|; tolerance atol={self.atol:g}, rtol={self.rtol:g})",
            "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
            "  ".join("-" * w for w in widths),
        ]
        for r in rows[1:]:
            lines.append(
                "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(r, widths, strict=True))
                )
            )
        lines.append(
            "loss: " + ", ".join(f"{e} {v:.6g}" for e, v in self.losses.items())
        )
        for e in others:
            d = self.first_divergence[e]
            if d is None:
                lines.append(f"{e}: agrees with {self.reference} everywhere.")
            else:
                lines.append(
                    f"{e}: first parts from {self.reference} at the {d.quantity} "
                    f"of layer {d.layer!r} (max |Δ| {d.difference:.3g})."
                )
        return "\n".join(lines)


def _max_diff(a: Any, b: Any) -> float:
    """max |a - b| over float leaves; a NaN/inf in one side only counts as inf."""
    worst = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        if x.size == 0:
            continue
        both = (np.isnan(x) & np.isnan(y)) | ((x == y) & np.isinf(x))
        d = np.where(both, 0.0, np.abs(x - y))
        d = np.where(np.isnan(d), np.inf, d)
        worst = max(worst, float(d.max()))
    return worst


def _parts(a: Any, ref: Any, atol: float, rtol: float) -> bool:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(ref), strict=True):
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        if not np.allclose(x, y, atol=atol, rtol=rtol, equal_nan=True):
            return True
    return False


def _float_only(tree: Any) -> Any:
    return [
        a
        for a in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.result_type(a), jnp.inexact)
    ]


def compare_executions(
    model: Any,
    x: Any,
    y: Any,
    *,
    sample_weight: Any = None,
    executions: Sequence[str] = ("jit", "eager", "layerwise"),
    atol: float = 1e-5,
    rtol: float = 1e-5,
    seed: int = 0,
) -> ExecutionComparison:
    """Take one training step in each execution mode and compare them layer by layer.

    Every mode starts from the model's current weights, state and optimizer
    state, on the batch `(x, y)`, with the dropout keys of step
    `fold_in(key(seed), step)`. Per layer, the largest difference of its output,
    of its parameter gradients and of its optimizer update against the first
    mode is reported, with the first place each mode parts from it. The model
    itself is not changed.

    Args:
        model: A model compiled with a loss.
        x, y: One batch of inputs and targets.
        sample_weight: Optional per-row weights.
        executions: The modes, the first being the reference.
        atol, rtol: Values part when `|a - ref| > atol + rtol * |ref|`.
        seed: Seed of the step's dropout keys.

    Returns:
        An `ExecutionComparison` (print it for a table).

    Raises:
        ValueError: if the model was not compiled with a loss, has a custom
            `train_step`, or an execution name is unknown.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> report = compare_executions(model, np.ones((4, 3), np.float32),
        ...                             np.zeros((4, 2), np.float32))
        >>> report.agree
        True
    """
    what = "compare_executions"
    executions = tuple(executions)
    bad = [e for e in executions if e not in EXECUTIONS]
    if bad or len(executions) < 2:
        raise ValueError(
            f"{what}: `executions` must name at least two of {list(EXECUTIONS)}, got "
            f"{list(executions)}."
        )
    if not model.compiled or model.loss is None:
        raise ValueError(
            f"{what}: {model!r} has no loss to take a training step with; compile it "
            "with one first: `model.compile(optimizer=..., loss=...)`."
        )
    batch = model.make_batch(x, y, sample_weight)
    runner = model.make_runner()
    if runner.custom_train_step is not None:
        raise ValueError(
            f"{what}: {model!r} overrides `train_step`; only the standard step runs in "
            "every execution mode (a custom step is the same in all of them)."
        )
    graph = model.graph
    tx = _recording(runner.optimizer)
    params, state = model.params, model.state
    opt_state = model.opt_state
    if opt_state is None:
        opt_state = runner.optimizer.init(params)
    start = TrainState.create(
        copy_tree(params),
        copy_tree(state),
        _Recorded(copy_tree(opt_state), *(jax.tree.map(jnp.zeros_like, params),) * 2),
        runner.init_metrics(),
        jax.random.key(seed),
        step=int(model.progress.step),
    )
    plan = Plan(graph)
    plan.bind(params, state)
    results: dict[str, dict[str, Any]] = {}
    for execution in executions:
        ts = copy_tree(start)
        if execution == "layerwise":
            ex = LayerwiseExecutor()
            step = ex.make_train_step(
                None,
                graph=graph,
                objective=runner.objective,
                optimizer=tx,
                config=StepConfig(penalty_fn=runner.penalty_fn, loss_fn=runner.loss_fn),
            )
            new, logs = step(ts, batch)
            values = ex.activations
        else:
            step = make_train_step(
                model.apply,
                runner.objective,
                tx,
                penalty_fn=runner.penalty_fn,
                loss_fn=runner.loss_fn,
            )

            def forward(
                params: Any, state: Any, x: Any, key: Any, step_: Any, mask: Any
            ) -> Any:
                record: dict[int, Any] = {}
                run_plan(
                    plan,
                    params,
                    state,
                    prepare_inputs(graph, x, f"{model!r}"),
                    training=True,
                    key=jax.random.fold_in(key, step_),
                    mask=mask,
                    record=record,
                )
                return [record[i] for i in range(plan.n_slots)]

            def both(
                ts: TrainState, batch: Any, step: Any = step, forward: Any = forward
            ) -> Any:
                slots = forward(
                    ts.params, ts.state, batch.x, ts.key, ts.step, batch.mask
                )
                return step(ts, batch), slots

            # Under jit, one program: the real step and a forward pass recording
            # every layer's output with the step's keys.
            (new, logs), slots = (jax.jit(both) if execution == "jit" else both)(
                ts, batch
            )
            values = plan.values_by_name(slots, outputs=True)
        results[execution] = {
            "activations": values,
            "grads": new.opt_state.grads,
            "updates": new.opt_state.updates,
            "loss": float(np.asarray(logs["loss"])),
        }

    reference = executions[0]
    ref = results[reference]
    names = list(dict.fromkeys(op.name for op in plan.layer_ops))
    paths = {op.name: op.param_path for op in plan.layer_ops}
    with_params = {op.name for op in plan.layer_ops if op.has_params}
    rows: list[LayerDifference] = []
    first: dict[str, Divergence | None] = {}
    for execution in executions[1:]:
        got = results[execution]
        found: list[Divergence] = []
        for i, name in enumerate(names):
            row = rows[i] if len(rows) > i else None
            if row is None:
                row = LayerDifference(name)
                rows.append(row)
            a, r = (
                _float_only(got["activations"][name]),
                _float_only(ref["activations"][name]),
            )
            row.activation[execution] = _max_diff(a, r)
            if _parts(a, r, atol, rtol):
                found.append(
                    Divergence(execution, name, "activation", row.activation[execution])
                )
            if name in with_params:
                for quantity, store in (("grads", row.grad), ("updates", row.update)):
                    g = get_path(got[quantity], paths[name])
                    rg = get_path(ref[quantity], paths[name])
                    store[execution] = _max_diff(g, rg)
        first[execution] = (
            found[0]
            if found
            else _first_param_divergence(
                execution, names, with_params, paths, got, ref, rows, atol, rtol
            )
        )
    return ExecutionComparison(
        reference=reference,
        executions=executions,
        layers=rows,
        losses={e: results[e]["loss"] for e in executions},
        first_divergence=first,
        atol=atol,
        rtol=rtol,
    )


def _first_param_divergence(
    execution: str,
    names: list[str],
    with_params: set[str],
    paths: dict[str, Any],
    got: dict[str, Any],
    ref: dict[str, Any],
    rows: list[LayerDifference],
    atol: float,
    rtol: float,
) -> Divergence | None:
    """Gradients in backward order (the last layer first), then updates in order."""
    by_name = {row.name: row for row in rows}
    for name in reversed(names):
        if name in with_params and _parts(
            get_path(got["grads"], paths[name]),
            get_path(ref["grads"], paths[name]),
            atol,
            rtol,
        ):
            return Divergence(execution, name, "grad", by_name[name].grad[execution])
    for name in names:
        if name in with_params and _parts(
            get_path(got["updates"], paths[name]),
            get_path(ref["updates"], paths[name]),
            atol,
            rtol,
        ):
            return Divergence(
                execution, name, "update", by_name[name].update[execution]
            )
    return None
