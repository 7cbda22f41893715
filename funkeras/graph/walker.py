"""The one graph walker: a graph as a schedule of layer calls over value slots.

A `Schedule` lists a graph's layer calls in topological order over numbered
value slots (each symbolic tensor gets a slot; its `id` keys the slot while the
schedule is built). `walk` runs a schedule: it feeds each call the values of
its input slots and stores what the call returns in its output slots; how a
call runs (which params and state, which key, compiled or traced) is the
caller's `call(step, xs, ms) -> (ys, out_ms)`. Beside each slot's value the
walker keeps its sequence mask (Keras' `(batch, time)` boolean, or None): a
call receives its inputs' masks `ms` and returns its outputs' masks, which
`apply_call` computes with the layer's `compute_mask` in the same trace.
Whether a slot has a mask is known at trace time; the mask itself is a value.
Two drivers use it:

- a model's `apply` walks the graph's own nodes (a nested model is one call)
  under one trace, with `node_key(key, None, (i,))` for node `i`;
- the layerwise executor walks the schedule with nested models walked into
  (`nested=True`), compiling each layer on its own.

Node keys are `fold_in` chains of the node indices at each level of nesting,
so both drivers draw the same random numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from funkeras.graph.description import Graph
from funkeras.graph.inputs import match_inputs
from funkeras.graph.tensor import Node, is_symbolic
from funkeras.layers.base import layer_label

__all__ = [
    "CallStep",
    "CastStep",
    "GroupStep",
    "Schedule",
    "walk",
    "apply_call",
    "node_key",
    "get_path",
    "set_path",
]


class CallStep:
    """One call of a layer: its node, the layer's path, key path and value slots.

    Attributes:
        index: The step's position in `Schedule.ops`.
        node: The graph node it runs.
        layer: The layer called.
        name: The layer's path name (`"encoder/dense"`).
        param_path: Where its params and state live (`("encoder", "dense")`).
        key_path: The node indices whose `fold_in` chain derives its key.
        in_slots, in_tree: Its input slots and the structure they form.
        out_slots, out_tree: Its output slots and the structure they form.
        options: The call's static keyword options for `apply`.
        training: The call's forced mode (`layer(x, training=True)`, or that of
            the nested model call it belongs to), or None.
        call_signature: A hashable of `options` and `training` (two calls of
            one layer share a compiled function only when theirs agree).
        mask_leaves: For `layer(x, mask=m)`: the input leaves that the
            explicit masks belong to; their slots end `in_slots`.
    """

    __slots__ = (
        "index",
        "node",
        "layer",
        "name",
        "param_path",
        "key_path",
        "in_slots",
        "in_tree",
        "out_slots",
        "out_tree",
        "options",
        "training",
        "call_signature",
        "mask_leaves",
    )

    def __init__(
        self,
        *,
        index: int,
        node: Node,
        name: str,
        param_path: tuple[str, ...],
        key_path: tuple[int, ...],
        in_slots: tuple[int, ...],
        out_slots: tuple[int, ...],
        training: bool | None = None,
    ) -> None:
        self.index = index
        self.node = node
        self.layer = node.layer
        self.name = name
        self.param_path = param_path
        self.key_path = key_path
        self.in_slots = in_slots
        self.in_tree = jax.tree.structure(node.inputs, is_leaf=is_symbolic)
        self.out_slots = out_slots
        self.out_tree = jax.tree.structure(node.outputs, is_leaf=is_symbolic)
        self.options = dict(node.options)
        # The node's own override, else the one of the nested model it is in.
        self.training = node.training if node.training is not None else training
        self.call_signature = (
            self.training,
            json.dumps(node.options, sort_keys=True),
        )
        self.mask_leaves = tuple(i for i, _ in node.mask_tensors)


class CastStep:
    """A nested model's input cast to its Input dtype (as `prepare_inputs` does)."""

    __slots__ = ("src", "dst", "dtype", "src_dtype")

    def __init__(self, src: int, dst: int, dtype: Any, src_dtype: Any) -> None:
        self.src = src
        self.dst = dst
        self.dtype = dtype
        self.src_dtype = src_dtype


class GroupStep:
    """A nested model's call in a `nested` schedule: its name and output slots."""

    __slots__ = ("name", "out_slots", "out_tree")

    def __init__(self, name: str, out_slots: tuple[int, ...], out_tree: Any) -> None:
        self.name = name
        self.out_slots = out_slots
        self.out_tree = out_tree


class Schedule:
    """A graph's layer calls in topological order over numbered value slots.

    With `nested=True`, nested models (layers with a `.graph`) are walked into:
    their layers become calls whose `param_path` is `(model_name, layer_name)`
    and whose `key_path` is the chain of node indices; an input whose dtype
    differs from the nested Input's gets a `CastStep`. Otherwise a nested model
    is one call.

    Attributes:
        graph: The graph.
        ops: `CallStep`s (of `call_type`) and `CastStep`s in execution order.
        groups: Nested-model calls (name and output slots).
        n_slots: The number of value slots.
        slot_dtypes, slot_shapes: Per slot, the dtype and the example shape.
        input_slots: The slots of the graph's inputs (in `input_layers` order).
        input_specs: The specs of the graph's inputs (same order).
        output_slots: The slots of the graph's output leaves.
        out_tree: The tree structure of the graph's outputs.
        calls: The `CallStep`s only.
    """

    call_type: type[CallStep] = CallStep

    def __init__(self, graph: Graph, *, nested: bool = False) -> None:
        self.graph = graph
        self.ops: list[Any] = []
        self.groups: list[GroupStep] = []
        self.n_slots = 0
        self.slot_dtypes: list[Any] = []
        self.slot_shapes: list[tuple[int, ...]] = []
        inputs = jax.tree.leaves(graph.inputs, is_leaf=is_symbolic)
        self.input_slots = tuple(self._new_slot(t) for t in inputs)
        self.input_specs = [t.spec for t in inputs]
        env = {t.id: s for t, s in zip(inputs, self.input_slots, strict=True)}
        self._add(graph, env, (), (), nested)
        outs = jax.tree.leaves(graph.outputs, is_leaf=is_symbolic)
        self.output_slots = tuple(env[t.id] for t in outs)
        self.out_tree = jax.tree.structure(graph.outputs, is_leaf=is_symbolic)
        self.calls = [op for op in self.ops if isinstance(op, CallStep)]

    def _new_slot(self, tensor: Any) -> int:
        self.slot_dtypes.append(jnp.dtype(tensor.spec.dtype))
        self.slot_shapes.append(tuple(tensor.spec.shape))
        self.n_slots += 1
        return self.n_slots - 1

    def _add(
        self,
        graph: Graph,
        env: dict[int, int],
        prefix: tuple[str, ...],
        key_path: tuple[int, ...],
        nested: bool,
        training: bool | None = None,
    ) -> None:
        for i, node in enumerate(graph.nodes):
            layer = node.layer
            sub = getattr(layer, "graph", None)
            mode = node.training if node.training is not None else training
            if nested and isinstance(sub, Graph):
                self._add_nested(node, sub, env, prefix, (*key_path, i), mode)
                continue
            out_tensors = node.output_tensors
            out_slots = tuple(self._new_slot(t) for t in out_tensors)
            in_slots = tuple(env[t.id] for t in node.input_tensors) + tuple(
                env[t.id] for _, t in node.mask_tensors
            )
            for t, s in zip(out_tensors, out_slots, strict=True):
                env[t.id] = s
            self.ops.append(
                self.call_type(
                    index=len(self.ops),
                    node=node,
                    name="/".join((*prefix, layer.name)),
                    param_path=(*prefix, layer.name),
                    key_path=(*key_path, i),
                    in_slots=in_slots,
                    out_slots=out_slots,
                    training=mode,
                )
            )

    def _add_nested(
        self,
        node: Node,
        sub: Graph,
        env: dict[int, int],
        prefix: tuple[str, ...],
        key_path: tuple[int, ...],
        training: bool | None = None,
    ) -> None:
        layer = node.layer
        inner_env: dict[int, int] = {}
        fed = jax.tree.leaves(
            match_inputs(sub, node.inputs, layer_label(layer)), is_leaf=is_symbolic
        )
        inner_inputs = jax.tree.leaves(sub.inputs, is_leaf=is_symbolic)
        for outer, inner in zip(fed, inner_inputs, strict=True):
            src = env[outer.id]
            want = jnp.dtype(inner.spec.dtype)
            if self.slot_dtypes[src] == want:
                inner_env[inner.id] = src
            else:
                dst = self._new_slot(inner)
                self.ops.append(CastStep(src, dst, want, self.slot_dtypes[src]))
                inner_env[inner.id] = dst
        self._add(sub, inner_env, (*prefix, layer.name), key_path, True, training)
        inner_outs = jax.tree.leaves(sub.outputs, is_leaf=is_symbolic)
        slots = tuple(inner_env[t.id] for t in inner_outs)
        for t, s in zip(node.output_tensors, slots, strict=True):
            env[t.id] = s
        self.groups.append(
            GroupStep(
                "/".join((*prefix, layer.name)),
                slots,
                jax.tree.structure(node.outputs, is_leaf=is_symbolic),
            )
        )

    def values_by_name(
        self, values: Sequence[Any], *, outputs: bool = True
    ) -> dict[str, Any]:
        """Slot values per layer path name (tuples for layers called several times).

        With `outputs=False` (cotangents), a call whose slots are all None is left
        out.
        """
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

        for op in self.calls:
            put(op.name, op.out_slots, op.out_tree)
        for group in self.groups:
            put(group.name, group.out_slots, group.out_tree)
        return out


def walk(
    schedule: Schedule,
    inputs: Sequence[Any],
    call: Callable[[Any, tuple[Any, ...], tuple[Any, ...]], Any],
    *,
    on_cast: Callable[[CastStep], None] | None = None,
    input_masks: Sequence[Any] | None = None,
) -> tuple[list[Any], list[Any]]:
    """Run `schedule`'s steps in order; return every slot's value and mask.

    Args:
        schedule: The schedule.
        inputs: One value per graph input, already matched and cast.
        call: `call(step, xs, ms) -> (ys, out_ms)`: runs one `CallStep` on its
            input values and their sequence masks (tuples in `step.in_slots`
            order, None for a slot without a mask) and returns its output
            leaves and their masks (a sequence of the same length, or None
            when no output has a mask).
        on_cast: Called after each `CastStep` has run.
        input_masks: The sequence masks of the graph inputs (a nested model
            called on masked tensors), one per input or None.

    Returns:
        `(values, masks)`: per slot, its value and its sequence mask (None
        where it has none).
    """
    vals: list[Any] = [None] * schedule.n_slots
    masks: list[Any] = [None] * schedule.n_slots
    for s, v in zip(schedule.input_slots, inputs, strict=True):
        vals[s] = v
    if input_masks is not None:
        for s, m in zip(schedule.input_slots, input_masks, strict=True):
            masks[s] = m
    for op in schedule.ops:
        if type(op) is CastStep:
            v = vals[op.src]
            vals[op.dst] = v.astype(op.dtype) if v.dtype != op.dtype else v
            masks[op.dst] = masks[op.src]
            if on_cast is not None:
                on_cast(op)
            continue
        ys, out_ms = call(
            op,
            tuple([vals[i] for i in op.in_slots]),
            tuple([masks[i] for i in op.in_slots]),
        )
        for slot, y in zip(op.out_slots, ys, strict=True):
            vals[slot] = y
        if out_ms is not None:
            for slot, m in zip(op.out_slots, out_ms, strict=True):
                masks[slot] = m
    return vals, masks


def apply_call(
    step: CallStep,
    apply: Callable[..., Any],
    params: Any,
    state: Any,
    xs: Sequence[Any],
    *,
    training: bool,
    key: Any,
    mask: Any,
    masks: Sequence[Any] | None = None,
    returns_masks: bool = False,
) -> tuple[list[Any], Any, tuple[Any, ...] | None]:
    """Run `apply(params, state, inputs, ...)` for one call; return
    `(ys, state, out_masks)`.

    `xs` are the input leaves (rebuilt into the node's input structure); `ys`
    the output leaves, checked against the number the graph recorded. The
    call's recorded options go to `apply` as keyword arguments, and its
    `training` override (`layer(x, training=True)`) replaces `training`. A call
    forced into training mode without a key (`predict` passes none) gets a
    fixed key derived from its node path: a Dropout stays active, with the same
    mask for every batch of the same shape.

    Sequence masks: `masks` holds the input leaves' masks (None entries for
    leaves without one). A layer with `consumes_sequence_mask` gets them as
    `sequence_mask=` (a pytree shaped like its input, or None when no input
    has one); an explicit `layer(x, mask=m)` replaces them for that call. The
    outputs' masks are the layer's `compute_mask(inputs, mask)`, traced with
    `apply`; `out_masks` has one entry per output leaf, or is None when no
    output has a mask. With `returns_masks`, `apply` itself takes
    `sequence_mask=` and returns `(y, state, out_masks)` (a nested model, whose
    own walk computes its outputs' masks).
    """
    layer = step.layer
    if step.training is not None:
        if step.training and key is None and layer.uses_key:
            key = node_key(jax.random.key(0), None, step.key_path)
        training = step.training
    xs = list(xs)
    if step.mask_leaves:
        # `layer(x, mask=m)`: the explicit masks (the last input slots) replace
        # whatever masks the inputs carry.
        n = len(xs) - len(step.mask_leaves)
        in_masks: list[Any] = [None] * n
        for i, m in zip(step.mask_leaves, xs[n:], strict=True):
            in_masks[i] = _as_mask(layer, m)
        xs = xs[:n]
    else:
        in_masks = list(masks) if masks is not None else [None] * len(xs)
    x = step.in_tree.unflatten(xs)
    seq = (
        step.in_tree.unflatten(in_masks)
        if any(m is not None for m in in_masks)
        else None
    )
    extra: dict[str, Any] = {}
    if returns_masks or layer.consumes_sequence_mask:
        extra["sequence_mask"] = seq
    out = apply(
        params,
        state,
        x,
        training=training,
        key=key,
        mask=mask,
        **extra,
        **step.options,
    )
    if returns_masks:
        y, s_new, out_masks = out
        if out_masks is not None:
            out_masks = step.out_tree.flatten_up_to(out_masks)
    else:
        y, s_new = out
        out_masks = layer.compute_mask(x, seq)
    ys = jax.tree.leaves(y)
    if len(ys) != len(step.out_slots):
        raise ValueError(
            f"{layer_label(layer)}: returned {len(ys)} output(s), the graph "
            f"recorded {len(step.out_slots)}."
        )
    return ys, s_new, _output_masks(layer, out_masks, len(ys))


def _as_mask(layer: Any, m: Any) -> Any:
    """A sequence mask as a bool array (None stays None)."""
    if m is None:
        return None
    m = jnp.asarray(m)
    if m.ndim < 1:
        raise ValueError(
            f"{layer_label(layer)}: a sequence mask must have a batch axis (shape "
            f"(batch, time)), got a scalar."
        )
    return m if m.dtype == jnp.bool_ else m.astype(jnp.bool_)


def _output_masks(layer: Any, found: Any, n: int) -> tuple[Any, ...] | None:
    """`compute_mask`'s answer as one mask (or None) per output leaf.

    One mask goes to the first output (as Keras attaches it); a list or tuple
    must have one entry per output.
    """
    if found is None:
        return None
    if isinstance(found, list | tuple):
        if len(found) != n:
            raise ValueError(
                f"{layer_label(layer)}: `compute_mask` returned {len(found)} masks "
                f"for {n} output(s); return one mask (or None) per output."
            )
        items = list(found)
    else:
        items = [found] + [None] * (n - 1)
    items = [_as_mask(layer, m) for m in items]
    return None if all(m is None for m in items) else tuple(items)


def node_key(key: Any, step: Any, key_path: Any) -> Any:
    """`fold_in(fold_in(fold_in(key, step), path[0]), path[1])...`, or None.

    `step` (a train step counter, or None) is folded first; `key_path` holds the
    node indices from the outer graph inward.
    """
    if key is None:
        return None
    if step is not None:
        key = jax.random.fold_in(key, step)
    for i in range(len(key_path)):
        key = jax.random.fold_in(key, key_path[i])
    return key


def get_path(tree: Any, path: Sequence[str]) -> Any:
    """`tree[path[0]][path[1]]...`."""
    for k in path:
        tree = tree[k]
    return tree


def set_path(
    tree: dict[str, Any],
    path: tuple[str, ...],
    value: Any,
    copied: set[tuple[str, ...]],
) -> dict[str, Any]:
    """Set `tree[path]`, copying each dict on the way once (tracked in `copied`).

    Returns the (copied) tree; pass the same `copied` set for every write of one
    walk so that each dict is copied at most once.
    """
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
