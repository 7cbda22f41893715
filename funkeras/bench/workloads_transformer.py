"""The `transformer` benchmark workload: a small causal language model.

Token + learned position embedding, 2 post-norm blocks of causal
`MultiHeadAttention` (4 heads of 32) and a 512-wide ReLU MLP, each with a
residual and `LayerNormalization`, width 128, sequence 128, vocabulary 256,
batch 32, Adam, sparse cross-entropy on every position (next-token
prediction). The hand-written twin is the same network in plain JAX with
`jax.nn.dot_product_attention`; the Keras peer builds it from Keras' layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

import funkeras as fk
from funkeras.layers import (
    Add,
    Dense,
    Embedding,
    Layer,
    LayerNormalization,
    MultiHeadAttention,
)

__all__ = [
    "WORKLOAD_ARGS",
    "PositionEmbedding",
    "make_data",
    "build_model",
    "init_params",
    "apply",
    "keras_model",
]

VOCAB, SEQ, WIDTH, HEADS, MLP, BLOCKS = 256, 128, 128, 4, 512, 2
EPS = 1e-3  # Keras' LayerNormalization epsilon


def _glorot(key: jax.Array, fans: tuple[int, int], shape: tuple[int, ...]) -> jax.Array:
    limit = float(np.sqrt(6.0 / sum(fans)))
    return jax.random.uniform(key, shape, jnp.float32, -limit, limit)


@dataclass(eq=False)
class PositionEmbedding(Layer):
    """Adds a learned `(sequence_length, dim)` table to `(batch, time, dim)` inputs."""

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True

    sequence_length: int = SEQ

    def init(self, key: Any, input_spec: Any) -> tuple[dict, dict]:
        shape = (self.sequence_length, input_spec.shape[-1])
        return {
            "embeddings": jax.random.uniform(key, shape, self.dtype, -0.05, 0.05)
        }, {}

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        del training, key, mask
        return x + params["embeddings"][: x.shape[1]], state


def make_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences from a fixed random Markov chain; y is x shifted by one."""
    rng = np.random.default_rng(seed)
    table = np.random.default_rng(1234).integers(0, VOCAB, size=(VOCAB, 4))
    seq = np.empty((rows, SEQ + 1), np.int32)
    seq[:, 0] = rng.integers(0, VOCAB, size=rows)
    choice = rng.integers(0, 4, size=(rows, SEQ))
    for t in range(SEQ):
        seq[:, t + 1] = table[seq[:, t], choice[:, t]]
    return seq[:, :-1].copy(), seq[:, 1:].copy()


def build_model() -> Any:
    """The funkeras model (seed 0): logits `(batch, SEQ, VOCAB)` from tokens."""
    tokens = fk.Input(shape=(SEQ,), dtype="int32")
    h = PositionEmbedding(SEQ)(Embedding(VOCAB, WIDTH)(tokens))
    for _ in range(BLOCKS):
        a = MultiHeadAttention(HEADS, WIDTH // HEADS)(h, h, use_causal_mask=True)
        h = LayerNormalization()(Add()([h, a]))
        f = Dense(WIDTH)(Dense(MLP, activation="relu")(h))
        h = LayerNormalization()(Add()([h, f]))
    return fk.Model(tokens, Dense(VOCAB)(h), seed=0)


# -- the hand-written twin -------------------------------------------------------


def init_params(key: jax.Array) -> dict[str, Any]:
    """The hand-written twin's params (Keras' initializers and einsum fans)."""
    keys = iter(jax.random.split(key, 3 + 6 * BLOCKS))
    hd = WIDTH // HEADS

    def proj(shape: tuple[int, ...]) -> jax.Array:
        return _glorot(next(keys), (WIDTH, WIDTH), shape)  # Keras' einsum fans

    blocks = []
    for _ in range(BLOCKS):
        blocks.append(
            {
                "q": proj((WIDTH, HEADS, hd)),
                "k": proj((WIDTH, HEADS, hd)),
                "v": proj((WIDTH, HEADS, hd)),
                "qb": jnp.zeros((HEADS, hd)),
                "kb": jnp.zeros((HEADS, hd)),
                "vb": jnp.zeros((HEADS, hd)),
                "o": proj((HEADS, hd, WIDTH)),
                "ob": jnp.zeros((WIDTH,)),
                "g1": jnp.ones((WIDTH,)),
                "b1": jnp.zeros((WIDTH,)),
                "f1": _glorot(next(keys), (WIDTH, MLP), (WIDTH, MLP)),
                "f1b": jnp.zeros((MLP,)),
                "f2": _glorot(next(keys), (MLP, WIDTH), (MLP, WIDTH)),
                "f2b": jnp.zeros((WIDTH,)),
                "g2": jnp.ones((WIDTH,)),
                "b2": jnp.zeros((WIDTH,)),
            }
        )
    return {
        "tok": jax.random.uniform(next(keys), (VOCAB, WIDTH), jnp.float32, -0.05, 0.05),
        "pos": jax.random.uniform(next(keys), (SEQ, WIDTH), jnp.float32, -0.05, 0.05),
        "blocks": blocks,
        "head": _glorot(next(keys), (WIDTH, VOCAB), (WIDTH, VOCAB)),
        "head_b": jnp.zeros((VOCAB,)),
    }


def _layer_norm(x: jax.Array, g: jax.Array, b: jax.Array) -> jax.Array:
    mean = jnp.mean(x, -1, keepdims=True)
    var = jnp.var(x, -1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + EPS) * g + b


def apply(params: dict[str, Any], x: jax.Array) -> jax.Array:
    """The hand-written twin: the same network, `jax.nn.dot_product_attention`."""
    h = jnp.take(params["tok"], x, axis=0) + params["pos"][: x.shape[1]]
    scale = 1.0 / (WIDTH // HEADS) ** 0.5
    for p in params["blocks"]:
        q = jnp.einsum("btd,dnh->btnh", h, p["q"]) + p["qb"]
        k = jnp.einsum("btd,dnh->btnh", h, p["k"]) + p["kb"]
        v = jnp.einsum("btd,dnh->btnh", h, p["v"]) + p["vb"]
        a = jax.nn.dot_product_attention(q, k, v, scale=scale, is_causal=True)
        a = jnp.einsum("btnh,nhd->btd", a, p["o"]) + p["ob"]
        h = _layer_norm(h + a, p["g1"], p["b1"])
        f = jax.nn.relu(h @ p["f1"] + p["f1b"]) @ p["f2"] + p["f2b"]
        h = _layer_norm(h + f, p["g2"], p["b2"])
    return h @ params["head"] + params["head_b"]


def keras_model() -> Any:
    """The same network from Keras 3's layers (for the Keras peer)."""
    import keras  # an optional peer: imported only when the peer runs

    class KerasPositionEmbedding(keras.layers.Layer):
        def build(self, input_shape):
            self.embeddings = self.add_weight(
                shape=(SEQ, input_shape[-1]),
                initializer=keras.initializers.RandomUniform(-0.05, 0.05),
                name="embeddings",
            )

        def call(self, x):
            return x + self.embeddings[: x.shape[1]]

    L = keras.layers
    tokens = keras.Input((SEQ,), dtype="int32")
    h = KerasPositionEmbedding()(L.Embedding(VOCAB, WIDTH)(tokens))
    for _ in range(BLOCKS):
        a = L.MultiHeadAttention(HEADS, WIDTH // HEADS)(h, h, use_causal_mask=True)
        h = L.LayerNormalization()(L.Add()([h, a]))
        f = L.Dense(WIDTH)(L.Dense(MLP, activation="relu")(h))
        h = L.LayerNormalization()(L.Add()([h, f]))
    return keras.Model(tokens, L.Dense(VOCAB)(h))


#: The `Workload` fields of `transformer` (registered in `workloads.WORKLOADS`).
WORKLOAD_ARGS: dict[str, Any] = {
    "name": "transformer",
    "title": (
        "causal transformer LM (2 blocks, width 128, 4 heads, seq 128, vocab 256), "
        "batch 32, Adam"
    ),
    "batch_size": 32,
    "rows": 512,
    "steps": 16,
    "eager_steps": 2,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "loss": "sparse_ce",
    "make_data": make_data,
    "build_model": build_model,
    "init_params": init_params,
    "apply": apply,
    "repeats": 3,
}
