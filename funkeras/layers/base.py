"""The layer protocol, symbolic tensors, call nodes and the graph description.

A layer is a dataclass of hyperparameters plus two pure functions::

    params, state = layer.init(key, input_spec)
    y, state = layer.apply(params, state, x, training=False, key=None, mask=None)

`input_spec` is a `jax.ShapeDtypeStruct` (or a list/dict of them) *without* the
batch axis. `params` and `state` are plain nested dicts of arrays. Calling a layer
on a `SymbolicTensor` (what `funkeras.Input` returns) records a `Node`; a `Graph`
is the nodes between some inputs and outputs in topological order. Models and the
training executors consume graphs; nothing here knows about either.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from funkeras._validation import check_int, normalize_dtype, shape_str, to_snake_case
from funkeras.errors import GraphError
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "Layer",
    "SymbolicTensor",
    "Node",
    "Graph",
    "InputLayer",
    "build_graph",
    "layer_label",
    "check_last_axis",
    "check_rank",
    "add_batch_axis",
    "strip_batch_axis",
]


# ----------------------------------------------------------------------------
# Small helpers shared by every layer: names, messages, config validation.
# ----------------------------------------------------------------------------


def layer_label(layer: Any) -> str:
    """`Dense(name='dense_1')`, the way every error message names a layer."""
    name = getattr(layer, "name", None)
    cls = type(layer).__name__
    return f"{cls}(name={name!r})" if name else f"{cls}()"


def check_last_axis(layer: Any, x: Any, expected: int, *, what: str = "x") -> None:
    """Raise a clear error if the last axis of `x` (array or spec) is not `expected`."""
    shape = tuple(x.shape)
    if not shape or (isinstance(shape[-1], int) and shape[-1] != expected):
        raise ValueError(
            f"{layer_label(layer)}: expected the last axis of `{what}` to be "
            f"{expected} (from `init`), got {what}.shape={shape_str(shape)}. "
            "Did the previous layer's output size change?"
        )


def check_rank(
    layer: Any, spec: Any, ranks: int | Sequence[int], *, hint: str = ""
) -> None:
    """Raise a clear error if `spec` (no batch axis) has a rank not in `ranks`."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    rank = len(spec.shape)
    if rank not in ranks:
        want = " or ".join(str(r + 1) for r in ranks)
        raise ValueError(
            f"{layer_label(layer)}: expected inputs of rank {want} "
            f"(batch included), got shape {shape_str((None, *spec.shape))}."
            + (f" {hint}" if hint else "")
        )


def add_batch_axis(spec: InputSpec, batch: Any) -> InputSpec:
    """Prepend a batch axis (an int or a symbolic dimension) to every spec leaf."""
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct((batch, *s.shape), s.dtype), spec
    )


def strip_batch_axis(spec: InputSpec) -> InputSpec:
    """Drop the leading axis of every spec leaf."""
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(tuple(s.shape[1:]), s.dtype), spec
    )


def _symbolic_batch() -> Any:
    (batch,) = jax.export.symbolic_shape("batch")
    return batch


# ----------------------------------------------------------------------------
# The protocol.
# ----------------------------------------------------------------------------


@dataclass(eq=False, kw_only=True)
class Layer:
    """Base class of every layer: hyperparameters plus pure `init` and `apply`.

    Subclass it as a dataclass (`@dataclass(eq=False)`) holding only JSON-safe
    hyperparameters, and override `init` and `apply`. Layers compare and hash by
    identity: two `Dense(10)` are two layers, and one instance called twice in a
    graph shares its weights.

    Args:
        name: The layer's name in a model. `None` lets the model name it from graph
            order (`dense`, `dense_1`, ...), the same in every process.
        trainable: `False` freezes the layer: its params get no updates, and a
            frozen `BatchNormalization` runs in inference mode.
        dtype: The dtype of the layer's params (and of its computation).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from dataclasses import dataclass
        >>> import funkeras as fk
        >>> @dataclass(eq=False)
        ... class Scale(fk.layers.Layer):
        ...     factor: float = 2.0
        ...     def apply(self, params, state, x, *, training=False, key=None, mask=None):
        ...         return x * self.factor, state
        >>> layer = Scale(3.0)
        >>> params, state = layer.init(jax.random.key(0), jax.ShapeDtypeStruct((2,), jnp.float32))
        >>> layer.apply(params, state, jnp.ones((1, 2)))[0].tolist()
        [[3.0, 3.0]]
    """

    name: str | None = None
    trainable: bool = True
    dtype: str = "float32"

    # Whether `apply` may draw random numbers. Models derive a key for a call
    # node only when its layer says so (a custom layer does by default).
    uses_key: ClassVar[bool] = True

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise TypeError(
                f"{owner}: `name` must be a non-empty str, got {self.name!r}."
            )
        if self.name is not None and "/" in self.name:
            raise ValueError(
                f"{owner}: `name` may not contain '/', got {self.name!r} "
                "('/' separates layers in weight keys)."
            )
        if not isinstance(self.trainable, bool):
            raise TypeError(
                f"{owner}: `trainable` must be a bool, got {self.trainable!r}."
            )
        self.dtype = normalize_dtype(owner, self.dtype)

    # -- the protocol ---------------------------------------------------------

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create `(params, state)` for inputs described by `input_spec` (no batch axis).

        Pure: the same key and spec give the same arrays. The default holds nothing.
        """
        del key, input_spec
        return {}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Any,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Any, State]:
        """Compute the layer's output; return `(y, state)`. Pure.

        Args:
            params: What `init` returned as params.
            state: What `init` (or the previous call) returned as state.
            x: The input batch (batch axis first).
            training: Training mode (dropout active, batch statistics).
            key: A PRNG key, needed only by layers that draw random numbers.
            mask: Optional boolean `(batch,)` vector marking the real rows.
        """
        raise TypeError(
            f"{layer_label(self)}: the layer class does not define `apply`."
        )

    def penalty(self, params: Params) -> Array:
        """The regularization loss of `params` (0.0 without regularizers).

        For every variable `v` the layer holds, a `v_regularizer` attribute that is
        set (`kernel_regularizer="l2"`) adds its penalty.
        """
        from funkeras import regularizers

        total = jnp.zeros((), jnp.float32)
        for var_name, value in params.items():
            reg = getattr(self, f"{var_name}_regularizer", None)
            if reg is not None:
                total = total + regularizers.get(reg)(value).astype(jnp.float32)
        return total

    def compute_output_spec(self, input_spec: InputSpec) -> InputSpec:
        """The output spec (no batch axis) for `input_spec`, from `jax.eval_shape`.

        Traces `init` and `apply` abstractly with a symbolic batch dimension, so
        shape errors surface here, before anything runs, and no second shape
        formula can drift from `apply`.
        """
        params, state = jax.eval_shape(
            lambda k: self.init(k, input_spec), jax.random.key(0)
        )
        x = add_batch_axis(input_spec, _symbolic_batch())
        y, _ = jax.eval_shape(
            lambda p, s, x: self.apply(p, s, x, training=False), params, state, x
        )
        return strip_batch_axis(y)

    def get_config(self) -> dict[str, Any]:
        """The layer's hyperparameters as a JSON-safe dict (`from_config` inverts it)."""
        if not dataclasses.is_dataclass(self):
            raise TypeError(
                f"{layer_label(self)}: `get_config` is automatic only for dataclass "
                "layers; define `get_config` on this class to make it serializable."
            )
        return {
            f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from `get_config()`'s output."""
        return cls(**config)

    # -- symbolic calls (the functional API) ------------------------------------

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Call the layer on symbolic tensors from `funkeras.Input` to build a graph.

        Returns symbolic output tensor(s) and records a `Node`. To compute on
        arrays, use `init` and `apply` (or a model's `predict`).
        """
        if kwargs:
            raise TypeError(
                f"{layer_label(self)}: calling a layer takes only the inputs, got "
                f"extra arguments {sorted(kwargs)}."
            )
        leaves = jax.tree.leaves(inputs, is_leaf=_is_symbolic)
        if not leaves or not all(isinstance(t, SymbolicTensor) for t in leaves):
            raise TypeError(
                f"{layer_label(self)}: layers are called on symbolic tensors from "
                "`funkeras.Input(...)` to build a model. To run a layer on arrays, "
                "use `params, state = layer.init(key, spec)` and "
                "`layer.apply(params, state, x)`, or wrap it in a model."
            )
        input_spec = jax.tree.map(lambda t: t.spec, inputs, is_leaf=_is_symbolic)
        output_spec = self.compute_output_spec(input_spec)
        node = Node(layer=self, inputs=inputs, outputs=None)
        flat, treedef = jax.tree.flatten(output_spec)
        outs = [SymbolicTensor(spec, node, i) for i, spec in enumerate(flat)]
        node.outputs = jax.tree.unflatten(treedef, outs)
        return node.outputs

    def __repr__(self) -> str:
        return layer_label(self)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------------------
# Symbolic tensors, nodes and the graph description.
# ----------------------------------------------------------------------------

_tensor_ids = itertools.count()


class SymbolicTensor:
    """A placeholder for a batch of values in a graph under construction.

    `spec` describes one example (no batch axis); `shape` shows the batch axis as
    `None`, as Keras does.
    """

    __slots__ = ("spec", "node", "index", "_id")

    def __init__(self, spec: jax.ShapeDtypeStruct, node: Node, index: int) -> None:
        self.spec = spec
        self.node = node
        self.index = index
        self._id = next(_tensor_ids)  # only orders tensors; never used as a name

    @property
    def shape(self) -> tuple[int | None, ...]:
        return (None, *self.spec.shape)

    @property
    def dtype(self) -> Any:
        return self.spec.dtype

    def __repr__(self) -> str:
        return (
            f"<SymbolicTensor shape={shape_str(self.shape)} dtype={self.dtype} "
            f"from {layer_label(self.node.layer)}>"
        )


def _is_symbolic(x: Any) -> bool:
    return isinstance(x, SymbolicTensor)


@dataclass(eq=False)
class Node:
    """One call of a layer in a graph: the layer, its input and output tensors."""

    layer: Layer
    inputs: Any  # pytree of SymbolicTensor
    outputs: Any  # pytree of SymbolicTensor

    @property
    def input_tensors(self) -> list[SymbolicTensor]:
        return jax.tree.leaves(self.inputs, is_leaf=_is_symbolic)

    @property
    def output_tensors(self) -> list[SymbolicTensor]:
        return jax.tree.leaves(self.outputs, is_leaf=_is_symbolic)


@dataclass(eq=False, kw_only=True)
class InputLayer(Layer):
    """The layer behind `funkeras.Input`: a named entry point of a graph.

    Args:
        shape: The shape of one example (no batch axis).
    """

    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        shape = tuple(self.shape)
        for d in shape:
            if d is None:
                raise ValueError(
                    "Input: only the batch axis may be unknown; got shape "
                    f"{self.shape!r}. Give every other axis its size."
                )
            check_int("Input", "shape", d)
        self.shape = shape

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        del params, training, key, mask
        return x, state


@dataclass(frozen=True, eq=False)
class Graph:
    """The graph description: nodes between inputs and outputs, in topological order.

    Attributes:
        inputs: Pytree of the graph's input tensors (from `funkeras.Input`).
        outputs: Pytree of its output tensors.
        nodes: Every non-input call node, in topological order.
        layers: The distinct non-input layers, in order of first call.
        input_layers: The `InputLayer`s, in the order of `inputs`' leaves.
    """

    inputs: Any
    outputs: Any
    nodes: tuple[Node, ...]
    layers: tuple[Layer, ...]
    input_layers: tuple[InputLayer, ...]

    @property
    def input_spec(self) -> InputSpec:
        return jax.tree.map(lambda t: t.spec, self.inputs, is_leaf=_is_symbolic)

    @property
    def output_spec(self) -> InputSpec:
        return jax.tree.map(lambda t: t.spec, self.outputs, is_leaf=_is_symbolic)

    def layer_nodes(self, layer: Layer) -> list[Node]:
        return [n for n in self.nodes if n.layer is layer]

    def consumers(self) -> dict[int, list[Node]]:
        """Map a tensor's id to the nodes that read it (for backward walks)."""
        out: dict[int, list[Node]] = {}
        for node in self.nodes:
            for t in node.input_tensors:
                out.setdefault(t._id, []).append(node)
        return out


def build_graph(inputs: Any, outputs: Any, *, owner: str = "Model") -> Graph:
    """Collect the nodes that lead from `inputs` to `outputs` and order them.

    Raises `GraphError` for an output not reachable from the given inputs, an
    input the outputs do not use, a cycle, or anything that is not a symbolic
    tensor, and names the tensor and layer at fault.
    """
    in_leaves = jax.tree.leaves(inputs, is_leaf=_is_symbolic)
    out_leaves = jax.tree.leaves(outputs, is_leaf=_is_symbolic)
    for what, leaves in (("inputs", in_leaves), ("outputs", out_leaves)):
        if not leaves:
            raise GraphError(f"{owner}: `{what}` is empty; pass at least one tensor.")
        for t in leaves:
            if not isinstance(t, SymbolicTensor):
                raise GraphError(
                    f"{owner}: every entry of `{what}` must be a symbolic tensor from "
                    f"`funkeras.Input` or a layer call, got {type(t).__name__}."
                )
    for t in in_leaves:
        if not isinstance(t.node.layer, InputLayer):
            raise GraphError(
                f"{owner}: `inputs` must be tensors made by `funkeras.Input(...)`, got "
                f"the output of {layer_label(t.node.layer)}."
            )
    if len({t._id for t in in_leaves}) != len(in_leaves):
        raise GraphError(f"{owner}: the same Input appears twice in `inputs`.")

    input_ids = {t._id for t in in_leaves}
    order: list[Node] = []
    state: dict[int, int] = {}  # id(node) -> 1 visiting, 2 done
    used_inputs: set[int] = set()

    def visit(tensor: SymbolicTensor, path: tuple[str, ...]) -> None:
        if tensor._id in input_ids:
            used_inputs.add(tensor._id)
            return
        node = tensor.node
        if isinstance(node.layer, InputLayer):
            raise GraphError(
                f"{owner}: the outputs depend on {node.layer.name or 'an Input'} "
                f"(shape {shape_str(tensor.shape)}), which is not among `inputs`: "
                "the graph is disconnected. Add that Input to `inputs`."
            )
        mark = state.get(id(node))
        if mark == 2:
            return
        if mark == 1:
            raise GraphError(
                f"{owner}: the graph has a cycle through {' -> '.join(path)}."
            )
        state[id(node)] = 1
        for t in node.input_tensors:
            visit(t, (*path, layer_label(node.layer)))
        state[id(node)] = 2
        order.append(node)

    for t in out_leaves:
        visit(t, ())
    unused = [t for t in in_leaves if t._id not in used_inputs]
    if unused:
        names = ", ".join(t.node.layer.name or shape_str(t.shape) for t in unused)
        raise GraphError(
            f"{owner}: input(s) {names} are never used by the outputs. Remove them "
            "from `inputs` or connect them."
        )

    layers: list[Layer] = []
    seen: set[int] = set()
    for node in order:
        if id(node.layer) not in seen:
            seen.add(id(node.layer))
            layers.append(node.layer)
    input_layers = tuple(t.node.layer for t in in_leaves)
    _assign_names([*input_layers, *layers], owner)
    return Graph(
        inputs=inputs,
        outputs=outputs,
        nodes=tuple(order),
        layers=tuple(layers),
        input_layers=input_layers,
    )


def _assign_names(layers: Sequence[Layer], owner: str) -> None:
    """Give unnamed layers unique names from graph order: dense, dense_1, ..."""
    taken: dict[str, Layer] = {}
    for layer in layers:
        if layer.name is not None:
            other = taken.get(layer.name)
            if other is not None and other is not layer:
                raise GraphError(
                    f"{owner}: two different layers are named {layer.name!r} "
                    f"({layer_label(other)} and a {type(layer).__name__}). "
                    "Layer names must be unique within a model."
                )
            taken[layer.name] = layer
    for layer in layers:
        if layer.name is None:
            base = to_snake_case(type(layer).__name__)
            if isinstance(layer, InputLayer):
                base = "input_layer"
            name, i = base, 0
            while name in taken:
                i += 1
                name = f"{base}_{i}"
            layer.name = name
            taken[name] = layer


def spec_of(x: Any) -> InputSpec:
    """The spec (no batch axis) of an array or a pytree of arrays."""
    return jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(
            tuple(np.shape(a))[1:],
            jnp.asarray(a).dtype if not hasattr(a, "dtype") else a.dtype,
        ),
        x,
    )


Initializer = Callable[[PRNGKey, tuple[int, ...], Any], Array]
