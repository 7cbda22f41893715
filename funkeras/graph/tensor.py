"""Symbolic tensors and the call nodes they come from, and `Input`."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from funkeras._validation import shape_str
from funkeras.layers.base import InputLayer, Layer, SymbolicValue, layer_label
from funkeras.typing import InputSpec

__all__ = ["SymbolicTensor", "Node", "Input", "is_symbolic", "spec_tree"]

_tensor_ids = itertools.count()


class SymbolicTensor(SymbolicValue):
    """A placeholder for a batch of values in a graph under construction.

    `spec` describes one example (no batch axis); `shape` shows the batch axis as
    `None`, as Keras does. `id` is unique in the process and orders tensors (it is
    what walks key their values by); it is never used as a name.
    """

    __slots__ = ("spec", "node", "index", "_id")

    def __init__(self, spec: jax.ShapeDtypeStruct, node: Node, index: int) -> None:
        self.spec = spec
        self.node = node
        self.index = index
        self._id = next(_tensor_ids)

    @property
    def id(self) -> int:
        """The tensor's process-unique number (read-only)."""
        return self._id

    @property
    def shape(self) -> tuple[int | None, ...]:
        return (None, *self.spec.shape)

    @property
    def dtype(self) -> Any:
        return self.spec.dtype

    def record_call(self, layer: Layer, inputs: Any, output_spec: InputSpec) -> Any:
        """Record `layer(inputs)` as a `Node`; return its output tensors."""
        node = Node(layer=layer, inputs=inputs, outputs=None)
        flat, treedef = jax.tree.flatten(output_spec)
        outs = [SymbolicTensor(spec, node, i) for i, spec in enumerate(flat)]
        node.outputs = jax.tree.unflatten(treedef, outs)
        return node.outputs

    def __repr__(self) -> str:
        return (
            f"<SymbolicTensor shape={shape_str(self.shape)} dtype={self.dtype} "
            f"from {layer_label(self.node.layer)}>"
        )


def is_symbolic(x: Any) -> bool:
    """Whether `x` is a `SymbolicTensor` (use as `is_leaf` in tree functions)."""
    return isinstance(x, SymbolicTensor)


def spec_tree(tensors: Any) -> InputSpec:
    """The pytree of specs (no batch axis) of a pytree of symbolic tensors."""
    return jax.tree.map(lambda t: t.spec, tensors, is_leaf=is_symbolic)


@dataclass(eq=False)
class Node:
    """One call of a layer in a graph: the layer, its input and output tensors."""

    layer: Layer
    inputs: Any  # pytree of SymbolicTensor
    outputs: Any  # pytree of SymbolicTensor

    @property
    def input_tensors(self) -> list[SymbolicTensor]:
        return jax.tree.leaves(self.inputs, is_leaf=is_symbolic)

    @property
    def output_tensors(self) -> list[SymbolicTensor]:
        return jax.tree.leaves(self.outputs, is_leaf=is_symbolic)


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
    node = Node(layer=layer, inputs=(), outputs=None)
    node.outputs = SymbolicTensor(spec, node, 0)
    return node.outputs
