"""Every layer's output (and gradient) for a batch, and forward hooks during fit.

`capture` runs a model on a batch and returns each layer's output by name, in
any execution mode; given targets it also returns the gradient of the loss
with respect to each layer's output. `forward_hooks` makes `fit` and `predict`
call a function on every layer's output (eager and layerwise modes).
"""

from __future__ import annotations

import contextlib
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from funkeras.graph import Graph, prepare_inputs
from funkeras.training.layerwise import (
    Plan,
    Walker,
    add_forward_hook,
    check_replacement,
    remove_forward_hook,
    run_plan,
)
from funkeras.training.objective import Objective

__all__ = ["capture", "Captured", "forward_hooks", "executor", "layer_names"]

EXECUTIONS = ("eager", "layerwise", "jit")

# One plan and walker per graph, so repeated captures reuse compiled layers.
_WALKERS: weakref.WeakKeyDictionary[Graph, Walker] = weakref.WeakKeyDictionary()


def _walker(graph: Graph) -> Walker:
    w = _WALKERS.get(graph)
    if w is None:
        w = Walker(Plan(graph), Counter(), Counter())
        _WALKERS[graph] = w
    return w


class Captured(NamedTuple):
    """What `capture` returns when it is given targets.

    Attributes:
        outputs: `{layer_name: output}`, as `capture` returns without targets.
        grads: `{layer_name: d loss / d output}` (same structure as `outputs`;
            integer outputs have no gradient and are left out).
        loss: The scalar loss of the batch (without regularization, which does
            not depend on any layer's output).
    """

    outputs: dict[str, Any]
    grads: dict[str, Any]
    loss: jax.Array


def layer_names(model: Any) -> list[str]:
    """The names `capture` and hooks use: each layer's path in graph order.

    A layer inside a nested model is `"outer/inner"`; the nested model's own
    output is listed under its name after its layers.
    """
    plan = _walker(_graph(model, "layer_names")).plan
    names = list(dict.fromkeys(op.name for op in plan.layer_ops))
    return names + [n for n in dict.fromkeys(plan.group_names) if n not in names]


def _graph(model: Any, what: str) -> Graph:
    graph = getattr(model, "graph", None)
    if not isinstance(graph, Graph):
        raise ValueError(
            f"{what}: {model!r} is not built; build it with "
            "`model.build(input_shape)`, an `fk.Input`, or by calling `fit`/`predict` "
            "on data."
        )
    return graph


def _resolve(plan: Plan, layers: Sequence[str] | str | None, what: str) -> list[str]:
    known = list(dict.fromkeys([op.name for op in plan.layer_ops] + plan.group_names))
    if layers is None:
        return known
    if isinstance(layers, str):
        layers = [layers]
    unknown = [n for n in layers if n not in known]
    if unknown:
        raise ValueError(
            f"{what}: unknown layer name(s) {unknown}. The model's layers are "
            f"{known} (a layer inside a nested model is 'outer/inner')."
        )
    return list(layers)


def _objective(model: Any, loss: Any, what: str) -> Any:
    if loss is not None:
        shapes = [tuple(s.shape) for s in jax.tree.leaves(model.graph.output_spec)]
        return Objective(loss, model.output_names, output_shapes=shapes, owner=what)
    if not model.compiled or model.loss is None:
        raise ValueError(
            f"{what}: gradients need a loss: pass `loss=` (a Keras loss name or "
            "function), or compile the model with one."
        )
    return model.make_runner().objective


def capture(
    model: Any,
    x: Any,
    *,
    y: Any = None,
    loss: Any = None,
    layers: Sequence[str] | str | None = None,
    execution: str = "eager",
    training: bool = False,
    sample_weight: Any = None,
    seed: int = 0,
) -> dict[str, Any] | Captured:
    """Every layer's output for the batch `x`, by layer name; with `y`, also gradients.

    The model and its weights are not changed (BatchNorm statistics computed with
    `training=True` are discarded).

    Args:
        model: A built model.
        x: A batch of inputs (as for `predict`).
        y: Targets. With them, the result also holds the gradient of the loss
            with respect to each layer's output.
        loss: The loss for the gradients (a Keras name or function); by default
            the loss the model was compiled with.
        layers: Names to keep (see `layer_names`); default: every layer.
        execution: `"eager"` (op by op), `"layerwise"` (one compiled function per
            layer) or `"jit"` (one compiled program returning the intermediates).
            All three give the same numbers.
        training: Run in training mode (dropout active with keys from `seed`,
            BatchNorm on batch statistics).
        sample_weight: Optional per-row weights for the loss.
        seed: Seed of the dropout keys when `training=True`.

    Returns:
        `{layer_name: output}` without `y`; a `Captured(outputs, grads, loss)`
        with it. A layer called several times maps to a tuple (one entry per
        call); a nested model's layers are named `"outer/inner"`.

    Raises:
        ValueError: for an unknown layer name (the message lists the names), an
            unknown execution, or `y` without a loss.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(3,)),
        ...                        fk.layers.Dense(4, name="hidden"),
        ...                        fk.layers.Dense(1, name="out")])
        >>> outs = capture(model, np.ones((2, 3), np.float32))
        >>> {k: v.shape for k, v in outs.items()}
        {'hidden': (2, 4), 'out': (2, 1)}
        >>> got = capture(model, np.ones((2, 3), np.float32),
        ...               y=np.zeros((2, 1), np.float32), loss="mse", layers=["hidden"])
        >>> got.grads["hidden"].shape
        (2, 4)
    """
    what = "capture"
    if execution not in EXECUTIONS:
        raise ValueError(
            f"{what}: `execution` must be one of {list(EXECUTIONS)}, got {execution!r}."
        )
    if y is None and loss is not None:
        raise ValueError(f"{what}: `loss` was given without targets `y`; pass both.")
    batch = model.make_batch(x, y, sample_weight)
    graph = _graph(model, what)
    walker = _walker(graph)
    plan = walker.plan
    names = _resolve(plan, layers, what)
    objective = _objective(model, loss, what) if y is not None else None
    inputs = prepare_inputs(graph, batch.x, f"{model!r}")
    params, state = model.params, model.state
    plan.bind(params, state)
    key = jax.random.key(seed) if training else None
    n = int(jax.tree.leaves(inputs)[0].shape[0])
    mask = jnp.ones((n,), bool)

    def loss_of(leaves: Sequence[Any]) -> Any:
        y_pred = plan.out_tree.unflatten(list(leaves))
        total, _ = objective.loss(batch.y, y_pred, batch.sample_weight, mask)
        return total

    if execution == "layerwise":
        need = plan.needs(True) if objective is not None else None
        tape = walker.forward(
            params,
            state,
            inputs,
            training=training,
            key=key,
            step=None,
            mask=None,
            need=need,
        )
        outputs = _pick(plan.values_by_name(tape.values, outputs=True), names)
        if objective is None:
            return outputs
        out_leaves = [tape.values[s] for s in plan.output_slots]
        floats = [i for i, s in enumerate(plan.output_slots) if plan.float_outputs[i]]
        total, cts = jax.jit(
            jax.value_and_grad(lambda fl: loss_of(_with(out_leaves, floats, fl)))
        )([out_leaves[i] for i in floats])
        out_cts: list[Any] = [None] * len(out_leaves)
        for i, c in zip(floats, cts, strict=True):
            out_cts[i] = c
        _, slot_cts = walker.backward(tape, out_cts, training=training, need=need)
        grads = _pick(
            plan.values_by_name(slot_cts, outputs=False), names, optional=True
        )
        return Captured(outputs, grads, total)

    slots = [
        s
        for op in plan.layer_ops
        for s, fl in zip(op.out_slots, op.float_out, strict=True)
        if fl
    ]

    def run(params: Any, state: Any, inputs: Any, zeros: Any) -> Any:
        record: dict[int, Any] = {}
        outs, _ = run_plan(
            plan,
            params,
            state,
            inputs,
            training=training,
            key=key,
            mask=None,
            perturb=dict(zip(slots, zeros, strict=True)),
            record=record,
        )
        values = [record.get(i) for i in range(plan.n_slots)]
        return (loss_of(outs) if objective is not None else jnp.zeros(())), values

    zeros = [jnp.zeros((n, *plan.slot_shapes[s]), plan.slot_dtypes[s]) for s in slots]
    if objective is None:

        def fn(p: Any, s: Any, i: Any) -> Any:
            return run(p, s, i, zeros)[1]

        values = (jax.jit(fn) if execution == "jit" else fn)(params, state, inputs)
        return _pick(plan.values_by_name(values, outputs=True), names)
    grad_fn = jax.value_and_grad(lambda z, p, s, i: run(p, s, i, z), has_aux=True)
    if execution == "jit":
        grad_fn = jax.jit(grad_fn)
    (total, values), dz = grad_fn(zeros, params, state, inputs)
    slot_cts: list[Any] = [None] * plan.n_slots
    for s, g in zip(slots, dz, strict=True):
        slot_cts[s] = g
    outputs = _pick(plan.values_by_name(values, outputs=True), names)
    grads = _pick(plan.values_by_name(slot_cts, outputs=False), names, optional=True)
    return Captured(outputs, grads, total)


def _with(
    leaves: Sequence[Any], where: Sequence[int], values: Sequence[Any]
) -> list[Any]:
    out = list(leaves)
    for i, v in zip(where, values, strict=True):
        out[i] = v
    return out


def _pick(
    values: dict[str, Any], names: Sequence[str], optional: bool = False
) -> dict[str, Any]:
    return {n: values[n] for n in names if not optional or n in values}


# ----------------------------------------------------------------------------
# Forward hooks during fit / predict.
# ----------------------------------------------------------------------------


def executor(model: Any) -> Any:
    """The executor running the model's steps (a `LayerwiseExecutor` in layerwise mode).

    Its `activations`, `output_grads`, `grads` and `updates` hold the last
    layerwise train step's values; `forward_hooks`/`backward_hooks` lists take
    functions called between layers.
    """
    if not model.compiled:
        raise ValueError(
            f"executor: {model!r} is not compiled; call `model.compile(...)` first."
        )
    model.require_graph("executor")
    return model.make_runner().executor


def _leaf_layers(
    graph: Graph, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, Any]]:
    for layer in graph.layers:
        sub = getattr(layer, "graph", None)
        if isinstance(sub, Graph):
            yield from _leaf_layers(sub, (*prefix, layer.name))
        else:
            yield "/".join((*prefix, layer.name)), layer


def _staged(tree: Any) -> bool:
    """Whether values are being staged into a compiled program (not concrete)."""
    for leaf in jax.tree.leaves(tree):
        t = leaf
        while isinstance(t, jax.core.Tracer) and hasattr(t, "primal"):
            t = t.primal  # autodiff tracers of an eager step carry a value
        if isinstance(t, jax.core.Tracer):
            return True
    return False


_JIT_REFUSAL = (
    "forward hooks run in execution='eager' and 'layerwise' only: under jit the "
    "step is compiled once and a Python hook would run once, at trace time, and "
    "never again. Compile with `execution='eager'` or `'layerwise'`, use "
    "`fk.inspect.capture(model, x, execution='jit')` for intermediates, or "
    "`jax.debug.print` inside a layer."
)


def _hooked_apply(
    layer: Any, name: str, fn: Callable[[str, Any], Any]
) -> Callable[..., Any]:
    cls_apply = type(layer).apply

    def apply(
        params: Any,
        state: Any,
        x: Any,
        *,
        training: bool = False,
        key: Any = None,
        mask: Any = None,
    ) -> Any:
        y, new_state = cls_apply(
            layer, params, state, x, training=training, key=key, mask=mask
        )
        if _staged(y):
            raise ValueError(f"{name!r}: {_JIT_REFUSAL}")
        replacement = fn(name, y)
        if replacement is not None:
            y = check_replacement(name, y, replacement)
        return y, new_state

    return apply


@contextlib.contextmanager
def forward_hooks(model: Any, fn: Callable[[str, Any], Any]) -> Iterator[None]:
    """Within the block, `fit`/`predict`/`evaluate` call `fn(layer_name, output)`.

    `fn` sees each layer's output (every call of every leaf layer; layers of
    nested models as `"outer/inner"`) and returns None to keep it or a
    replacement of the same structure, shape and dtype.

    - `execution="eager"`: `fn` runs inside the step: during training the
      output is an autodiff tracer (printing it shows its value) and a
      replacement is differentiated like any code in `apply`; in `predict` and
      `evaluate` it is a concrete array.
    - `execution="layerwise"`: `fn` runs between the compiled layers with
      concrete arrays; a replacement passes gradients straight through to the
      layer (the hook itself is not differentiated). `predict` and `evaluate`
      run op by op while hooks are installed.
    - `execution="jit"`: refused (a hook would run once, while tracing).

    Raises:
        ValueError: if the model is not compiled with `"eager"` or `"layerwise"`,
            and, during the block, if `fn` returns a replacement of another
            structure, shape or dtype.

    Example:
        >>> import numpy as np, funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(2,)), fk.layers.Dense(1, name="d")])
        >>> model.compile(optimizer="sgd", loss="mse", execution="eager")
        >>> seen = []
        >>> with forward_hooks(model, lambda name, y: seen.append((name, y.shape))):
        ...     _ = model.predict(np.ones((3, 2), np.float32), verbose=0)
        >>> seen
        [('d', (3, 1))]
    """
    execution = getattr(model, "execution", None)
    if execution not in ("eager", "layerwise"):
        state = (
            "not compiled (predict then runs under jit)"
            if execution is None
            else (f"compiled with execution={execution!r}")
        )
        raise ValueError(f"forward_hooks: {model!r} is {state}; {_JIT_REFUSAL}")
    if not callable(fn):
        raise TypeError(
            f"forward_hooks: `fn` must be callable, got {type(fn).__name__}."
        )
    graph = _graph(model, "forward_hooks")
    installed: list[Any] = []
    try:
        for name, layer in _leaf_layers(graph):
            if "apply" in vars(layer):
                raise ValueError(
                    f"forward_hooks: layer {name!r} already has hooks installed "
                    "(nested `forward_hooks` blocks on one model are not supported); "
                    "combine the functions into one."
                )
            layer.apply = _hooked_apply(layer, name, fn)
            add_forward_hook(layer, fn)
            installed.append(layer)
        yield
    finally:
        for layer in installed:
            vars(layer).pop("apply", None)
            remove_forward_hook(layer, fn)
