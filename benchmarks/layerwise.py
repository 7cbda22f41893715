"""Train-step time of the three execution modes, and of PyTorch eager, on two MLPs.

Prints milliseconds per training step (median of timed rounds, after warm-up)
for:

* `jit`: funkeras' step program under `execution="jit"` (whole step compiled);
* `layerwise`: the same step under `execution="layerwise"` (compiled per layer,
  Python between layers);
* `eager`: the same step op by op (`execution="eager"`);
* `torch-eager`: the same model, loss and optimizer in PyTorch eager (skipped
  when torch is not installed).

Each step runs on a batch already on the device (the step function itself, as
`train_on_batch` calls it); `fit/step` adds the loop around it (batch gathering,
callbacks), measured over a whole `fit` epoch.

Run: `python benchmarks/layerwise.py [--rounds 7] [--steps 30] [--smoke]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import funkeras as fk  # noqa: E402
from funkeras.training.state import Batch, TrainState, copy_tree  # noqa: E402

MODELS = {
    # name: (layer sizes, batch size, loss)
    "mlp-784-512-512-10": ((784, 512, 512, 10), 128, "sparse_categorical_crossentropy"),
    "mlp-16-32-1": ((16, 32, 1), 32, "mse"),
}


def build(sizes: tuple[int, ...], loss: str, execution: str) -> Any:
    layers: list[Any] = [fk.Input(shape=(sizes[0],))]
    for units in sizes[1:-1]:
        layers.append(fk.layers.Dense(units, activation="relu"))
    layers.append(fk.layers.Dense(sizes[-1]))
    model = fk.Sequential(layers, seed=0)
    model.compile(optimizer=optax.adam(1e-3), loss=loss, execution=execution)
    return model


def data(sizes: tuple[int, ...], n: int, loss: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, sizes[0])).astype(np.float32)
    if loss == "mse":
        y = rng.normal(size=(n, sizes[-1])).astype(np.float32)
    else:
        y = rng.integers(0, sizes[-1], size=(n,)).astype(np.int32)
    return x, y


def funkeras_step(
    sizes: tuple[int, ...], batch: int, loss: str, execution: str
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """`(run one step, block)` for funkeras' step program on a device batch."""
    model = build(sizes, loss, execution)
    x, y = data(sizes, batch, loss)
    runner = model.make_runner()
    step = runner.train_host_program()
    holder = {
        "ts": TrainState.create(
            copy_tree(model.params),
            copy_tree(model.state),
            copy_tree(model.opt_state),
            runner.init_metrics(),
            jax.random.key(0),
        ),
    }
    b = Batch(
        jax.device_put(x), jax.device_put(y), None, jax.device_put(np.ones(batch, bool))
    )

    def run() -> Any:
        holder["ts"], logs = step(holder["ts"], b)
        return logs

    return run, lambda: jax.block_until_ready(holder["ts"])


def funkeras_fit(
    sizes: tuple[int, ...], batch: int, loss: str, execution: str, steps: int
) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """`(one fit epoch of `steps` steps, block)`."""
    model = build(sizes, loss, execution)
    x, y = data(sizes, batch * steps, loss)

    def run() -> Any:
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)

    return run, lambda: jax.block_until_ready(model.params)


def torch_step(
    sizes: tuple[int, ...], batch: int, loss: str, threads: int | None
) -> tuple[Callable[[], Any], Callable[[], Any]] | None:
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    if threads:
        torch.set_num_threads(threads)
    mods: list[Any] = []
    for a, b in zip(sizes[:-2], sizes[1:-1], strict=True):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    mods.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = data(sizes, batch, loss)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    if loss == "mse":
        loss_fn: Any = torch.nn.MSELoss()
    else:
        ty = ty.long()
        loss_fn = torch.nn.CrossEntropyLoss()

    def run() -> Any:
        opt.zero_grad(set_to_none=True)
        value = loss_fn(net(tx), ty)
        value.backward()
        opt.step()
        return value

    return run, lambda: None


def time_rounds(
    variants: dict[str, tuple[Callable[[], Any], Callable[[], Any]]],
    steps: int,
    rounds: int,
    per_call: dict[str, int],
) -> dict[str, float]:
    """Median ms per step, rounds alternating between variants (fair under noise)."""
    for run, block in variants.values():  # warm-up: compile, caches
        for _ in range(3):
            run()
        block()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            run, block = variants[name]
            calls = max(1, steps // per_call.get(name, 1))
            start = time.perf_counter()
            for _ in range(calls):
                run()
            block()
            elapsed = time.perf_counter() - start
            samples[name].append(elapsed * 1e3 / (calls * per_call.get(name, 1)))
    return {name: statistics.median(v) for name, v in samples.items()}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch.set_num_threads (default: torch's own choice)",
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny run (tests)")
    args = parser.parse_args(argv)
    rounds, steps = (2, 3) if args.smoke else (args.rounds, args.steps)
    results: dict[str, dict[str, float]] = {}
    print(f"backend: {jax.default_backend()}, devices: {jax.devices()}")
    for name, (sizes, batch, loss) in MODELS.items():
        variants: dict[str, Any] = {}
        for execution in ("jit", "layerwise", "eager"):
            variants[execution] = funkeras_step(sizes, batch, loss, execution)
        torch_variant = torch_step(sizes, batch, loss, args.torch_threads)
        if torch_variant is not None:
            variants["torch-eager"] = torch_variant
        eager_steps = max(1, steps // 5)
        per_call = {"eager": 1}
        ms = time_rounds(
            {k: v for k, v in variants.items() if k != "eager"}, steps, rounds, per_call
        )
        ms.update(
            time_rounds(
                {"eager": variants["eager"]}, eager_steps, max(2, rounds // 2), per_call
            )
        )
        fits = {
            f"fit/step {execution}": funkeras_fit(sizes, batch, loss, execution, steps)
            for execution in ("jit", "layerwise")
        }
        fit_ms = time_rounds(fits, 1, max(2, rounds // 2), {k: steps for k in fits})
        results[name] = {**ms, **fit_ms}
        print(f"\n{name} (batch {batch}, Adam), ms per train step:")
        for key in ("jit", "layerwise", "eager", "torch-eager", *fits):
            if key in results[name]:
                print(f"  {key:<22} {results[name][key]:9.3f}")
        ratio = results[name]["layerwise"] / results[name]["jit"]
        line = f"  layerwise / jit        {ratio:9.2f}x"
        if "torch-eager" in results[name]:
            vs_torch = results[name]["layerwise"] / results[name]["torch-eager"]
            line += f"   layerwise / torch-eager {vs_torch:.2f}x"
        print(line)
    return results


if __name__ == "__main__":
    main()
