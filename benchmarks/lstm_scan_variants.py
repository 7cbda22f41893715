"""Which LSTM scan body trains fastest on this machine?

Times one jitted train step (Embedding(1000, 32) -> LSTM(128) -> Dense(10), 64
steps, batch 64, Adam) for several ways of writing the time loop, in
alternating rounds in one process, and prints the best round of each:

- `per-step`: `x_t @ W + h @ U + b` inside the loop (the plain scan);
- `fused`: one `[x_t, h] @ [W; U]` matmul per step (what funkeras' LSTM does);
- `hoisted`: the input projection of every step computed before the loop;
- `funkeras`: the funkeras model itself (`lstm` workload);
- `:N` suffixes unroll the scan N steps.

    python benchmarks/lstm_scan_variants.py
    python benchmarks/lstm_scan_variants.py --variants fused:1,hoisted:1 --rounds 4
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from funkeras.bench.workloads_lstm import LSTM_WORKLOAD, lstm_model

B, T, U = 64, 64, 128


def _cell(z, c):
    i = jax.nn.sigmoid(z[:, :U])
    f = jax.nn.sigmoid(z[:, U : 2 * U])
    c = f * c + i * jnp.tanh(z[:, 2 * U : 3 * U])
    return jax.nn.sigmoid(z[:, 3 * U :]) * jnp.tanh(c), c


def _forward(kind, unroll):
    def apply(p, tokens):
        e = p["embeddings"][tokens.T]  # (time, batch, embed)
        w, u, b = p["kernel"], p["recurrent_kernel"], p["bias"]
        if kind == "hoisted":
            xs = e @ w + b

            def step(carry, z):
                h, c = carry
                return _cell(z + h @ u, c), None
        elif kind == "fused":
            xs, wu = e, jnp.concatenate([w, u])

            def step(carry, x_t):
                h, c = carry
                return _cell(jnp.concatenate([x_t, h], 1) @ wu + b, c), None
        else:
            xs = e

            def step(carry, x_t):
                h, c = carry
                return _cell(x_t @ w + h @ u + b, c), None

        zeros = jnp.zeros((tokens.shape[0], U))
        (h, _), _ = jax.lax.scan(step, (zeros, zeros), xs, unroll=unroll)
        return h @ p["dense"]["kernel"] + p["dense"]["bias"]

    return apply


def _step(apply, tx):
    def loss(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(apply(p, x), y).mean()

    @jax.jit
    def step(p, s, x, y):
        value, g = jax.value_and_grad(loss)(p, x, y)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, value

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variants", default="per-step:1,fused:1,fused:2,hoisted:1,funkeras:1"
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5, help="steps per round")
    args = parser.parse_args(argv)
    x, y = LSTM_WORKLOAD.make_data(B, 0)
    x, y = jnp.asarray(x), jnp.asarray(y)
    tx = optax.adam(1e-3)
    runs = {}
    for spec in args.variants.split(","):
        kind, unroll = spec.split(":")
        if kind == "funkeras":
            model = lstm_model()
            state = model.state

            def apply(p, tokens, model=model, state=state):
                return model.apply(p, state, tokens)[0]

            params = model.params
        else:
            apply = _forward(kind, int(unroll))
            params = LSTM_WORKLOAD.init_params(jax.random.key(0))
        step = _step(apply, tx)
        opt = tx.init(params)
        t0 = time.perf_counter()
        params, opt, loss = step(params, opt, x, y)
        loss.block_until_ready()
        print(f"{spec}: compiled in {time.perf_counter() - t0:.1f} s", flush=True)
        runs[spec] = [step, params, opt, []]
    for r in range(args.rounds):
        order = list(runs) if r % 2 == 0 else list(runs)[::-1]
        for spec in order:
            step, params, opt, times = runs[spec]
            t0 = time.perf_counter()
            for _ in range(args.steps):
                params, opt, loss = step(params, opt, x, y)
            loss.block_until_ready()
            times.append(1000 * (time.perf_counter() - t0) / args.steps)
            runs[spec][1:3] = [params, opt]
    for spec, (*_, times) in runs.items():
        best, median = min(times), float(np.median(times))
        print(f"{spec:12s} best {best:7.1f} ms   median {median:7.1f} ms")


if __name__ == "__main__":
    main()
