"""Layers: hyperparameters plus pure `init` and `apply` (see `base.Layer`)."""

from funkeras.layers.attention import (
    AdditiveAttention,
    Attention,
    GroupQueryAttention,
    MultiHeadAttention,
)
from funkeras.layers.base import InputLayer, Layer
from funkeras.layers.convolutional import Conv1D, Conv2D
from funkeras.layers.core import Activation, Dense, Embedding, Identity, Masking
from funkeras.layers.einsum_dense import EinsumDense
from funkeras.layers.merging import (
    Add,
    Average,
    Concatenate,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)
from funkeras.layers.normalization import BatchNormalization, LayerNormalization
from funkeras.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
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
from funkeras.layers.regularization import Dropout
from funkeras.layers.reshaping import Flatten, Permute, RepeatVector, Reshape
from funkeras.layers.wrappers import Bidirectional, TimeDistributed

# `serialize`/`deserialize` (Keras' `keras.layers.serialize`) use the saving
# registry, which sits above the layers: `funkeras.saving` attaches them.
__all__ = [
    "serialize",
    "deserialize",
    "Layer",
    "InputLayer",
    "Dense",
    "Embedding",
    "Identity",
    "Activation",
    "Dropout",
    "Flatten",
    "Reshape",
    "Permute",
    "Conv1D",
    "Conv2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "BatchNormalization",
    "LayerNormalization",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "add",
    "subtract",
    "multiply",
    "average",
    "maximum",
    "minimum",
    "concatenate",
    "EinsumDense",
    "MultiHeadAttention",
    "GroupQueryAttention",
    "Attention",
    "AdditiveAttention",
    "Masking",
    "RNN",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "SimpleRNNCell",
    "LSTMCell",
    "GRUCell",
    "Bidirectional",
    "TimeDistributed",
    "RepeatVector",
]
