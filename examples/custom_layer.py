"""A custom layer: write it, check it, train it, save and load it.

`GatedDense` is a gated linear unit, `y = activation(x @ kernel + bias) *
sigmoid(x @ gate_kernel + gate_bias)`, written as funkeras writes its own layers:
a dataclass of JSON-safe hyperparameters subclassing `fk.layers.Layer`, with a
pure `init(key, input_spec) -> (params, state)` and a pure
`apply(params, state, x, ...) -> (y, state)`.

The script

1. shows the config validation (a bad `units` fails when the layer is made);
2. runs `funkeras.testing.check_layer`, the conformance checks every built-in
   layer passes (output spec, jit equals eager, masks, gradients, config round
   trip, bfloat16, symbolic batch);
3. trains a model of two `GatedDense` layers on a non-linear regression task;
4. saves the model to a `.fkz` file and loads it back, which works because the
   class is registered with `register_serializable`.

    python examples/custom_layer.py
    python examples/custom_layer.py --smoke
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

import funkeras as fk
from funkeras.saving import load_model, register_serializable, save_model
from funkeras.testing import check_layer


@register_serializable(package="examples")
@dataclass(eq=False)
class GatedDense(fk.layers.Layer):
    """Gated linear unit: `y = activation(x @ W + b) * sigmoid(x @ V + c)`.

    Args:
        units: Positive int, size of the last output axis.
        activation: Activation name of the value path (None: linear).
        kernel_initializer: Initializer name of both kernels.

    Input shape: (batch, ..., input_dim)      Output shape: (batch, ..., units)
    Params: kernel `W` and gate_kernel `V` (input_dim, units); bias `b` and gate_bias
    `c` (units,).
    State: none.

    Example:
        >>> layer = GatedDense(3, activation="tanh")
        >>> spec = jax.ShapeDtypeStruct((2,), jnp.float32)
        >>> params, _ = layer.init(jax.random.key(0), spec)
        >>> sorted(params), params["gate_kernel"].shape
        (['bias', 'gate_bias', 'gate_kernel', 'kernel'], (2, 3))
    """

    units: int = 1
    activation: str | None = None
    kernel_initializer: str = "glorot_uniform"

    def __post_init__(self) -> None:
        super().__post_init__()
        if (
            isinstance(self.units, bool)
            or not isinstance(self.units, int)
            or self.units < 1
        ):
            raise ValueError(
                f"GatedDense: `units` must be a positive int, got {self.units!r}."
            )
        fk.activations.get(self.activation)  # unknown names fail here, not in fit
        fk.initializers.get(self.kernel_initializer)

    def init(self, key, input_spec):
        if len(input_spec.shape) < 1:
            raise ValueError(
                f"GatedDense(name={self.name!r}): expected inputs with a feature axis, "
                f"got one example of shape {input_spec.shape}. Add a Reshape before it."
            )
        fan_in = input_spec.shape[-1]
        init = fk.initializers.get(self.kernel_initializer)
        value_key, gate_key = jax.random.split(key)
        params = {
            "kernel": init(value_key, (fan_in, self.units), self.dtype),
            "bias": jnp.zeros((self.units,), self.dtype),
            "gate_kernel": init(gate_key, (fan_in, self.units), self.dtype),
            "gate_bias": jnp.zeros((self.units,), self.dtype),
        }
        return params, {}

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        del training, key, mask  # deterministic and per-row
        value = x @ params["kernel"] + params["bias"]
        gate = jax.nn.sigmoid(x @ params["gate_kernel"] + params["gate_bias"])
        return fk.activations.get(self.activation)(value) * gate, state


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`y = sin(3 x0) * [x1 > 0] + 0.5 x2`: the indicator is what a gate learns."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
    y = np.sin(3 * x[:, 0]) * (x[:, 1] > 0) + 0.5 * x[:, 2]
    return x, y[:, None].astype(np.float32)


def build_model(seed: int = 0) -> fk.Model:
    """Two `GatedDense` layers and a linear read-out."""
    return fk.Sequential(
        [
            fk.Input(shape=(3,)),
            GatedDense(32, activation="tanh"),
            GatedDense(32, activation="tanh"),
            fk.layers.Dense(1),
        ],
        seed=seed,
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Check, train, save and load the layer; return the errors and check count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    n = 1024 if args.smoke else 4096
    epochs = args.epochs or (5 if args.smoke else 40)

    # 1. Bad hyperparameters fail when the layer is made.
    try:
        GatedDense(0)
    except ValueError as e:
        print(f"refused: {e}")

    # 2. The conformance checks (float32 only in smoke mode, to stay quick).
    tolerances = {"float32": (1e-5, 1e-5)} if args.smoke else None
    report = check_layer(
        GatedDense(4, activation="tanh"),
        jax.ShapeDtypeStruct((3,), jnp.float32),
        dtype_tolerances=tolerances,
    )
    print(f"check_layer: {report}")

    # 3. Train it in a model.
    x, y = make_data(n)
    split = int(0.8 * n)
    model = build_model()
    model.compile(optimizer=fk.optimizers.Adam(3e-3), loss="mse", metrics=["mae"])
    if not args.smoke:
        model.summary()
    model.fit(x[:split], y[:split], batch_size=32, epochs=epochs, verbose=0)
    test_mse, test_mae = model.evaluate(x[split:], y[split:], verbose=0)
    baseline_mse = float(np.var(y[split:]))
    print(
        f"test mse {test_mse:.4f} (predicting the mean: {baseline_mse:.4f}), "
        f"mae {test_mae:.4f}"
    )

    # 4. Save and load: the registered class is found by its key "examples>GatedDense".
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "gated.fkz")
        save_model(model, path)
        loaded = load_model(path)
    same = np.abs(
        loaded.predict(x[split:], verbose=0) - model.predict(x[split:], verbose=0)
    )
    print(f"reloaded model: max |prediction difference| {same.max():.1e}")
    return {
        "test_mse": float(test_mse),
        "baseline_mse": baseline_mse,
        "checks_passed": float(len(report.checks)),
        "reload_max_difference": float(same.max()),
    }


if __name__ == "__main__":
    main()
