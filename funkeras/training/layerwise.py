"""The layerwise executor: the dynamic graph, compiled one layer at a time.

`compile(execution="layerwise")` runs the training step by walking the graph
description in Python. Each layer call's forward pass and its backward pass are
compiled on their own with `jax.jit` (once per shape); the loss and its gradient
with respect to the model's outputs are one compiled function, and the
optimizer update with the metric update is another. Between layers every value
is a concrete array, so hooks, callbacks and `breakpoint()` see activations,
output gradients, parameter gradients and updates of every layer.

The numbers are those of the whole-step `"jit"` and op-by-op `"eager"` modes
(same dropout keys, BatchNorm statistics, row mask and regularizer gradients):

- the forward pass of the call node at path `(i, j, ...)` (node `i` of the
  model, node `j` of a nested model inside it, ...) gets the key
  `fold_in(fold_in(fold_in(key, step), i), j)...`, as nested `graph_apply`s
  derive it; the path is an argument, so all calls of a layer share one
  compiled function per input shape;
- the forward function returns the residuals of `jax.vjp` as arrays (inputs
  are never returned: the backward function receives them again), so the
  backward function is an ordinary compiled function of arrays and nothing
  retraces after the first step;
- the backward walk goes through the nodes in reverse topological order and
  sums cotangents where branches meet; the gradients of a layer called several
  times are summed inside the compiled update;
- the regularization gradient is `jax.grad(penalty_fn)` inside the update.

Design: a `Plan` is the graph walker's schedule (`funkeras.graph.Schedule`,
nested models walked into): leaf-layer calls over numbered value slots;
`Walker` drives `funkeras.graph.walk` over a plan with per-call compiled
functions; `LayerwiseExecutor` builds the train step from them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from funkeras.graph import (
    CallStep,
    CastStep,
    Graph,
    Schedule,
    apply_call,
    get_path,
    node_key,
    prepare_inputs,
    set_path,
    walk,
)
from funkeras.training.executors import Executor, register_executor
from funkeras.training.objective import Objective
from funkeras.training.state import Batch, TrainState
from funkeras.training.steps import StepConfig, batch_loss, finish_step

__all__ = [
    "LayerwiseExecutor",
    "Plan",
    "Walker",
    "Tape",
    "run_plan",
    "add_forward_hook",
    "remove_forward_hook",
    "check_replacement",
]

# ----------------------------------------------------------------------------
# Forward hooks on layers (installed by `funkeras.inspect.forward_hooks`).
# ----------------------------------------------------------------------------

_FORWARD_HOOKS: dict[int, list[Callable[[str, Any], Any]]] = {}


def add_forward_hook(layer: Any, fn: Callable[[str, Any], Any]) -> None:
    """Call `fn(layer_name, output)` after each call of `layer` in a layerwise walk."""
    _FORWARD_HOOKS.setdefault(id(layer), []).append(fn)


def remove_forward_hook(layer: Any, fn: Callable[[str, Any], Any]) -> None:
    """Undo `add_forward_hook(layer, fn)` (a no-op if it is not registered)."""
    hooks = _FORWARD_HOOKS.get(id(layer))
    if hooks is None:
        return
    for i, h in enumerate(hooks):
        if h is fn:
            del hooks[i]
            break
    if not hooks:
        del _FORWARD_HOOKS[id(layer)]


def check_replacement(name: str, original: Any, replacement: Any) -> Any:
    """Return `replacement` if it has the structure, shapes and dtypes of `original`.

    Raises:
        ValueError: naming the layer, what was expected and what the hook returned.
    """
    want, want_tree = jax.tree.flatten(original)
    got, got_tree = jax.tree.flatten(replacement)
    if want_tree != got_tree:
        raise ValueError(
            f"forward hook on layer {name!r}: the replacement must have the structure "
            f"of the layer's output ({want_tree}), got {got_tree}. Return None to "
            "keep the output."
        )
    for w, g in zip(want, got, strict=True):
        w_shape, g_shape = tuple(np.shape(w)), tuple(np.shape(g))
        w_dtype = jnp.result_type(w)
        g_dtype = jnp.result_type(g)
        if w_shape != g_shape or w_dtype != g_dtype:
            raise ValueError(
                f"forward hook on layer {name!r}: the replacement must have shape "
                f"{w_shape} and dtype {w_dtype} like the layer's output, got shape "
                f"{g_shape} and dtype {g_dtype}. Return an array of the same shape "
                "and dtype (e.g. `output * 0`), or None to keep the output."
            )
    return replacement


# ----------------------------------------------------------------------------
# The plan: a graph's walker schedule (nested models walked into), with what
# the backward walk needs to know.
# ----------------------------------------------------------------------------


def _is_float(dtype: Any) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.inexact))


class _Op(CallStep):
    """One call of a leaf layer, with what the compiled functions need."""

    __slots__ = ("float_in", "float_out", "has_params", "has_state", "fns", "key_array")

    def __init__(self, **fields: Any) -> None:
        super().__init__(**fields)
        node = self.node
        self.float_in = tuple(_is_float(t.spec.dtype) for t in node.input_tensors)
        self.float_out = tuple(_is_float(t.spec.dtype) for t in node.output_tensors)
        self.has_params = False
        self.has_state = False
        self.fns: dict[Any, Any] = {}
        self.key_array: Any = None  # `key_path` on the device, made on first use


class Plan(Schedule):
    """A graph flattened into leaf-layer calls over numbered value slots.

    The graph walker's schedule with nested models walked into (see
    `funkeras.graph.Schedule`): their layers become ops whose `param_path` is
    `(model_name, layer_name)` and whose `key_path` is the chain of node
    indices a model's `apply` folds into the key.

    Attributes:
        ops: `_Op`s and `CastStep`s in execution order.
        layer_ops: The `_Op`s only.
        names: Each leaf layer's path name (`"encoder/dense"`) to its op indices.
        float_outputs: Per output leaf, whether it is floating-point.
    """

    call_type = _Op

    def __init__(self, graph: Graph) -> None:
        super().__init__(graph, nested=True)
        self.float_outputs = tuple(
            _is_float(self.slot_dtypes[s]) for s in self.output_slots
        )
        self.layer_ops: list[_Op] = self.calls
        self.names: dict[str, list[int]] = {}
        for op in self.layer_ops:
            self.names.setdefault(op.name, []).append(op.index)
        self.group_names = [g.name for g in self.groups]
        self._bound = False
        self._needs: dict[bool, list[bool]] = {}

    def bind(self, params: Any, state: Any) -> None:
        """Note which ops hold params and state (known once the weights exist)."""
        if self._bound:
            return
        for op in self.layer_ops:
            op.has_params = bool(jax.tree.leaves(get_path(params, op.param_path)))
            op.has_state = bool(jax.tree.leaves(get_path(state, op.param_path)))
        self.param_ops = [op for op in self.layer_ops if op.has_params]
        self.layer_paths = sorted({op.param_path for op in self.layer_ops})
        self._bound = True

    def needs(self, all_outputs: bool) -> list[bool]:
        """Per slot: whether the backward walk needs its cotangent.

        A slot needs one when something upstream of it holds params; with
        `all_outputs`, every floating-point layer output needs one (for the
        gradient of the loss with respect to each layer's output).
        """
        cached = self._needs.get(all_outputs)
        if cached is not None:
            return cached
        need = [False] * self.n_slots
        for op in self.ops:
            if isinstance(op, CastStep):
                need[op.dst] = need[op.src] and _is_float(op.dtype)
                continue
            flag = all_outputs or op.has_params or any(need[s] for s in op.in_slots)
            for s, fl in zip(op.out_slots, op.float_out, strict=True):
                need[s] = flag and fl
        self._needs[all_outputs] = need
        return need


def _call_layer(
    op: _Op,
    p: Any,
    s: Any,
    xs: Sequence[Any],
    *,
    training: bool,
    key: Any,
    mask: Any,
    masks: Sequence[Any] | None = None,
) -> tuple[list[Any], Any, Any]:
    # The class's `apply`, not an instance attribute: forward hooks installed on
    # the instance for eager runs must not be traced into compiled functions.
    layer = op.layer
    return apply_call(
        op,
        functools.partial(type(layer).apply, layer),
        p,
        s,
        xs,
        training=training,
        key=key,
        mask=mask,
        masks=masks,
    )


def run_plan(
    plan: Plan,
    params: Any,
    state: Any,
    inputs: Sequence[Any],
    *,
    training: bool = False,
    key: Any = None,
    mask: Any = None,
    perturb: Mapping[int, Any] | None = None,
    record: dict[int, Any] | None = None,
) -> tuple[list[Any], Any]:
    """Run a plan as one pure function (eagerly, or inside `jax.jit`).

    The same numbers as a model's `apply` (with nested models): node keys are
    `fold_in` chains of `key`, state is threaded through repeated calls.

    Args:
        plan: The flattened graph.
        params, state: The model's trees.
        inputs: One array per graph input, already cast (`prepare_inputs`).
        training, key, mask: As for `apply`.
        perturb: Optional `{slot: array}` added to a slot's value when it is
            produced (zeros, to take gradients with respect to layer outputs).
        record: Optional dict filled with `{slot: value}` for every slot.

    Returns:
        `(output_leaves, new_state)`.
    """
    plan.bind(params, state)
    new_state = state
    copied: set[tuple[str, ...]] = set()

    def call(
        op: _Op, xs: tuple[Any, ...], ms: tuple[Any, ...]
    ) -> tuple[list[Any], Any]:
        nonlocal new_state
        s = get_path(new_state, op.param_path)
        ys, s_new, out_ms = _call_layer(
            op,
            get_path(params, op.param_path),
            s,
            xs,
            training=training,
            key=node_key(key, None, op.key_path),
            mask=mask,
            masks=ms,
        )
        if s_new is not s:
            new_state = set_path(new_state, op.param_path, s_new, copied)
        if perturb is not None:
            ys = [
                y + perturb[slot] if slot in perturb else y
                for slot, y in zip(op.out_slots, ys, strict=True)
            ]
        return ys, out_ms

    vals, _ = walk(plan, inputs, call)
    if record is not None:
        for i, v in enumerate(vals):
            record[i] = v
    return [vals[s] for s in plan.output_slots], new_state


# ----------------------------------------------------------------------------
# The walker: a plan run with one compiled forward/backward per layer call.
# ----------------------------------------------------------------------------


def _split(
    values: Sequence[Any], flags: Sequence[bool]
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    on = tuple(v for v, f in zip(values, flags, strict=True) if f)
    off = tuple(v for v, f in zip(values, flags, strict=True) if not f)
    return on, off


def _merge(on: Sequence[Any], off: Sequence[Any], flags: Sequence[bool]) -> list[Any]:
    it_on, it_off = iter(on), iter(off)
    return [next(it_on) if f else next(it_off) for f in flags]


def _signature(leaves: Sequence[Any]) -> tuple[Any, ...]:
    return tuple((tuple(a.shape), str(a.dtype)) for a in leaves)


class Tape:
    """What a forward walk keeps for the backward walk and for inspection.

    Attributes:
        values: Every slot's value (layer outputs as concrete arrays).
        entries: Per op run with residuals: `(op, args, residuals)`.
        new_state: The state after the walk.
        masks: Every slot's sequence mask (None where it has none).
    """

    __slots__ = ("values", "entries", "new_state", "masks")

    def __init__(
        self,
        values: list[Any],
        entries: list[Any],
        new_state: Any,
        masks: list[Any] | None = None,
    ) -> None:
        self.values = values
        self.entries = entries
        self.new_state = new_state
        self.masks = masks if masks is not None else [None] * len(values)


class Walker:
    """Runs a `Plan` with one compiled forward and backward function per layer.

    A layer's functions are compiled once per mode and input shapes, and shared
    by all its calls (the call's key path is an argument). They are counted in
    `traces`/`calls` under names such as `"forward[dense]"`; each compiled
    function's `__name__` is that name, so JAX's compile events can be matched
    to it.

    Args:
        plan: The flattened graph.
        traces: Counter of traces per function name (shared with the executor).
        calls: Counter of calls per function name.
    """

    def __init__(self, plan: Plan, traces: Any, calls: Any) -> None:
        self.plan = plan
        self.traces = traces
        self.calls = calls
        self._shared: dict[Any, Any] = {}
        self._add = self._jit(lambda a, b: a + b, "add_cotangents")

    def _jit(
        self, fn: Callable[..., Any], name: str, donate_argnums: tuple[int, ...] = ()
    ) -> Callable[..., Any]:
        def traced(*args: Any) -> Any:
            self.traces[name] += 1
            return fn(*args)

        traced.__name__ = traced.__qualname__ = name
        return jax.jit(traced, donate_argnums=donate_argnums)

    # -- compiled functions per op --------------------------------------------------

    def _forward_fn(
        self,
        op: _Op,
        training: bool,
        diff_x: tuple[bool, ...],
        with_vjp: bool,
        masked: tuple[bool, ...] = (),
    ) -> Any:
        """`(p, s, xs, key, step, path, mask, ms) -> (ys, s_new, residuals,
        out_ms)`, compiled.

        `ms` are the inputs' sequence masks (None entries where `masked` says
        an input has none); `out_ms` the outputs' masks (concrete arrays
        between layers; masks are not differentiated).

        With `with_vjp`, the residuals of `jax.vjp` with respect to the params
        and the inputs flagged in `diff_x` (inputs themselves are not returned).
        The node's key path is an argument, so every call of a layer (a shared
        layer, a nested model called twice) runs the same compiled function.
        """
        shared_key = (
            "fwd",
            id(op.layer),
            training,
            diff_x,
            with_vjp,
            op.in_tree,
            op.float_out,
            len(op.key_path),
            op.call_signature,
            masked,
        )
        fn = self._shared.get(shared_key)
        if fn is not None:
            op.fns[("fwd", training, diff_x, with_vjp, masked)] = fn
            return fn
        float_out = op.float_out
        store: dict[Any, Any] = {}
        name = f"forward[{op.name}]" if training else f"forward_inference[{op.name}]"

        def forward(
            p: Any,
            s: Any,
            xs: tuple[Any, ...],
            key: Any,
            step: Any,
            path: Any,
            mask: Any,
            ms: Any,
        ) -> Any:
            call_key = node_key(key, step, path)
            if not with_vjp:
                ys, s_new, out_ms = _call_layer(
                    op, p, s, xs, training=training, key=call_key, mask=mask, masks=ms
                )
                return tuple(ys), s_new, (), out_ms
            xd, xn = _split(xs, diff_x)

            def f(p_: Any, xd_: tuple[Any, ...]) -> Any:
                ys, s_new, out_ms = _call_layer(
                    op,
                    p_,
                    s,
                    _merge(xd_, xn, diff_x),
                    training=training,
                    key=call_key,
                    mask=mask,
                    masks=ms,
                )
                yd, _ = _split(ys, float_out)
                return yd, (ys, s_new, out_ms)

            primal_p = p if op.has_params else {}
            _, vjp_fn, (ys, s_new, out_ms) = jax.vjp(f, primal_p, xd, has_aux=True)
            res_leaves, tree = jax.tree.flatten(vjp_fn)
            args = jax.tree.leaves((p, s, xs, key, step, path, mask, ms))
            where = {id(a): i for i, a in enumerate(args)}
            spec: list[tuple[bool, int]] = []
            residuals: list[Any] = []
            for leaf in res_leaves:
                i = where.get(id(leaf))
                if i is not None:  # an input: the backward function gets it again
                    spec.append((True, i))
                else:
                    spec.append((False, len(residuals)))
                    residuals.append(leaf)
            store[(_signature(args), _signature(residuals))] = (tree, tuple(spec))
            return tuple(ys), s_new, tuple(residuals), out_ms

        fn = self._jit(forward, name)
        self._shared[shared_key] = fn
        self._shared[("store", *shared_key[1:])] = store
        op.fns[("fwd", training, diff_x, with_vjp, masked)] = fn
        return fn

    def _backward_fn(
        self,
        op: _Op,
        training: bool,
        diff_x: tuple[bool, ...],
        masked: tuple[bool, ...] = (),
    ) -> Any:
        """`(p, s, xs, key, step, path, mask, ms, residuals, cts) -> (grads,
        x_cts)`."""
        shared_key = (
            "bwd",
            id(op.layer),
            training,
            diff_x,
            op.in_tree,
            op.float_out,
            len(op.key_path),
            op.call_signature,
            masked,
        )
        fn = self._shared.get(shared_key)
        if fn is not None:
            op.fns[("bwd", training, diff_x, masked)] = fn
            return fn
        self._forward_fn(op, training, diff_x, True, masked)
        store = self._shared[
            (
                "store",
                id(op.layer),
                training,
                diff_x,
                True,
                op.in_tree,
                op.float_out,
                len(op.key_path),
                op.call_signature,
                masked,
            )
        ]
        has_params = op.has_params

        def backward(
            p: Any,
            s: Any,
            xs: Any,
            key: Any,
            step: Any,
            path: Any,
            mask: Any,
            ms: Any,
            residuals: tuple[Any, ...],
            cts: tuple[Any, ...],
        ) -> Any:
            args = jax.tree.leaves((p, s, xs, key, step, path, mask, ms))
            tree, spec = store[(_signature(args), _signature(residuals))]
            leaves = [args[i] if is_arg else residuals[i] for is_arg, i in spec]
            vjp_fn = jax.tree.unflatten(tree, leaves)
            grads, x_cts = vjp_fn(tuple(cts))
            return (grads if has_params else None), tuple(x_cts)

        fn = self._jit(backward, f"backward[{op.name}]")
        self._shared[shared_key] = fn
        op.fns[("bwd", training, diff_x, masked)] = fn
        return fn

    # -- walks ---------------------------------------------------------------------

    def forward(
        self,
        params: Any,
        state: Any,
        inputs: Sequence[Any],
        *,
        training: bool,
        key: Any,
        step: Any,
        mask: Any,
        need: Sequence[bool] | None,
        hooks: Sequence[Callable[[str, Any], Any]] = (),
    ) -> Tape:
        """Run every layer call; keep residuals where `need` asks for cotangents.

        `hooks` (and hooks installed on layers) see each call's output as
        concrete arrays and may return a replacement of the same shape and dtype;
        a replacement passes gradients straight through to the layer.
        """
        plan = self.plan
        plan.bind(params, state)
        entries: list[Any] = []
        new_state = state
        copied: set[tuple[str, ...]] = set()
        calls = self.calls
        layer_hooks = _FORWARD_HOOKS

        def call(
            op: _Op, xs: tuple[Any, ...], ms: tuple[Any, ...]
        ) -> tuple[tuple[Any, ...], Any]:
            nonlocal new_state
            path = op.param_path
            if len(path) == 1:
                p = params[path[0]]
                s = new_state[path[0]]
            else:
                p = get_path(params, path)
                s = get_path(new_state, path)
            if need is None:
                diff_x: tuple[bool, ...] = ()
                record = False
            else:
                diff_x = tuple([need[i] for i in op.in_slots])
                record = op.has_params or True in diff_x
            masked = tuple([m is not None for m in ms]) if any(
                m is not None for m in ms
            ) else ()
            fn = op.fns.get(
                ("fwd", training, diff_x, record, masked)
            ) or self._forward_fn(op, training, diff_x, record, masked)
            key_path = None
            if key is not None:
                key_path = op.key_array
                if key_path is None:
                    key_path = op.key_array = jnp.asarray(op.key_path, jnp.int32)
            ys, s_new, res, out_ms = fn(p, s, xs, key, step, key_path, mask, ms)
            calls[fn.__name__] += 1
            if op.has_state:
                new_state = set_path(new_state, path, s_new, copied)
            if record:
                entries.append(
                    (op, (p, s, xs, key, step, key_path, mask, ms), res)
                )
            if hooks or layer_hooks:
                ys = self._run_hooks(op, ys, hooks, layer_hooks.get(id(op.layer), ()))
            return ys, out_ms

        def on_cast(op: CastStep) -> None:
            if need is not None and need[op.dst]:
                entries.append((op, None, None))

        vals, masks = walk(plan, inputs, call, on_cast=on_cast)
        return Tape(vals, entries, new_state, masks)

    @staticmethod
    def _run_hooks(
        op: _Op, ys: tuple[Any, ...], hooks: Sequence[Any], layer_hooks: Sequence[Any]
    ) -> tuple[Any, ...]:
        for hook in (*hooks, *layer_hooks):
            out = op.out_tree.unflatten(list(ys))
            new = hook(op.name, out)
            if new is not None:
                check_replacement(op.name, out, new)
                ys = tuple(jax.tree.leaves(new))
        return ys

    def backward(
        self,
        tape: Tape,
        output_cts: Sequence[Any],
        *,
        training: bool,
        need: Sequence[bool],
        hooks: Sequence[Callable[..., Any]] = (),
    ) -> tuple[list[Any], list[Any]]:
        """Walk the recorded calls in reverse, summing cotangents where branches meet.

        Returns:
            `(grads, cts)`: per op index, the gradient of its params (None for ops
            without params); per slot, the cotangent (None where not needed).
        """
        plan = self.plan
        vals = tape.values
        cts: list[Any] = [None] * plan.n_slots
        calls = self.calls
        jitted_add = self._add

        def add(a: Any, b: Any) -> Any:
            calls["add_cotangents"] += 1
            return jitted_add(a, b)

        for slot, ct in zip(plan.output_slots, output_cts, strict=True):
            if ct is not None and need[slot]:
                cts[slot] = ct if cts[slot] is None else add(cts[slot], ct)
        grads: list[Any] = [None] * len(plan.ops)
        for op, args, res in reversed(tape.entries):
            if type(op) is CastStep:
                ct = cts[op.dst]
                if ct is not None and _is_float(op.src_dtype) and need[op.src]:
                    ct = ct.astype(op.src_dtype)
                    cts[op.src] = ct if cts[op.src] is None else add(cts[op.src], ct)
                continue
            out_cts = []
            for slot, fl in zip(op.out_slots, op.float_out, strict=True):
                if not fl:
                    continue
                ct = cts[slot]
                if ct is None:
                    ct = jnp.zeros(vals[slot].shape, vals[slot].dtype)
                out_cts.append(ct)
            diff_x = tuple([need[i] for i in op.in_slots])
            ms = args[7]
            masked = tuple([m is not None for m in ms]) if any(
                m is not None for m in ms
            ) else ()
            fn = op.fns.get(("bwd", training, diff_x, masked)) or self._backward_fn(
                op, training, diff_x, masked
            )
            g, x_cts = fn(*args, res, tuple(out_cts))
            calls[fn.__name__] += 1
            grads[op.index] = g
            if hooks:
                out = op.out_tree.unflatten([cts[s] for s in op.out_slots])
                for hook in hooks:
                    hook(op.name, out, g)
            it = iter(x_cts)
            for slot, d in zip(op.in_slots, diff_x, strict=True):
                if d:
                    ct = next(it)
                    cts[slot] = ct if cts[slot] is None else add(cts[slot], ct)
        return grads, cts


def _assemble_grads(plan: Plan, params: Any, op_grads: Sequence[Any]) -> Any:
    """The params-shaped gradient tree: each layer's calls summed (traced once)."""
    by_path: dict[tuple[str, ...], Any] = {}
    for op, g in zip(plan.param_ops, op_grads, strict=True):
        prev = by_path.get(op.param_path)
        by_path[op.param_path] = g if prev is None else jax.tree.map(jnp.add, prev, g)

    def build(tree: Any, prefix: tuple[str, ...]) -> Any:
        if prefix in by_path:
            return by_path[prefix]
        return {k: build(v, (*prefix, k)) for k, v in tree.items()}

    return build(params, ())


# ----------------------------------------------------------------------------
# The executor.
# ----------------------------------------------------------------------------


@register_executor
class LayerwiseExecutor(Executor):
    """The dynamic graph, compiled per layer: Python walks the graph between layers.

    The train step has the signature and the numbers of the `"jit"` step, but
    runs as: one compiled forward per layer call, one compiled loss-and-gradient
    function, one compiled backward per layer call (reverse topological order),
    one compiled optimizer-and-metrics update. Evaluation and prediction steps
    are compiled whole (as under `"jit"`), except while forward hooks are
    installed, when they run op by op so the hooks see concrete arrays.

    After each train step the executor holds, keyed by layer path name
    (`"dense"`, `"encoder/dense"`; a layer called several times maps to a tuple
    with one entry per call):

    - `activations`: each layer's output;
    - `output_grads`: the gradient of the loss with respect to each output;
    - `grads`: each layer's parameter gradient (regularization included), as
      the optimizer received it;
    - `updates`: each layer's parameter change (new minus old params).

    `forward_hooks` (`fn(name, output) -> None or replacement`) and
    `backward_hooks` (`fn(name, output_grad, param_grads) -> None`) run between
    layers with concrete arrays, so `breakpoint()` in them works.

    Attributes:
        traces: Per compiled function, how many times it was traced (compiled).
        calls: Per function, how many times it ran.
    """

    name = "layerwise"
    fuses_steps = False

    def __init__(self) -> None:
        super().__init__()
        self.forward_hooks: list[Callable[[str, Any], Any]] = []
        self.backward_hooks: list[Callable[[str, Any, Any], None]] = []
        self._walkers: dict[int, Walker] = {}
        self._last: dict[str, Any] | None = None
        self._lazy: dict[str, Any] = {}

    # -- wrapping loop programs --------------------------------------------------

    def wrap(
        self,
        fn: Callable[..., Any],
        name: str,
        *,
        donate_argnums: tuple[int, ...] = (),
        train: bool = False,
    ) -> Callable[..., Any]:
        """Train programs (`train=True`) run as Python; the others are compiled whole.

        While forward hooks are installed, the compiled programs are bypassed and
        `fn` runs op by op (values are concrete outside autodiff).
        """
        if train:
            return self._timed(fn, name)
        jitted = jax.jit(self._counted(fn, name), donate_argnums=donate_argnums)

        def run(*args: Any) -> Any:
            # While forward hooks are installed, run op by op (values concrete).
            return fn(*args) if _FORWARD_HOOKS else jitted(*args)

        return self._timed(run, name)

    def walker(self, graph: Graph) -> Walker:
        """The walker (and its compiled functions) for `graph`, built once."""
        w = self._walkers.get(id(graph))
        if w is None or w.plan.graph is not graph:
            w = Walker(Plan(graph), self.traces, self.calls)
            self._walkers[id(graph)] = w
        return w

    # -- the train step -------------------------------------------------------------

    def make_train_step(
        self,
        default: Callable[..., Any],
        *,
        graph: Any,
        objective: Objective,
        optimizer: optax.GradientTransformation,
        config: StepConfig = StepConfig(),
    ) -> Callable[..., Any]:
        """Build the layerwise train step `(TrainState, Batch) -> (TrainState, logs)`.

        It walks `graph` (the model's graph description) and ends as every train
        step does (`finish_step`); `default`, the whole-model step, is not used.
        """
        del default
        if not isinstance(graph, Graph):
            raise ValueError(
                "compile(execution='layerwise'): the layerwise executor walks the "
                "model's graph description, and this runner has none (a hand-written "
                "`apply`). Use execution='jit' or 'eager' for it."
            )
        return _LayerwiseStep(
            self,
            self.walker(graph),
            objective=objective,
            optimizer=optimizer,
            config=config,
        )

    # -- records of the last step -----------------------------------------------------

    def _record(self, record: dict[str, Any]) -> None:
        self._last = record
        self._lazy = {}

    def _require_last(self, what: str) -> dict[str, Any]:
        if self._last is None:
            raise ValueError(
                f"LayerwiseExecutor.{what}: no train step has run yet; values are "
                "kept from the last layerwise train step."
            )
        return self._last

    @property
    def activations(self) -> dict[str, Any]:
        """Each layer's output in the last train step, by layer path name."""
        last = self._require_last("activations")
        if "activations" not in self._lazy:
            self._lazy["activations"] = last["walker"].plan.values_by_name(
                last["tape"].values, outputs=True
            )
        return self._lazy["activations"]

    @property
    def output_grads(self) -> dict[str, Any]:
        """d loss / d (each layer's output) in the last train step, by layer name."""
        last = self._require_last("output_grads")
        if "output_grads" not in self._lazy:
            self._lazy["output_grads"] = last["walker"].plan.values_by_name(
                last["cts"], outputs=False
            )
        return self._lazy["output_grads"]

    @property
    def grads(self) -> dict[str, Any]:
        """Each layer's parameter gradient in the last step (with regularization)."""
        last = self._require_last("grads")
        if "grads" not in self._lazy:
            self._lazy["grads"] = _per_layer(
                last["walker"].plan,
                last["step"].total_grads(last["params"], last["op_grads"]),
            )
        return self._lazy["grads"]

    @property
    def updates(self) -> dict[str, Any]:
        """Each layer's parameter change in the last step: new params minus old.

        That is the optimizer's update as applied (to float rounding); zeros for
        a step the finite gate refused.
        """
        last = self._require_last("updates")
        if "updates" not in self._lazy:
            changes = last["step"].changes(last["new_params"], last["params"])
            self._lazy["updates"] = _per_layer(last["walker"].plan, changes)
        return self._lazy["updates"]


def _output_masks(plan: Plan, masks: Sequence[Any]) -> Any:
    """The outputs' sequence masks, structured like the outputs (or None)."""
    found = [masks[s] for s in plan.output_slots]
    if all(m is None for m in found):
        return None
    return plan.out_tree.unflatten(found)


def _per_layer(plan: Plan, tree: Any) -> dict[str, Any]:
    return {"/".join(path): get_path(tree, path) for path in plan.layer_paths}


class _LayerwiseStep:
    """The layerwise train step (see `LayerwiseExecutor`)."""

    def __init__(
        self,
        executor: LayerwiseExecutor,
        walker: Walker,
        *,
        objective: Objective,
        optimizer: optax.GradientTransformation,
        config: StepConfig,
    ) -> None:
        self.executor = executor
        self.walker = walker
        self.plan = walker.plan
        self.objective = objective
        self.optimizer = optimizer
        self.config = config
        self._prepare = prepare_inputs
        self._head = walker._jit(self._head_fn, "loss_and_output_grads")
        # The optimizer and metric states are donated (updated in place), as the
        # jit step donates the train state; the params stay for `grads`/`updates`.
        self._update = walker._jit(
            self._update_fn, "apply_updates", donate_argnums=(1, 2)
        )
        self._total = walker._jit(self._total_fn, "total_grads")
        self._changes = walker._jit(
            lambda new, old: jax.tree.map(jnp.subtract, new, old), "param_changes"
        )

    # -- compiled pieces ---------------------------------------------------------------

    def _head_fn(
        self,
        out_leaves: tuple[Any, ...],
        y: Any,
        sw: Any,
        mask: Any,
        x: Any,
        out_masks: Any,
    ) -> Any:
        plan = self.plan
        fd, fn_ = _split(out_leaves, plan.float_outputs)
        batch = Batch(x, y, sw, mask)

        def loss_of(fd_: tuple[Any, ...]) -> Any:
            y_pred = plan.out_tree.unflatten(_merge(fd_, fn_, plan.float_outputs))
            return batch_loss(
                batch,
                y_pred,
                objective_loss=self.objective.loss,
                loss_fn=self.config.loss_fn,
                output_masks=out_masks,
            )

        (loss, parts), cts = jax.value_and_grad(loss_of, has_aux=True)(fd)
        return loss, parts, cts

    def _total_fn(self, params: Any, op_grads: Any) -> Any:
        grads = _assemble_grads(self.plan, params, op_grads)
        penalty_fn = self.config.penalty_fn
        if penalty_fn is not None:
            grads = jax.tree.map(jnp.add, grads, jax.grad(penalty_fn)(params))
        return grads

    def _update_fn(
        self,
        ts: TrainState,
        opt_state: Any,
        metrics: Any,
        new_state: Any,
        op_grads: Any,
        out_leaves: tuple[Any, ...],
        y: Any,
        sw: Any,
        mask: Any,
        obj_loss: Any,
        parts: Any,
        out_masks: Any,
    ) -> Any:
        """The optimizer and metric updates and the shared end, in one program."""
        ts = ts._replace(opt_state=opt_state, metrics=metrics)
        grads = _assemble_grads(self.plan, ts.params, op_grads)
        loss = obj_loss
        penalty_fn = self.config.penalty_fn
        if penalty_fn is not None:
            penalty, pen_grads = jax.value_and_grad(penalty_fn)(ts.params)
            loss = loss + penalty
            grads = jax.tree.map(jnp.add, grads, pen_grads)
        updates, opt_state = self.optimizer.update(grads, ts.opt_state, ts.params)
        params = optax.apply_updates(ts.params, updates)
        y_pred = self.plan.out_tree.unflatten(list(out_leaves))
        metrics = self.objective.update_metrics(
            ts.metrics, y, y_pred, sw, mask, loss, parts, out_masks
        )
        return finish_step(
            ts,
            Batch(None, y, sw, mask),
            self.objective,
            self.config,
            loss=loss,
            grads=grads,
            updates=updates,
            params=params,
            state=new_state,
            opt_state=opt_state,
            metrics=metrics,
        )

    def _inputs(self, x: Any) -> list[Any]:
        """The graph's inputs, cast as `prepare_inputs` does (fast path: one array)."""
        specs = self.plan.input_specs
        if len(specs) == 1 and isinstance(x, jax.Array):
            spec = specs[0]
            if x.dtype == spec.dtype and x.shape[1:] == spec.shape:
                return [x]
        return self._prepare(self.plan.graph, x, "fit (execution='layerwise')")

    # -- on-demand values --------------------------------------------------------------

    def total_grads(self, params: Any, op_grads: Any) -> Any:
        return self._total(params, op_grads)

    def changes(self, new_params: Any, params: Any) -> Any:
        return self._changes(new_params, params)

    # -- the step ----------------------------------------------------------------------

    def __call__(
        self, ts: TrainState, batch: Batch
    ) -> tuple[TrainState, dict[str, Any]]:
        walker, plan, executor = self.walker, self.plan, self.executor
        inputs = self._inputs(batch.x)
        plan.bind(ts.params, ts.state)
        need = plan.needs(False)
        tape = walker.forward(
            ts.params,
            ts.state,
            inputs,
            training=True,
            key=ts.key,
            step=ts.step,
            mask=batch.mask,
            need=need,
            hooks=executor.forward_hooks,
        )
        vals = tape.values
        out_leaves = tuple([vals[s] for s in plan.output_slots])
        out_masks = _output_masks(plan, tape.masks)
        calls = executor.calls
        calls["loss_and_output_grads"] += 1
        obj_loss, parts, out_cts = self._head(
            out_leaves,
            batch.y,
            batch.sample_weight,
            batch.mask,
            batch.x if self.config.loss_fn is not None else None,
            out_masks,
        )
        full_cts = _merge(
            out_cts, [None] * (len(out_leaves) - len(out_cts)), plan.float_outputs
        )
        grads, cts = walker.backward(
            tape, full_cts, training=True, need=need, hooks=executor.backward_hooks
        )
        tape.entries = []  # residuals are spent; activations stay for inspection
        op_grads = tuple([grads[op.index] for op in plan.param_ops])
        calls["apply_updates"] += 1
        new_ts, logs = self._update(
            ts._replace(opt_state=None, metrics=None),
            ts.opt_state,
            ts.metrics,
            tape.new_state,
            op_grads,
            out_leaves,
            batch.y,
            batch.sample_weight,
            batch.mask,
            obj_loss,
            parts,
            out_masks,
        )
        executor._record(
            {
                "walker": walker,
                "step": self,
                "tape": tape,
                "cts": cts,
                "op_grads": op_grads,
                "params": ts.params,
                "new_params": new_ts.params,
            }
        )
        return new_ts, logs
