"""Data parallelism on simulated devices: funkeras against hand-written JAX.

`python -m funkeras.bench --distributed` (or `python -m funkeras.bench.distributed`)
starts one fresh process with `XLA_FLAGS=--xla_force_host_platform_device_count=N`
(8 by default: the flag must be set before JAX starts). In it, on a 1-D mesh
of the N devices, two loops train the same workload for the same steps, timed
in alternating rounds:

* funkeras: `fit` under `fk.distribution.DataParallel()` (jit executor: weights
  replicated, each batch gathered on the device and split along `"batch"`).
* hand-written: the `jax.jit` step of `funkeras.bench.handwritten`, compiled
  with `in_shardings` (replicated params and optimizer state, batches split
  along `"batch"` by `NamedSharding`), donating its state, called on NumPy
  batches sliced in order: the data-parallel loop a JAX user writes.

Reported: the median step time of each, their ratio (funkeras / hand-written;
the target is <= 1.05) and each one's compile count. On CPU the simulated
devices share the host's cores, so the absolute times say nothing about
scaling; the ratio is the overhead funkeras adds on the same mesh.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import funkeras as fk
from funkeras.bench.handwritten import make_step
from funkeras.bench.workloads import get_workload, make_optimizer

__all__ = ["run_distributed", "format_distributed", "main"]

_MARK = "FUNKERAS_BENCH_DISTRIBUTED_JSON:"


def _measure(
    devices: int, model: str, rounds: int, steps: int, batch_size: int | None
) -> dict[str, Any]:
    """The timing itself; runs in the child process (JAX sees `devices` devices:
    XLA reads `XLA_FLAGS` when the backend starts, after these imports)."""
    found = jax.devices()
    if len(found) < devices:
        raise RuntimeError(f"JAX sees {len(found)} devices, {devices} were asked for.")
    used = found[:devices]
    w = get_workload(model)
    batch = batch_size or w.batch_size
    batch = -(-batch // devices) * devices
    x, y = w.make_data(max(w.rows, batch), 0)
    steps = max(1, min(steps, x.shape[0] // batch))
    x, y = x[: steps * batch], y[: steps * batch]

    # funkeras: fit under DataParallel, one epoch (of `steps` steps) per round.
    fk_model = w.build_model()
    fk_model.compile(
        optimizer=make_optimizer(w),
        loss=w.funkeras_loss(),
        distribution=fk.distribution.DataParallel(devices=used),
    )

    def funkeras_round() -> None:
        fk_model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        jax.block_until_ready(fk_model.params)

    # Hand-written: the same step, jitted with the data-parallel shardings.
    mesh = Mesh(np.asarray(used), ("batch",))
    replicated = NamedSharding(mesh, P())
    split = NamedSharding(mesh, P("batch"))
    tx = make_optimizer(w)
    traces = [0]
    step = make_step(w, tx)

    def counted(*args: Any) -> Any:
        traces[0] += 1
        return step(*args)

    jstep = jax.jit(
        counted,
        in_shardings=(replicated, replicated, split, split),
        out_shardings=(replicated, replicated, replicated),
        donate_argnums=(0, 1),
    )
    params = jax.device_put(w.init_params(jax.random.key(0)), replicated)
    state = [params, jax.jit(tx.init, out_shardings=replicated)(params)]

    def hand_round() -> None:
        p, o = state
        loss = None
        for i in range(0, steps * batch, batch):
            p, o, loss = jstep(p, o, x[i : i + batch], y[i : i + batch])
        float(loss)  # one read per epoch, as fit does
        jax.block_until_ready(p)
        state[:] = [p, o]

    variants: dict[str, Callable[[], None]] = {
        "funkeras": funkeras_round,
        "hand-written": hand_round,
    }
    first: dict[str, float] = {}
    for name, fn in variants.items():  # warm-up: compile
        start = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - start
    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names[r % 2 :] + names[: r % 2]:  # alternate who goes first
            start = time.perf_counter()
            variants[name]()
            samples[name].append((time.perf_counter() - start) / steps)
    step_ms = {k: 1e3 * statistics.median(v) for k, v in samples.items()}
    return {
        "devices": devices,
        "platform": used[0].platform,
        "model": model,
        "title": w.title,
        "batch_size": batch,
        "per_device_batch": batch // devices,
        "steps_per_round": steps,
        "rounds": rounds,
        "step_ms": step_ms,
        "first_round_s": first,
        "ratio": step_ms["funkeras"] / step_ms["hand-written"],
        "compiles": {
            "funkeras": fk_model.compile_stats()["train_step"]["compiles"],
            "hand-written": traces[0],
        },
    }


def run_distributed(
    devices: int = 8,
    model: str = "mlp",
    *,
    rounds: int = 5,
    steps: int = 32,
    batch_size: int | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Time the data-parallel step in a fresh process with `devices` CPU devices.

    Returns the child's measurements (see the module docstring), or
    `{"error": ...}` when it failed.
    """
    log(f"distributed: {model} on {devices} simulated devices (own process)")
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "")
    env["XLA_FLAGS"] = (
        f"{flags} --xla_force_host_platform_device_count={devices}".strip()
    )
    env.setdefault("JAX_PLATFORMS", "cpu")
    cmd = [
        sys.executable,
        "-c",
        "import sys; from funkeras.bench.distributed import main; "
        "sys.exit(main(sys.argv[1:]))",
        "--child",
        "--devices",
        str(devices),
        "--model",
        model,
        "--rounds",
        str(rounds),
        "--steps",
        str(steps),
    ]
    if batch_size:
        cmd += ["--batch-size", str(batch_size)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(_MARK):
            return json.loads(line[len(_MARK) :])
    return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]}


def format_distributed(result: dict[str, Any]) -> str:
    """The measurements as a small text table."""
    if "error" in result:
        return f"distributed: failed: {result['error']}"
    lines = [
        f"{result['title']} | global batch {result['batch_size']} "
        f"({result['per_device_batch']} per device) on {result['devices']} "
        f"{result['platform']} devices, DataParallel, {result['rounds']} rounds of "
        f"{result['steps_per_round']} steps",
        f"{'variant':<14}{'step ms':>10}{'compiles':>10}{'first round s':>15}",
    ]
    for name in ("funkeras", "hand-written"):
        lines.append(
            f"{name:<14}{result['step_ms'][name]:>10.3f}"
            f"{result['compiles'][name]:>10}{result['first_round_s'][name]:>15.2f}"
        )
    lines.append(
        f"ratio funkeras / hand-written: {result['ratio']:.3f} (target <= 1.05)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m funkeras.bench.distributed [--devices 8] [--model mlp] ...`."""
    p = argparse.ArgumentParser(prog="python -m funkeras.bench.distributed")
    p.add_argument("--devices", type=int, default=8)
    p.add_argument("--model", default="mlp")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--json", metavar="PATH", help="write the result as JSON")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        result = _measure(
            args.devices, args.model, args.rounds, args.steps, args.batch_size
        )
        print(_MARK + json.dumps(result), flush=True)
        return 0
    result = run_distributed(
        args.devices,
        args.model,
        rounds=args.rounds,
        steps=args.steps,
        batch_size=args.batch_size,
        log=lambda s: print(s, file=sys.stderr),
    )
    print(format_distributed(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
