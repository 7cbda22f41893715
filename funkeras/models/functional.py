"""The pure composition of a graph's layers into one `init` and `apply`.

Everything here is a pure function of a `Graph` (see `funkeras.graph`); the
model facade in `model.py` builds on it. `Input` is re-exported from
`funkeras.graph`, where it lives.
"""

from __future__ import annotations

import weakref
from typing import Any

import jax
import jax.numpy as jnp

from funkeras.graph import (
    CallStep,
    Graph,
    Input,
    Schedule,
    apply_call,
    check_input_spec,
    match_inputs,
    node_key,
    prepare_inputs,
    spec_tree,
    walk,
)
from funkeras.layers.base import Layer
from funkeras.typing import Array, Params, PRNGKey, State

__all__ = [
    "Input",
    "graph_init",
    "graph_apply",
    "graph_apply_masked",
    "graph_penalty",
    "graph_has_penalty",
    "graph_uses_key",
    "graph_trainable_mask",
    "prepare_inputs",
    "check_input_spec",
]


def graph_init(graph: Graph, key: PRNGKey) -> tuple[Params, State]:
    """Initialise every layer of `graph` once, with one key per layer.

    The key of layer `i` (in `graph.layers` order) is `fold_in(key, i)`, so the
    weights depend only on the key and the graph.
    """
    params: Params = {}
    state: State = {}
    for i, layer in enumerate(graph.layers):
        node = graph.layer_nodes(layer)[0]
        p, s = layer.init(jax.random.fold_in(key, i), spec_tree(node.inputs))
        params[layer.name] = p
        state[layer.name] = s
    return params, state


def graph_apply(
    graph: Graph,
    params: Params,
    state: State,
    x: Any,
    *,
    training: bool = False,
    key: PRNGKey | None = None,
    mask: Array | None = None,
    owner: str = "Model",
    hook: Any = None,
) -> tuple[Any, State]:
    """Run the graph's nodes in order; return `(outputs, new_state)`.

    The whole-model driver of the graph walker (`funkeras.graph.walk`), traced
    as one function. Node `i` gets the key `fold_in(key, i)`, so a layer called
    twice draws two different dropout masks. `hook(node, y)`, when given, sees
    every node's output and may return a replacement (used by capture and
    forward hooks). Sequence masks travel between the layers (see
    `graph_apply_masked`, which also returns the outputs' masks).
    """
    out, state, _ = graph_apply_masked(
        graph,
        params,
        state,
        x,
        training=training,
        key=key,
        mask=mask,
        owner=owner,
        hook=hook,
    )
    return out, state


def graph_apply_masked(
    graph: Graph,
    params: Params,
    state: State,
    x: Any,
    *,
    training: bool = False,
    key: PRNGKey | None = None,
    mask: Array | None = None,
    sequence_mask: Any = None,
    owner: str = "Model",
    hook: Any = None,
) -> tuple[Any, State, Any]:
    """`graph_apply` that also takes its inputs' and returns its outputs'
    sequence masks: `(outputs, new_state, output_masks)`.

    `sequence_mask` has the structure of `x` (a `(batch, time)` bool array or
    None per input), or is None. `output_masks` has the structure of the
    outputs, a mask or None per output (None as a whole when no output has
    one). A nested model runs through this, so masks cross model boundaries;
    the train and test steps read `output_masks` so that masked timesteps
    count for nothing in the loss and metrics.
    """
    inputs = prepare_inputs(graph, x, owner)
    in_masks = (
        None if sequence_mask is None else match_inputs(graph, sequence_mask, owner)
    )
    schedule = _schedule(graph)
    state = dict(state)

    def call(
        step: CallStep, xs: tuple[Any, ...], ms: tuple[Any, ...]
    ) -> tuple[list[Any], Any]:
        layer = step.layer
        name = layer.name
        nested = isinstance(getattr(layer, "graph", None), Graph) and hasattr(
            layer, "apply_masked"
        )
        ys, state[name], out_ms = apply_call(
            step,
            layer.apply_masked if nested else layer.apply,
            params[name],
            state[name],
            xs,
            training=training,
            key=node_key(key, None, step.key_path) if layer.uses_key else None,
            mask=mask,
            masks=ms,
            returns_masks=nested,
        )
        if hook is not None:
            ys = jax.tree.leaves(hook(step.node, step.out_tree.unflatten(ys)))
        return ys, out_ms

    values, masks = walk(schedule, inputs, call, input_masks=in_masks)
    out = schedule.out_tree.unflatten([values[s] for s in schedule.output_slots])
    out_masks = [masks[s] for s in schedule.output_slots]
    if all(m is None for m in out_masks):
        return out, state, None
    return out, state, schedule.out_tree.unflatten(out_masks)


_SCHEDULES: weakref.WeakKeyDictionary[Graph, Schedule] = weakref.WeakKeyDictionary()


def _schedule(graph: Graph) -> Schedule:
    """The graph's own nodes as a walker schedule, built once per graph."""
    schedule = _SCHEDULES.get(graph)
    if schedule is None:
        schedule = _SCHEDULES[graph] = Schedule(graph)
    return schedule


def graph_penalty(graph: Graph, params: Params) -> Array:
    """The sum of every layer's regularization penalty."""
    total = jnp.zeros((), jnp.float32)
    for layer in graph.layers:
        total = total + layer.penalty(params[layer.name])
    return total


def graph_has_penalty(graph: Graph) -> bool:
    """Whether any layer of `graph` can add a regularization penalty."""
    return any(layer.has_penalty() for layer in graph.layers)


def graph_uses_key(graph: Graph) -> bool:
    """Whether any layer of `graph` draws random numbers (needs a PRNG key)."""
    return any(node.layer.uses_key for node in graph.nodes)


def graph_trainable_mask(graph: Graph, params: Params, trainable: bool = True) -> Any:
    """A pytree of bools shaped like `params`: True where a weight is trained."""
    mask: dict[str, Any] = {}
    for layer in graph.layers:
        on = trainable and layer.trainable
        sub = getattr(layer, "graph", None)
        if isinstance(layer, Layer) and sub is not None:
            mask[layer.name] = graph_trainable_mask(sub, params[layer.name], on)
        else:
            mask[layer.name] = jax.tree.map(lambda _: on, params[layer.name])
    return mask
