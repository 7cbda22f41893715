"""Other libraries on the same workloads, each in its own process (`--peers`).

Each peer runs in a fresh Python process (`python -m funkeras.bench.peers`),
so that one library's imports, threads and caches do not touch another's. In
that process the peer's training loop and the hand-written `jax.jit` loop of
`funkeras.bench.handwritten` are timed in alternating rounds, and the ratio
reported is the one measured there. A peer whose package is not installed is
reported as `not installed`; one that fails is reported with its error. No
peer is a dependency of funkeras.

Peers: Keras 3 on the JAX backend (`fit` with `jit_compile=True`, and with
`run_eagerly=True`), Flax NNX (`nnx.jit`), Equinox (`eqx.filter_jit`),
PyTorch eager and PyTorch with `torch.compile`. Each builds the workload's
network with its own layers and default initializers (same shapes), the
same optimizer (SGD or Adam, same learning rate), loss and batch size.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from funkeras.bench import workloads_transformer
from funkeras.bench.handwritten import HandWritten
from funkeras.bench.runner import plan_epochs
from funkeras.bench.workloads import get_workload

__all__ = ["PEERS", "run_peers", "format_peers", "main"]

#: peer name -> (package that must be importable, description)
PEERS: dict[str, tuple[str, str]] = {
    "keras-jit": ("keras", "Keras 3 fit on JAX, jit_compile=True"),
    "keras-eager": ("keras", "Keras 3 fit on JAX, run_eagerly=True"),
    "flax-nnx": ("flax", "Flax NNX, nnx.jit train step"),
    "equinox": ("equinox", "Equinox, eqx.filter_jit train step"),
    "torch-eager": ("torch", "PyTorch eager"),
    "torch-compile": ("torch", "PyTorch, torch.compile(model)"),
}
_EAGER_PEERS = ("keras-eager",)
_MARK = "FUNKERAS_BENCH_PEER_JSON:"


# -- the peers' training loops -------------------------------------------------


def _is_cnn(workload: Any) -> bool:
    return workload.name == "cnn"


def _keras(workload: Any, x: np.ndarray, y: np.ndarray, batch: int, eager: bool) -> Any:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(
            f"Keras runs on {keras.backend.backend()!r}; set KERAS_BACKEND=jax"
        )
    keras.utils.set_random_seed(0)
    L = keras.layers
    if workload.name == "lstm":
        layers = [
            keras.Input((64,), dtype="int32"),
            L.Embedding(1000, 32),
            L.LSTM(128),
            L.Dense(10),
        ]
    elif _is_cnn(workload):
        layers = [
            keras.Input((28, 28, 1)),
            L.Conv2D(32, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(10),
        ]
    elif workload.name == "transformer":
        layers = None  # a functional model (workloads_transformer.keras_model)
    else:
        sizes = workload.layers
        layers = (
            [keras.Input((sizes[0],))]
            + [L.Dense(n, activation="relu") for n in sizes[1:-1]]
            + [L.Dense(sizes[-1])]
        )
    if layers is None:
        model = workloads_transformer.keras_model()
    else:
        model = keras.Sequential(layers)
    opt = (
        keras.optimizers.SGD(workload.learning_rate)
        if workload.optimizer == "sgd"
        else keras.optimizers.Adam(workload.learning_rate)
    )
    loss = (
        "mse"
        if workload.loss == "mse"
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    if eager:
        model.compile(optimizer=opt, loss=loss, run_eagerly=True)
    else:
        model.compile(optimizer=opt, loss=loss, jit_compile=True)

    class Loop:
        def first_step(self) -> None:
            model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)

        def run(self, epochs: int) -> None:
            model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=True)

        def sync(self) -> None:
            import jax

            jax.block_until_ready([v.value for v in model.trainable_variables])

    return Loop()


def _jax_loss(workload: Any) -> Callable[[Any, Any], Any]:
    import jax.numpy as jnp
    import optax

    if workload.loss == "mse":
        return lambda out, y: jnp.mean(jnp.square(out - y))
    return lambda out, y: jnp.mean(
        optax.softmax_cross_entropy_with_integer_labels(out, y)
    )


def _optax_tx(workload: Any) -> Any:
    import optax

    return (
        optax.sgd(workload.learning_rate)
        if workload.optimizer == "sgd"
        else optax.adam(workload.learning_rate)
    )


def _pool(x: Any) -> Any:
    import jax

    return jax.lax.reduce_window(
        x, -float("inf"), jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"
    )


def _flax_nnx(workload: Any, x: np.ndarray, y: np.ndarray, batch: int) -> Any:
    import jax
    from flax import nnx

    loss_of = _jax_loss(workload)
    cnn = _is_cnn(workload)

    class Net(nnx.Module):
        def __init__(self, rngs: Any) -> None:
            if cnn:
                self.c1 = nnx.Conv(1, 32, (3, 3), padding="VALID", rngs=rngs)
                self.c2 = nnx.Conv(32, 64, (3, 3), padding="VALID", rngs=rngs)
                self.out = nnx.Linear(5 * 5 * 64, 10, rngs=rngs)
            else:
                sizes = workload.layers
                self.hidden = nnx.List(
                    [
                        nnx.Linear(a, b, rngs=rngs)
                        for a, b in zip(sizes[:-2], sizes[1:-1], strict=True)
                    ]
                )
                self.out = nnx.Linear(sizes[-2], sizes[-1], rngs=rngs)

        def __call__(self, h: Any) -> Any:
            if cnn:
                h = _pool(jax.nn.relu(self.c1(h)))
                h = _pool(jax.nn.relu(self.c2(h)))
                h = h.reshape(h.shape[0], -1)
            else:
                for layer in self.hidden:
                    h = jax.nn.relu(layer(h))
            return self.out(h)

    model = Net(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, _optax_tx(workload), wrt=nnx.Param)

    @nnx.jit
    def step(model: Any, optimizer: Any, xb: Any, yb: Any) -> Any:
        loss, grads = nnx.value_and_grad(lambda m: loss_of(m(xb), yb))(model)
        optimizer.update(model, grads)
        return loss

    return _StepLoop(
        lambda xb, yb: step(model, optimizer, xb, yb),
        x,
        y,
        batch,
        lambda: jax.block_until_ready(nnx.state(model)),
    )


def _equinox(workload: Any, x: np.ndarray, y: np.ndarray, batch: int) -> Any:
    import equinox as eqx
    import jax

    loss_of = _jax_loss(workload)
    keys = jax.random.split(jax.random.key(0), 8)
    if _is_cnn(workload):
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # Equinox convs are CHW
        layers: list[Any] = [
            eqx.nn.Conv2d(1, 32, 3, key=keys[0]),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.MaxPool2d(2, 2),
            eqx.nn.Conv2d(32, 64, 3, key=keys[1]),
            eqx.nn.Lambda(jax.nn.relu),
            eqx.nn.MaxPool2d(2, 2),
            eqx.nn.Lambda(lambda h: h.reshape(-1)),
            eqx.nn.Linear(5 * 5 * 64, 10, key=keys[2]),
        ]
    else:
        sizes = workload.layers
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(eqx.nn.Linear(a, b, key=keys[i]))
            if i < len(sizes) - 2:
                layers.append(eqx.nn.Lambda(jax.nn.relu))
    model = eqx.nn.Sequential(layers)
    tx = _optax_tx(workload)
    state = {"model": model, "opt": tx.init(eqx.filter(model, eqx.is_inexact_array))}

    @eqx.filter_jit
    def step(model: Any, opt_state: Any, xb: Any, yb: Any) -> Any:
        def loss_fn(m: Any) -> Any:
            return loss_of(jax.vmap(m)(xb), yb)

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = tx.update(
            grads, opt_state, eqx.filter(model, eqx.is_array)
        )
        return eqx.apply_updates(model, updates), opt_state, loss

    def one(xb: Any, yb: Any) -> Any:
        state["model"], state["opt"], loss = step(state["model"], state["opt"], xb, yb)
        return loss

    return _StepLoop(
        one,
        x,
        y,
        batch,
        lambda: jax.block_until_ready(eqx.filter(state["model"], eqx.is_array)),
    )


def _torch(
    workload: Any, x: np.ndarray, y: np.ndarray, batch: int, compiled: bool
) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    if workload.name == "lstm":
        # PyTorch's fused `nn.LSTM` (one call for the whole sequence).

        class LSTMClassifier(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed = nn.Embedding(1000, 32)
                self.lstm = nn.LSTM(32, 128, batch_first=True)
                self.head = nn.Linear(128, 10)

            def forward(self, tokens: Any) -> Any:
                _, (h, _) = self.lstm(self.embed(tokens))
                return self.head(h[-1])

        model = LSTMClassifier()
        x = x.astype(np.int64)
    elif _is_cnn(workload):
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # PyTorch convs are NCHW
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(5 * 5 * 64, 10),
        )
    else:
        sizes = workload.layers
        mods: list[Any] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            mods.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                mods.append(nn.ReLU())
        model = nn.Sequential(*mods)
    if workload.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=workload.learning_rate)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=workload.learning_rate)
    loss_fn = nn.MSELoss() if workload.loss == "mse" else nn.CrossEntropyLoss()
    forward = torch.compile(model) if compiled else model
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y.astype(np.int64) if workload.loss != "mse" else y)

    def one(xb: Any, yb: Any) -> Any:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(forward(xb), yb)
        loss.backward()
        opt.step()
        return loss

    return _StepLoop(one, xt, yt, batch, lambda: None, to_float=lambda v: v.item())


class _StepLoop:
    """A per-step loop over contiguous batches, reading the loss once per epoch."""

    def __init__(
        self,
        step: Callable[[Any, Any], Any],
        x: Any,
        y: Any,
        batch: int,
        sync: Callable[[], Any],
        to_float: Callable[[Any], float] = float,
    ) -> None:
        self.step, self.x, self.y, self.batch = step, x, y, batch
        self.sync, self.to_float = sync, to_float
        self.steps = len(x) // batch

    def first_step(self) -> None:
        self.to_float(self.step(self.x[: self.batch], self.y[: self.batch]))

    def run(self, epochs: int) -> None:
        b = self.batch
        loss = None
        for _ in range(epochs):
            for i in range(0, self.steps * b, b):
                loss = self.step(self.x[i : i + b], self.y[i : i + b])
            self.to_float(loss)


def _make_peer(
    name: str, workload: Any, x: np.ndarray, y: np.ndarray, batch: int
) -> Any:
    if name.startswith("keras"):
        return _keras(workload, x, y, batch, eager=name == "keras-eager")
    if workload.name == "lstm" and not name.startswith("torch"):
        raise RuntimeError(
            f"{name}: the lstm workload is measured against Keras and PyTorch only"
        )
    if name == "flax-nnx":
        return _flax_nnx(workload, x, y, batch)
    if name == "equinox":
        return _equinox(workload, x, y, batch)
    return _torch(workload, x, y, batch, compiled=name == "torch-compile")


# -- inside the peer's process -------------------------------------------------


def _measure(
    peer: str,
    model: str,
    batch_size: int | None,
    steps: int | None,
    rows: int | None,
    repeats: int,
) -> list[dict[str, Any]]:
    workload = get_workload(model)
    batch = batch_size or workload.batch_size
    want = steps or (workload.eager_steps if peer in _EAGER_PEERS else workload.steps)
    rows = max(rows or workload.rows, batch)
    epochs, per_epoch = plan_epochs(want, rows, batch)
    x, y = workload.make_data(rows, 0)
    perm = np.random.default_rng(0).permutation(rows)[: per_epoch * batch]
    x, y = x[perm].copy(), y[perm].copy()
    ref_steps = workload.steps if steps is None else steps
    ref_epochs, ref_per_epoch = plan_epochs(ref_steps, rows, batch)

    rows_out = []
    ref = HandWritten(workload, "jit", x, y, batch, min(ref_per_epoch, per_epoch))
    ref_first = ref.first_step()
    ref.run(ref_epochs, 0)
    start = time.perf_counter()
    loop = _make_peer(peer, workload, x, y, batch)
    loop.first_step()
    loop.sync()
    first = time.perf_counter() - start
    loop.run(epochs)
    samples: dict[str, list[float]] = {"peer": [], "ref": []}
    ref_total = ref_epochs * ref.steps_per_epoch
    for r in range(repeats):
        pair: list[tuple[str, Callable[[], None], int]] = [
            ("peer", lambda: (loop.run(epochs), loop.sync()), epochs * per_epoch),
            ("ref", lambda: ref.run(ref_epochs, 0), ref_total),
        ]
        for key, fn, n in pair if r % 2 == 0 else pair[::-1]:
            gc.collect()
            gc.disable()
            try:
                t0 = time.perf_counter()
                fn()
                samples[key].append(1000 * (time.perf_counter() - t0) / n)
            finally:
                gc.enable()
    peer_ms = statistics.median(samples["peer"])
    ref_ms = statistics.median(samples["ref"])
    rows_out.append(
        {
            "model": model,
            "peer": peer,
            "status": "ok",
            "first_step_s": first,
            "step_ms": peer_ms,
            "samples_ms": samples["peer"],
            "batch_size": batch,
            "steps_per_round": epochs * per_epoch,
            "samples_per_s": batch / (peer_ms / 1000),
            "ratio_hand_jit": peer_ms / ref_ms,
            "hand_jit_ms": ref_ms,
            "hand_jit_first_step_s": ref_first,
        }
    )
    return rows_out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the peer process: measure one peer on one workload."""
    p = argparse.ArgumentParser(prog="python -m funkeras.bench.peers")
    p.add_argument("--peer", required=True, choices=list(PEERS))
    p.add_argument("--model", required=True)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--rows", type=int, default=None)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    rows = _measure(
        args.peer, args.model, args.batch_size, args.steps, args.rows, args.repeats
    )
    print(_MARK + json.dumps(rows), flush=True)
    return 0


# -- in the benchmark's process ------------------------------------------------


def installed(peer: str) -> bool:
    """Whether the package a peer needs can be imported (without importing it)."""
    return importlib.util.find_spec(PEERS[peer][0]) is not None


def run_peers(
    names: Sequence[str],
    models: Sequence[str],
    *,
    batch_size: int | None,
    quick: bool,
    repeats: int,
    log: Callable[[str], None],
    timeout_s: float = 600.0,
) -> list[dict[str, Any]]:
    """Measure each peer on each model in its own process; never raises for a peer."""
    out: list[dict[str, Any]] = []
    for peer in names:
        if not installed(peer):
            log(f"peer {peer}: not installed ({PEERS[peer][0]})")
            out.extend(
                {
                    "model": m,
                    "peer": peer,
                    "status": "not installed",
                    "reason": f"`{PEERS[peer][0]}` is not installed",
                }
                for m in models
            )
            continue
        for model in models:
            cmd = [
                sys.executable,
                "-m",
                "funkeras.bench.peers",
                "--peer",
                peer,
                "--model",
                model,
                "--repeats",
                str(repeats),
            ]
            if batch_size:
                cmd += ["--batch-size", str(batch_size)]
            if quick:
                cmd += ["--steps", "8", "--rows", str(8 * (batch_size or 64))]
            env = dict(os.environ, KERAS_BACKEND="jax")
            log(f"peer {peer} on {model} ...")
            try:
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, env=env, timeout=timeout_s
                )
            except subprocess.TimeoutExpired:
                out.append(
                    {
                        "model": model,
                        "peer": peer,
                        "status": "error",
                        "reason": f"timed out after {timeout_s:.0f} s",
                    }
                )
                continue
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)]
            if proc.returncode != 0 or not lines:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
                out.append(
                    {
                        "model": model,
                        "peer": peer,
                        "status": "error",
                        "reason": f"exit {proc.returncode}: {tail}",
                    }
                )
                continue
            out.extend(json.loads(lines[-1][len(_MARK) :]))
    return out


def format_peers(rows: Sequence[dict[str, Any]]) -> str:
    """The peers' rows as an aligned text table."""
    header = ("model", "peer", "first step s", "step ms", "samples/s", "x hand jit")
    cells = []
    for r in rows:
        if r.get("status") != "ok":
            cells.append(
                (r["model"], r["peer"], f"{r['status']}: {r.get('reason', '')}")
            )
            continue
        cells.append(
            (
                r["model"],
                r["peer"],
                f"{r['first_step_s']:.3f}",
                f"{r['step_ms']:.4f}" if r["step_ms"] < 0.1 else f"{r['step_ms']:.3f}",
                f"{r['samples_per_s']:,.0f}",
                f"{r['ratio_hand_jit']:.2f}",
            )
        )
    widths = [
        max([len(h)] + [len(c[i]) for c in cells if len(c) == len(header)])
        for i, h in enumerate(header)
    ]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for c in cells:
        lines.append(
            "  ".join(v.ljust(w) for v, w in zip(c, widths, strict=False)).rstrip()
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
