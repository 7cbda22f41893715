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

Design: a `Plan` flattens the graph (nested models walked into) into a list of
leaf-layer calls over numbered value slots; `Walker` runs a plan with per-call
compiled functions; `LayerwiseExecutor` builds the train step from them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from funkeras.layers.base import Graph, _is_symbolic, layer_label
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
# The plan: a graph (nested models included) as leaf-layer calls over slots.
# ----------------------------------------------------------------------------


def _is_float(dtype: Any) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.inexact))


class _Op:
    """One call of a leaf layer: its inputs and outputs as value slots."""

    __slots__ = (
        "index",
        "layer",
        "name",
        "param_path",
        "key_path",
        "in_slots",
        "in_tree",
        "out_slots",
        "out_tree",
        "float_in",
        "float_out",
        "has_params",
        "has_state",
        "fns",
        "key_array",
    )

    def __init__(
        self,
        index: int,
        layer: Any,
        name: str,
        param_path: tuple[str, ...],
        key_path: tuple[int, ...],
        in_slots: tuple[int, ...],
        in_tree: Any,
        out_slots: tuple[int, ...],
        out_tree: Any,
        float_in: tuple[bool, ...],
        float_out: tuple[bool, ...],
    ) -> None:
        self.index = index
        self.layer = layer
        self.name = name
        self.param_path = param_path
        self.key_path = key_path
        self.in_slots = in_slots
        self.in_tree = in_tree
        self.out_slots = out_slots
        self.out_tree = out_tree
        self.float_in = float_in
        self.float_out = float_out
        self.has_params = False
        self.has_state = False
        self.fns: dict[Any, Any] = {}
        self.key_array: Any = None  # `key_path` on the device, made on first use


class _Cast:
    """A nested model's input cast to its Input dtype (as `prepare_inputs` does)."""

    __slots__ = ("src", "dst", "dtype", "src_dtype")

    def __init__(self, src: int, dst: int, dtype: Any, src_dtype: Any) -> None:
        self.src = src
        self.dst = dst
        self.dtype = dtype
        self.src_dtype = src_dtype


class _Group:
    """A nested model's call: its name and output slots (for records)."""

    __slots__ = ("name", "out_slots", "out_tree")

    def __init__(self, name: str, out_slots: tuple[int, ...], out_tree: Any) -> None:
        self.name = name
        self.out_slots = out_slots
        self.out_tree = out_tree


def _match_inputs(graph: Graph, args: Any) -> list[Any]:
    """The symbolic tensors fed to each Input of `graph` (as `prepare_inputs`)."""
    layers = graph.input_layers
    if isinstance(args, Mapping):
        if isinstance(graph.inputs, Mapping):
            return [args[k] for k in sorted(graph.inputs.keys())]
        return [args[layer.name] for layer in layers]
    if isinstance(args, list | tuple):
        return list(args)
    return [args]


class Plan:
    """A graph flattened into leaf-layer calls over numbered value slots.

    Nested models (layers with a `.graph`) are walked into: their layers become
    ops whose `param_path` is `(model_name, layer_name)` and whose `key_path` is
    the chain of node indices `graph_apply` folds into the key.

    Attributes:
        ops: `_Op`s and `_Cast`s in execution order.
        groups: Nested-model calls (name and output slots).
        input_slots: The slots of the graph's inputs (in `input_layers` order).
        output_slots: The slots of the graph's output leaves.
        out_tree: The tree structure of the graph's outputs.
        names: Each leaf layer's path name (`"encoder/dense"`) to its op indices.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.ops: list[Any] = []
        self.groups: list[_Group] = []
        self.n_slots = 0
        self.slot_dtypes: list[Any] = []
        self.slot_shapes: list[tuple[int, ...]] = []
        inputs = jax.tree.leaves(graph.inputs, is_leaf=_is_symbolic)
        self.input_slots = tuple(self._new_slot(t) for t in inputs)
        env = {t._id: s for t, s in zip(inputs, self.input_slots, strict=True)}
        self._walk(graph, env, (), ())
        outs = jax.tree.leaves(graph.outputs, is_leaf=_is_symbolic)
        self.output_slots = tuple(env[t._id] for t in outs)
        self.out_tree = jax.tree.structure(graph.outputs, is_leaf=_is_symbolic)
        self.float_outputs = tuple(
            _is_float(self.slot_dtypes[s]) for s in self.output_slots
        )
        self.layer_ops = [op for op in self.ops if isinstance(op, _Op)]
        self.names: dict[str, list[int]] = {}
        for op in self.layer_ops:
            self.names.setdefault(op.name, []).append(op.index)
        self.input_specs = [t.spec for t in inputs]
        self.group_names = [g.name for g in self.groups]
        self._bound = False
        self._needs: dict[bool, list[bool]] = {}

    def _new_slot(self, tensor: Any) -> int:
        self.slot_dtypes.append(jnp.dtype(tensor.spec.dtype))
        self.slot_shapes.append(tuple(tensor.spec.shape))
        self.n_slots += 1
        return self.n_slots - 1

    def _walk(
        self,
        graph: Graph,
        env: dict[int, int],
        prefix: tuple[str, ...],
        key_path: tuple[int, ...],
    ) -> None:
        for i, node in enumerate(graph.nodes):
            layer = node.layer
            in_tensors = node.input_tensors
            sub = getattr(layer, "graph", None)
            if isinstance(sub, Graph):
                inner_env: dict[int, int] = {}
                fed = jax.tree.leaves(
                    _match_inputs(sub, node.inputs), is_leaf=_is_symbolic
                )
                inner_inputs = jax.tree.leaves(sub.inputs, is_leaf=_is_symbolic)
                for outer, inner in zip(fed, inner_inputs, strict=True):
                    src = env[outer._id]
                    want = jnp.dtype(inner.spec.dtype)
                    if self.slot_dtypes[src] == want:
                        inner_env[inner._id] = src
                    else:
                        dst = self._new_slot(inner)
                        self.ops.append(_Cast(src, dst, want, self.slot_dtypes[src]))
                        inner_env[inner._id] = dst
                self._walk(sub, inner_env, (*prefix, layer.name), (*key_path, i))
                inner_outs = jax.tree.leaves(sub.outputs, is_leaf=_is_symbolic)
                slots = tuple(inner_env[t._id] for t in inner_outs)
                for t, s in zip(node.output_tensors, slots, strict=True):
                    env[t._id] = s
                self.groups.append(
                    _Group(
                        "/".join((*prefix, layer.name)),
                        slots,
                        jax.tree.structure(node.outputs, is_leaf=_is_symbolic),
                    )
                )
                continue
            out_tensors = node.output_tensors
            out_slots = tuple(self._new_slot(t) for t in out_tensors)
            for t, s in zip(out_tensors, out_slots, strict=True):
                env[t._id] = s
            self.ops.append(
                _Op(
                    index=len(self.ops),
                    layer=layer,
                    name="/".join((*prefix, layer.name)),
                    param_path=(*prefix, layer.name),
                    key_path=(*key_path, i),
                    in_slots=tuple(env[t._id] for t in in_tensors),
                    in_tree=jax.tree.structure(node.inputs, is_leaf=_is_symbolic),
                    out_slots=out_slots,
                    out_tree=jax.tree.structure(node.outputs, is_leaf=_is_symbolic),
                    float_in=tuple(_is_float(t.spec.dtype) for t in in_tensors),
                    float_out=tuple(_is_float(t.spec.dtype) for t in out_tensors),
                )
            )

    def bind(self, params: Any, state: Any) -> None:
        """Note which ops hold params and state (known once the weights exist)."""
        if self._bound:
            return
        for op in self.layer_ops:
            op.has_params = bool(jax.tree.leaves(_get(params, op.param_path)))
            op.has_state = bool(jax.tree.leaves(_get(state, op.param_path)))
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
            if isinstance(op, _Cast):
                need[op.dst] = need[op.src] and _is_float(op.dtype)
                continue
            flag = all_outputs or op.has_params or any(need[s] for s in op.in_slots)
            for s, fl in zip(op.out_slots, op.float_out, strict=True):
                need[s] = flag and fl
        self._needs[all_outputs] = need
        return need


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        tree = tree[k]
    return tree


def _set(
    tree: dict[str, Any],
    path: tuple[str, ...],
    value: Any,
    copied: set[tuple[str, ...]],
) -> dict[str, Any]:
    """Set `tree[path]`, copying each dict on the way once (tracked in `copied`)."""
    if () not in copied:
        tree = dict(tree)
        copied.add(())
    node = tree
    for depth in range(1, len(path)):
        prefix = path[:depth]
        child = node[path[depth - 1]]
        if prefix not in copied:
            child = dict(child)
            node[path[depth - 1]] = child
            copied.add(prefix)
        node = child
    node[path[-1]] = value
    return tree


def _node_key(key: Any, step: Any, key_path: Any) -> Any:
    """`fold_in(fold_in(fold_in(key, step), path[0]), path[1])...`, or None."""
    if key is None:
        return None
    if step is not None:
        key = jax.random.fold_in(key, step)
    for i in range(len(key_path)):
        key = jax.random.fold_in(key, key_path[i])
    return key


def _call_layer(
    op: _Op, p: Any, s: Any, xs: Sequence[Any], *, training: bool, key: Any, mask: Any
) -> tuple[list[Any], Any]:
    layer = op.layer
    # The class's `apply`, not an instance attribute: forward hooks installed on
    # the instance for eager runs must not be traced into compiled functions.
    y, s_new = type(layer).apply(
        layer,
        p,
        s,
        op.in_tree.unflatten(list(xs)),
        training=training,
        key=key,
        mask=mask,
    )
    ys = jax.tree.leaves(y)
    if len(ys) != len(op.out_slots):
        raise ValueError(
            f"{layer_label(layer)}: returned {len(ys)} output(s), the graph recorded "
            f"{len(op.out_slots)}."
        )
    return ys, s_new


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

    The same numbers as `graph_apply` (with nested models): node keys are
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
    vals: list[Any] = [None] * plan.n_slots
    for s, v in zip(plan.input_slots, inputs, strict=True):
        vals[s] = v
    new_state = state
    copied: set[tuple[str, ...]] = set()
    for op in plan.ops:
        if isinstance(op, _Cast):
            v = vals[op.src]
            vals[op.dst] = v.astype(op.dtype) if v.dtype != op.dtype else v
            continue
        p = _get(params, op.param_path)
        s = _get(new_state, op.param_path)
        xs = [vals[i] for i in op.in_slots]
        ys, s_new = _call_layer(
            op,
            p,
            s,
            xs,
            training=training,
            key=_node_key(key, None, op.key_path),
            mask=mask,
        )
        if s_new is not s:
            new_state = _set(new_state, op.param_path, s_new, copied)
        for slot, y in zip(op.out_slots, ys, strict=True):
            if perturb is not None and slot in perturb:
                y = y + perturb[slot]
            vals[slot] = y
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
    """

    __slots__ = ("values", "entries", "new_state")

    def __init__(self, values: list[Any], entries: list[Any], new_state: Any) -> None:
        self.values = values
        self.entries = entries
        self.new_state = new_state


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
        self, op: _Op, training: bool, diff_x: tuple[bool, ...], with_vjp: bool
    ) -> Any:
        """`(p, s, xs, key, step, path, mask) -> (ys, s_new, residuals)`, compiled.

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
        )
        fn = self._shared.get(shared_key)
        if fn is not None:
            op.fns[("fwd", training, diff_x, with_vjp)] = fn
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
        ) -> Any:
            node_key = _node_key(key, step, path)
            if not with_vjp:
                ys, s_new = _call_layer(
                    op, p, s, xs, training=training, key=node_key, mask=mask
                )
                return tuple(ys), s_new, ()
            xd, xn = _split(xs, diff_x)

            def f(p_: Any, xd_: tuple[Any, ...]) -> Any:
                ys, s_new = _call_layer(
                    op,
                    p_,
                    s,
                    _merge(xd_, xn, diff_x),
                    training=training,
                    key=node_key,
                    mask=mask,
                )
                yd, _ = _split(ys, float_out)
                return yd, (ys, s_new)

            primal_p = p if op.has_params else {}
            _, vjp_fn, (ys, s_new) = jax.vjp(f, primal_p, xd, has_aux=True)
            res_leaves, tree = jax.tree.flatten(vjp_fn)
            args = jax.tree.leaves((p, s, xs, key, step, path, mask))
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
            return tuple(ys), s_new, tuple(residuals)

        fn = self._jit(forward, name)
        self._shared[shared_key] = fn
        self._shared[("store", *shared_key[1:])] = store
        op.fns[("fwd", training, diff_x, with_vjp)] = fn
        return fn

    def _backward_fn(self, op: _Op, training: bool, diff_x: tuple[bool, ...]) -> Any:
        """`(p, s, xs, key, step, path, mask, residuals, cts) -> (grads, x_cts)`."""
        shared_key = (
            "bwd",
            id(op.layer),
            training,
            diff_x,
            op.in_tree,
            op.float_out,
            len(op.key_path),
        )
        fn = self._shared.get(shared_key)
        if fn is not None:
            op.fns[("bwd", training, diff_x)] = fn
            return fn
        self._forward_fn(op, training, diff_x, True)
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
            residuals: tuple[Any, ...],
            cts: tuple[Any, ...],
        ) -> Any:
            args = jax.tree.leaves((p, s, xs, key, step, path, mask))
            tree, spec = store[(_signature(args), _signature(residuals))]
            leaves = [args[i] if is_arg else residuals[i] for is_arg, i in spec]
            vjp_fn = jax.tree.unflatten(tree, leaves)
            grads, x_cts = vjp_fn(tuple(cts))
            return (grads if has_params else None), tuple(x_cts)

        fn = self._jit(backward, f"backward[{op.name}]")
        self._shared[shared_key] = fn
        op.fns[("bwd", training, diff_x)] = fn
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
        vals: list[Any] = [None] * plan.n_slots
        for s, v in zip(plan.input_slots, inputs, strict=True):
            vals[s] = v
        entries: list[Any] = []
        new_state = state
        copied: set[tuple[str, ...]] = set()
        calls = self.calls
        layer_hooks = _FORWARD_HOOKS
        for op in plan.ops:
            if type(op) is _Cast:
                v = vals[op.src]
                vals[op.dst] = v.astype(op.dtype) if v.dtype != op.dtype else v
                if need is not None and need[op.dst]:
                    entries.append((op, None, None))
                continue
            path = op.param_path
            if len(path) == 1:
                p = params[path[0]]
                s = new_state[path[0]]
            else:
                p = _get(params, path)
                s = _get(new_state, path)
            xs = tuple([vals[i] for i in op.in_slots])
            if need is None:
                diff_x: tuple[bool, ...] = ()
                record = False
            else:
                diff_x = tuple([need[i] for i in op.in_slots])
                record = op.has_params or True in diff_x
            fn = op.fns.get(("fwd", training, diff_x, record)) or self._forward_fn(
                op, training, diff_x, record
            )
            key_path = None
            if key is not None:
                key_path = op.key_array
                if key_path is None:
                    key_path = op.key_array = jnp.asarray(op.key_path, jnp.int32)
            ys, s_new, res = fn(p, s, xs, key, step, key_path, mask)
            calls[fn.__name__] += 1
            if op.has_state:
                new_state = _set(new_state, path, s_new, copied)
            if record:
                entries.append((op, (p, s, xs, key, step, key_path, mask), res))
            if hooks or layer_hooks:
                ys = self._run_hooks(op, ys, hooks, layer_hooks.get(id(op.layer), ()))
            for slot, y in zip(op.out_slots, ys, strict=True):
                vals[slot] = y
        return Tape(vals, entries, new_state)

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
            if type(op) is _Cast:
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
            fn = op.fns.get(("bwd", training, diff_x)) or self._backward_fn(
                op, training, diff_x
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
            self._lazy["activations"] = _by_name(
                last["walker"].plan, last["tape"].values, outputs=True
            )
        return self._lazy["activations"]

    @property
    def output_grads(self) -> dict[str, Any]:
        """d loss / d (each layer's output) in the last train step, by layer name."""
        last = self._require_last("output_grads")
        if "output_grads" not in self._lazy:
            self._lazy["output_grads"] = _by_name(
                last["walker"].plan, last["cts"], outputs=False
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


def _per_layer(plan: Plan, tree: Any) -> dict[str, Any]:
    return {"/".join(path): _get(tree, path) for path in plan.layer_paths}


def _by_name(plan: Plan, values: Sequence[Any], *, outputs: bool) -> dict[str, Any]:
    """Slot values per layer path name (tuples for layers called several times)."""
    out: dict[str, Any] = {}
    multi: set[str] = set()

    def put(name: str, slots: Sequence[int], tree: Any) -> None:
        vs = [values[s] for s in slots]
        if not outputs and all(v is None for v in vs):
            return
        value = tree.unflatten(vs)
        if name in out:
            if name not in multi:
                out[name] = (out[name],)
                multi.add(name)
            out[name] = (*out[name], value)
        else:
            out[name] = value

    for op in plan.layer_ops:
        put(op.name, op.out_slots, op.out_tree)
    for group in plan.groups:
        put(group.name, group.out_slots, group.out_tree)
    return out


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
        from funkeras.models.functional import prepare_inputs

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
        self, out_leaves: tuple[Any, ...], y: Any, sw: Any, mask: Any, x: Any
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
            ts.metrics, y, y_pred, sw, mask, loss, parts
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
        calls = executor.calls
        calls["loss_and_output_grads"] += 1
        obj_loss, parts, out_cts = self._head(
            out_leaves,
            batch.y,
            batch.sample_weight,
            batch.mask,
            batch.x if self.config.loss_fn is not None else None,
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
