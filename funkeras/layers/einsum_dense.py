"""`EinsumDense`: a dense layer written as an einsum equation (Keras 3's layer).

`y = activation(einsum(equation, x, kernel) + bias)`. The equation names the axes
of the input, the kernel and the output (`"ab,bc->ac"` is `Dense`); an ellipsis
stands for the axes the equation leaves alone (`"...b,bc->...c"`). The kernel's
shape is read from the equation, the input shape and `output_shape`, by Keras'
rule, so Keras weights load unchanged. `MultiHeadAttention` builds its query,
key, value and output projections from it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from funkeras import activations, initializers, regularizers
from funkeras._validation import check_int, shape_str
from funkeras.layers._common import autocast, check_single_spec, resolve
from funkeras.layers.base import Layer, is_known_dim, layer_label
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = ["EinsumDense", "analyze_einsum"]


def analyze_einsum(
    owner: str,
    equation: str,
    bias_axes: str | None,
    input_shape: Sequence[Any],
    output_shape: Sequence[Any],
) -> tuple[
    tuple[int, ...], tuple[int, ...] | None, tuple[Any, ...], list[int], list[int]
]:
    """Keras' shape rule for `EinsumDense`.

    Returns `(kernel_shape, bias_shape, full_output_shape, input_axes,
    output_axes)`: `input_shape` and the full output shape have the batch axis;
    `output_shape` is the layer's partial output shape (no batch axis);
    `input_axes`/`output_axes` are the kernel axes that contract with the input
    and that reach the output. Raises a ValueError naming `owner` when the
    equation and the shapes disagree.
    """
    replaced = re.sub(r"\.\.\.", "0", equation)
    left_elided = False
    split = re.fullmatch(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", replaced)
    if split is None:
        split = re.fullmatch(r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)", replaced)
        left_elided = split is not None
    if split is None:
        split = re.fullmatch(r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0", replaced)
    if split is None:
        raise ValueError(
            f"{owner}: invalid einsum `equation` {equation!r}. Equations must be in "
            "the form 'X,Y->Z', '...X,Y->...Z' or 'X...,Y->Z...' (letters only), "
            "e.g. 'ab,bc->ac'."
        )
    input_spec, weight_spec, output_spec = split.groups()
    input_shape = list(input_shape)
    elided = len(input_shape) - len(input_spec)
    if elided < 0 or (elided > 0 and "0" not in replaced):
        raise ValueError(
            f"{owner}: the equation {equation!r} names {len(input_spec)} input axes "
            f"(batch included) but the input has shape {shape_str(input_shape)} "
            f"(rank {len(input_shape)})."
        )
    out = [input_shape[0], *output_shape]
    if elided > 0 and left_elided:
        for i in range(1, elided):
            out.insert(1, input_shape[i])
    elif elided > 0:
        out.extend(input_shape[len(input_shape) - elided :])
    if len(out) != len(output_spec) + elided:
        raise ValueError(
            f"{owner}: `output_shape` {tuple(output_shape)} does not fit the "
            f"equation {equation!r}: the output '{output_spec}' has "
            f"{len(output_spec)} axes (batch included), so `output_shape` needs "
            f"{len(output_spec) - 1} entries (None for an axis taken from the input)."
        )
    if left_elided:
        input_map = {d: i + elided - len(input_shape) for i, d in enumerate(input_spec)}
        output_map = {d: i + elided for i, d in enumerate(output_spec)}
    else:
        input_map = {d: i for i, d in enumerate(input_spec)}
        output_map = {d: i for i, d in enumerate(output_spec)}
    for d in input_spec:
        size = input_shape[input_map[d]]
        if d in output_map:
            want = out[output_map[d]]
            if want is not None and is_known_dim(size) and want != size:
                raise ValueError(
                    f"{owner}: the input and the output share axis '{d}' of "
                    f"{equation!r}, but the input has {size} there and "
                    f"`output_shape` says {want}."
                )
            if want is None:
                out[output_map[d]] = size
    for d in output_spec:
        if d not in input_spec and d not in weight_spec:
            raise ValueError(
                f"{owner}: output axis '{d}' of {equation!r} is in neither the "
                f"input '{input_spec}' nor the weight '{weight_spec}'."
            )
    kernel: list[Any] = []
    input_axes: list[int] = []
    output_axes: list[int] = []
    for i, d in enumerate(weight_spec):
        if d in output_map:
            kernel.append(out[output_map[d]])
            output_axes.append(i)
        elif d in input_map:
            kernel.append(input_shape[input_map[d]])
            input_axes.append(i)
        else:
            raise ValueError(
                f"{owner}: weight axis '{d}' of {equation!r} is in neither the "
                f"input '{input_spec}' nor the output '{output_spec}'; the kernel "
                "must be fully specified."
            )
    for i, size in zip(weight_spec, kernel, strict=True):
        if size is None:
            raise ValueError(
                f"{owner}: the kernel axis '{i}' of {equation!r} has no size: give "
                "it in `output_shape` (it is not an input axis)."
            )
    bias = None
    if bias_axes:
        offset = elided if left_elided else 0
        sizes = {c: out[i + offset] for i, c in enumerate(output_spec)}
        for c in bias_axes:
            if c not in output_spec:
                raise ValueError(
                    f"{owner}: bias axis '{c}' is not an axis of the output "
                    f"'{output_spec}' of {equation!r}."
                )
        first = min(output_spec.find(c) for c in bias_axes)
        bias = [sizes[c] if c in bias_axes else 1 for c in output_spec[first:]]
        if not left_elided:
            bias += [1] * elided
        bias = tuple(bias)
    return tuple(kernel), bias, tuple(out), input_axes, output_axes


def _draw_kernel(
    init: Any,
    key: PRNGKey,
    shape: Sequence[int],
    input_axes: Sequence[int],
    output_axes: Sequence[int],
    dtype: str,
) -> Array:
    """Draw an einsum kernel with Keras' fans: the input axes give fan-in, the
    output axes fan-out (a plain initializer sees the 2D shape and is reshaped)."""
    order = [*input_axes, *output_axes]
    if not input_axes or not output_axes or sorted(order) != list(range(len(shape))):
        return init(key, tuple(shape), dtype)
    fan_in = math.prod(shape[i] for i in input_axes)
    fan_out = math.prod(shape[i] for i in output_axes)
    drawn = init(key, (fan_in, fan_out), dtype).reshape([shape[i] for i in order])
    # back from (input axes..., output axes...) to the kernel's own axis order
    return jnp.transpose(drawn, [order.index(i) for i in range(len(shape))])


@dataclass(eq=False)
class EinsumDense(Layer):
    """A dense layer given as an einsum equation (Keras' `EinsumDense`).

    `y = activation(einsum(equation, x, kernel) + bias)`.

    Args:
        equation: `"<input>,<kernel>-><output>"` in letters, one per axis, batch
            axis included; `...` stands for the axes left alone
            (`"...b,bc->...c"`).
        output_shape: The output shape without the batch axis (an int for one
            axis); `None` entries take the size of the input axis of that letter.
        activation: Activation name, callable or `None`.
        bias_axes: Letters of the output axes the bias spans (`"c"`), or `None`
            for no bias. The bias broadcasts over the other output axes.
        kernel_initializer: Initializer of `kernel`. Fans are counted as Keras
            does: the kernel axes that meet the input give fan-in, the others
            fan-out.
        bias_initializer: Initializer of `bias`.
        kernel_regularizer: Optional regularizer of `kernel`.
        bias_regularizer: Optional regularizer of `bias`.

    Params: `kernel` (shape from the equation), `bias` when `bias_axes` is set.
    State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import funkeras as fk
        >>> layer = fk.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 4),
        ...                               bias_axes="de")
        >>> spec = jax.ShapeDtypeStruct((5, 3), jnp.float32)
        >>> params, _ = layer.init(jax.random.key(0), spec)
        >>> params["kernel"].shape, params["bias"].shape
        ((3, 2, 4), (2, 4))
        >>> layer.apply(params, {}, jnp.ones((7, 5, 3)))[0].shape
        (7, 5, 2, 4)
    """

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = False

    equation: str
    output_shape: Any
    activation: Any = None
    bias_axes: str | None = None
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if not isinstance(self.equation, str):
            raise TypeError(
                f"{owner}: `equation` must be a str such as 'ab,bc->ac', got "
                f"{self.equation!r}."
            )
        shape = self.output_shape
        if isinstance(shape, int):
            shape = (shape,)
        if not isinstance(shape, tuple | list):
            raise TypeError(
                f"{owner}: `output_shape` must be an int or a tuple of ints (None "
                f"entries allowed), got {self.output_shape!r}."
            )
        self.output_shape = tuple(
            None if d is None else check_int(owner, "output_shape", d) for d in shape
        )
        if self.bias_axes is not None and not isinstance(self.bias_axes, str):
            raise TypeError(
                f"{owner}: `bias_axes` must be a str of output letters or None, got "
                f"{self.bias_axes!r}."
            )
        resolve(owner, "activation", self.activation, activations.get)
        resolve(owner, "kernel_initializer", self.kernel_initializer, initializers.get)
        resolve(owner, "bias_initializer", self.bias_initializer, initializers.get)
        resolve(owner, "kernel_regularizer", self.kernel_regularizer, regularizers.get)
        resolve(owner, "bias_regularizer", self.bias_regularizer, regularizers.get)

    def shapes(self, input_shape: Sequence[Any]) -> tuple[Any, ...]:
        """`analyze_einsum` for an input shape with the batch axis."""
        return analyze_einsum(
            layer_label(self),
            self.equation,
            self.bias_axes or None,
            input_shape,
            self.output_shape,
        )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        spec = check_single_spec(self, input_spec)
        kernel_shape, bias_shape, _, in_axes, out_axes = self.shapes(
            (None, *spec.shape)
        )
        kernel_key, bias_key = jax.random.split(key)
        params = {
            "kernel": _draw_kernel(
                initializers.get(self.kernel_initializer),
                kernel_key,
                kernel_shape,
                in_axes,
                out_axes,
                self.dtype,
            )
        }
        if bias_shape is not None:
            init_bias = initializers.get(self.bias_initializer)
            params["bias"] = init_bias(bias_key, bias_shape, self.dtype)
        return params, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        del training, key, mask
        x = autocast(x, self.dtype)
        kernel = params["kernel"]
        try:
            y = jnp.einsum(self.equation, x, kernel)
        except ValueError as e:
            raise ValueError(
                f"{layer_label(self)}: the equation {self.equation!r} does not fit "
                f"the input of shape {shape_str(x.shape)} and the kernel of shape "
                f"{shape_str(kernel.shape)}: {e}"
            ) from None
        if "bias" in params:
            y = y + params["bias"]
        return activations.get(self.activation)(y), state
