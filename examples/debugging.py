"""Debugging a model: eager mode, layerwise mode and per-layer update logs.

Part 1, `execution="eager"`: the training step runs op by op, so plain `print`
(and `breakpoint()`) inside a layer's `apply` works during `fit`. The arrays
there are JAX autodiff tracers: printing one shows its value (`primal=...`), but
`float(x)` fails (a JAX rule). `Probe` below is a pass-through layer that prints
the batch statistics of what reaches it; run with `--breakpoint` to stop inside
it in the debugger.

Part 2, `execution="layerwise"`: each layer's forward and backward pass is
compiled on its own and Python runs between layers, so per-layer values are
concrete arrays. `fk.callbacks.LayerUpdateLogger` reports, for every variable,
the norm of the parameter, of its gradient and of the update the optimizer
applied, and the ratio `update / param` (about 1e-3 is healthy; far larger means
the step is too big for that layer, far smaller that it barely learns).

Each part also trains the same model under `execution="jit"`: the modes compute
the same numbers from the same seed, so what you find in eager or layerwise mode
is what the jit run does.

    python examples/debugging.py
    python examples/debugging.py --breakpoint     # stop inside Probe.apply (eager)
    python examples/debugging.py --smoke
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

import funkeras as fk


@dataclass(eq=False)
class Probe(fk.layers.Layer):
    """Identity that prints the mean and spread of its input: `y = x`.

    Args:
        label: Printed before the statistics.
        stop: Call `breakpoint()` in `apply` (eager mode only: under jit there is
            no value to look at).
    """

    label: str = "probe"
    stop: bool = False

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        # Runs at every eager step; under jit (and when the model is built) it runs
        # once, while tracing, and x has no value: use jax.debug.print there.
        print(
            f"  [{self.label}] training={training} shape={x.shape} "
            f"mean={x.mean()} std={x.std()}"
        )
        if self.stop:
            breakpoint()  # try: p x.mean(), p x[:2], then c to continue
        return x, state


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes split by a circle in 4-D."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = ((x**2).sum(1) > 3.4).astype(np.int32)
    return x, y


def build_model(*, probe: Probe | None = None, seed: int = 0) -> fk.Model:
    layers = [fk.Input(shape=(4,)), fk.layers.Dense(32, activation="relu")]
    if probe is not None:
        layers.append(probe)
    layers += [fk.layers.Dense(32, activation="relu"), fk.layers.Dense(2)]
    return fk.Sequential(layers, seed=seed)


def compile_model(model: fk.Model, execution: str) -> None:
    model.compile(
        optimizer=fk.optimizers.Adam(1e-2),
        loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        execution=execution,
    )


def train(
    x, y, *, execution: str, probe: Probe | None = None, epochs: int = 1, callbacks=None
) -> list[np.ndarray]:
    """Fit a fresh model (seed 0) in `execution` mode; return its weights."""
    model = build_model(probe=probe)
    compile_model(model, execution)
    model.fit(
        x, y, batch_size=32, epochs=epochs, seed=0, verbose=0, callbacks=callbacks
    )
    return model.get_weights()


def max_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(u - v).max()) for u, v in zip(a, b, strict=True))


def eager_print(x, y, *, stop: bool) -> float:
    """Part 1: `print` inside a layer during fit, eager then jit; return the gap."""
    print(
        "Part 1: execution='eager': Probe.apply prints at every step (the first "
        "line, with no values, is the model being built)"
    )
    eager = train(x, y, execution="eager", probe=Probe("eager", stop=stop))
    print(
        "the same model under execution='jit': Probe.apply runs once, while "
        "tracing, so it prints tracers without values"
    )
    jit = train(x, y, execution="jit", probe=Probe("jit"))
    gap = max_difference(eager, jit)
    print(f"eager against jit: max |weight difference| {gap:.1e}")
    return gap


def layerwise_update_log(x, y, *, epochs: int, every: int) -> tuple[dict, float]:
    """Part 2: per-variable norms in layerwise mode; return them and the gap to jit."""
    print("\nPart 2: execution='layerwise' with LayerUpdateLogger")
    ratios: dict[str, list[float]] = {}

    def collect(step: int, norms: dict[str, dict[str, float]]) -> None:
        for variable, values in norms.items():
            ratios.setdefault(variable, []).append(values["update_ratio"])

    layerwise = train(
        x,
        y,
        execution="layerwise",
        epochs=epochs,
        callbacks=[
            fk.callbacks.LayerUpdateLogger(every=every),  # prints a table
            fk.callbacks.LayerUpdateLogger(every=every, to=collect),  # keeps the floats
        ],
    )
    print("median update/param ratio per variable:")
    for variable, values in ratios.items():
        print(f"  {variable:<16} {np.median(values):.2e}  ({len(values)} reports)")
    gap = max_difference(layerwise, train(x, y, execution="jit", epochs=epochs))
    print(f"layerwise against jit: max |weight difference| {gap:.1e}")
    return ratios, gap


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run both parts; return the mode differences and the update ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds")
    parser.add_argument(
        "--breakpoint",
        action="store_true",
        help="stop in the debugger inside Probe.apply (part 1)",
    )
    args = parser.parse_args(argv)
    x, y = make_data(256 if args.smoke else 2048)

    eager_gap = eager_print(x[:64], y[:64], stop=args.breakpoint)
    ratios, layerwise_gap = layerwise_update_log(
        x, y, epochs=1 if args.smoke else 3, every=4 if args.smoke else 64
    )
    kernel_ratios = [r for v, rs in ratios.items() if v.endswith("kernel") for r in rs]
    return {
        "eager_vs_jit_max_difference": eager_gap,
        "layerwise_vs_jit_max_difference": layerwise_gap,
        "median_kernel_update_ratio": float(np.median(kernel_ratios)),
        "variables_logged": float(len(ratios)),
    }


if __name__ == "__main__":
    main()
