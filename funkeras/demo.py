"""The short demo: one model trained with the static graph (jit) and the dynamic
graph (eager) on generated data, with the time per step of each.

Run it with `python -m funkeras.demo` (`--smoke` for a few seconds' version).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import funkeras as fk

__all__ = ["make_data", "build", "main"]


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals in 2-D lifted to 16 features: a small, non-linear task."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.5, 3.0, size=n) * np.pi
    label = rng.integers(0, 2, size=n)
    sign = np.where(label == 0, 1.0, -1.0)
    xy = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], axis=1) / 10.0
    xy += rng.normal(scale=0.03, size=xy.shape)
    lift = rng.normal(size=(2, 16)) / np.sqrt(2)
    x = np.concatenate([xy, np.tanh(xy @ lift)[:, :14]], axis=1).astype(np.float32)
    return x, label.astype(np.int32)


def build():
    """The demo's model: a 16-64-64-2 MLP with ReLU, from seed 0."""
    return fk.Sequential(
        [
            fk.Input(shape=(16,)),
            fk.layers.Dense(64, activation="relu"),
            fk.layers.Dense(64, activation="relu"),
            fk.layers.Dense(2),
        ],
        seed=0,
    )


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Train the demo model with jit and with eager; print and return the figures.

    Returns:
        `{"jit": {"ms_per_step", "accuracy"}, "eager": {...}}`.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)

    import jax

    n = 512 if args.smoke else 4096
    epochs = args.epochs or (2 if args.smoke else 8)
    x, y = make_data(n)
    split = int(0.8 * n)
    print(
        f"funkeras {fk.__version__} on {jax.devices()[0].platform}: "
        f"{n} samples, 16 features, 2 classes, batch 32, {epochs} epochs"
    )
    results: dict[str, dict[str, float]] = {}
    for execution in ("jit", "eager"):
        model = build()
        model.compile(
            optimizer=fk.optimizers.Adam(1e-2),
            loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            execution=execution,
        )
        model.fit(x[:split], y[:split], batch_size=32, epochs=1, verbose=0)  # warm-up
        steps = epochs * int(np.ceil(split / 32))
        start = time.perf_counter()
        model.fit(x[:split], y[:split], batch_size=32, epochs=epochs, verbose=0)
        elapsed = time.perf_counter() - start
        _, acc = model.evaluate(x[split:], y[split:], verbose=0)
        results[execution] = {"ms_per_step": 1e3 * elapsed / steps, "accuracy": acc}
        print(
            f"  {execution:>5}: {1e3 * elapsed / steps:8.3f} ms/step   "
            f"test accuracy {acc:.3f}"
        )
    ratio = results["eager"]["ms_per_step"] / results["jit"]["ms_per_step"]
    print(
        f"  eager / jit: {ratio:.1f}x slower per step (same numbers, every value concrete)"
    )
    return results


if __name__ == "__main__":
    main()
