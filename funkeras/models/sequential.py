"""`Sequential`: layers applied one after another, built into a graph."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from funkeras.graph import Input, SymbolicTensor, build_graph
from funkeras.layers.base import InputLayer, Layer, layer_label
from funkeras.models.model import Model
from funkeras.models.serialization import sequential_config, sequential_from_config
from funkeras.saving.registry import register_builtin
from funkeras.typing import InputSpec

__all__ = ["Sequential"]


@register_builtin("Sequential")
class Sequential(Model):
    """A linear stack of layers: each layer's output feeds the next.

    The graph is built as soon as the input shape is known: from an
    `fk.Input(shape=...)` given as the first element, from `build(input_shape)`,
    from `init(key, input_spec)`, or from the first batch of `fit`/`predict`.

    Args:
        layers: The layers, in order. An `fk.Input(...)` may come first.
        name: The model's name (its key when nested in another model).
        seed: The seed of the initial weights; None draws one from the
            process-wide stream (`fk.utils.set_random_seed` restarts it).

    Example:
        >>> import funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(8,)),
        ...                        fk.layers.Dense(4, activation="relu"),
        ...                        fk.layers.Dense(1)])
        >>> model.count_params()
        41
    """

    def __init__(
        self,
        layers: Sequence[Layer | SymbolicTensor] | None = None,
        *,
        name: str | None = None,
        seed: int | None = None,
        trainable: bool = True,
        dtype: Any = "float32",
    ) -> None:
        super().__init__(name=name, seed=seed, trainable=trainable, dtype=dtype)
        self._input: SymbolicTensor | None = None
        self._last: Any = None
        self._layers: list[Layer] = []
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Layer | SymbolicTensor) -> None:
        """Append a layer (or, first of all, an `fk.Input`)."""
        if isinstance(layer, SymbolicTensor):
            if not isinstance(layer.node.layer, InputLayer):
                raise TypeError(
                    f"{self._owner()}: only an `fk.Input(...)` may be added as a tensor; "
                    "add layers themselves."
                )
            if self._input is not None or self._layers:
                raise ValueError(f"{self._owner()}: an Input may only come first.")
            self._input = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f"{self._owner()}: `add` expects a layer, got {type(layer).__name__}."
            )
        if isinstance(layer, InputLayer):
            raise TypeError(
                f"{self._owner()}: add `fk.Input(shape=...)`, not an InputLayer."
            )
        if any(existing is layer for existing in self._layers):
            raise ValueError(
                f"{self._owner()}: {layer_label(layer)} is already in this model; a "
                "Sequential model uses each layer once."
            )
        if self._params is not None:
            raise ValueError(
                f"{self._owner()}: cannot add layers after the weights exist; build a "
                "new model (nest this one in it to keep its weights)."
            )
        if self._input is not None:
            # Build first, so a layer that does not fit leaves the model as it was.
            last = self._last if self._layers else self._input
            out = layer(last)
            graph = build_graph(self._input, out, owner=self._owner())
            self._last = out
            self._layers.append(layer)
            self._set_graph(graph)
        else:
            self._layers.append(layer)
            self._graph = None

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise ValueError(f"{self._owner()}: there is no layer to pop.")
        if self._params is not None:
            raise ValueError(
                f"{self._owner()}: cannot pop layers after the weights exist."
            )
        old = self.graph
        layer = self._layers.pop()
        self._graph = None
        if old is not None:  # the old graph's calls are no layer's `.output` now
            stale = {id(node) for node in old.nodes}
            for each in (*self._layers, layer):
                each.inbound_nodes[:] = [
                    n for n in each.inbound_nodes if id(n) not in stale
                ]
        if self._input is not None and self._layers:
            self._build_graph(self._input)
        return layer

    def _build_graph(self, inp: SymbolicTensor) -> None:
        if not self._layers:
            raise ValueError(
                f"{self._owner()}: a Sequential model needs at least one layer."
            )
        x: Any = inp
        for layer in self._layers:
            x = layer(x)
        self._set_graph(build_graph(inp, x, owner=self._owner()))
        self._last = x

    def _build_from_spec(self, input_spec: InputSpec) -> None:
        if not hasattr(input_spec, "shape"):
            raise TypeError(
                f"{self._owner()}: a Sequential model has a single input; got the spec "
                f"{input_spec!r}."
            )
        inp = Input(shape=tuple(input_spec.shape), dtype=input_spec.dtype)
        self._build_graph(inp)
        self._input = inp

    @property
    def layers(self) -> list[Layer]:
        """The layers, in order (as Keras 3, the Input is not listed)."""
        return list(self._layers)

    def get_config(self) -> dict[str, Any]:
        """The architecture as JSON-safe data: the Input (if any) and the layers."""
        return sequential_config(self, self._input, self._layers)

    @classmethod
    def from_config(
        cls, config: dict[str, Any], resolve: Callable[[str], type] | None = None
    ) -> Sequential:
        """Rebuild a Sequential model from `get_config()` (weights made fresh)."""
        return sequential_from_config(cls, config, resolve)
