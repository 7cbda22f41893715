"""`Input` and the pure composition of a graph's layers into one `init` and `apply`.

Everything here is a pure function of a `Graph` (see `funkeras.layers.base`): the
model facade in `model.py` and the training executors both build on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._validation import shape_str
from funkeras.layers.base import (
    Graph,
    InputLayer,
    Layer,
    SymbolicTensor,
    _is_symbolic,
    layer_label,
)
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "Input",
    "graph_init",
    "graph_apply",
    "graph_penalty",
    "graph_has_penalty",
    "graph_uses_key",
    "layer_has_penalty",
    "graph_trainable_mask",
    "prepare_inputs",
    "check_input_spec",
]


def Input(  # noqa: N802 - Keras' spelling
    shape: Sequence[int] | int,
    dtype: Any = "float32",
    name: str | None = None,
    batch_size: int | None = None,
) -> SymbolicTensor:
    """A symbolic input tensor: the entry point of a functional model.

    Args:
        shape: The shape of one example, without the batch axis (`(28, 28, 1)`).
        dtype: The dtype the model casts this input to (`"int32"` for token ids
            feeding an `Embedding`).
        name: Optional name; by default `input_layer`, `input_layer_1`, ...
        batch_size: Accepted for Keras compatibility and ignored: the batch axis
            is always free.

    Returns:
        A `SymbolicTensor` to call layers on.

    Example:
        >>> import funkeras as fk
        >>> inp = fk.Input(shape=(4,))
        >>> inp.shape
        (None, 4)
    """
    del batch_size
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, tuple | list):
        raise TypeError(f"Input: `shape` must be a tuple of ints, got {shape!r}.")
    layer = InputLayer(shape=tuple(shape), dtype=dtype, name=name)
    spec = jax.ShapeDtypeStruct(layer.shape, jnp.dtype(layer.dtype))
    from funkeras.layers.base import Node

    node = Node(layer=layer, inputs=(), outputs=None)
    node.outputs = SymbolicTensor(spec, node, 0)
    return node.outputs


def _leaves(tree: Any) -> list[Any]:
    return jax.tree.leaves(tree, is_leaf=_is_symbolic)


def check_input_spec(graph: Graph, input_spec: InputSpec, owner: str) -> None:
    """Check that `input_spec` (no batch axis) fits the graph's inputs."""
    want = _leaves(graph.input_spec)
    got = jax.tree.leaves(input_spec)
    if len(got) != len(want):
        raise ValueError(
            f"{owner}: expected {len(want)} input(s), got {len(got)} in the input spec."
        )
    for layer, w, g in zip(graph.input_layers, want, got, strict=True):
        if tuple(g.shape) != tuple(w.shape):
            raise ValueError(
                f"{owner}: input {layer.name!r} expects examples of shape "
                f"{shape_str(w.shape)} (batch axis excluded), got "
                f"{shape_str(g.shape)}."
            )


def _cast_input(
    layer: InputLayer, x: Any, want: jax.ShapeDtypeStruct, owner: str
) -> Array:
    if not hasattr(x, "dtype"):
        x = np.asarray(x)
    got_dtype = jnp.dtype(x.dtype)
    shape = tuple(np.shape(x))
    if len(shape) != len(want.shape) + 1 or any(
        isinstance(g, int) and g != w
        for g, w in zip(shape[1:], want.shape, strict=True)
    ):
        raise ValueError(
            f"{owner}: input {layer.name!r} expects shape "
            f"{shape_str((None, *want.shape))}, got {shape_str(shape)}. "
            "Check the data's feature axes (or the model's Input shape)."
        )
    if got_dtype == want.dtype:
        return x
    want_float = jnp.issubdtype(want.dtype, jnp.floating)
    got_int = jnp.issubdtype(got_dtype, jnp.integer) or got_dtype == jnp.bool_
    if not want_float and not got_int:
        raise TypeError(
            f"{owner}: input {layer.name!r} expects {want.dtype} values (e.g. token ids "
            f"for an Embedding), got {got_dtype}. Cast the data to integers, or "
            "declare the Input with a float dtype."
        )
    return jnp.asarray(x).astype(want.dtype)


def prepare_inputs(graph: Graph, x: Any, owner: str) -> list[Array]:
    """Match `x` to the graph's inputs (array, list, or dict by Input name) and cast.

    Integer and float64 data are cast to each Input's dtype, as Keras casts them;
    floats fed to an integer Input are refused.
    """
    layers = graph.input_layers
    specs = _leaves(graph.input_spec)
    if isinstance(x, Mapping):
        if isinstance(graph.inputs, Mapping):
            keys = list(graph.inputs.keys())
            flat = [x[k] for k in sorted(keys)] if set(keys) <= set(x) else None
        else:
            names = [layer.name for layer in layers]
            flat = [x[n] for n in names] if set(names) <= set(x) else None
        if flat is None:
            raise ValueError(
                f"{owner}: got a dict of inputs with keys {sorted(x)}, but the model's "
                f"inputs are named {[layer.name for layer in layers]}."
            )
    elif isinstance(x, list | tuple):
        flat = list(x)
    else:
        flat = [x]
    if len(flat) != len(layers):
        raise ValueError(
            f"{owner}: the model has {len(layers)} input(s) "
            f"({[layer.name for layer in layers]}), got {len(flat)}."
        )
    return [
        _cast_input(layer, value, spec, owner)
        for layer, value, spec in zip(layers, flat, specs, strict=True)
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
        spec = jax.tree.map(lambda t: t.spec, node.inputs, is_leaf=_is_symbolic)
        p, s = layer.init(jax.random.fold_in(key, i), spec)
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

    Node `i` gets the key `fold_in(key, i)`, so a layer called twice draws two
    different dropout masks. `hook(node, y)`, when given, sees every node's output
    and may return a replacement (used by capture and forward hooks).
    """
    inputs = prepare_inputs(graph, x, owner)
    values: dict[int, Any] = {}
    for t, v in zip(_leaves(graph.inputs), inputs, strict=True):
        values[t._id] = v
    state = dict(state)
    for i, node in enumerate(graph.nodes):
        layer = node.layer
        args = jax.tree.map(lambda t: values[t._id], node.inputs, is_leaf=_is_symbolic)
        node_key = (
            jax.random.fold_in(key, i) if key is not None and layer.uses_key else None
        )
        y, state[layer.name] = layer.apply(
            params[layer.name],
            state[layer.name],
            args,
            training=training,
            key=node_key,
            mask=mask,
        )
        if hook is not None:
            y = hook(node, y)
        outs = node.output_tensors
        ys = jax.tree.leaves(y)
        if len(ys) != len(outs):
            raise ValueError(
                f"{layer_label(layer)}: returned {len(ys)} output(s), the graph "
                f"recorded {len(outs)}."
            )
        for t, v in zip(outs, ys, strict=True):
            values[t._id] = v
    out = jax.tree.map(lambda t: values[t._id], graph.outputs, is_leaf=_is_symbolic)
    return out, state


def graph_penalty(graph: Graph, params: Params) -> Array:
    """The sum of every layer's regularization penalty."""
    total = jnp.zeros((), jnp.float32)
    for layer in graph.layers:
        total = total + layer.penalty(params[layer.name])
    return total


def layer_has_penalty(layer: Any) -> bool:
    """Whether `layer` can add a regularization penalty (known before tracing).

    True for a layer with a `*_regularizer` attribute that is set, a class that
    overrides `penalty`, or a nested model holding such a layer.
    """
    nested = getattr(layer, "has_penalty", None)
    if callable(nested):  # a nested model answers for its own layers
        return bool(nested())
    if type(layer).penalty is not Layer.penalty:
        return True
    return any(
        getattr(layer, name, None) is not None
        for name in dir(layer)
        if name.endswith("_regularizer")
    )


def graph_has_penalty(graph: Graph) -> bool:
    """Whether any layer of `graph` can add a regularization penalty."""
    return any(layer_has_penalty(layer) for layer in graph.layers)


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
