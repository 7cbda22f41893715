"""One table, every layer: the protocol checks of `funkeras.testing.check_layer`.

Each row is `(make, spec, dtype)`: `make(dtype)` builds the layer with that param
dtype, `spec` is the input shape (or a list of shapes) without the batch axis, and
`dtype` is the input dtype (`None`: the layer's own dtype). Every row runs in
float32 and in bfloat16; `check_layer` runs each with `training=False` and with
`training=True` (and a key). A new layer adds a row here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import pytest

import funkeras.layers
from funkeras.layers.activation import ELU, LeakyReLU, PReLU, ReLU, Softmax
from funkeras.layers.attention import (
    AdditiveAttention,
    Attention,
    GroupQueryAttention,
    MultiHeadAttention,
)
from funkeras.layers.base import InputLayer, Layer
from funkeras.layers.convolutional import Conv1D, Conv2D, Conv3D
from funkeras.layers.convolutional_transpose import (
    Conv1DTranspose,
    Conv2DTranspose,
    Conv3DTranspose,
)
from funkeras.layers.core import Activation, Dense, Embedding, Identity, Masking
from funkeras.layers.depthwise import (
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv1D,
    SeparableConv2D,
)
from funkeras.layers.einsum_dense import EinsumDense
from funkeras.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
)
from funkeras.layers.normalization import (
    BatchNormalization,
    GroupNormalization,
    LayerNormalization,
    RMSNormalization,
    UnitNormalization,
)
from funkeras.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from funkeras.layers.recurrent import (
    GRU,
    LSTM,
    RNN,
    GRUCell,
    LSTMCell,
    SimpleRNN,
    SimpleRNNCell,
)
from funkeras.layers.regularization import (
    AlphaDropout,
    Dropout,
    GaussianDropout,
    GaussianNoise,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
)
from funkeras.layers.resampling import (
    CenterCrop,
    Cropping1D,
    Cropping2D,
    Cropping3D,
    Rescaling,
    Resizing,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
from funkeras.layers.reshaping import Flatten, Permute, RepeatVector, Reshape
from funkeras.layers.wrappers import Bidirectional, TimeDistributed
from funkeras.testing import DEFAULT_DTYPE_TOLERANCES, check_layer


class Row(NamedTuple):
    make: Callable[[str], Layer]
    spec: Any  # a shape, or a list of shapes (multi-input layers)
    dtype: str | None = None  # input dtype; None: the layer's dtype


def _two(shape):
    return [shape, shape]


TABLE: dict[str, Row] = {
    # core
    "dense": Row(lambda d: Dense(3, dtype=d), (5,)),
    "dense_rank3_relu_nobias": Row(
        lambda d: Dense(4, activation="relu", use_bias=False, dtype=d), (2, 5)
    ),
    "embedding": Row(lambda d: Embedding(4, 3, dtype=d), (5,), "int32"),
    "identity": Row(lambda d: Identity(dtype=d), (3,)),
    "activation_tanh": Row(lambda d: Activation("tanh", dtype=d), (2, 3)),
    "activation_softmax": Row(lambda d: Activation("softmax", dtype=d), (4,)),
    # regularization
    "dropout": Row(lambda d: Dropout(0.5, dtype=d), (6,)),
    "dropout_noise_shape": Row(
        lambda d: Dropout(0.3, noise_shape=(None, 1, 4), dtype=d), (3, 4)
    ),
    # reshaping
    "flatten": Row(lambda d: Flatten(dtype=d), (2, 3)),
    "reshape": Row(lambda d: Reshape((2, 3), dtype=d), (3, 2)),
    "reshape_minus_one": Row(lambda d: Reshape((3, -1), dtype=d), (6,)),
    "permute": Row(lambda d: Permute((2, 1), dtype=d), (2, 3)),
    # convolutional
    "conv1d": Row(lambda d: Conv1D(3, 3, dtype=d), (6, 2)),
    "conv1d_same_strided": Row(
        lambda d: Conv1D(2, 3, strides=2, padding="same", dtype=d), (5, 2)
    ),
    "conv1d_causal_dilated": Row(
        lambda d: Conv1D(2, 2, padding="causal", dilation_rate=2, dtype=d), (5, 1)
    ),
    "conv1d_groups": Row(lambda d: Conv1D(4, 2, groups=2, dtype=d), (4, 4)),
    "conv2d": Row(lambda d: Conv2D(3, 3, dtype=d), (4, 4, 2)),
    "conv2d_same_strided_nobias": Row(
        lambda d: Conv2D(
            2, (2, 3), strides=(2, 1), padding="same", use_bias=False, dtype=d
        ),
        (3, 4, 1),
    ),
    "conv2d_dilated_relu": Row(
        lambda d: Conv2D(2, 2, dilation_rate=2, activation="relu", dtype=d), (4, 4, 1)
    ),
    "conv2d_groups": Row(lambda d: Conv2D(4, 1, groups=2, dtype=d), (2, 2, 4)),
    # pooling
    "max_pooling1d": Row(lambda d: MaxPooling1D(dtype=d), (6, 2)),
    "max_pooling1d_same": Row(
        lambda d: MaxPooling1D(3, strides=1, padding="same", dtype=d), (5, 2)
    ),
    "average_pooling1d": Row(lambda d: AveragePooling1D(3, strides=2, dtype=d), (7, 1)),
    "average_pooling1d_same": Row(
        lambda d: AveragePooling1D(2, padding="same", dtype=d), (5, 2)
    ),
    "max_pooling2d": Row(lambda d: MaxPooling2D(dtype=d), (4, 4, 2)),
    "max_pooling2d_same": Row(
        lambda d: MaxPooling2D((2, 3), strides=1, padding="same", dtype=d), (3, 4, 1)
    ),
    "average_pooling2d": Row(lambda d: AveragePooling2D(dtype=d), (4, 4, 2)),
    "average_pooling2d_same": Row(
        lambda d: AveragePooling2D(3, strides=2, padding="same", dtype=d), (5, 5, 1)
    ),
    "global_average_pooling1d": Row(lambda d: GlobalAveragePooling1D(dtype=d), (5, 3)),
    "global_average_pooling2d_keepdims": Row(
        lambda d: GlobalAveragePooling2D(keepdims=True, dtype=d), (3, 3, 2)
    ),
    "global_max_pooling1d_keepdims": Row(
        lambda d: GlobalMaxPooling1D(keepdims=True, dtype=d), (5, 3)
    ),
    "global_max_pooling2d": Row(lambda d: GlobalMaxPooling2D(dtype=d), (3, 3, 2)),
    # normalization
    "batch_normalization": Row(lambda d: BatchNormalization(dtype=d), (3,)),
    "batch_normalization_axis1": Row(
        lambda d: BatchNormalization(axis=1, momentum=0.9, center=False, dtype=d),
        (3, 2),
    ),
    "batch_normalization_images": Row(
        lambda d: BatchNormalization(epsilon=1e-5, dtype=d), (2, 2, 3)
    ),
    "layer_normalization": Row(lambda d: LayerNormalization(dtype=d), (4,)),
    "layer_normalization_two_axes": Row(
        lambda d: LayerNormalization(axis=[1, 2], scale=False, dtype=d), (2, 3)
    ),
    # merging
    "add": Row(lambda d: Add(dtype=d), _two((3,))),
    "add_three": Row(lambda d: Add(dtype=d), [(2, 3)] * 3),
    "subtract": Row(lambda d: Subtract(dtype=d), _two((3,))),
    "multiply": Row(lambda d: Multiply(dtype=d), _two((2, 2))),
    "average_three": Row(lambda d: Average(dtype=d), [(3,)] * 3),
    "maximum": Row(lambda d: Maximum(dtype=d), _two((3,))),
    "minimum_three": Row(lambda d: Minimum(dtype=d), [(2,)] * 3),
    "concatenate": Row(lambda d: Concatenate(dtype=d), [(2,), (3,)]),
    "concatenate_axis1": Row(lambda d: Concatenate(axis=1, dtype=d), [(2, 3), (1, 3)]),
    "concatenate_three_axis_minus2": Row(
        lambda d: Concatenate(axis=-2, dtype=d), [(1, 2), (2, 2), (3, 2)]
    ),
    # attention
    "einsum_dense": Row(
        lambda d: EinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de", dtype=d),
        (4, 5),
    ),
    "multi_head_attention": Row(
        lambda d: MultiHeadAttention(2, 3, dtype=d), {"query": (4, 6), "value": (5, 6)}
    ),
    "multi_head_attention_dropout": Row(
        lambda d: MultiHeadAttention(2, 3, value_dim=2, dropout=0.2, dtype=d),
        {"query": (4, 6), "value": (4, 6), "key": (4, 3)},
    ),
    "group_query_attention": Row(
        lambda d: GroupQueryAttention(3, 4, 2, dtype=d),
        {"query": (4, 6), "value": (5, 6)},
    ),
    "attention_concat": Row(
        lambda d: Attention(use_scale=True, score_mode="concat", dtype=d), _two((4, 3))
    ),
    "additive_attention_dropout": Row(
        lambda d: AdditiveAttention(dropout=0.3, dtype=d), [(4, 3), (5, 3)]
    ),
    "embedding_mask_zero": Row(
        lambda d: Embedding(4, 3, mask_zero=True, dtype=d), (5,), "int32"
    ),
    "masking": Row(lambda d: Masking(0.5, dtype=d), (4, 3)),
    # recurrent
    "simple_rnn_sequences": Row(
        lambda d: SimpleRNN(3, return_sequences=True, dtype=d), (4, 2)
    ),
    "lstm_dropout": Row(
        lambda d: LSTM(3, dropout=0.3, recurrent_dropout=0.2, dtype=d), (4, 2)
    ),
    "lstm_state_backwards": Row(
        lambda d: LSTM(2, return_state=True, go_backwards=True, dtype=d), (3, 2)
    ),
    "gru": Row(lambda d: GRU(3, dtype=d), (4, 2)),
    "gru_reset_before_unrolled": Row(
        lambda d: GRU(2, reset_after=False, unroll=True, dtype=d), (3, 2)
    ),
    "rnn_stacked_cells": Row(
        lambda d: RNN([LSTMCell(2, dtype=d), GRUCell(3, dtype=d)], dtype=d), (4, 2)
    ),
    "simple_rnn_cell": Row(lambda d: SimpleRNNCell(3, dtype=d), [(2,), (3,)]),
    "lstm_cell": Row(lambda d: LSTMCell(2, dtype=d), [(3,), (2,), (2,)]),
    "gru_cell_dropout": Row(
        lambda d: GRUCell(2, dropout=0.5, recurrent_dropout=0.5, dtype=d),
        [(3,), (2,)],
    ),
    "bidirectional_concat": Row(
        lambda d: Bidirectional(LSTM(2, return_sequences=True, dtype=d), dtype=d),
        (4, 2),
    ),
    "bidirectional_ave": Row(
        lambda d: Bidirectional(GRU(2, dtype=d), merge_mode="ave", dtype=d), (4, 2)
    ),
    "time_distributed_dense": Row(
        lambda d: TimeDistributed(Dense(3, dtype=d), dtype=d), (4, 2)
    ),
    "repeat_vector": Row(lambda d: RepeatVector(3, dtype=d), (2,)),
    # convolution: 3-D, transposed, depthwise, separable
    "conv3d_same": Row(lambda d: Conv3D(2, 2, padding="same", dtype=d), (3, 3, 3, 1)),
    "conv1d_transpose_same_strided": Row(
        lambda d: Conv1DTranspose(2, 3, strides=2, padding="same", dtype=d), (4, 2)
    ),
    "conv2d_transpose_valid_output_padding": Row(
        lambda d: Conv2DTranspose(2, 2, strides=2, output_padding=1, dtype=d),
        (2, 3, 1),
    ),
    "conv3d_transpose": Row(
        lambda d: Conv3DTranspose(1, 2, strides=2, dtype=d), (2, 2, 2, 1)
    ),
    "depthwise_conv1d_multiplier": Row(
        lambda d: DepthwiseConv1D(3, depth_multiplier=2, dtype=d), (5, 2)
    ),
    "depthwise_conv2d_same_strided": Row(
        lambda d: DepthwiseConv2D(3, strides=2, padding="same", dtype=d), (5, 5, 2)
    ),
    "separable_conv1d": Row(lambda d: SeparableConv1D(3, 2, dtype=d), (5, 2)),
    "separable_conv2d_same_relu": Row(
        lambda d: SeparableConv2D(
            3, 3, padding="same", depth_multiplier=2, activation="relu", dtype=d
        ),
        (4, 4, 2),
    ),
    # pooling, 3-D
    "max_pooling3d_same": Row(
        lambda d: MaxPooling3D(2, padding="same", dtype=d), (3, 3, 3, 1)
    ),
    "average_pooling3d": Row(lambda d: AveragePooling3D(dtype=d), (2, 4, 2, 2)),
    "global_max_pooling3d_keepdims": Row(
        lambda d: GlobalMaxPooling3D(keepdims=True, dtype=d), (2, 2, 2, 3)
    ),
    "global_average_pooling3d": Row(
        lambda d: GlobalAveragePooling3D(dtype=d), (2, 2, 2, 3)
    ),
    # resampling and image preprocessing
    "upsampling1d": Row(lambda d: UpSampling1D(3, dtype=d), (3, 2)),
    "upsampling2d_bilinear": Row(
        lambda d: UpSampling2D((2, 3), interpolation="bilinear", dtype=d), (2, 3, 2)
    ),
    "upsampling3d": Row(lambda d: UpSampling3D(2, dtype=d), (1, 2, 2, 1)),
    "zero_padding1d": Row(lambda d: ZeroPadding1D((1, 2), dtype=d), (3, 2)),
    "zero_padding2d": Row(
        lambda d: ZeroPadding2D(((1, 0), (2, 1)), dtype=d), (2, 2, 1)
    ),
    "zero_padding3d": Row(lambda d: ZeroPadding3D(1, dtype=d), (1, 2, 2, 1)),
    "cropping1d": Row(lambda d: Cropping1D((1, 2), dtype=d), (5, 2)),
    "cropping2d": Row(lambda d: Cropping2D(((1, 0), (0, 2)), dtype=d), (3, 4, 1)),
    "cropping3d": Row(lambda d: Cropping3D(1, dtype=d), (3, 3, 4, 1)),
    "resizing_bilinear": Row(lambda d: Resizing(3, 5, dtype=d), (4, 4, 2)),
    "resizing_crop_to_aspect": Row(
        lambda d: Resizing(2, 2, crop_to_aspect_ratio=True, dtype=d), (3, 5, 1)
    ),
    "center_crop": Row(lambda d: CenterCrop(2, 3, dtype=d), (4, 5, 2)),
    "rescaling_uint8": Row(
        lambda d: Rescaling(1 / 255.0, offset=-0.5, dtype=d), (3, 3), "uint8"
    ),
    # activation layers
    "relu_capped_leaky": Row(
        lambda d: ReLU(max_value=2.0, negative_slope=0.1, threshold=0.5, dtype=d),
        (4,),
    ),
    "leaky_relu": Row(lambda d: LeakyReLU(dtype=d), (2, 3)),
    "prelu_shared": Row(
        lambda d: PReLU(alpha_initializer="ones", shared_axes=[1], dtype=d), (3, 2)
    ),
    "elu": Row(lambda d: ELU(alpha=0.5, dtype=d), (4,)),
    "softmax_two_axes": Row(lambda d: Softmax(axis=(1, 2), dtype=d), (2, 3)),
    # normalization and regularization
    "group_normalization": Row(lambda d: GroupNormalization(2, dtype=d), (3, 4)),
    "group_normalization_instance_axis1": Row(
        lambda d: GroupNormalization(-1, axis=1, center=False, dtype=d), (3, 2)
    ),
    "rms_normalization_two_axes": Row(
        lambda d: RMSNormalization(axis=[1, 2], dtype=d), (2, 3)
    ),
    "unit_normalization": Row(lambda d: UnitNormalization(dtype=d), (2, 3)),
    "gaussian_noise": Row(lambda d: GaussianNoise(0.5, dtype=d), (4,)),
    "gaussian_dropout": Row(lambda d: GaussianDropout(0.3, dtype=d), (4,)),
    "alpha_dropout": Row(lambda d: AlphaDropout(0.2, dtype=d), (2, 3)),
    "spatial_dropout1d": Row(lambda d: SpatialDropout1D(0.5, dtype=d), (3, 4)),
    "spatial_dropout2d": Row(lambda d: SpatialDropout2D(0.5, dtype=d), (2, 2, 3)),
    "spatial_dropout3d": Row(lambda d: SpatialDropout3D(0.5, dtype=d), (2, 1, 2, 3)),
    "dot_vectors": Row(lambda d: Dot(1, dtype=d), _two((4,))),
    "dot_axes_pair_normalized": Row(
        lambda d: Dot((1, 2), normalize=True, dtype=d), [(4, 3), (2, 4)]
    ),
}

DTYPES = ("float32", "bfloat16")


def _spec(row: Row, layer_dtype: str) -> Any:
    dtype = row.dtype or layer_dtype
    if isinstance(row.spec, dict):
        return {k: jax.ShapeDtypeStruct(s, dtype) for k, s in row.spec.items()}
    if isinstance(row.spec, list):
        return [jax.ShapeDtypeStruct(s, dtype) for s in row.spec]
    return jax.ShapeDtypeStruct(row.spec, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(TABLE))
def test_layer_conformance(name, dtype):
    row = TABLE[name]
    layer = row.make(dtype)
    report = check_layer(
        layer,
        _spec(row, dtype),
        dtype_tolerances={dtype: DEFAULT_DTYPE_TOLERANCES[dtype]},
        key=jax.random.key(sorted(TABLE).index(name)),
    )
    # Both modes ran every check, none was skipped by a failure.
    for training in (False, True):
        ran = {
            c.split(": ")[1]
            for c in report.checks
            if c.startswith(f"{dtype}/training={training}:")
        }
        assert {
            "jit_matches_eager",
            "output_spec_matches",
            "masked_rows_ignore_padding",
            "mask_per_row_layer",
            "masked_rows_match_real_rows",
            "finite_gradients",
            "symbolic_batch_exports",
        } <= ran
    assert {
        "config: json_round_trip",
        f"{dtype}: init_is_pure",
        f"{dtype}: from_config_same_init",
    } <= set(report.checks)
    assert report.output_spec == layer.compute_output_spec(_spec(row, dtype))


def test_every_exported_layer_has_a_row():
    exported = {
        getattr(funkeras.layers, name)
        for name in funkeras.layers.__all__
        if isinstance(getattr(funkeras.layers, name), type)  # not serialize()
        and getattr(funkeras.layers, name) not in (Layer, InputLayer)
    }
    in_table = {type(row.make("float32")) for row in TABLE.values()}
    missing = sorted(cls.__name__ for cls in exported - in_table)
    assert not missing, f"add conformance rows for {missing}"


# ----------------------------------------------------------------------------
# check_layer itself must fail on broken layers (a check that cannot fail is
# no check): each broken layer below must be caught by the check it is named with.
# ----------------------------------------------------------------------------


@dataclass(eq=False)
class _BatchMeanIgnoringMask(Layer):
    """Subtracts the batch mean but ignores the row mask (padding leaks in)."""

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return x - jnp.mean(x, axis=0, keepdims=True), state


@dataclass(eq=False)
class _MaskedMeanWrongCount(Layer):
    """Uses the mask, but divides by the full batch size (wrong moments)."""

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        if mask is None:
            return x - jnp.mean(x, axis=0, keepdims=True), state
        rows = mask[:, None]
        mean = jnp.sum(jnp.where(rows, x, 0), axis=0) / x.shape[0]
        return x - mean, state


@dataclass(eq=False)
class _CountsInInference(Layer):
    """Changes its state with training=False."""

    def init(self, key, input_spec):
        return {}, {"calls": jnp.zeros((), jnp.int32)}

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return x, {"calls": state["calls"] + 1}


@dataclass(eq=False)
class _WrongSpec(Layer):
    """Returns a different shape under eval_shape than on real arrays."""

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        if isinstance(x, jax.core.Tracer):
            return x, state
        return x[:, :1], state


@dataclass(eq=False)
class _LogOfInput(Layer):
    """Non-finite gradients: log(|x| - |x|) is -inf everywhere."""

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return jnp.log(jnp.abs(x) - jnp.abs(x)), state


@dataclass(eq=False)
class _BadConfig(Layer):
    """A config value that JSON cannot hold."""

    scale: Any = None

    def __post_init__(self):
        super().__post_init__()
        if self.scale is None:
            self.scale = {1, 2}

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return x, state


@dataclass(eq=False)
class _DataDependentBatch(Layer):
    """Does Python arithmetic on the batch size (fails with a symbolic batch)."""

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return x * float(x.shape[0] > 1), state


@dataclass(eq=False)
class _JitDiffers(Layer):
    """Computes differently under tracing than eagerly."""

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return (x + 1.0 if isinstance(x, jax.core.Tracer) else x), state


@pytest.mark.parametrize(
    "layer, fragment",
    [
        (_BatchMeanIgnoringMask(), "masked_rows_ignore_padding"),
        (_MaskedMeanWrongCount(), "masked_rows_match_real_rows"),
        (_CountsInInference(), "inference_keeps_state"),
        (_WrongSpec(), "output_spec_matches"),
        (_LogOfInput(), "finite_gradients"),
        (_BadConfig(), "not JSON-safe"),
        (_DataDependentBatch(), "symbolic_batch_exports"),
        (_JitDiffers(), "jit_matches_eager"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Layer) else None,
)
def test_check_layer_catches_broken_layers(layer, fragment):
    spec = jax.ShapeDtypeStruct((3,), jnp.float32)
    with pytest.raises(ValueError, match=fragment):
        check_layer(layer, spec, dtype_tolerances={"float32": (1e-5, 1e-5)})


def test_check_layer_rejects_bad_arguments():
    spec = jax.ShapeDtypeStruct((3,), jnp.float32)
    with pytest.raises(TypeError, match="funkeras Layer"):
        check_layer(object(), spec)
    with pytest.raises(TypeError, match="ShapeDtypeStruct"):
        check_layer(Identity(), (3,))
    with pytest.raises(ValueError, match="names no dtype"):
        check_layer(Identity(), spec, dtype_tolerances={})
    with pytest.raises(TypeError, match=r"\(rtol, atol\)"):
        check_layer(Identity(), spec, dtype_tolerances={"float32": 1e-5})


def test_check_layer_report_and_both_default_dtypes():
    layer = Dense(2)
    spec = jax.ShapeDtypeStruct((3,), jnp.float32)
    report = check_layer(layer, spec)
    assert report.layer == "Dense()"
    assert report.output_spec == jax.ShapeDtypeStruct((2,), jnp.float32)
    assert report.params == {
        "kernel": jax.ShapeDtypeStruct((3, 2), jnp.float32),
        "bias": jax.ShapeDtypeStruct((2,), jnp.float32),
    }
    assert report.state == {}
    prefixes = {c.split(":")[0].split("/")[0] for c in report.checks}
    assert prefixes == {"config", "float32", "bfloat16"}
    assert str(report).startswith("Dense(): ")
    assert "bfloat16: from_config_same_init" in report.checks
    json.dumps(report.checks)  # plain strings
