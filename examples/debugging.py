"""Debugging a model: eager mode, layerwise mode, per-layer logs, mode comparison.

Part 1, `execution="eager"`: the training step runs op by op, so plain `print`
(and `breakpoint()`) inside a layer's `apply` works during `fit`. The arrays
there are JAX autodiff tracers: printing one shows its value (`primal=...`), but
`float(x)` fails (a JAX rule). `Probe` below is a pass-through layer that prints
the batch statistics of what reaches it; run with `--breakpoint` to stop inside
it in the debugger. Under `execution="jit"` the same `print` runs once, while
tracing, and shows no values.

Part 2, `execution="layerwise"`: each layer's forward and backward pass is
compiled on its own and Python runs between layers, so per-layer values are
concrete arrays:

- `funkeras.inspect.forward_hooks(model, fn)` calls `fn(layer_name, output)`
  between layers during `fit` (here: the fraction of ReLU units that are zero,
  computed with plain `float(...)`);
- `funkeras.inspect.executor(model)` holds the last step's activations, output
  gradients, parameter gradients and optimizer updates of every layer;
- `fk.callbacks.LayerUpdateLogger` reports, for every variable, the norm of the
  parameter, of its gradient and of the applied update, and the ratio
  `update / param` (about 1e-3 is healthy; far larger means the step is too big
  for that layer, far smaller that it barely learns).

Part 3: the modes compute the same numbers from the same seed, so what you find
in eager or layerwise mode is what the jit run does. `compare_executions` checks
that for one training step, layer by layer (activations, gradients, updates);
it is the tool for "it works in eager mode and gives NaN under jit", naming the
first layer where the modes part.

    python examples/debugging.py
    python examples/debugging.py --breakpoint     # stop inside Probe.apply (eager)
    python examples/debugging.py --smoke
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

import funkeras as fk
from funkeras.inspect import compare_executions, executor, forward_hooks


@dataclass(eq=False)
class Probe(fk.layers.Layer):
    """Identity that prints the mean and spread of its input: `y = x`.

    Args:
        label: Printed before the statistics.
        stop: Call `breakpoint()` in `apply` (useful in eager mode only: under
            jit there is no value to look at).
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
    """Two classes split by a sphere in 4-D."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = ((x**2).sum(1) > 3.4).astype(np.int32)
    return x, y


def build_model(execution: str, *, probe: Probe | None = None) -> fk.Model:
    """A 4-32-32-2 ReLU classifier (seed 0), compiled for `execution`."""
    layers = [fk.Input(shape=(4,)), fk.layers.Dense(32, activation="relu")]
    if probe is not None:
        layers.append(probe)
    layers += [fk.layers.Dense(32, activation="relu"), fk.layers.Dense(2)]
    model = fk.Sequential(layers, seed=0)
    model.compile(
        optimizer=fk.optimizers.Adam(1e-2),
        loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        execution=execution,
    )
    return model


def max_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(u - v).max()) for u, v in zip(a, b, strict=True))


def eager_print(x, y, *, stop: bool) -> float:
    """Part 1: `print` inside a layer during fit, eager then jit; return the gap."""
    print(
        "Part 1: execution='eager': Probe.apply prints at every step (the first "
        "line, without values, is the model being built)"
    )
    eager = build_model("eager", probe=Probe("eager", stop=stop))
    eager.fit(x, y, batch_size=32, epochs=1, seed=0, verbose=0)
    print("the same model under execution='jit': Probe.apply prints while tracing")
    jit = build_model("jit", probe=Probe("jit"))
    jit.fit(x, y, batch_size=32, epochs=1, seed=0, verbose=0)
    gap = max_difference(eager.get_weights(), jit.get_weights())
    print(f"eager against jit: max |weight difference| {gap:.1e}")
    return gap


def layerwise_values(x, y, *, epochs: int, every: int) -> dict[str, float]:
    """Part 2: concrete per-layer values in layerwise mode; return some figures."""
    print("\nPart 2: execution='layerwise'")
    zero_fraction: dict[str, list[float]] = {}

    def watch(name, output):
        if name != "dense_2":  # the logits have no ReLU
            # A concrete array: float() works here, unlike inside an eager step.
            zero_fraction.setdefault(name, []).append(float((output <= 0).mean()))

    ratios: dict[str, list[float]] = {}

    def collect(step, norms):
        for variable, values in norms.items():
            ratios.setdefault(variable, []).append(values["update_ratio"])

    model = build_model("layerwise")
    with forward_hooks(model, watch):
        model.fit(
            x,
            y,
            batch_size=32,
            epochs=epochs,
            seed=0,
            verbose=0,
            callbacks=[
                fk.callbacks.LayerUpdateLogger(every=every),  # prints a table
                fk.callbacks.LayerUpdateLogger(every=every, to=collect),  # floats
            ],
        )
    print("fraction of ReLU outputs at zero (first step -> last step):")
    for name, values in zero_fraction.items():
        print(f"  {name:<8} {values[0]:.2f} -> {values[-1]:.2f}")

    last = executor(model)  # the last train step's values, by layer
    print("the last step, per layer (L2 norms):")
    for name in last.activations:
        grad = np.sqrt(sum(float((g**2).sum()) for g in last.grads[name].values()))
        update = np.sqrt(sum(float((u**2).sum()) for u in last.updates[name].values()))
        print(
            f"  {name:<8} activation {np.linalg.norm(last.activations[name]):8.3f}  "
            f"d loss/d output {np.linalg.norm(last.output_grads[name]):.2e}  "
            f"param grad {grad:.2e}  update {update:.2e}"
        )

    kernel_ratios = [r for v, rs in ratios.items() if v.endswith("kernel") for r in rs]
    return {
        "median_kernel_update_ratio": float(np.median(kernel_ratios)),
        "variables_logged": float(len(ratios)),
        "layers_hooked": float(len(zero_fraction)),
        "layers_recorded": float(len(last.activations)),
    }


def one_step_comparison(x, y) -> bool:
    """Part 3: one step in every mode, compared layer by layer; True if they agree."""
    print("\nPart 3: compare_executions")
    report = compare_executions(build_model("jit"), x, y)
    print(report)
    return report.agree


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the three parts; return the mode differences and per-layer figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds")
    parser.add_argument(
        "--breakpoint",
        action="store_true",
        help="stop in the debugger inside Probe.apply (part 1)",
    )
    args = parser.parse_args(argv)
    x, y = make_data(256 if args.smoke else 2048)

    results = {
        "eager_vs_jit_max_difference": eager_print(x[:64], y[:64], stop=args.breakpoint)
    }
    results |= layerwise_values(
        x, y, epochs=1 if args.smoke else 3, every=4 if args.smoke else 64
    )
    results["modes_agree"] = float(one_step_comparison(x[:32], y[:32]))
    return results


if __name__ == "__main__":
    main()
