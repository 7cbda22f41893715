"""The classic first model: linear regression with one `Dense(1)` layer.

Generates `y = x @ w + b + noise`, fits `Dense(1)` by full-batch gradient descent on
the mean squared error, and compares the learned kernel and bias with the
closed-form least-squares solution from `np.linalg.lstsq`. Gradient descent on a
convex quadratic converges to that solution, so the difference should be at the
level of float32 rounding.

    python examples/linear_regression.py            # 2048 rows, 16 features
    python examples/linear_regression.py --smoke    # a few seconds
"""

from __future__ import annotations

import argparse

import numpy as np

import funkeras as fk


def make_data(n: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows `x ~ N(0, 1)` and targets `y = x @ w + b + 0.1 * noise`, shape (n, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    w = rng.normal(size=(features, 1))
    b = 0.5
    y = x @ w + b + 0.1 * rng.normal(size=(n, 1))
    return x.astype(np.float32), y.astype(np.float32)


def least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The closed-form solution: kernel (features, 1) and bias (1,), in float64."""
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float64)
    solution, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    return solution[:-1], solution[-1]


def main(argv: list[str] | None = None) -> float:
    """Fit, compare with least squares; return the largest weight difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, seconds")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)

    n = args.samples or (256 if args.smoke else 2048)
    epochs = args.epochs or (150 if args.smoke else 300)
    x, y = make_data(n, args.features)

    model = fk.Sequential(
        [fk.Input(shape=(args.features,)), fk.layers.Dense(1)], seed=0
    )
    # One batch per epoch: plain gradient descent on the full mean squared error,
    # which converges to the least-squares solution.
    model.compile(
        optimizer=fk.optimizers.SGD(learning_rate=0.1),
        loss="mse",
        metrics=["mae"],
    )
    history = model.fit(x, y, batch_size=n, epochs=epochs, shuffle=False, verbose=0)

    kernel = np.asarray(model.params["dense"]["kernel"], np.float64)
    bias = np.asarray(model.params["dense"]["bias"], np.float64)
    kernel_ls, bias_ls = least_squares(x, y)
    max_diff = float(
        max(np.abs(kernel - kernel_ls).max(), np.abs(bias - bias_ls).max())
    )

    print(f"{n} rows, {args.features} features, {epochs} full-batch steps of SGD")
    print(f"final training loss (mse): {history.history['loss'][-1]:.6f}")
    print(f"bias: funkeras {bias[0]:+.6f}   least squares {bias_ls[0]:+.6f}")
    print(f"max |weight difference| against np.linalg.lstsq: {max_diff:.2e}")
    return max_diff


if __name__ == "__main__":
    main()
