"""Layer wrappers: `Bidirectional` (a recurrent layer run both ways) and
`TimeDistributed` (a layer applied to every time step).

A wrapper's params are its inner layers': `TimeDistributed(Dense(3))` holds
the Dense's `kernel` and `bias`; `Bidirectional(LSTM(4))` holds
`forward_layer` then `backward_layer`, each the LSTM's weights (Keras' order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from funkeras._validation import check_choice, shape_str
from funkeras.layers._common import autocast, check_single_spec
from funkeras.layers.base import Layer, layer_label
from funkeras.layers.recurrent import deserialize_layer, is_recurrent, serialize_layer
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = ["Bidirectional", "TimeDistributed"]

_MERGE_MODES = ("concat", "sum", "ave", "mul")


def _copy(layer: Layer, **changes: Any) -> Layer:
    """A fresh layer of the same class and config, with `changes` applied."""
    return type(layer).from_config({**layer.get_config(), **changes})


@dataclass(eq=False)
class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy backwards; merges the two.

    Keras' `Bidirectional`. The backward copy has `go_backwards` flipped (or is
    `backward_layer` when given); with `return_sequences` its output sequence
    is flipped back to the input's time order before the merge.

    Args:
        layer: A recurrent layer (`LSTM`, `GRU`, `SimpleRNN`, `RNN`). The
            wrapper runs copies of it (the object passed is the template).
        merge_mode: `"concat"` (default), `"sum"`, `"ave"`, `"mul"`, or `None`
            (return the two outputs as a list).
        backward_layer: Optional recurrent layer for the backward direction;
            it must have the opposite `go_backwards` and the same
            `return_sequences` / `return_state` as `layer`.

    Call: `layer(sequences, initial_state=None, mask=None, training=None)`;
    `initial_state` lists the forward states then the backward ones. With
    `return_state` it returns the merged output, then the forward states,
    then the backward states.

    Params: `forward_layer`, `backward_layer` (each the wrapped layer's).

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> layer = fk.layers.Bidirectional(fk.layers.LSTM(4, return_sequences=True))
        >>> layer(jnp.ones((2, 5, 3))).shape
        (2, 5, 8)
    """

    uses_key: ClassVar[bool] = True
    consumes_sequence_mask: ClassVar[bool] = True

    layer: Any
    merge_mode: str | None = "concat"
    backward_layer: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.layer = deserialize_layer(owner, self.layer)
        if self.backward_layer is not None:
            self.backward_layer = deserialize_layer(owner, self.backward_layer)
        for arg, value in (
            ("layer", self.layer),
            ("backward_layer", self.backward_layer),
        ):
            if value is not None and not is_recurrent(value):
                raise ValueError(
                    f"{owner}: `{arg}` must be a recurrent layer (LSTM, GRU, "
                    f"SimpleRNN or RNN), got {layer_label(value)}. Bidirectional "
                    "runs a layer over the time axis both ways."
                )
        if self.merge_mode is not None:
            self.merge_mode = check_choice(
                owner, "merge_mode", self.merge_mode, _MERGE_MODES
            )
        layer = self.layer
        zero = layer.return_sequences
        base = layer.name or type(layer).__name__.lower()
        forward = _copy(layer, name=f"forward_{base}", zero_output_for_mask=zero)
        if self.backward_layer is None:
            backward = _copy(
                layer,
                name=f"backward_{base}",
                go_backwards=not layer.go_backwards,
                zero_output_for_mask=zero,
            )
        else:
            backward = _copy(self.backward_layer, zero_output_for_mask=zero)
            if backward.go_backwards == forward.go_backwards:
                raise ValueError(
                    f"{owner}: `backward_layer` must have the opposite `go_backwards` "
                    f"of `layer` (both are {forward.go_backwards})."
                )
            for a in ("return_sequences", "return_state"):
                if getattr(backward, a) != getattr(forward, a):
                    raise ValueError(
                        f"{owner}: `layer` and `backward_layer` must agree on `{a}` "
                        f"(got {getattr(forward, a)} and {getattr(backward, a)})."
                    )
        self.__dict__["_fk_pair"] = (forward, backward)

    @property
    def forward_layer(self) -> Layer:
        """The forward copy of `layer` that the wrapper runs."""
        return self.__dict__["_fk_pair"][0]

    @property
    def return_sequences(self) -> bool:
        return self.layer.return_sequences

    @property
    def return_state(self) -> bool:
        return self.layer.return_state

    def _pair(self) -> tuple[Layer, Layer]:
        return self.__dict__["_fk_pair"]

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype,
            "layer": serialize_layer(self.layer),
            "merge_mode": self.merge_mode,
            "backward_layer": (
                None
                if self.backward_layer is None
                else serialize_layer(self.backward_layer)
            ),
        }

    def bind_call(
        self, sequences: Any, initial_state: Any = None, mask: Any = None
    ) -> tuple[Any, dict[str, Any]]:
        """Keras' `layer(sequences, initial_state=None, mask=None, training=None)`."""
        return self._pair()[0].bind_call(sequences, initial_state, mask)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        forward, backward = self._pair()
        k1, k2 = jax.random.split(key)
        spec = (
            input_spec.get("sequences") if isinstance(input_spec, dict) else input_spec
        )
        pf, _ = forward.init(k1, spec)
        pb, _ = backward.init(k2, spec)
        return {"forward_layer": pf, "backward_layer": pb}, {}

    def penalty(self, params: Params) -> Array:
        forward, backward = self._pair()
        return forward.penalty(params["forward_layer"]) + backward.penalty(
            params["backward_layer"]
        )

    def has_penalty(self) -> bool:
        return any(layer.has_penalty() for layer in self._pair())

    def apply(
        self,
        params: Params,
        state: State,
        x: Any,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
        sequence_mask: Any = None,
    ) -> tuple[Any, State]:
        forward, backward = self._pair()
        xf, xb = x, x
        if isinstance(x, dict) and x.get("initial_state") is not None:
            states = x["initial_state"]
            half = len(states) // 2
            xf = {**x, "initial_state": states[:half]}
            xb = {**x, "initial_state": states[half:]}
        kf, kb = jax.random.split(key) if key is not None else (None, None)
        y, _ = forward.apply(
            params["forward_layer"],
            {},
            xf,
            training=training,
            key=kf,
            sequence_mask=sequence_mask,
        )
        y_rev, _ = backward.apply(
            params["backward_layer"],
            {},
            xb,
            training=training,
            key=kb,
            sequence_mask=sequence_mask,
        )
        states: tuple[Any, ...] = ()
        if self.return_state:
            states = tuple(y[1:]) + tuple(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = jnp.flip(y_rev, axis=1)
        if self.merge_mode == "concat":
            out: Any = jnp.concatenate([y, y_rev], axis=-1)
        elif self.merge_mode == "sum":
            out = y + y_rev
        elif self.merge_mode == "ave":
            out = (y + y_rev) / 2
        elif self.merge_mode == "mul":
            out = y * y_rev
        else:
            out = [y, y_rev]
        if self.return_state:
            if self.merge_mode is None:
                return (y, y_rev, *states), state
            return (out, *states), state
        return out, state

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The input's mask on the output(s) when returning sequences (Keras)."""
        given = inputs.get("mask") if isinstance(inputs, dict) else None
        if given is None:
            found = [m for m in jax.tree.leaves(mask) if m is not None]
            given = found[0] if found else None
        output_mask = given if self.return_sequences else None
        outputs = [output_mask] * (2 if self.merge_mode is None else 1)
        if self.return_state:
            n = 2 * len(jax.tree.leaves(self._pair()[0].state_size))
            return outputs + [None] * n
        return outputs[0] if self.merge_mode is not None else outputs


@dataclass(eq=False)
class TimeDistributed(Layer):
    """Applies a layer to every time step of a sequence: Keras' `TimeDistributed`.

    The input `(batch, time, ...)` is folded to `(batch * time, ...)`, the
    layer runs once on that, and the result is unfolded: the same weights at
    every step. The sequence mask passes through.

    Args:
        layer: The layer to apply at each step (one input, one output; a
            recurrent layer with `return_state=True` is refused).

    Params: the wrapped layer's.

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> fk.layers.TimeDistributed(fk.layers.Dense(3))(jnp.ones((2, 5, 4))).shape
        (2, 5, 3)
    """

    supports_masking: ClassVar[bool] = True

    layer: Any

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.layer = deserialize_layer(owner, self.layer)
        if not isinstance(self.layer, Layer):
            raise TypeError(
                f"{owner}: `layer` must be a funkeras layer, got "
                f"{type(self.layer).__name__}."
            )
        if getattr(self.layer, "return_state", False):
            raise ValueError(
                f"{owner}: the wrapped {layer_label(self.layer)} has "
                "`return_state=True`; TimeDistributed applies a layer with one "
                "output per step. Set `return_state=False`."
            )

    @property
    def uses_key(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.layer, "uses_key", True))

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype,
            "layer": serialize_layer(self.layer),
        }

    def _inner_spec(self, input_spec: InputSpec) -> jax.ShapeDtypeStruct:
        spec = check_single_spec(self, input_spec)
        if len(spec.shape) < 2:
            raise ValueError(
                f"{layer_label(self)}: expected inputs of rank >= 3 (batch, time, "
                f"...), got shape {shape_str((None, *spec.shape))}."
            )
        return jax.ShapeDtypeStruct(tuple(spec.shape[1:]), spec.dtype)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        return self.layer.init(key, self._inner_spec(input_spec))

    def penalty(self, params: Params) -> Array:
        return self.layer.penalty(params)

    def has_penalty(self) -> bool:
        return self.layer.has_penalty()

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
        x = autocast(x, self.dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x
        if x.ndim < 3:
            raise ValueError(
                f"{layer_label(self)}: expected inputs of rank >= 3 (batch, time, "
                f"...), got x.shape={shape_str(x.shape)}."
            )
        batch, steps = x.shape[0], x.shape[1]
        folded = x.reshape((batch * steps, *x.shape[2:]))
        row_mask = None if mask is None else jnp.repeat(mask, steps)
        y, state = self.layer.apply(
            params, state, folded, training=training, key=key, mask=row_mask
        )
        return y.reshape((batch, steps, *y.shape[1:])), state
