"""The `lstm` workload: Embedding(1000, 32) -> LSTM(128) -> Dense(10).

Token sequences of 64 steps, batch 64, Adam, sparse cross-entropy on logits.
The hand-written twin is the plain `lax.scan` LSTM a JAX user writes: each
step computes `x_t @ W + h @ U + b` for the four gates (Keras' order `i, f,
c, o`), with the same initializers as funkeras and Keras (uniform(-0.05,
0.05) embeddings, Glorot-uniform kernels, orthogonal recurrent kernel, a
forget-gate bias of ones, zero biases elsewhere).

What makes a step fast on CPU, measured while building this workload (see
`benchmarks/RESULTS.md`): a training step is bound by the number of kernels
the loop body runs, not by flops. Hoisting the input projection out of the
loop (one big `(time, batch, 4 * units)` matmul) made the step 3-4x slower,
because the backward loop then writes that projection's cotangent step by
step; unrolling the scan (2, 4, 16) did not help; one fused `[x_t, h] @ [W;
U]` matmul per step instead of two helped a little. funkeras' LSTM does that.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import funkeras as fk
from funkeras.bench.workloads import Workload, glorot_uniform
from funkeras.layers import LSTM, Dense, Embedding

__all__ = ["LSTM_WORKLOAD", "VOCAB", "STEPS", "UNITS", "lstm_model"]

VOCAB, EMBED, STEPS, UNITS, CLASSES = 1000, 32, 64, 128, 10


def _token_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random token sequences; the label is the sum of the first 8 tokens mod 10."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, size=(rows, STEPS)).astype(np.int32)
    y = (x[:, :8].sum(axis=1) % CLASSES).astype(np.int32)
    return x, y


def lstm_model(steps: int = STEPS) -> Any:
    """The funkeras model of the workload (built, seed 0)."""
    return fk.Sequential(
        [
            fk.Input(shape=(steps,), dtype="int32"),
            Embedding(VOCAB, EMBED),
            LSTM(UNITS),
            Dense(CLASSES),
        ],
        seed=0,
    )


def _orthogonal(key: jax.Array, shape: tuple[int, int]) -> jax.Array:
    a = jax.random.normal(key, (max(shape), min(shape)), jnp.float32)
    q, r = jnp.linalg.qr(a)
    q = q * jnp.sign(jnp.diagonal(r))
    return q if shape[0] >= shape[1] else q.T


def _init(key: jax.Array) -> dict[str, Any]:
    k_emb, k_w, k_u, k_d = jax.random.split(key, 4)
    bias = jnp.zeros((4 * UNITS,), jnp.float32).at[UNITS : 2 * UNITS].set(1.0)
    return {
        "embeddings": jax.random.uniform(
            k_emb, (VOCAB, EMBED), jnp.float32, -0.05, 0.05
        ),
        "kernel": glorot_uniform(k_w, (EMBED, 4 * UNITS)),
        "recurrent_kernel": _orthogonal(k_u, (UNITS, 4 * UNITS)),
        "bias": bias,
        "dense": {
            "kernel": glorot_uniform(k_d, (UNITS, CLASSES)),
            "bias": jnp.zeros((CLASSES,), jnp.float32),
        },
    }


def _apply(params: dict[str, Any], tokens: jax.Array) -> jax.Array:
    xs = params["embeddings"][jnp.asarray(tokens).T]  # (time, batch, embed)
    batch = xs.shape[1]
    w, u, b = params["kernel"], params["recurrent_kernel"], params["bias"]

    def step(carry: tuple[jax.Array, jax.Array], x_t: jax.Array) -> Any:
        h, c = carry
        z = x_t @ w + h @ u + b
        i = jax.nn.sigmoid(z[:, :UNITS])
        f = jax.nn.sigmoid(z[:, UNITS : 2 * UNITS])
        c = f * c + i * jnp.tanh(z[:, 2 * UNITS : 3 * UNITS])
        h = jax.nn.sigmoid(z[:, 3 * UNITS :]) * jnp.tanh(c)
        return (h, c), None

    zeros = jnp.zeros((batch, UNITS), xs.dtype)
    (h, _), _ = jax.lax.scan(step, (zeros, zeros), xs)
    return h @ params["dense"]["kernel"] + params["dense"]["bias"]


LSTM_WORKLOAD = Workload(
    name="lstm",
    title="Embedding(1000, 32) -> LSTM(128) -> Dense(10), 64 steps, batch 64, Adam",
    batch_size=64,
    rows=1024,
    steps=16,
    eager_steps=4,
    optimizer="adam",
    learning_rate=1e-3,
    loss="sparse_ce",
    make_data=_token_data,
    build_model=lstm_model,
    init_params=_init,
    apply=_apply,
    layers=(VOCAB, EMBED, UNITS, CLASSES),
    repeats=3,
)
