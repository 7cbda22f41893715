"""Running on a GPU or TPU: devices, placement, and jit against eager on each.

Lists the devices JAX sees, picks the first accelerator (TPU, then GPU) or the CPU,
and trains the same small MLP there under `jax.default_device`, once with the
static graph (`execution="jit"`) and once op by op (`execution="eager"`), timing
the steps after a warm-up epoch. Nothing in the model changes between devices.

Install JAX's accelerator wheels with `pip install -e ".[cuda12]"` or `".[tpu]"`.

    python examples/accelerators.py                 # the best device present
    python examples/accelerators.py --device cpu    # force the CPU
    python examples/accelerators.py --smoke
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import jax
import numpy as np

import funkeras as fk


def pick_device(platform: str | None = None) -> jax.Device:
    """The first device of `platform`, or the first TPU/GPU present, else the CPU."""
    if platform is not None:
        return jax.devices(platform)[0]  # raises, listing what exists, if absent
    for candidate in ("tpu", "gpu"):
        try:
            return jax.devices(candidate)[0]
        except RuntimeError:  # that backend is not installed or has no device
            continue
    return jax.devices("cpu")[0]


def make_data(n: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 10-class problem: the class is the argmax of a fixed random projection."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x @ rng.normal(size=(features, 10))).argmax(1).astype(np.int32)
    return x, y


def train_and_time(
    execution: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    width: int,
    batch_size: int,
    epochs: int,
) -> dict[str, Any]:
    """Build, compile and fit one MLP; return ms per step, accuracy and placement."""
    model = fk.Sequential(
        [
            fk.Input(shape=(x.shape[1],)),
            fk.layers.Dense(width, activation="relu"),
            fk.layers.Dense(width, activation="relu"),
            fk.layers.Dense(10),
        ],
        seed=0,
    )
    model.compile(
        optimizer="adam",
        loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        execution=execution,
    )
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)  # compiles
    first_epoch = time.perf_counter() - start
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    jax.block_until_ready(model.params)
    seconds = time.perf_counter() - start
    steps = epochs * -(-len(x) // batch_size)
    kernel = model.params["dense"]["kernel"]
    return {
        "ms_per_step": 1e3 * seconds / steps,
        "first_epoch_seconds": first_epoch,
        "accuracy": float(history.history["accuracy"][-1]),
        "params_on": str(next(iter(kernel.devices()))),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Train on the chosen device with jit and eager; return the timings.

    Returns `{"device", "platform", "jit": {...}, "eager": {...}, "eager_over_jit"}`,
    each run holding `ms_per_step`, `first_epoch_seconds`, `accuracy`, `params_on`.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds")
    parser.add_argument(
        "--device",
        choices=("cpu", "gpu", "tpu"),
        default=None,
        help="platform to run on (default: the first accelerator, else the CPU)",
    )
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    n = 128 if args.smoke else 8192
    width = args.width or (16 if args.smoke else 256)
    epochs = args.epochs or (1 if args.smoke else 3)
    batch_size = 64

    print(f"JAX {jax.__version__}, default backend: {jax.default_backend()}")
    for device in jax.devices():
        print(f"  {device.platform}:{device.id}  {device.device_kind}")
    device = pick_device(args.device)
    print(f"training on {device} ({device.device_kind})")

    x, y = make_data(n, 64)
    runs: dict[str, dict[str, Any]] = {}
    # Every array funkeras creates (params, optimizer state, the data it copies
    # once per fit) goes to JAX's default device; `jax.default_device` moves it.
    with jax.default_device(device):
        for execution in ("jit", "eager"):
            run = train_and_time(
                execution, x, y, width=width, batch_size=batch_size, epochs=epochs
            )
            runs[execution] = run
            print(
                f"  {execution:>5}: {run['ms_per_step']:8.3f} ms/step "
                f"(first epoch, with compiling: {run['first_epoch_seconds']:.2f} s), "
                f"train accuracy {run['accuracy']:.3f}, params on {run['params_on']}"
            )
    ratio = runs["eager"]["ms_per_step"] / runs["jit"]["ms_per_step"]
    print(f"eager / jit step time on {device.platform}: {ratio:.1f}x")
    return {
        "device": str(device),
        "platform": device.platform,
        **runs,
        "eager_over_jit": ratio,
    }


if __name__ == "__main__":
    main()
