"""Attention layers: `MultiHeadAttention`, `GroupQueryAttention`, `Attention`,
`AdditiveAttention` (Keras 3's names, arguments, weights and numerics).

`MultiHeadAttention` and `GroupQueryAttention` take the path Keras takes: with
no dropout, no returned scores and one attention axis, the core is
`jax.nn.dot_product_attention` (XLA's fused attention; the cuDNN kernel on GPUs
where it applies); otherwise an explicit einsum with Keras' masked softmax, so
that dropout falls on the scores and the scores can be returned.

Sequence masks (`Embedding(mask_zero=True)`, `Masking`) are consumed as in
Keras: masked keys (value/key masks) get no weight; a query mask masks whole
rows of the scores and is passed on as the output's mask.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from funkeras import initializers, regularizers
from funkeras._validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    shape_str,
)
from funkeras.layers._common import autocast, resolve
from funkeras.layers.base import Layer, is_known_dim, layer_label
from funkeras.layers.einsum_dense import EinsumDense
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "MultiHeadAttention",
    "GroupedQueryAttention",
    "GroupQueryAttention",
    "Attention",
    "AdditiveAttention",
]

_TENSOR_ARGS = ("query", "value", "key", "attention_mask")
_MASK_ARGS = ("query_mask", "value_mask", "key_mask")


# ----------------------------------------------------------------------------
# Shared pieces: Keras' masked softmax, dropout, causal masks.
# ----------------------------------------------------------------------------


def _large_negative(dtype: Any) -> float:
    """What Keras' `Softmax` puts at masked positions."""
    return -3e4 if jnp.dtype(dtype) == jnp.float16 else -1e9


def _masked_softmax(scores: Array, mask: Array | None, axes: Sequence[int]) -> Array:
    """Keras' `Softmax(axis=axes)(scores, mask=mask)`: masked positions get no
    weight, and a row with every position masked is all zeros."""
    if mask is not None:
        scores = jnp.where(mask, scores, _large_negative(scores.dtype))
    axes = tuple(axes)
    if len(axes) > 1:
        out = jnp.exp(scores - jax.nn.logsumexp(scores, axis=axes, keepdims=True))
    else:
        out = jax.nn.softmax(scores, axis=axes[0])
    if mask is not None:
        out = jnp.where(mask, out, 0.0)
    return out.astype(scores.dtype)


def _dropout(x: Array, rate: float, key: PRNGKey | None, owner: Any) -> Array:
    if key is None:
        raise ValueError(
            f"{layer_label(owner)}: `dropout`={rate} in training needs a PRNG key; "
            "pass `key=` to `apply` (models and `fit` do it for you)."
        )
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def _causal_mask(q_len: Any, k_len: Any) -> Array:
    """`(1, T, S)` booleans, True where query position i may see key position j <= i."""
    rows = jnp.arange(q_len)[:, None]
    cols = jnp.arange(k_len)[None, :]
    return (rows >= cols)[None]


def _window_mask(q_len: Any, k_len: Any, window: int) -> Array:
    rows = jnp.arange(q_len)[:, None]
    cols = jnp.arange(k_len)[None, :]
    return (jnp.abs(rows - cols) < window)[None]


def _combine_masks(
    q_len: Any,
    k_len: Any,
    *,
    query_mask: Array | None,
    value_mask: Array | None,
    key_mask: Array | None,
    attention_mask: Array | None,
    use_causal_mask: bool,
    sliding_window: int | None,
) -> Array | None:
    """Keras' `_compute_attention_mask`: every mask ANDed into one `(B, T, S)`."""
    auto = None

    def both(a: Array | None, b: Array) -> Array:
        return b if a is None else a & b

    if query_mask is not None:
        auto = both(auto, jnp.asarray(query_mask).astype(bool)[..., None])
    if value_mask is not None:
        auto = both(auto, jnp.asarray(value_mask).astype(bool)[..., None, :])
    if key_mask is not None:
        auto = both(auto, jnp.asarray(key_mask).astype(bool)[..., None, :])
    if use_causal_mask:
        auto = both(auto, _causal_mask(q_len, k_len))
    if sliding_window is not None:
        auto = both(auto, _window_mask(q_len, k_len, sliding_window))
    if attention_mask is not None:
        attention_mask = jnp.asarray(attention_mask).astype(bool)
    if auto is not None:
        attention_mask = auto if attention_mask is None else attention_mask & auto
    return attention_mask


def _expand_mask(mask: Array, rank: int, n_attn_axes: int) -> Array:
    """Insert the head axis (and any other missing axes) as Keras does."""
    axis = -n_attn_axes * 2 - 1
    while mask.ndim < rank:
        mask = jnp.expand_dims(mask, axis)
    return mask


def _spec_shape(spec: Any) -> tuple[Any, ...] | None:
    return None if spec is None else (None, *spec.shape)


def _check_mask_shape(
    layer: Any,
    mask_shape: Sequence[Any],
    scores_shape: Sequence[Any],
    n_attn_axes: int,
    what: str,
) -> None:
    """A clear error if a mask (batch axis first) does not broadcast to the scores."""
    shape = list(mask_shape)
    ok = len(shape) <= len(scores_shape) and len(shape) >= 1
    if ok:
        axis = len(shape) + 1 - n_attn_axes * 2 - 1
        while len(shape) < len(scores_shape):
            shape.insert(axis if axis >= 0 else len(shape) + 1 + axis, 1)
        for m, s in zip(shape[1:], scores_shape[1:], strict=True):
            if is_known_dim(m) and is_known_dim(s) and m not in (1, s):
                ok = False
    if not ok:
        raise ValueError(
            f"{layer_label(layer)}: `{what}` has shape {shape_str(tuple(mask_shape))}, "
            "which does not broadcast to the attention scores of shape "
            f"{shape_str(tuple(scores_shape))} (batch, heads, query positions, "
            "key positions). Give it shape (batch, query positions, key positions), "
            f"here {shape_str((None, *scores_shape[-2 * n_attn_axes :]))}."
        )


def _dot_product_attention(
    q: Array,
    k: Array,
    v: Array,
    mask: Array | None,
    scale: float,
    is_causal: bool,
    flash_attention: bool | None,
) -> Array:
    """`jax.nn.dot_product_attention` on `(B, T, N, H)` projections."""
    implementation = {True: "cudnn", False: "xla", None: None}[flash_attention]
    return jax.nn.dot_product_attention(
        q,
        k,
        v,
        mask=mask,
        scale=scale,
        is_causal=is_causal,
        implementation=implementation,
    )


def _flat_masks(x: Any, sequence_mask: Any) -> tuple[Any, Any, Any]:
    """`(query_mask, value_mask, key_mask)` from explicit masks or sequence masks."""
    seq = sequence_mask if isinstance(sequence_mask, dict) else {}
    found = []
    for name, arg in zip(("query", "value", "key"), _MASK_ARGS, strict=True):
        m = x.get(arg)
        if m is None:
            m = seq.get(name)
        found.append(m)
    if x.get("key") is None:
        found[2] = None  # Keras ignores a key mask when key is value
    return found[0], found[1], found[2]


def _bind_mha(
    layer: Any,
    query: Any,
    value: Any,
    key: Any = None,
    query_mask: Any = None,
    value_mask: Any = None,
    key_mask: Any = None,
    attention_mask: Any = None,
    return_attention_scores: bool = False,
    use_causal_mask: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    owner = layer_label(layer)
    check_bool(owner, "return_attention_scores", return_attention_scores)
    check_bool(owner, "use_causal_mask", use_causal_mask)
    x = {
        "query": query,
        "value": value,
        "key": key,
        "attention_mask": attention_mask,
        "query_mask": query_mask,
        "value_mask": value_mask,
        "key_mask": key_mask,
    }
    return x, {
        "return_attention_scores": bool(return_attention_scores),
        "use_causal_mask": bool(use_causal_mask),
    }


def _mha_inputs(layer: Any, x: Any) -> dict[str, Any]:
    if not isinstance(x, dict) or x.get("query") is None or x.get("value") is None:
        raise TypeError(
            f"{layer_label(layer)}: expected the inputs as a dict with at least "
            "'query' and 'value' (and optionally 'key', 'attention_mask'), got "
            f"{type(x).__name__}. Call the layer as `layer(query, value)`."
        )
    unknown = sorted(set(x) - set(_TENSOR_ARGS) - set(_MASK_ARGS))
    if unknown:
        raise TypeError(
            f"{layer_label(layer)}: unexpected inputs {unknown}; expected "
            f"{list(_TENSOR_ARGS + _MASK_ARGS)}."
        )
    return x


def _check_query_value_key(layer: Any, spec: dict[str, Any]) -> tuple[Any, Any, Any]:
    q, v = spec["query"], spec["value"]
    k = spec.get("key") or v
    label = layer_label(layer)
    if len(q.shape) < 2 or len(v.shape) < 2:
        raise ValueError(
            f"{label}: expected `query` and `value` of rank >= 3 (batch, positions, "
            f"features), got query {shape_str(_spec_shape(q))} and value "
            f"{shape_str(_spec_shape(v))}."
        )
    if tuple(v.shape[:-1]) != tuple(k.shape[:-1]):
        raise ValueError(
            f"{label}: all dimensions of `value` and `key`, except the last one, "
            f"must be equal; got value {shape_str(_spec_shape(v))} and key "
            f"{shape_str(_spec_shape(k))}."
        )
    if len(q.shape) != len(v.shape):
        raise ValueError(
            f"{label}: `query` and `value` must have the same rank; got query "
            f"{shape_str(_spec_shape(q))} and value {shape_str(_spec_shape(v))}."
        )
    return q, v, k


def _check_seq_masks(layer: Any, q: Any, v: Any, masks: Sequence[Any]) -> None:
    """Sequence masks must be (batch, positions) for their tensor."""
    for name, m, t in zip(_MASK_ARGS, masks, (q, v, v), strict=True):
        if m is None:
            continue
        want = tuple(t.shape[:-1])
        got = tuple(m.shape)
        if got != want and not (
            len(got) == len(want)
            and all(
                not is_known_dim(a) or not is_known_dim(b) or a == b
                for a, b in zip(got, want, strict=True)
            )
        ):
            raise ValueError(
                f"{layer_label(layer)}: `{name}` has shape {shape_str(got)}; expected "
                f"{shape_str(want)} (batch and positions of its tensor)."
            )


def _penalty(layer: Any, params: Params) -> Array:
    total = jnp.zeros((), jnp.float32)
    for name in ("kernel", "bias"):
        reg = getattr(layer, f"{name}_regularizer", None)
        if reg is None:
            continue
        fn = regularizers.get(reg)
        for sub in params.values():
            if isinstance(sub, dict) and name in sub:
                total = total + fn(sub[name]).astype(jnp.float32)
    return total


# ----------------------------------------------------------------------------
# Keras' equation builders.
# ----------------------------------------------------------------------------


def _init_projections(
    layer: Any, projs: dict[str, Any], inputs: dict[str, Any], key: PRNGKey
) -> Params:
    """The params of an attention layer's projections, one key each, in
    `layer.weight_order` (projections the layer does not use are skipped)."""
    keys = jax.random.split(key, len(layer.weight_order))
    return {
        name: projs[name].init(keys[i], inputs[name])[0]
        for i, name in enumerate(layer.weight_order)
        if name in projs
    }


def _attention_inputs(
    layer: Any,
    x: Any,
    sequence_mask: Any,
    use_causal_mask: bool,
    *,
    check_specs: bool = False,
) -> tuple[Array, Array, Array, Array | None, bool]:
    """`(query, value, key, attention_mask, causal_only)` for one call of a
    multi-head layer: the inputs cast to the layer's dtype (key defaults to
    value), and every mask (sequence masks, `attention_mask`, causal, sliding
    window) combined into one, unless the only mask is causal (`causal_only`:
    the fused kernel then builds it itself)."""
    x = _mha_inputs(layer, x)
    query = autocast(x["query"], layer.dtype)
    value = autocast(x["value"], layer.dtype)
    given_key = x.get("key")
    key_in = value if given_key is None else autocast(given_key, layer.dtype)
    qm, vm, km = _flat_masks(x, sequence_mask)
    am = x.get("attention_mask")
    if check_specs:
        spec = {
            n: None if t is None else jax.ShapeDtypeStruct(t.shape[1:], t.dtype)
            for n, t in (("query", query), ("value", value), ("key", given_key))
        }
        _check_query_value_key(layer, spec)
    causal_only = (
        use_causal_mask
        and qm is None
        and vm is None
        and km is None
        and am is None
        and layer.sliding_window is None
    )
    if not causal_only:
        am = _combine_masks(
            query.shape[1],
            value.shape[1],
            query_mask=qm,
            value_mask=vm,
            key_mask=km,
            attention_mask=am,
            use_causal_mask=use_causal_mask,
            sliding_window=layer.sliding_window,
        )
    return query, value, key_in, am, causal_only


def _letter(i: int) -> str:
    return string.ascii_lowercase[i]


def _proj_equation(
    free_dims: int, bound_dims: int, output_dims: int
) -> tuple[str, str, int]:
    inp = kernel = out = bias = ""
    offset = 0
    for i in range(free_dims):
        inp += _letter(i + offset)
        out += _letter(i + offset)
    offset += free_dims
    for i in range(bound_dims):
        inp += _letter(i + offset)
        kernel += _letter(i + offset)
    offset += bound_dims
    for i in range(output_dims):
        kernel += _letter(i + offset)
        out += _letter(i + offset)
        bias += _letter(i + offset)
    return f"{inp},{kernel}->{out}", bias, len(out)


def _output_shape(output_rank: int, known: Sequence[int]) -> tuple[Any, ...]:
    return (None,) * (output_rank - len(known)) + tuple(known)


def _attention_equations(rank: int, attn_axes: tuple[int, ...]) -> tuple[str, str, int]:
    target = "".join(_letter(i) for i in range(rank))
    batch_dims = [i for i in range(rank) if i not in (*attn_axes, rank - 1)]
    offset = rank
    source = ""
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += _letter(offset)
            offset += 1
    product = "".join(
        [target[i] for i in batch_dims]
        + [target[i] for i in attn_axes]
        + [source[i] for i in attn_axes]
    )
    return (
        f"{source},{target}->{product}",
        f"{product},{source}->{target}",
        len(product),
    )


# ----------------------------------------------------------------------------
# MultiHeadAttention.
# ----------------------------------------------------------------------------


@dataclass(eq=False)
class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al., 2017), Keras' `MultiHeadAttention`.

    Projects `query`, `key` and `value` into `num_heads` heads, attends with
    scaled dot products (`1/sqrt(key_dim)`), and projects the heads back to the
    query's last size (or `output_shape`). Called as
    `mha(query, value, key=None, attention_mask=None, use_causal_mask=False,
    return_attention_scores=False, training=None)`; with
    `return_attention_scores=True` it returns `(output, scores)`, the scores of
    shape `(batch, num_heads, T, S)`.

    Args:
        num_heads: Number of attention heads.
        key_dim: Size of each head for query and key (required).
        value_dim: Size of each head for value (default `key_dim`).
        dropout: Dropout rate on the attention scores (training only).
        use_bias: Whether the projections have biases.
        output_shape: The output's shape past the batch and position axes
            (an int or tuple); default: the query's last size.
        attention_axes: Axes of the projected tensors that attention runs over
            (default: every axis but batch, heads and features).
        sliding_window: Optional int: a query position sees only keys within
            `sliding_window - 1` positions (a band; with `use_causal_mask` the
            causal band).
        flash_attention: `None` lets JAX choose the fused kernel; `True` asks for
            cuDNN's (GPU), `False` for XLA's.
        kernel_initializer, bias_initializer: Initializers of the projections.
        kernel_regularizer, bias_regularizer: Optional regularizers of them.
        use_gate: Gate the heads with `sigmoid(query @ gate)` before the output
            projection (adds a `gate` projection).

    Call arguments:
        query: `(batch, T, dim)`; value: `(batch, S, dim_v)`; key: like value
            (default: value). attention_mask: booleans `(batch, T, S)`, True
            where a query position may attend. `value_mask`/`key_mask`:
            `(batch, S)` key masks; `query_mask` `(batch, T)`. A sequence mask
            carried by the graph (`Embedding(mask_zero=True)`) is used the same
            way.

    Params: `query`, `key`, (`gate`), `value`, `attention_output`, each an
    `EinsumDense` `{"kernel", "bias"}`: query kernel `(dim, num_heads, key_dim)`,
    output kernel `(num_heads, value_dim, dim)`, as in Keras. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> fk.utils.set_random_seed(0)
        >>> mha = fk.layers.MultiHeadAttention(num_heads=2, key_dim=4)
        >>> x = jnp.ones((1, 5, 8))
        >>> y, scores = mha(x, x, use_causal_mask=True, return_attention_scores=True)
        >>> y.shape, scores.shape
        ((1, 5, 8), (1, 2, 5, 5))
        >>> round(float(scores[0, 0, 0, 1]), 3)  # causal: position 0 sees only itself
        0.0
    """

    consumes_sequence_mask: ClassVar[bool] = True
    weight_order: ClassVar[tuple[str, ...]] = (
        "query",
        "key",
        "gate",
        "value",
        "attention_output",
    )

    num_heads: int
    key_dim: int | None = None
    value_dim: int | None = None
    dropout: float = 0.0
    use_bias: bool = True
    output_shape: Any = None
    attention_axes: Any = None
    sliding_window: int | None = None
    flash_attention: bool | None = None
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None
    use_gate: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.num_heads = check_int(owner, "num_heads", self.num_heads)
        if self.key_dim is None:
            raise TypeError(
                f"{owner}: `key_dim` is required (the size of each attention head "
                "for query and key), got None; e.g. "
                f"`{owner}(num_heads={self.num_heads}, key_dim=64)`."
            )
        self.key_dim = check_int(owner, "key_dim", self.key_dim)
        if self.value_dim is not None:
            self.value_dim = check_int(owner, "value_dim", self.value_dim)
        self.dropout = check_float(
            owner, "dropout", self.dropout, low=0.0, high=1.0, high_inclusive=False
        )
        check_bool(owner, "use_bias", self.use_bias)
        check_bool(owner, "use_gate", self.use_gate)
        if self.flash_attention is not None:
            check_bool(owner, "flash_attention", self.flash_attention)
            if self.flash_attention and self.dropout > 0:
                raise ValueError(
                    f"{owner}: dropout is not supported with `flash_attention=True`; "
                    "set `dropout=0.0` or `flash_attention=None`."
                )
        if self.output_shape is not None:
            shape = self.output_shape
            shape = (shape,) if isinstance(shape, int) else shape
            if not isinstance(shape, tuple | list):
                raise TypeError(
                    f"{owner}: `output_shape` must be an int, tuple or list, got "
                    f"{self.output_shape!r}."
                )
            self.output_shape = tuple(
                check_int(owner, "output_shape", d) for d in shape
            )
        if self.attention_axes is not None:
            axes = self.attention_axes
            axes = (axes,) if isinstance(axes, int) else axes
            if not isinstance(axes, tuple | list):
                raise TypeError(
                    f"{owner}: `attention_axes` must be an int, list or tuple, got "
                    f"{self.attention_axes!r}."
                )
            self.attention_axes = tuple(
                check_int(owner, "attention_axes", a, minimum=None) for a in axes
            )
        if self.sliding_window is not None:
            self.sliding_window = check_int(
                owner, "sliding_window", self.sliding_window
            )
        resolve(owner, "kernel_initializer", self.kernel_initializer, initializers.get)
        resolve(owner, "bias_initializer", self.bias_initializer, initializers.get)
        resolve(owner, "kernel_regularizer", self.kernel_regularizer, regularizers.get)
        resolve(owner, "bias_regularizer", self.bias_regularizer, regularizers.get)

    # -- structure ----------------------------------------------------------------

    @property
    def _value_dim(self) -> int:
        return self.value_dim or self.key_dim

    def _dense(
        self, equation: str, shape: Sequence[Any], bias: str, activation: Any = None
    ) -> EinsumDense:
        return EinsumDense(
            equation,
            output_shape=tuple(shape),
            activation=activation,
            bias_axes=bias if self.use_bias else None,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            dtype=self.dtype,
        )

    def projections(
        self, q_rank: int, v_rank: int, k_rank: int, q_dim: int
    ) -> dict[str, EinsumDense]:
        """The `EinsumDense` projections for inputs of these ranks (batch included)."""
        n, kd, vd = self.num_heads, self.key_dim, self._value_dim
        out: dict[str, EinsumDense] = {}
        eq, bias, r = _proj_equation(q_rank - 1, 1, 2)
        out["query"] = self._dense(eq, _output_shape(r - 1, [n, kd]), bias)
        eq, bias, r = _proj_equation(k_rank - 1, 1, 2)
        out["key"] = self._dense(eq, _output_shape(r - 1, [n, kd]), bias)
        if self.use_gate:
            eq, bias, r = _proj_equation(q_rank - 1, 1, 2)
            out["gate"] = self._dense(
                eq, _output_shape(r - 1, [n, vd]), bias, activation="sigmoid"
            )
        eq, bias, r = _proj_equation(v_rank - 1, 1, 2)
        out["value"] = self._dense(eq, _output_shape(r - 1, [n, vd]), bias)
        final = self.output_shape or (q_dim,)
        eq, bias, r = _proj_equation(q_rank - 1, 2, len(final))
        out["attention_output"] = self._dense(eq, _output_shape(r - 1, final), bias)
        return out

    def _attn_axes(self, rank: int) -> tuple[int, ...]:
        if self.attention_axes is None:
            return tuple(range(1, rank - 2))
        return tuple(a if a >= 0 else (rank - 1) + a for a in self.attention_axes)

    def _scores_shape(
        self, q_shape: Sequence[Any], k_shape: Sequence[Any]
    ) -> tuple[Any, ...]:
        """The attention scores' shape (batch first) for query/key shapes."""
        rank = len(q_shape) + 1
        dot, _, _ = _attention_equations(rank, self._attn_axes(rank))
        tgt = (*q_shape[:-1], self.num_heads, self.key_dim)
        src = (*k_shape[:-1], self.num_heads, self.key_dim)
        src_l, rest = dot.split(",")
        tgt_l, prod_l = rest.split("->")
        sizes = dict(zip(src_l, src, strict=True)) | dict(zip(tgt_l, tgt, strict=True))
        return tuple(sizes[c] for c in prod_l)

    # -- the protocol -------------------------------------------------------------

    def bind_call(
        self,
        query: Any,
        value: Any,
        key: Any = None,
        query_mask: Any = None,
        value_mask: Any = None,
        key_mask: Any = None,
        attention_mask: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> tuple[Any, dict[str, Any]]:
        return _bind_mha(
            self,
            query,
            value,
            key,
            query_mask,
            value_mask,
            key_mask,
            attention_mask,
            return_attention_scores,
            use_causal_mask,
        )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        spec = _mha_inputs(self, input_spec)
        q, v, k = _check_query_value_key(self, spec)
        rank = len(q.shape) + 2  # batch and heads
        axes = self._attn_axes(rank)
        if any(not 1 <= a < rank - 2 for a in axes):
            raise ValueError(
                f"{layer_label(self)}: `attention_axes`={self.attention_axes} must "
                f"name axes of the inputs past the batch axis and before the "
                f"feature axis (1 to {rank - 3} for inputs of rank {rank - 1})."
            )
        _check_seq_masks(self, q, v, [spec.get(m) for m in _MASK_ARGS])
        am = spec.get("attention_mask")
        if am is not None:
            scores = self._scores_shape((None, *q.shape), (None, *k.shape))
            _check_mask_shape(
                self, (None, *am.shape), scores, len(axes), "attention_mask"
            )
        projs = self.projections(
            len(q.shape) + 1, len(v.shape) + 1, len(k.shape) + 1, q.shape[-1]
        )
        q_proj = projs["query"].shapes((None, *q.shape))[2]
        inputs = {
            "query": q,
            "key": k,
            "gate": q,
            "value": v,
            "attention_output": jax.ShapeDtypeStruct(
                (*q_proj[1:-1], self._value_dim), q.dtype
            ),
        }
        return _init_projections(self, projs, inputs, key), {}

    def penalty(self, params: Params) -> Array:
        return _penalty(self, params)

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
        use_causal_mask: bool = False,
        return_attention_scores: bool = False,
    ) -> tuple[Any, State]:
        del mask
        query, value, key_in, am, causal_only = _attention_inputs(
            self, x, sequence_mask, use_causal_mask, check_specs=True
        )
        projs = self.projections(query.ndim, value.ndim, key_in.ndim, query.shape[-1])
        run = {n: (lambda t, n=n: projs[n].apply(params[n], {}, t)[0]) for n in projs}
        gate = run["gate"](query) if self.use_gate else None
        q, k, v = run["query"](query), run["key"](key_in), run["value"](value)
        out, scores = self._attend(
            q, k, v, am, causal_only, training, key, return_attention_scores
        )
        if gate is not None:
            out = out * gate
        out = run["attention_output"](out)
        if return_attention_scores:
            return (out, scores), state
        return out, state

    def _attend(
        self,
        q: Array,
        k: Array,
        v: Array,
        am: Array | None,
        causal_only: bool,
        training: bool,
        key: PRNGKey | None,
        return_scores: bool,
    ) -> tuple[Array, Array | None]:
        scale = 1.0 / float(self.key_dim) ** 0.5
        rank = q.ndim
        axes = self._attn_axes(rank)
        # jax.nn.dot_product_attention wants one head size for keys and values
        # (Keras' fused path fails there; the einsum path serves it).
        same_dims = self._value_dim == self.key_dim
        if not (self.dropout > 0.0 or return_scores or rank != 4 or not same_dims):
            if am is not None:
                am = _expand_mask(am, 4, len(axes)).astype(bool)
            out = _dot_product_attention(
                q, k, v, am, scale, causal_only, self.flash_attention
            )
            return out, None
        if causal_only:
            am = _causal_mask(q.shape[1], v.shape[1])
        dot, combine, scores_rank = _attention_equations(rank, axes)
        q = q * jnp.asarray(scale, q.dtype)
        scores = jnp.einsum(dot, k, q)
        if am is not None:
            am = _expand_mask(am, scores.ndim, len(axes))
        norm = tuple(range(scores_rank - len(axes), scores_rank))
        scores = _masked_softmax(scores, am, norm)
        dropped = scores
        if self.dropout > 0.0 and training:
            dropped = _dropout(scores, self.dropout, key, self)
        return jnp.einsum(combine, dropped, v), scores

    def compute_mask(self, inputs: Any, mask: Any = None, **options: Any) -> Any:
        """The output's mask is the query's (Keras); None for the scores."""
        qm = None
        if isinstance(inputs, dict) and inputs.get("query_mask") is not None:
            qm = inputs["query_mask"]
        elif isinstance(mask, dict):
            qm = mask.get("query")
        if options.get("return_attention_scores"):
            return [qm, None]
        return qm


# ----------------------------------------------------------------------------
# GroupQueryAttention.
# ----------------------------------------------------------------------------


@dataclass(eq=False)
class GroupedQueryAttention(Layer):
    """Grouped-query attention (Ainslie et al., 2023), Keras' `GroupQueryAttention`.

    `num_query_heads` query heads share `num_key_value_heads` key/value heads
    (each key/value head serves `num_query_heads // num_key_value_heads` query
    heads); with as many key/value heads as query heads it is multi-head
    attention, with one it is multi-query attention. Called like
    `MultiHeadAttention` on `(batch, T, dim)` query and `(batch, S, dim)` value;
    the output has the query's shape.

    Args:
        head_dim: Size of each head.
        num_query_heads: Number of query heads.
        num_key_value_heads: Number of key/value heads (divides
            `num_query_heads`).
        dropout, use_bias, sliding_window, flash_attention, kernel_initializer,
        bias_initializer, kernel_regularizer, bias_regularizer, use_gate: as in
            `MultiHeadAttention`.

    Params: `query` kernel `(dim, num_query_heads, head_dim)`, `key` and `value`
    kernels `(dim, num_key_value_heads, head_dim)`, `attention_output` kernel
    `(num_query_heads, head_dim, dim)`, with biases as in Keras.

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> fk.utils.set_random_seed(0)
        >>> gqa = fk.layers.GroupQueryAttention(head_dim=4, num_query_heads=4,
        ...                                     num_key_value_heads=2)
        >>> gqa(jnp.ones((2, 5, 8)), jnp.ones((2, 3, 8))).shape
        (2, 5, 8)
    """

    consumes_sequence_mask: ClassVar[bool] = True
    weight_order: ClassVar[tuple[str, ...]] = (
        "query",
        "key",
        "gate",
        "value",
        "attention_output",
    )

    head_dim: int
    num_query_heads: int
    num_key_value_heads: int
    dropout: float = 0.0
    use_bias: bool = True
    sliding_window: int | None = None
    flash_attention: bool | None = None
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None
    use_gate: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.head_dim = check_int(owner, "head_dim", self.head_dim)
        self.num_query_heads = check_int(owner, "num_query_heads", self.num_query_heads)
        self.num_key_value_heads = check_int(
            owner, "num_key_value_heads", self.num_key_value_heads
        )
        if self.num_query_heads % self.num_key_value_heads:
            raise ValueError(
                f"{owner}: `num_query_heads` ({self.num_query_heads}) must be "
                f"divisible by `num_key_value_heads` ({self.num_key_value_heads})."
            )
        self.dropout = check_float(
            owner, "dropout", self.dropout, low=0.0, high=1.0, high_inclusive=False
        )
        check_bool(owner, "use_bias", self.use_bias)
        check_bool(owner, "use_gate", self.use_gate)
        if self.flash_attention is not None:
            check_bool(owner, "flash_attention", self.flash_attention)
            if self.flash_attention and self.dropout > 0:
                raise ValueError(
                    f"{owner}: dropout is not supported with `flash_attention=True`; "
                    "set `dropout=0.0` or `flash_attention=None`."
                )
        if self.sliding_window is not None:
            self.sliding_window = check_int(
                owner, "sliding_window", self.sliding_window
            )
        resolve(owner, "kernel_initializer", self.kernel_initializer, initializers.get)
        resolve(owner, "bias_initializer", self.bias_initializer, initializers.get)
        resolve(owner, "kernel_regularizer", self.kernel_regularizer, regularizers.get)
        resolve(owner, "bias_regularizer", self.bias_regularizer, regularizers.get)

    def _dense(
        self, equation: str, shape: Sequence[Any], bias: str, activation: Any = None
    ) -> EinsumDense:
        return EinsumDense(
            equation,
            output_shape=tuple(shape),
            activation=activation,
            bias_axes=bias if self.use_bias else None,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            dtype=self.dtype,
        )

    def projections(self, feature_dim: int) -> dict[str, EinsumDense]:
        """The `EinsumDense` projections (Keras' equations)."""
        nq, nkv, h = self.num_query_heads, self.num_key_value_heads, self.head_dim
        out = {
            "query": self._dense("bqm,muh->bquh", (None, nq, h), "uh"),
            "key": self._dense("bkm,mvh->bkvh", (None, nkv, h), "vh"),
        }
        if self.use_gate:
            out["gate"] = self._dense("bqm,muh->bquh", (None, nq, h), "uh", "sigmoid")
        out["value"] = self._dense("bkm,mvh->bkvh", (None, nkv, h), "vh")
        out["attention_output"] = self._dense("bquh,uhm->bqm", (None, feature_dim), "m")
        return out

    def bind_call(
        self,
        query: Any,
        value: Any,
        key: Any = None,
        query_mask: Any = None,
        value_mask: Any = None,
        key_mask: Any = None,
        attention_mask: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> tuple[Any, dict[str, Any]]:
        return _bind_mha(
            self,
            query,
            value,
            key,
            query_mask,
            value_mask,
            key_mask,
            attention_mask,
            return_attention_scores,
            use_causal_mask,
        )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        spec = _mha_inputs(self, input_spec)
        q, v, k = _check_query_value_key(self, spec)
        label = layer_label(self)
        if len(q.shape) != 2:
            raise ValueError(
                f"{label}: expected `query`, `value` and `key` of rank 3 (batch, "
                f"positions, features), got query {shape_str(_spec_shape(q))}."
            )
        if is_known_dim(q.shape[-1]) and q.shape[-1] != v.shape[-1]:
            raise ValueError(
                f"{label}: the last dimension of `query` and `value` must be equal, "
                f"got query {shape_str(_spec_shape(q))} and value "
                f"{shape_str(_spec_shape(v))}."
            )
        _check_seq_masks(self, q, v, [spec.get(m) for m in _MASK_ARGS])
        am = spec.get("attention_mask")
        if am is not None:
            scores = (None, self.num_query_heads, q.shape[0], k.shape[0])
            _check_mask_shape(self, (None, *am.shape), scores, 1, "attention_mask")
        projs = self.projections(q.shape[-1])
        inputs = {
            "query": q,
            "key": k,
            "gate": q,
            "value": v,
            "attention_output": jax.ShapeDtypeStruct(
                (q.shape[0], self.num_query_heads, self.head_dim), q.dtype
            ),
        }
        return _init_projections(self, projs, inputs, key), {}

    def penalty(self, params: Params) -> Array:
        return _penalty(self, params)

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
        use_causal_mask: bool = False,
        return_attention_scores: bool = False,
    ) -> tuple[Any, State]:
        del mask
        query, value, key_in, am, causal_only = _attention_inputs(
            self, x, sequence_mask, use_causal_mask
        )
        projs = self.projections(query.shape[-1])
        run = {n: (lambda t, n=n: projs[n].apply(params[n], {}, t)[0]) for n in projs}
        gate = run["gate"](query) if self.use_gate else None
        q, k, v = run["query"](query), run["key"](key_in), run["value"](value)
        scale = 1.0 / float(self.head_dim) ** 0.5
        scores = None
        if not (self.dropout > 0.0 or return_attention_scores):
            # jax.nn.dot_product_attention takes the key/value heads as they
            # are: each serves its group of query heads (no repeat needed).
            if am is not None:
                am = _expand_mask(am, 4, 1).astype(bool)
            out = _dot_product_attention(
                q, k, v, am, scale, causal_only, self.flash_attention
            )
        else:
            repeats = self.num_query_heads // self.num_key_value_heads
            k, v = jnp.repeat(k, repeats, axis=2), jnp.repeat(v, repeats, axis=2)
            if causal_only:
                am = _causal_mask(query.shape[1], value.shape[1])
            q = q * jnp.asarray(scale, q.dtype)
            scores = jnp.einsum("bquh,bkuh->buqk", q, k)
            if am is not None:
                am = _expand_mask(am, scores.ndim, 1)
            scores = _masked_softmax(scores, am, (-1,))
            dropped = scores
            if self.dropout > 0.0 and training:
                dropped = _dropout(scores, self.dropout, key, self)
            out = jnp.einsum("buqk,bkuh->bquh", dropped, v)
        if gate is not None:
            out = out * gate
        out = run["attention_output"](out)
        if return_attention_scores:
            return (out, scores), state
        return out, state

    def compute_mask(self, inputs: Any, mask: Any = None, **options: Any) -> Any:
        """The output's mask is the query's (Keras); None for the scores."""
        return MultiHeadAttention.compute_mask(self, inputs, mask, **options)


# Keras 3 exports this layer as `keras.layers.GroupQueryAttention`.
GroupQueryAttention = GroupedQueryAttention


# ----------------------------------------------------------------------------
# Attention and AdditiveAttention (Luong- and Bahdanau-style).
# ----------------------------------------------------------------------------


def _split_attention_inputs(layer: Any, x: Any) -> tuple[list[Any], list[Any] | None]:
    """`(inputs, explicit masks)` from `[q, v(, k)]` or `{"inputs", "mask"}`."""
    explicit = None
    if isinstance(x, dict):
        explicit = x.get("mask")
        x = x.get("inputs")
    label = layer_label(layer)
    if not isinstance(x, list | tuple):
        raise ValueError(
            f"{label} must be called on a list of inputs, namely [query, value] or "
            f"[query, value, key]; got {type(x).__name__}."
        )
    if len(x) not in (2, 3):
        raise ValueError(
            f"{label} accepts a list of 2 or 3 inputs, namely [query, value] or "
            f"[query, value, key]; got {len(x)}."
        )
    if explicit is not None and (
        not isinstance(explicit, list | tuple) or len(explicit) not in (2, 3)
    ):
        raise ValueError(
            f"{label}: `mask` must be a list [query_mask, value_mask]; got "
            f"{explicit!r:.100}."
        )
    return list(x), None if explicit is None else list(explicit)


@dataclass(eq=False)
class _ScoreAttention(Layer):
    """What `Attention` and `AdditiveAttention` share: the calling convention,
    the masks, the softmax and the dropout (each defines its own fields)."""

    consumes_sequence_mask: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        check_bool(owner, "use_scale", self.use_scale)
        if hasattr(self, "score_mode"):
            self.score_mode = check_choice(
                owner, "score_mode", self.score_mode, ("dot", "concat")
            )
        self.dropout = check_float(
            owner, "dropout", self.dropout, low=0.0, high=1.0, high_inclusive=False
        )

    def bind_call(
        self,
        inputs: Any,
        mask: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> tuple[Any, dict[str, Any]]:
        owner = layer_label(self)
        check_bool(owner, "return_attention_scores", return_attention_scores)
        check_bool(owner, "use_causal_mask", use_causal_mask)
        x: Any = list(inputs) if isinstance(inputs, list | tuple) else inputs
        if mask is not None:
            x = {
                "inputs": x,
                "mask": list(mask) if isinstance(mask, list | tuple) else mask,
            }
        _split_attention_inputs(self, x)
        return x, {
            "return_attention_scores": bool(return_attention_scores),
            "use_causal_mask": bool(use_causal_mask),
        }

    def _check_specs(self, inputs: list[Any]) -> None:
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        label = layer_label(self)
        if len(q.shape) < 2 or len(v.shape) < 2 or len(k.shape) < 2:
            raise ValueError(
                f"{label}: expected query, value and key of rank >= 3 (batch, "
                f"positions, features), got {shape_str(_spec_shape(q))}, "
                f"{shape_str(_spec_shape(v))}, {shape_str(_spec_shape(k))}."
            )
        if (
            is_known_dim(q.shape[-1])
            and is_known_dim(k.shape[-1])
            and q.shape[-1] != k.shape[-1]
        ):
            raise ValueError(
                f"{label}: the last dimension of query and key must be equal (scores "
                f"compare them), got query {shape_str(_spec_shape(q))} and key "
                f"{shape_str(_spec_shape(k))}."
            )
        if tuple(v.shape[:-1]) != tuple(k.shape[:-1]):
            raise ValueError(
                f"{label}: value and key must have the same positions, got value "
                f"{shape_str(_spec_shape(v))} and key {shape_str(_spec_shape(k))}."
            )

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
        use_causal_mask: bool = False,
        return_attention_scores: bool = False,
    ) -> tuple[Any, State]:
        del mask
        inputs, explicit = _split_attention_inputs(self, x)
        inputs = [autocast(t, self.dtype) for t in inputs]
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        masks = explicit
        if masks is None and sequence_mask is not None:
            masks = (
                sequence_mask["inputs"]
                if isinstance(sequence_mask, dict)
                else sequence_mask
            )
        q_mask = masks[0] if masks else None
        v_mask = masks[1] if masks else None
        scores = self._scores(params, q, k)
        scores_mask = None if v_mask is None else jnp.asarray(v_mask).astype(bool)
        if use_causal_mask:
            causal = _causal_mask(scores.shape[-2], scores.shape[-1])
            scores_mask = (
                causal if scores_mask is None else (scores_mask[..., None, :] & causal)
            )
        if scores_mask is not None:
            if scores_mask.ndim == 2:
                scores_mask = scores_mask[..., None, :]
            big = 65504.0 if scores.dtype == jnp.float16 else 1.0e9
            scores = jnp.where(scores_mask, scores, scores - big)
        weights = jax.nn.softmax(scores, axis=-1)
        if training and self.dropout > 0:
            weights = _dropout(weights, self.dropout, key, self)
        out = jnp.matmul(weights, v)
        if q_mask is not None:
            out = jnp.where(jnp.asarray(q_mask).astype(bool)[..., None], out, 0.0)
        if return_attention_scores:
            return (out, weights), state
        return out, state

    def compute_mask(self, inputs: Any, mask: Any = None, **options: Any) -> Any:
        """The output's mask is the query's (Keras: `mask[0]`)."""
        explicit = inputs.get("mask") if isinstance(inputs, dict) else None
        masks = explicit
        if masks is None and mask is not None:
            masks = mask["inputs"] if isinstance(mask, dict) else mask
        qm = masks[0] if masks else None
        if options.get("return_attention_scores"):
            return [qm, None]
        return qm


@dataclass(eq=False)
class Attention(_ScoreAttention):
    """Dot-product attention (Luong-style), Keras' `Attention`.

    Called on `[query, value]` or `[query, value, key]` (key defaults to
    value): `scores = query @ key^T` (`score_mode="dot"`, times a learned
    `scale` if `use_scale`) or `sum(tanh(scale * (query + key)))` times
    `concat_score_weight` (`score_mode="concat"`); the output is
    `softmax(scores) @ value`. `mask=[query_mask, value_mask]` (or the graph's
    sequence masks): masked values get no weight and masked query rows output
    zeros. `use_causal_mask=True` hides later positions;
    `return_attention_scores=True` returns `(output, scores)`.

    Args:
        use_scale: Learn a scalar `scale` on the scores.
        score_mode: `"dot"` or `"concat"`.
        dropout: Dropout rate on the attention weights (training only).

    Params: `scale` `()` if `use_scale`; `concat_score_weight` `()` if
    `score_mode="concat"`. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> q, v = jnp.ones((2, 3, 4)), jnp.ones((2, 5, 4))
        >>> out, scores = fk.layers.Attention()([q, v], return_attention_scores=True)
        >>> out.shape, scores.shape
        ((2, 3, 4), (2, 3, 5))
    """

    weight_order: ClassVar[tuple[str, ...]] = ("scale", "concat_score_weight")

    use_scale: bool = False
    score_mode: str = "dot"
    dropout: float = 0.0

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        inputs, _ = _split_attention_inputs(self, input_spec)
        self._check_specs(inputs)
        params = {}
        if self.use_scale:
            params["scale"] = jnp.ones((), self.dtype)
        if self.score_mode == "concat":
            params["concat_score_weight"] = jnp.ones((), self.dtype)
        del key
        return params, {}

    def _scores(self, params: Params, q: Array, k: Array) -> Array:
        scale = params.get("scale")
        if self.score_mode == "dot":
            scores = jnp.matmul(q, jnp.swapaxes(k, -2, -1))
            return scores if scale is None else scores * scale
        qk = q[..., :, None, :] + k[..., None, :, :]
        if scale is not None:
            qk = scale * qk
        return params["concat_score_weight"] * jnp.sum(jnp.tanh(qk), axis=-1)


@dataclass(eq=False)
class AdditiveAttention(_ScoreAttention):
    """Additive attention (Bahdanau-style), Keras' `AdditiveAttention`.

    Like `Attention` with `scores = sum(scale * tanh(query + key), axis=-1)`,
    `scale` a learned vector of the feature size (if `use_scale`).

    Args:
        use_scale: Learn the `scale` vector (default True).
        dropout: Dropout rate on the attention weights (training only).

    Params: `scale` `(dim,)` (glorot-uniform) if `use_scale`. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> import funkeras as fk
        >>> q, v = jnp.ones((2, 3, 4)), jnp.ones((2, 5, 4))
        >>> fk.layers.AdditiveAttention()([q, v]).shape
        (2, 3, 4)
    """

    weight_order: ClassVar[tuple[str, ...]] = ("scale",)

    use_scale: bool = True
    dropout: float = 0.0

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        inputs, _ = _split_attention_inputs(self, input_spec)
        self._check_specs(inputs)
        params = {}
        if self.use_scale:
            init = initializers.get("glorot_uniform")
            params["scale"] = init(key, (inputs[0].shape[-1],), self.dtype)
        return params, {}

    def _scores(self, params: Params, q: Array, k: Array) -> Array:
        scale = params.get("scale", 1.0)
        return jnp.sum(
            scale * jnp.tanh(q[..., :, None, :] + k[..., None, :, :]), axis=-1
        )
