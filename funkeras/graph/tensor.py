"""Symbolic tensors and the call nodes they come from, and `Input`."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from funkeras._validation import shape_str
from funkeras.layers.base import (
    InputLayer,
    Layer,
    SymbolicValue,
    layer_label,
    public_shape,
)
from funkeras.typing import InputSpec

__all__ = [
    "SymbolicTensor",
    "Node",
    "Input",
    "is_symbolic",
    "spec_tree",
    "record_node",
]

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
        """The batch shape, unknown axes (the batch, `None` Input axes) as None."""
        return (None, *public_shape(self.spec.shape))

    @property
    def dtype(self) -> Any:
        return self.spec.dtype

    def record_call(
        self,
        layer: Layer,
        inputs: Any,
        output_spec: InputSpec,
        *,
        options: dict[str, Any] | None = None,
        training: bool | None = None,
        mask: Any = None,
    ) -> Any:
        """Record `layer(inputs)` as a `Node`; return its output tensors.

        The node keeps the call's static `options`, `training` override and
        explicit sequence masks (`layer(x, mask=m)`), and is appended to
        `layer.inbound_nodes` (what `layer.output` reads).
        """
        if mask is not None and hasattr(layer, "apply_masked"):
            raise ValueError(
                f"{layer_label(layer)}: a model takes its inputs' masks from the "
                "tensors it is called on, not from `mask=`. Call a layer with "
                "`mask=` before the model instead."
            )
        node = Node(
            layer=layer,
            inputs=inputs,
            outputs=None,
            options=dict(options or {}),
            training=training,
            mask=None if mask is None else list(mask),
        )
        flat, treedef = jax.tree.flatten(output_spec)
        outs = [SymbolicTensor(spec, node, i) for i, spec in enumerate(flat)]
        node.outputs = jax.tree.unflatten(treedef, outs)
        layer.inbound_nodes.append(node)
        return node.outputs

    def __repr__(self) -> str:
        return (
            f"<SymbolicTensor shape={shape_str(self.shape)} dtype={self.dtype} "
            f"from {layer_label(self.node.layer)}>"
        )


def record_node(
    layer: Layer,
    x: Any,
    *,
    options: dict[str, Any] | None = None,
    training: bool | None = None,
    mask: list[Any] | None = None,
) -> Any:
    """Record `layer` called on the already-bound inputs `x`; return its outputs.

    What `layer(...)` does after `bind_call`, for a caller that holds `apply`'s
    `x` pytree and options (a model rebuilt from its config).
    """
    leaves = jax.tree.leaves(x, is_leaf=is_symbolic)
    if not leaves or not all(isinstance(t, SymbolicTensor) for t in leaves):
        raise TypeError(
            f"{layer_label(layer)}: a recorded call needs symbolic input tensors."
        )
    options = dict(options or {})
    output_spec = layer.compute_output_spec(spec_tree(x), **options)
    return leaves[0].record_call(
        layer, x, output_spec, options=options, training=training, mask=mask
    )


def is_symbolic(x: Any) -> bool:
    """Whether `x` is a `SymbolicTensor` (use as `is_leaf` in tree functions)."""
    return isinstance(x, SymbolicTensor)


def spec_tree(tensors: Any) -> InputSpec:
    """The pytree of specs (no batch axis) of a pytree of symbolic tensors."""
    return jax.tree.map(lambda t: t.spec, tensors, is_leaf=is_symbolic)


@dataclass(eq=False)
class Node:
    """One call of a layer in a graph: the layer, its input and output tensors.

    `options` are the call's static keyword options (`apply(..., **options)`,
    from `Layer.bind_call`); `training` forces the call's mode (`layer(x,
    training=True)`), None follows the model's.
    """

    layer: Layer
    inputs: Any  # pytree of SymbolicTensor (None entries allowed)
    outputs: Any  # pytree of SymbolicTensor
    options: dict[str, Any] = field(default_factory=dict)
    training: bool | None = None
    # `layer(x, mask=m)`: one symbolic bool tensor or None per input leaf (a
    # list aligned with `input_tensors`), or None for a call without `mask=`.
    mask: list[Any] | None = None

    @property
    def input_tensors(self) -> list[SymbolicTensor]:
        return jax.tree.leaves(self.inputs, is_leaf=is_symbolic)

    @property
    def mask_tensors(self) -> list[tuple[int, SymbolicTensor]]:
        """The explicit masks of the call: `(input leaf index, mask tensor)`."""
        if self.mask is None:
            return []
        return [(i, m) for i, m in enumerate(self.mask) if m is not None]

    @property
    def output_tensors(self) -> list[SymbolicTensor]:
        return jax.tree.leaves(self.outputs, is_leaf=is_symbolic)


def Input(  # noqa: N802 - Keras' spelling
    shape: Sequence[int | None] | int | None = None,
    dtype: Any = "float32",
    name: str | None = None,
    batch_size: int | None = None,
    *,
    batch_shape: Sequence[int | None] | None = None,
) -> SymbolicTensor:
    """A symbolic input tensor: the entry point of a functional model.

    Args:
        shape: The shape of one example, without the batch axis (`(28, 28, 1)`).
            `None` marks an axis of unknown size (`(None, 10)`: sequences of any
            length); layers that work on any size accept it, a layer that
            cannot (a Dense after a Flatten over it) says so when called.
            `fit`/`predict` compile once per distinct length.
        dtype: The dtype the model casts this input to (`"int32"` for token ids
            feeding an `Embedding`).
        name: Optional name; by default `input_layer`, `input_layer_1`, ...
        batch_size: Accepted for Keras compatibility and ignored: the batch axis
            is always free.
        batch_shape: Keras' alternative to `shape`: the shape with the batch axis
            first (`(None, 10)`); its first entry is ignored like `batch_size`.

    Returns:
        A `SymbolicTensor` to call layers on.

    Example:
        >>> import funkeras as fk
        >>> fk.Input(shape=(4,)).shape
        (None, 4)
        >>> fk.Input(shape=(None, 8)).shape
        (None, None, 8)
    """
    del batch_size
    if batch_shape is not None:
        if shape is not None:
            raise TypeError("Input: pass `shape` or `batch_shape`, not both.")
        if not isinstance(batch_shape, tuple | list) or not batch_shape:
            raise TypeError(
                "Input: `batch_shape` must be a non-empty tuple (batch axis first), "
                f"got {batch_shape!r}."
            )
        shape = tuple(batch_shape)[1:]
    if shape is None:
        raise TypeError("Input: pass `shape=` (one example's shape, no batch axis).")
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, tuple | list):
        raise TypeError(f"Input: `shape` must be a tuple of ints, got {shape!r}.")
    layer = InputLayer(shape=tuple(shape), dtype=dtype, name=name)
    spec = jax.ShapeDtypeStruct(layer.example_shape(), jnp.dtype(layer.dtype))
    node = Node(layer=layer, inputs=(), outputs=None)
    node.outputs = SymbolicTensor(spec, node, 0)
    layer.inbound_nodes.append(node)
    return node.outputs
