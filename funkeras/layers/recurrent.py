"""Recurrent layers: `SimpleRNN`, `LSTM`, `GRU`, their cells, and `RNN(cell)`.

Keras 3's names, arguments, defaults, weight names and layouts: a cell holds
`kernel` `(input_dim, gates * units)`, `recurrent_kernel` `(units, gates *
units)` and `bias`, gates in Keras' order (LSTM `i, f, c, o`; GRU `z, r, h`; a
GRU with `reset_after=True` has a `(2, 3 * units)` bias: input and recurrent).
The layer's params are its cell's (`params["lstm"]["kernel"]`); a stack of
cells (`RNN([cell_a, cell_b])`) keeps each under `cell_0`, `cell_1`, ...

The time loop is one `lax.scan`, so a 500-step sequence compiles as fast as a
5-step one. Each step of an LSTM or SimpleRNN cell is one fused matmul, `[x_t,
h] @ [kernel; recurrent_kernel]`, for every gate at once (the stacked kernel
is built once per call, outside the loop). The input projection is not
hoisted out of the loop: on CPU a hoisted `(time, batch, 4 * units)`
projection made the training step 3-4x slower (its cotangent is written
step by step in the backward loop); see `benchmarks/RESULTS.md`.

Sequence masks follow Keras: a masked step keeps the previous states, and its
output is the previous output (zeros with `zero_output_for_mask=True`). Dropout
masks (`dropout`, `recurrent_dropout`) are drawn once per call from the call's
key and used at every step, as Keras does; each cell draws one input and one
recurrent mask shared by its gates (Keras' LSTM/GRU with `recurrent_dropout`
draw one per gate: same distribution of outputs, other draws).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

import funkeras.layers as layers_package
from funkeras import activations, initializers, regularizers
from funkeras._validation import check_bool, check_float, check_int, shape_str
from funkeras.layers._common import autocast, check_single_spec, resolve
from funkeras.layers.base import Layer, layer_label
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "RNNCell",
    "SimpleRNNCell",
    "LSTMCell",
    "GRUCell",
    "RNN",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "is_recurrent",
    "serialize_layer",
    "deserialize_layer",
]

# How many steps one trip of the compiled loop runs (`lax.scan(unroll=...)`);
# `unroll=True` unrolls the whole sequence. Measured on CPU with the `lstm`
# benchmark (funkeras/bench/workloads_lstm.py).
SCAN_UNROLL = 1


def serialize_layer(layer: Layer) -> dict[str, Any]:
    """`fk.layers.serialize(layer)`: `{"class_name", "config"}` of a nested layer.

    Wrappers (`RNN(cell)`, `Bidirectional`, `TimeDistributed`) keep the layers
    they wrap in their config this way; the registry lookup behind it belongs
    to `funkeras.saving`, which attaches `serialize` to this package.
    """
    serialize = getattr(layers_package, "serialize", None)
    if serialize is None:
        raise RuntimeError(
            f"{layer_label(layer)}: serializing a wrapped layer needs "
            "`funkeras.saving` (import funkeras)."
        )
    return serialize(layer)


def deserialize_layer(owner: str, data: Any) -> Layer:
    """The layer `serialize_layer` described (a layer object passes through)."""
    if isinstance(data, Layer):
        return data
    deserialize = getattr(layers_package, "deserialize", None)
    if deserialize is None:
        raise RuntimeError(
            f"{owner}: rebuilding a wrapped layer needs `funkeras.saving` "
            "(import funkeras)."
        )
    return deserialize(data)


# ----------------------------------------------------------------------------
# Cells: one step of a recurrence.
# ----------------------------------------------------------------------------


def _dropout_mask(
    key: PRNGKey, rate: float, shape: tuple[Any, ...], dtype: Any
) -> Array:
    """Keras' dropout of ones: `1 / (1 - rate)` where kept, 0 elsewhere."""
    keep = 1.0 - rate
    return jnp.where(jax.random.bernoulli(key, keep, shape), 1.0 / keep, 0.0).astype(
        dtype
    )


@dataclass(eq=False)
class RNNCell(Layer):
    """Base of the built-in cells: one step `(x_t, states) -> (out_t, states)`.

    A cell is also a layer: `cell(x_t, states)` on arrays returns `(output,
    new_states)` as Keras' cells do, and `RNN(cell)` runs it over time. Cells
    split a step into `project` (the input projection, hoisted out of the time
    loop by `RNN`) and `recur` (what depends on the previous states).
    """

    uses_key: ClassVar[bool] = True
    gates: ClassVar[int] = 1

    # -- what a subclass provides -------------------------------------------------

    @property
    def state_size(self) -> list[int]:
        """The size of each state vector (Keras' `state_size`, always a list)."""
        return [self.units]

    @property
    def output_size(self) -> int:
        """The size of the output vector of a step."""
        return self.units

    def project(self, params: Params, x: Array) -> Array:
        """`x @ kernel (+ input bias)` for every gate at once, any leading axes."""
        y = jnp.matmul(x, params["kernel"])
        bias = self._input_bias(params)
        return y if bias is None else y + bias

    def recur(
        self, params: Params, xw: Array, states: list[Array], rec_mask: Array | None
    ) -> tuple[Array, list[Array]]:
        """One step from the projected input `xw` and the previous `states`."""
        raise TypeError(f"{type(self).__name__}: a cell class must define `recur`.")

    def _input_bias(self, params: Params) -> Array | None:
        return params.get("bias")

    def prepare(self, params: Params) -> Any:
        """What `step` reads, computed once per call outside the time loop."""
        return params

    def step(
        self, prepared: Any, x: Array, states: list[Array], rec_mask: Array | None
    ) -> tuple[Array, list[Array]]:
        """One whole step from the (dropped-out) input `x` of this step."""
        return self.recur(prepared, self.project(prepared, x), states, rec_mask)

    # -- shared -------------------------------------------------------------------

    _REGULARIZED: ClassVar[tuple[tuple[str, str], ...]] = (
        ("kernel", "kernel_regularizer"),
        ("recurrent_kernel", "recurrent_regularizer"),
        ("bias", "bias_regularizer"),
    )

    def penalty(self, params: Params) -> Array:
        """The regularizers' terms (Keras' `recurrent_regularizer` names the
        `recurrent_kernel`'s)."""
        total = jnp.zeros((), jnp.float32)
        for var, arg in self._REGULARIZED:
            reg = getattr(self, arg, None)
            if reg is not None and var in params:
                total = total + regularizers.get(reg)(params[var]).astype(jnp.float32)
        return total

    def has_penalty(self) -> bool:
        return any(getattr(self, arg, None) is not None for _, arg in self._REGULARIZED)

    def _check_common(self) -> None:
        owner = type(self).__name__
        self.units = check_int(owner, "units", self.units)
        check_bool(owner, "use_bias", self.use_bias)
        for arg in ("dropout", "recurrent_dropout"):
            setattr(
                self,
                arg,
                check_float(
                    owner,
                    arg,
                    getattr(self, arg),
                    low=0.0,
                    high=1.0,
                    high_inclusive=False,
                ),
            )
        for arg in ("activation", "recurrent_activation"):
            if hasattr(self, arg):
                resolve(owner, arg, getattr(self, arg), activations.get)
        for arg in ("kernel", "recurrent", "bias"):
            resolve(
                owner,
                f"{arg}_initializer",
                getattr(self, f"{arg}_initializer"),
                initializers.get,
            )
            resolve(
                owner,
                f"{arg}_regularizer",
                getattr(self, f"{arg}_regularizer"),
                regularizers.get,
            )

    def _bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def _init_bias(self, key: PRNGKey) -> Array:
        return initializers.get(self.bias_initializer)(
            key, self._bias_shape(), self.dtype
        )

    def build_params(self, key: PRNGKey, input_dim: int) -> Params:
        """The cell's weights for inputs of `input_dim` features."""
        k_kernel, k_rec, k_bias = jax.random.split(key, 3)
        width = self.gates * self.units
        params = {
            "kernel": initializers.get(self.kernel_initializer)(
                k_kernel, (input_dim, width), self.dtype
            ),
            "recurrent_kernel": initializers.get(self.recurrent_initializer)(
                k_rec, (self.units, width), self.dtype
            ),
        }
        if self.use_bias:
            params["bias"] = self._init_bias(k_bias)
        return params

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        spec = input_spec
        if isinstance(input_spec, dict) and "inputs" in input_spec:
            spec = input_spec["inputs"]
        elif isinstance(input_spec, list | tuple) and input_spec:
            spec = input_spec[0]
        spec = check_single_spec(self, spec)
        if len(spec.shape) != 1:
            raise ValueError(
                f"{layer_label(self)}: a cell takes one time step of shape "
                f"(batch, features), got {shape_str((None, *spec.shape))}. Wrap it "
                "in `RNN(cell)` to run it over a sequence."
            )
        return self.build_params(key, spec.shape[-1]), {}

    def dropout_masks(
        self,
        key: PRNGKey | None,
        training: bool,
        batch: Any,
        input_dim: int,
        dtype: Any,
    ) -> tuple[Array | None, Array | None]:
        """The input and recurrent dropout masks of one call (None when off)."""
        if not training or (self.dropout == 0.0 and self.recurrent_dropout == 0.0):
            return None, None
        if key is None:
            raise ValueError(
                f"{layer_label(self)}: dropout in training needs `key=`; models pass "
                "one per call node (fit does this for you)."
            )
        k_in, k_rec = jax.random.split(key)
        dp = (
            _dropout_mask(k_in, self.dropout, (batch, input_dim), dtype)
            if self.dropout > 0.0
            else None
        )
        rdp = (
            _dropout_mask(k_rec, self.recurrent_dropout, (batch, self.units), dtype)
            if self.recurrent_dropout > 0.0
            else None
        )
        return dp, rdp

    def bind_call(self, inputs: Any, states: Any) -> tuple[Any, dict[str, Any]]:
        """Keras' `cell(inputs, states)`: one step; states a list (or one array)."""
        if not isinstance(states, list | tuple):
            states = [states]
        return {"inputs": inputs, "states": list(states)}, {}

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
        del mask
        if isinstance(x, list | tuple) and len(x) >= 2:
            x = {"inputs": x[0], "states": list(x[1:])}
        if not isinstance(x, dict) or set(x) != {"inputs", "states"}:
            raise TypeError(
                f"{layer_label(self)}: a cell is called as `cell(inputs, states)` "
                "(apply's x: {'inputs': array, 'states': [arrays]}, or the list "
                "[inputs, *states])."
            )
        inputs = autocast(x["inputs"], self.dtype)
        states = [autocast(s, self.dtype) for s in x["states"]]
        _check_states(self, states, self.state_size, inputs.shape[0])
        dp, rdp = self.dropout_masks(
            key, training, inputs.shape[0], inputs.shape[-1], inputs.dtype
        )
        if dp is not None:
            inputs = inputs * dp
        out, new = self.step(self.prepare(params), inputs, states, rdp)
        return (out, new), state


def _check_states(
    layer: Layer, states: Sequence[Any], sizes: Sequence[int], batch: Any
) -> None:
    """A clear error for initial states of the wrong number or shape."""
    if len(states) != len(sizes):
        raise ValueError(
            f"{layer_label(layer)}: expected {len(sizes)} initial state tensor(s) "
            f"of sizes {list(sizes)}, got {len(states)}."
        )
    for i, (s, n) in enumerate(zip(states, sizes, strict=True)):
        shape = tuple(s.shape)
        bad = len(shape) != 2 or shape[1] != n
        if not bad and isinstance(shape[0], int) and isinstance(batch, int):
            bad = shape[0] != batch
        if bad:
            raise ValueError(
                f"{layer_label(layer)}: initial state {i} must have shape "
                f"(batch, {n}), got {shape_str(shape)}."
            )


@dataclass(eq=False)
class SimpleRNNCell(RNNCell):
    """One step of a fully connected RNN: `h = activation(x @ W + h @ U + b)`.

    Args:
        units: Positive int, size of the state and output.
        activation: Activation (default `"tanh"`).
        use_bias: Whether the cell has a bias.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras'
            defaults `"glorot_uniform"`, `"orthogonal"`, `"zeros"`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Optional.
        dropout: Fraction of the inputs dropped in training (one mask per call).
        recurrent_dropout: Fraction of the previous state dropped (one mask per call).

    Params: `kernel` `(input_dim, units)`, `recurrent_kernel` `(units, units)`,
    `bias` `(units,)`.

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> cell = fk.layers.SimpleRNNCell(3)
        >>> out, states = cell(jnp.ones((2, 4)), [jnp.zeros((2, 3))])
        >>> out.shape, len(states)
        ((2, 3), 1)
    """

    units: int
    activation: Any = "tanh"
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    recurrent_initializer: Any = "orthogonal"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    recurrent_regularizer: Any = None
    bias_regularizer: Any = None
    dropout: float = 0.0
    recurrent_dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_common()

    def recur(self, params, xw, states, rec_mask):
        h = states[0]
        if rec_mask is not None:
            h = h * rec_mask
        out = activations.get(self.activation)(xw + h @ params["recurrent_kernel"])
        return out, [out]

    def prepare(self, params):
        return _stacked_kernels(params)

    def step(self, prepared, x, states, rec_mask):
        h = states[0] if rec_mask is None else states[0] * rec_mask
        out = activations.get(self.activation)(_fused_matmul(prepared, x, h))
        return out, [out]


@dataclass(eq=False)
class LSTMCell(RNNCell):
    """One step of a long short-term memory (Hochreiter & Schmidhuber, 1997).

    Gates in Keras' order `i, f, c, o`: `z = x @ W + h @ U + b`, `c' = f * c +
    i * activation(z_c)`, `h' = o * activation(c')` with `i, f, o` through
    `recurrent_activation`.

    Args:
        units: Positive int, size of `h` and `c`.
        activation: Activation of the candidate and the output (`"tanh"`).
        recurrent_activation: Activation of the gates (`"sigmoid"`).
        use_bias: Whether the cell has a bias.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras'
            defaults `"glorot_uniform"`, `"orthogonal"`, `"zeros"`.
        unit_forget_bias: Add 1 to the forget gate's bias at initialization
            (Keras' default `True`).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Optional.
        dropout: Fraction of the inputs dropped in training (one mask per call).
        recurrent_dropout: Fraction of `h` dropped (one mask per call).

    Params: `kernel` `(input_dim, 4 * units)`, `recurrent_kernel` `(units, 4 *
    units)`, `bias` `(4 * units,)`. States: `[h, c]`.

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> cell = fk.layers.LSTMCell(3)
        >>> h, (h2, c) = cell(jnp.ones((2, 4)), [jnp.zeros((2, 3))] * 2)
        >>> h.shape, c.shape
        ((2, 3), (2, 3))
    """

    gates: ClassVar[int] = 4

    units: int
    activation: Any = "tanh"
    recurrent_activation: Any = "sigmoid"
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    recurrent_initializer: Any = "orthogonal"
    bias_initializer: Any = "zeros"
    unit_forget_bias: bool = True
    kernel_regularizer: Any = None
    recurrent_regularizer: Any = None
    bias_regularizer: Any = None
    dropout: float = 0.0
    recurrent_dropout: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_common()
        check_bool(type(self).__name__, "unit_forget_bias", self.unit_forget_bias)

    @property
    def state_size(self) -> list[int]:
        return [self.units, self.units]

    def _init_bias(self, key: PRNGKey) -> Array:
        init = initializers.get(self.bias_initializer)
        if not self.unit_forget_bias:
            return init(key, (4 * self.units,), self.dtype)
        k1, k2 = jax.random.split(key)
        return jnp.concatenate(
            [
                init(k1, (self.units,), self.dtype),
                jnp.ones((self.units,), self.dtype),
                init(k2, (2 * self.units,), self.dtype),
            ]
        )

    def prepare(self, params):
        return _stacked_kernels(params)

    def step(self, prepared, x, states, rec_mask):
        h = states[0] if rec_mask is None else states[0] * rec_mask
        return self._gates(_fused_matmul(prepared, x, h), states[1])

    def recur(self, params, xw, states, rec_mask):
        h, c = states
        if rec_mask is not None:
            h = h * rec_mask
        return self._gates(xw + h @ params["recurrent_kernel"], c)

    def _gates(self, z: Array, c: Array) -> tuple[Array, list[Array]]:
        u = self.units
        gate = activations.get(self.recurrent_activation)
        act = activations.get(self.activation)
        i = gate(z[:, :u])
        f = gate(z[:, u : 2 * u])
        c = f * c + i * act(z[:, 2 * u : 3 * u])
        o = gate(z[:, 3 * u :])
        h = o * act(c)
        return h, [h, c]


@dataclass(eq=False)
class GRUCell(RNNCell):
    """One step of a gated recurrent unit (Cho et al., 2014), Keras' gates `z, r, h`.

    `reset_after=True` (Keras 3's default, cuDNN-compatible) applies the reset
    gate after the recurrent matmul and keeps two biases (input and recurrent,
    `bias` of shape `(2, 3 * units)`); `reset_after=False` applies it before,
    with one bias `(3 * units,)`. `h' = z * h + (1 - z) * hh`.

    Args:
        units: Positive int, size of the state and output.
        activation: Activation of the candidate (`"tanh"`).
        recurrent_activation: Activation of the gates (`"sigmoid"`).
        use_bias: Whether the cell has biases.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras'
            defaults `"glorot_uniform"`, `"orthogonal"`, `"zeros"`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Optional.
        dropout: Fraction of the inputs dropped in training (one mask per call).
        recurrent_dropout: Fraction of `h` dropped (one mask per call).
        reset_after: Where the reset gate applies (see above).

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> cell = fk.layers.GRUCell(3, reset_after=False)
        >>> out, states = cell(jnp.ones((2, 4)), [jnp.zeros((2, 3))])
        >>> out.shape
        (2, 3)
    """

    gates: ClassVar[int] = 3

    units: int
    activation: Any = "tanh"
    recurrent_activation: Any = "sigmoid"
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    recurrent_initializer: Any = "orthogonal"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    recurrent_regularizer: Any = None
    bias_regularizer: Any = None
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    reset_after: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_common()
        check_bool(type(self).__name__, "reset_after", self.reset_after)

    def _bias_shape(self) -> tuple[int, ...]:
        width = 3 * self.units
        return (2, width) if self.reset_after else (width,)

    def _input_bias(self, params: Params) -> Array | None:
        bias = params.get("bias")
        if bias is None or not self.reset_after:
            return bias
        return bias[0]

    def recur(self, params, xw, states, rec_mask):
        h_prev = states[0]
        h = h_prev if rec_mask is None else h_prev * rec_mask
        u = self.units
        gate = activations.get(self.recurrent_activation)
        act = activations.get(self.activation)
        kernel = params["recurrent_kernel"]
        if self.reset_after:
            inner = h @ kernel
            if self.use_bias:
                inner = inner + params["bias"][1]
            z = gate(xw[:, :u] + inner[:, :u])
            r = gate(xw[:, u : 2 * u] + inner[:, u : 2 * u])
            hh = act(xw[:, 2 * u :] + r * inner[:, 2 * u :])
        else:
            inner = h @ kernel[:, : 2 * u]
            z = gate(xw[:, :u] + inner[:, :u])
            r = gate(xw[:, u : 2 * u] + inner[:, u:])
            hh = act(xw[:, 2 * u :] + (r * h) @ kernel[:, 2 * u :])
        out = z * h_prev + (1.0 - z) * hh
        return out, [out]


# ----------------------------------------------------------------------------
# The time loop.
# ----------------------------------------------------------------------------


def _stacked_kernels(params: Params) -> dict[str, Array]:
    """`[kernel; recurrent_kernel]` stacked once per call, for `_fused_matmul`."""
    fused = {"stacked": jnp.concatenate([params["kernel"], params["recurrent_kernel"]])}
    if "bias" in params:
        fused["bias"] = params["bias"]
    return fused


def _fused_matmul(fused: dict[str, Array], x: Array, h: Array) -> Array:
    """`x @ kernel + h @ recurrent_kernel (+ bias)` as one matmul of `[x, h]`.

    On CPU one step of an LSTM is bound by the number of kernels the loop body
    runs: one `(batch, in + units) @ (in + units, 4 * units)` beats two.
    """
    z = jnp.concatenate([x, h], axis=-1) @ fused["stacked"]
    return z + fused["bias"] if "bias" in fused else z


def _run(
    cells: list[RNNCell],
    params: list[Params],
    x: Array,
    initial: list[list[Array]],
    seq_mask: Array | None,
    drop: list[tuple[Array | None, Array | None]],
    *,
    go_backwards: bool,
    unroll: bool,
    return_sequences: bool,
    zero_output_for_mask: bool,
) -> tuple[Array, list[list[Array]]]:
    """Run `cells` (stacked) over `x` `(batch, time, features)` in one `lax.scan`."""
    # Time-major inputs; input dropout masks are one draw reused at every step.
    dp0 = drop[0][0]
    xs = jnp.swapaxes(x if dp0 is None else x * dp0[:, None, :], 0, 1)
    ms = None
    if seq_mask is not None:
        ms = jnp.swapaxes(seq_mask.astype(bool), 0, 1)[:, :, None]
    if go_backwards:
        xs = xs[::-1]
        ms = None if ms is None else ms[::-1]
    prepared = [cell.prepare(p) for cell, p in zip(cells, params, strict=True)]

    def step(carry, inputs):
        states, last = carry
        out, m = inputs
        new_states = []
        for i, (cell, prep) in enumerate(zip(cells, prepared, strict=True)):
            dp = drop[i][0] if i > 0 else None
            out, ns = cell.step(
                prep, out if dp is None else out * dp, states[i], drop[i][1]
            )
            new_states.append(ns)
        if m is not None:
            prev = jnp.zeros_like(out) if zero_output_for_mask else states[-1][0]
            out = jnp.where(m, out, prev)
            new_states = jax.tree.map(
                lambda n, o: jnp.where(m, n, o), new_states, list(states)
            )
        return (new_states, out), (out if return_sequences else None)

    batch = x.shape[0]
    last0 = jnp.zeros((batch, cells[-1].output_size), xs.dtype)
    length = xs.shape[0]
    steps = length if (unroll and isinstance(length, int)) else SCAN_UNROLL
    (final, last), outs = jax.lax.scan(
        step, (initial, last0), (xs, ms), unroll=max(1, steps)
    )
    if return_sequences:
        return jnp.swapaxes(outs, 0, 1), final
    return last, final


@dataclass(eq=False)
class _Recurrent(Layer):
    """What every recurrent layer shares: the call, masks, dropout, states."""

    uses_key: ClassVar[bool] = True
    consumes_sequence_mask: ClassVar[bool] = True

    def cells(self) -> list[RNNCell]:
        """The cells run at each step, bottom first."""
        raise TypeError(
            f"{type(self).__name__}: a recurrent layer must define `cells`."
        )

    def _stacked(self) -> bool:
        return False

    def _check_flags(self) -> None:
        owner = type(self).__name__
        for arg in (
            "return_sequences",
            "return_state",
            "go_backwards",
            "unroll",
            "zero_output_for_mask",
        ):
            check_bool(owner, arg, getattr(self, arg))

    @property
    def state_size(self) -> list[Any]:
        """Keras' `state_size`: one entry per state (a list per cell if stacked)."""
        sizes = [c.state_size for c in self.cells()]
        return sizes if self._stacked() else sizes[0]

    def _cell_params(self, params: Params) -> list[Params]:
        if self._stacked():
            return [params[f"cell_{i}"] for i in range(len(self.cells()))]
        return [params]

    # -- calling --------------------------------------------------------------------

    def bind_call(
        self, sequences: Any, initial_state: Any = None, mask: Any = None
    ) -> tuple[Any, dict[str, Any]]:
        """Keras' `layer(sequences, initial_state=None, mask=None, training=None)`.

        `initial_state` is a list of state tensors (`[h, c]` for an LSTM; a
        list per cell for a stack). A `mask` given here, a `(batch, time)`
        boolean, takes the place of a mask carried by the graph.
        """
        if initial_state is None and mask is None:
            return sequences, {}
        x: dict[str, Any] = {"sequences": sequences}
        if initial_state is not None:
            if not isinstance(initial_state, list | tuple):
                initial_state = [initial_state]
            x["initial_state"] = [
                list(s) if isinstance(s, list | tuple) else s for s in initial_state
            ]
        if mask is not None:
            x["mask"] = mask
        return x, {}

    def _split(self, x: Any, sequence_mask: Any) -> tuple[Any, Any, Any]:
        if isinstance(x, dict):
            if "sequences" not in x or set(x) - {"sequences", "initial_state", "mask"}:
                raise TypeError(
                    f"{layer_label(self)}: expected x to be the sequences, or a dict "
                    "with 'sequences' and optional 'initial_state' and 'mask', got "
                    f"keys {sorted(x)}."
                )
            seq_mask = x.get("mask")
            if seq_mask is None and isinstance(sequence_mask, dict):
                seq_mask = sequence_mask.get("sequences")
            return x["sequences"], x.get("initial_state"), seq_mask
        return x, None, sequence_mask

    def _check_sequences(self, shape: tuple[Any, ...]) -> None:
        if len(shape) != 3:
            raise ValueError(
                f"{layer_label(self)}: expected 3D inputs (batch, time, features), "
                f"got shape {shape_str(shape)}. "
                + (
                    "Add a time axis (e.g. `Reshape((steps, features))`, or "
                    "`RepeatVector(n)` to feed one vector n times)."
                    if len(shape) == 2
                    else ""
                )
            )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        spec = input_spec
        if isinstance(input_spec, dict):
            spec = input_spec.get("sequences")
            if spec is None:
                raise TypeError(
                    f"{layer_label(self)}: expected the input spec of the sequences "
                    f"(or a dict with 'sequences'), got keys {sorted(input_spec)}."
                )
        spec = check_single_spec(self, spec)
        self._check_sequences((None, *spec.shape))
        if self.unroll and not isinstance(spec.shape[0], int):
            raise ValueError(
                f"{layer_label(self)}: `unroll=True` needs a known number of time "
                "steps; give the time axis its size in `Input(shape=...)`."
            )
        cells = self.cells()
        keys = jax.random.split(key, len(cells))
        params = []
        input_dim = spec.shape[-1]
        for cell, k in zip(cells, keys, strict=True):
            params.append(cell.build_params(k, input_dim))
            input_dim = cell.output_size
        if self._stacked():
            return {f"cell_{i}": p for i, p in enumerate(params)}, {}
        return params[0], {}

    def penalty(self, params: Params) -> Array:
        total = jnp.zeros((), jnp.float32)
        for cell, p in zip(self.cells(), self._cell_params(params), strict=True):
            total = total + cell.penalty(p)
        return total

    def has_penalty(self) -> bool:
        return any(c.has_penalty() for c in self.cells())

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
        del mask  # the row mask: an RNN treats every row on its own
        sequences, initial, seq_mask = self._split(x, sequence_mask)
        sequences = autocast(sequences, self.dtype)
        self._check_sequences(tuple(sequences.shape))
        cells = self.cells()
        batch = sequences.shape[0]
        if seq_mask is not None and tuple(seq_mask.shape) != tuple(sequences.shape[:2]):
            raise ValueError(
                f"{layer_label(self)}: the sequence mask must have shape (batch, "
                f"time) = {shape_str(sequences.shape[:2])}, got "
                f"{shape_str(seq_mask.shape)}."
            )
        if initial is None:
            states = [
                [jnp.zeros((batch, n), sequences.dtype) for n in c.state_size]
                for c in cells
            ]
        else:
            states = self._initial_states(initial, batch, sequences.dtype)
        keys = (
            list(jax.random.split(key, len(cells)))
            if key is not None
            else [None] * len(cells)
        )
        drop = []
        input_dim = sequences.shape[-1]
        for cell, k in zip(cells, keys, strict=True):
            drop.append(
                cell.dropout_masks(k, training, batch, input_dim, sequences.dtype)
            )
            input_dim = cell.output_size
        out, final = _run(
            cells,
            self._cell_params(params),
            sequences,
            states,
            seq_mask,
            drop,
            go_backwards=self.go_backwards,
            unroll=self.unroll,
            return_sequences=self.return_sequences,
            zero_output_for_mask=self.zero_output_for_mask,
        )
        if not self.return_state:
            return out, state
        if self._stacked():
            return (out, *[list(s) for s in final]), state
        return (out, *final[0]), state

    def _initial_states(
        self, initial: Any, batch: Any, dtype: Any
    ) -> list[list[Array]]:
        cells = self.cells()
        if self._stacked():
            if len(initial) != len(cells):
                raise ValueError(
                    f"{layer_label(self)}: expected one list of initial states per "
                    f"cell ({len(cells)} cells), got {len(initial)} entries."
                )
            groups = [s if isinstance(s, list) else [s] for s in initial]
        else:
            groups = [list(initial)]
        out = []
        for cell, group in zip(cells, groups, strict=True):
            group = [autocast(jnp.asarray(s), dtype) for s in group]
            _check_states(self, group, cell.state_size, batch)
            out.append(group)
        return out

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The input's mask when returning sequences, else None (Keras)."""
        given = inputs.get("mask") if isinstance(inputs, dict) else None
        if given is None:
            found = [m for m in jax.tree.leaves(mask) if m is not None]
            given = found[0] if found else None
        output_mask = given if self.return_sequences else None
        if self.return_state:
            n = (
                len(self.cells())
                if self._stacked()
                else len(self.cells()[0].state_size)
            )
            return [output_mask] + [None] * n
        return output_mask


def is_recurrent(layer: Any) -> bool:
    """Whether `layer` is a recurrent layer (`RNN`, `LSTM`, `GRU`, `SimpleRNN`)."""
    return isinstance(layer, _Recurrent)


@dataclass(eq=False)
class RNN(_Recurrent):
    """Runs a cell (or a stack of cells) over the time axis: Keras' `RNN(cell)`.

    Args:
        cell: A cell (`SimpleRNNCell`, `LSTMCell`, `GRUCell`), or a list of cells,
            stacked as Keras' `StackedRNNCells` (each cell's output is the next
            cell's input; the last cell's output is the layer's output).
        return_sequences: Return the whole output sequence `(batch, time,
            units)` instead of the last output `(batch, units)`.
        return_state: Also return the final states (`out, *states`).
        go_backwards: Process the sequence backwards; the output sequence is in
            processing (reversed) order, as in Keras.
        unroll: Unroll the whole time loop (known length only): faster for
            short sequences, slower to compile for long ones.
        zero_output_for_mask: Masked steps output zeros instead of the previous
            output (set by `Bidirectional` when returning sequences).

    Call: `layer(sequences, initial_state=None, mask=None, training=None)`.
    `sequence_mask=` (apply) / a graph-carried mask: masked steps keep the
    previous states and output.

    Params: the cell's (`kernel`, `recurrent_kernel`, `bias`); a stack keeps
    each cell's under `cell_0`, `cell_1`, ...

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> layer = fk.layers.RNN([fk.layers.LSTMCell(4), fk.layers.GRUCell(2)])
        >>> layer(jnp.ones((3, 5, 6))).shape
        (3, 2)
    """

    cell: Any
    return_sequences: bool = False
    return_state: bool = False
    go_backwards: bool = False
    unroll: bool = False
    zero_output_for_mask: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        cells = self.cell if isinstance(self.cell, list | tuple) else [self.cell]
        cells = [deserialize_layer(owner, c) for c in cells]
        if not cells or not all(isinstance(c, RNNCell) for c in cells):
            got = [type(c).__name__ for c in cells]
            raise TypeError(
                f"{owner}: `cell` must be a cell (SimpleRNNCell, LSTMCell, GRUCell) "
                f"or a non-empty list of cells, got {got}."
            )
        self.cell = cells if isinstance(self.cell, list | tuple) else cells[0]
        self._check_flags()

    def cells(self) -> list[RNNCell]:
        return list(self.cell) if isinstance(self.cell, list) else [self.cell]

    def _stacked(self) -> bool:
        return isinstance(self.cell, list)

    def get_config(self) -> dict[str, Any]:
        return dict(
            name=self.name,
            trainable=self.trainable,
            dtype=self.dtype,
            cell=(
                [serialize_layer(c) for c in self.cell]
                if isinstance(self.cell, list)
                else serialize_layer(self.cell)
            ),
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            go_backwards=self.go_backwards,
            unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask,
        )


@dataclass(eq=False)
class _CellLayer(_Recurrent):
    """A recurrent layer that builds its own cell from its fields (LSTM, ...)."""

    cell_class: ClassVar[type[RNNCell]] = RNNCell
    layer_only: ClassVar[tuple[str, ...]] = (
        "return_sequences",
        "return_state",
        "go_backwards",
        "unroll",
        "zero_output_for_mask",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_flags()
        try:
            self.cells()  # validates the cell arguments now, named after the layer
        except (TypeError, ValueError) as e:
            cell_name = f"{self.cell_class.__name__}:"
            raise type(e)(
                str(e).replace(cell_name, f"{type(self).__name__}:", 1)
            ) from None

    def cells(self) -> list[RNNCell]:
        names = [
            f.name
            for f in dataclasses.fields(self.cell_class)
            if f.name not in ("name", "trainable")
        ]
        kwargs = {n: getattr(self, n) for n in names}
        return [self.cell_class(**kwargs)]

    @property
    def cell(self) -> RNNCell:
        """The cell this layer runs (a fresh object with the layer's arguments)."""
        return self.cells()[0]


@dataclass(eq=False)
class SimpleRNN(_CellLayer):
    """A fully connected RNN over a sequence: Keras' `SimpleRNN`.

    `h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)`.

    Args:
        units: Positive int, size of the output and state.
        activation, use_bias, kernel_initializer, recurrent_initializer,
        bias_initializer, kernel_regularizer, recurrent_regularizer,
        bias_regularizer, dropout, recurrent_dropout: as `SimpleRNNCell`.
        return_sequences: Return the whole output sequence `(batch, time,
            units)` instead of the last output `(batch, units)`.
        return_state: Also return the final states (`out, *states`).
        go_backwards: Process the sequence backwards; the output sequence is in
            processing (reversed) order, as in Keras.
        unroll: Unroll the whole time loop (known length only): faster for
            short sequences, slower to compile for long ones.
        zero_output_for_mask: Masked steps output zeros instead of the previous
            output (set by `Bidirectional` when returning sequences).

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> out, h = fk.layers.SimpleRNN(4, return_state=True)(jnp.ones((2, 5, 3)))
        >>> out.shape, h.shape
        ((2, 4), (2, 4))
    """

    cell_class: ClassVar[type[RNNCell]] = SimpleRNNCell

    units: int
    activation: Any = "tanh"
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    recurrent_initializer: Any = "orthogonal"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    recurrent_regularizer: Any = None
    bias_regularizer: Any = None
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    return_sequences: bool = False
    return_state: bool = False
    go_backwards: bool = False
    unroll: bool = False
    zero_output_for_mask: bool = False


@dataclass(eq=False)
class LSTM(_CellLayer):
    """Long short-term memory over a sequence: Keras' `LSTM`.

    Args:
        units: Positive int, size of the output and of the states `h`, `c`.
        activation, recurrent_activation, use_bias, kernel_initializer,
        recurrent_initializer, bias_initializer, unit_forget_bias,
        kernel_regularizer, recurrent_regularizer, bias_regularizer, dropout,
        recurrent_dropout: as `LSTMCell`.
        return_sequences: Return the whole output sequence `(batch, time,
            units)` instead of the last output `(batch, units)`.
        return_state: Also return the final states (`out, *states`).
        go_backwards: Process the sequence backwards; the output sequence is in
            processing (reversed) order, as in Keras.
        unroll: Unroll the whole time loop (known length only): faster for
            short sequences, slower to compile for long ones.
        zero_output_for_mask: Masked steps output zeros instead of the previous
            output (set by `Bidirectional` when returning sequences).

    Call: `lstm(x, initial_state=[h, c], mask=None, training=None)`; with
    `return_state=True` it returns `out, h, c`.

    Params: `kernel` `(features, 4 * units)`, `recurrent_kernel` `(units, 4 *
    units)`, `bias` `(4 * units,)`, gates `i, f, c, o` (Keras' layout).

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> inp = fk.Input(shape=(7, 3))
        >>> out, h, c = fk.layers.LSTM(4, return_state=True)(inp)
        >>> out.shape, c.shape
        ((None, 4), (None, 4))
        >>> fk.layers.LSTM(4, return_sequences=True)(jnp.ones((2, 7, 3))).shape
        (2, 7, 4)
    """

    cell_class: ClassVar[type[RNNCell]] = LSTMCell

    units: int
    activation: Any = "tanh"
    recurrent_activation: Any = "sigmoid"
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    recurrent_initializer: Any = "orthogonal"
    bias_initializer: Any = "zeros"
    unit_forget_bias: bool = True
    kernel_regularizer: Any = None
    recurrent_regularizer: Any = None
    bias_regularizer: Any = None
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    return_sequences: bool = False
    return_state: bool = False
    go_backwards: bool = False
    unroll: bool = False
    zero_output_for_mask: bool = False


@dataclass(eq=False)
class GRU(_CellLayer):
    """Gated recurrent unit over a sequence: Keras' `GRU`.

    Args:
        units: Positive int, size of the output and state.
        activation, recurrent_activation, use_bias, kernel_initializer,
        recurrent_initializer, bias_initializer, kernel_regularizer,
        recurrent_regularizer, bias_regularizer, dropout, recurrent_dropout,
        reset_after: as `GRUCell` (Keras 3's default `reset_after=True`).
        return_sequences: Return the whole output sequence `(batch, time,
            units)` instead of the last output `(batch, units)`.
        return_state: Also return the final states (`out, *states`).
        go_backwards: Process the sequence backwards; the output sequence is in
            processing (reversed) order, as in Keras.
        unroll: Unroll the whole time loop (known length only): faster for
            short sequences, slower to compile for long ones.
        zero_output_for_mask: Masked steps output zeros instead of the previous
            output (set by `Bidirectional` when returning sequences).

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> fk.layers.GRU(4, go_backwards=True)(jnp.ones((2, 5, 3))).shape
        (2, 4)
    """

    cell_class: ClassVar[type[RNNCell]] = GRUCell

    units: int
    activation: Any = "tanh"
    recurrent_activation: Any = "sigmoid"
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    recurrent_initializer: Any = "orthogonal"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    recurrent_regularizer: Any = None
    bias_regularizer: Any = None
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    reset_after: bool = True
    return_sequences: bool = False
    return_state: bool = False
    go_backwards: bool = False
    unroll: bool = False
    zero_output_for_mask: bool = False
