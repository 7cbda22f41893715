"""The benchmark workloads: data, the funkeras model, and its hand-written twin.

Each workload is described once (`Workload`): how to generate its data (no
download), how to build the funkeras model, and the same network written by
hand in plain JAX (`init_params`, `apply`), with the same layer shapes, the
same initializers (Glorot-uniform kernels, zero biases), the same loss and the
same optax optimizer.

The four workloads of the benchmark:

* `linear`: linear regression, 8192 x 16 features, batch 256, SGD.
* `mlp`: a 784-512-512-10 MLP with ReLU, batch 128, Adam, sparse cross-entropy.
* `cnn`: conv32 3x3 ReLU, max-pool 2, conv64 3x3 ReLU, max-pool 2, dense 10 on
  28x28x1 images, batch 64, Adam, sparse cross-entropy.
* `tiny`: a 16-32-1 MLP with ReLU, batch 32, Adam, MSE (dispatch-bound).

`mlp_workload(width, depth)` builds the MLPs of the width/depth sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import funkeras as fk
from funkeras import optimizers
from funkeras.bench import workloads_transformer
from funkeras.layers import Conv2D, Dense, Flatten, MaxPooling2D
from funkeras.losses import SparseCategoricalCrossentropy

__all__ = [
    "Workload",
    "WORKLOADS",
    "DEFAULT_WORKLOADS",
    "get_workload",
    "mlp_workload",
    "make_optimizer",
    "glorot_uniform",
]


def glorot_uniform(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Keras' Glorot-uniform draw: `U(-l, l)`, `l = sqrt(6 / (fan_in + fan_out))`.

    Fans follow Keras: for a kernel `(*window, in, out)`, `fan_in = prod(window)
    * in` and `fan_out = prod(window) * out`.
    """
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
    return jax.random.uniform(key, shape, jnp.float32, -limit, limit)


# -- layers written by hand ----------------------------------------------------


def _dense(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    return x @ params["kernel"] + params["bias"]


def _conv(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    y = jax.lax.conv_general_dilated(
        x, params["kernel"], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y + params["bias"]


def _maxpool(x: jax.Array) -> jax.Array:
    return jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"
    )


def _mse(pred: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(pred - y))


def _sparse_ce(logits: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def _dense_init(key: jax.Array, sizes: list[int]) -> list[dict[str, jax.Array]]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        {"kernel": glorot_uniform(k, (a, b)), "bias": jnp.zeros((b,), jnp.float32)}
        for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def _mlp_apply(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    for layer in params[:-1]:
        x = jax.nn.relu(_dense(layer, x))
    return _dense(params[-1], x)


def _cnn_init(key: jax.Array) -> list[dict[str, jax.Array]]:
    k1, k2, k3 = jax.random.split(key, 3)
    return [
        {"kernel": glorot_uniform(k1, (3, 3, 1, 32)), "bias": jnp.zeros((32,))},
        {"kernel": glorot_uniform(k2, (3, 3, 32, 64)), "bias": jnp.zeros((64,))},
        {"kernel": glorot_uniform(k3, (5 * 5 * 64, 10)), "bias": jnp.zeros((10,))},
    ]


def _cnn_apply(params: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    x = _maxpool(jax.nn.relu(_conv(params[0], x)))
    x = _maxpool(jax.nn.relu(_conv(params[1], x)))
    x = x.reshape(x.shape[0], -1)
    return _dense(params[2], x)


# -- data ----------------------------------------------------------------------


def _regression_data(
    rows: int, features: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    w = rng.normal(size=(features, 1)).astype(np.float32)
    y = (x @ w + 0.5 + 0.1 * rng.normal(size=(rows, 1))).astype(np.float32)
    return x, y


def _image_data(
    rows: int, shape: tuple[int, ...], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Images in [0, 1) whose label is a function of their mean brightness pattern."""
    rng = np.random.default_rng(seed)
    x = rng.random(size=(rows, *shape), dtype=np.float32)
    flat = x.reshape(rows, -1)
    y = (flat[:, : flat.shape[1] // 2].mean(1) * 10 * 7 % 10).astype(np.int32)
    return x, y


# -- the workload description --------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: data, funkeras model, hand-written twin, sizes.

    Attributes:
        name: The CLI name (`--models`).
        title: A one-line description for tables.
        batch_size: Default rows per step.
        rows: Default rows of generated data.
        steps: Default steps per timed round (jit modes).
        eager_steps: Default steps per timed round for op-by-op modes.
        optimizer: `"sgd"` or `"adam"` (with `learning_rate`).
        learning_rate: The optimizer's learning rate.
        loss: `"mse"` or `"sparse_ce"` (sparse categorical cross-entropy on logits).
        make_data: `(rows, seed) -> (x, y)` NumPy arrays.
        build_model: `() -> funkeras model` (built, seed 0).
        init_params: `key -> params` of the hand-written network.
        apply: `(params, x) -> outputs` of the hand-written network.
        layers: Dense/conv layer sizes, for the sweep table.
        repeats: Default timed rounds per variant.
    """

    name: str
    title: str
    batch_size: int
    rows: int
    steps: int
    eager_steps: int
    optimizer: str
    learning_rate: float
    loss: str
    make_data: Callable[[int, int], tuple[np.ndarray, np.ndarray]]
    build_model: Callable[[], Any]
    init_params: Callable[[jax.Array], Any]
    apply: Callable[[Any, jax.Array], jax.Array]
    layers: tuple[int, ...] = field(default=())
    repeats: int = 5

    def hand_loss(self, params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
        """The hand-written loss of a batch (mean over rows)."""
        out = self.apply(params, x)
        return _mse(out, y) if self.loss == "mse" else _sparse_ce(out, y)

    def funkeras_loss(self) -> Any:
        """The funkeras loss argument for `compile`."""
        if self.loss == "mse":
            return "mse"
        return SparseCategoricalCrossentropy(from_logits=True)


def make_optimizer(workload: Workload, flavour: str = "optax") -> Any:
    """The optimizer: a plain optax transform, or (`flavour="keras"`) funkeras' name.

    The hand-written loop always uses the plain optax transform; funkeras gets
    the same one by default, so both run identical update rules. `"keras"` gives
    funkeras its Keras-named factory (`inject_hyperparams`, Keras' epsilon).
    """
    if flavour == "keras":
        return optimizers.get(workload.optimizer, learning_rate=workload.learning_rate)
    if workload.optimizer == "sgd":
        return optax.sgd(workload.learning_rate)
    return optax.adam(workload.learning_rate)


def _sequential(input_shape: tuple[int, ...], layers: list[Any]) -> Any:
    return fk.Sequential([fk.Input(shape=input_shape), *layers], seed=0)


def _dense_layers(sizes: list[int]) -> list[Any]:
    hidden = [Dense(n, activation="relu") for n in sizes[1:-1]]
    return [*hidden, Dense(sizes[-1])]


def mlp_workload(
    name: str,
    sizes: list[int],
    *,
    batch_size: int,
    optimizer: str = "adam",
    learning_rate: float = 1e-3,
    loss: str = "sparse_ce",
    rows: int = 4096,
    steps: int = 64,
    eager_steps: int = 16,
    title: str | None = None,
) -> Workload:
    """A ReLU MLP workload with layer `sizes` (input first, outputs last)."""
    n_in, n_out = sizes[0], sizes[-1]
    if loss == "mse":
        make_data = lambda rows, seed: _regression_data(rows, n_in, seed)  # noqa: E731
    else:

        def make_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
            x, y = _image_data(rows, (n_in,), seed)
            return x, (y % n_out).astype(np.int32)

    return Workload(
        name=name,
        title=title or "-".join(map(str, sizes)) + f" MLP, batch {batch_size}",
        batch_size=batch_size,
        rows=rows,
        steps=steps,
        eager_steps=eager_steps,
        optimizer=optimizer,
        learning_rate=learning_rate,
        loss=loss,
        make_data=make_data,
        build_model=lambda: _sequential((n_in,), _dense_layers(sizes)),
        init_params=lambda key: _dense_init(key, sizes),
        apply=_mlp_apply,
        layers=tuple(sizes),
    )


def _cnn_model() -> Any:
    return _sequential(
        (28, 28, 1),
        [
            Conv2D(32, 3, activation="relu"),
            MaxPooling2D(2),
            Conv2D(64, 3, activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(10),
        ],
    )


WORKLOADS: dict[str, Workload] = {
    "linear": mlp_workload(
        "linear",
        [16, 1],
        batch_size=256,
        optimizer="sgd",
        learning_rate=0.01,
        loss="mse",
        rows=8192,
        steps=256,
        eager_steps=32,
        title="linear regression 8192x16, batch 256, SGD",
    ),
    "mlp": mlp_workload(
        "mlp",
        [784, 512, 512, 10],
        batch_size=128,
        rows=4096,
        steps=64,
        eager_steps=16,
        title="MLP 784-512-512-10, batch 128, Adam",
    ),
    "cnn": Workload(
        name="cnn",
        title="CNN 28x28x1 (conv32, pool, conv64, pool, dense10), batch 64, Adam",
        batch_size=64,
        rows=2048,
        steps=32,
        eager_steps=8,
        optimizer="adam",
        learning_rate=1e-3,
        loss="sparse_ce",
        make_data=lambda rows, seed: _image_data(rows, (28, 28, 1), seed),
        build_model=_cnn_model,
        init_params=_cnn_init,
        apply=_cnn_apply,
        layers=(784, 32, 64, 10),
        repeats=3,
    ),
    "tiny": mlp_workload(
        "tiny",
        [16, 32, 1],
        batch_size=32,
        loss="mse",
        rows=4096,
        steps=256,
        eager_steps=32,
        title="tiny MLP 16-32-1, batch 32, Adam (dispatch-bound)",
    ),
}


WORKLOADS["transformer"] = Workload(**workloads_transformer.WORKLOAD_ARGS)
# The recurrent workload lives in its own module (it imports `Workload` from here).
from funkeras.bench.workloads_lstm import LSTM_WORKLOAD  # noqa: E402

WORKLOADS["lstm"] = LSTM_WORKLOAD

# What a plain `python -m funkeras.bench` runs. The sequence workloads (`lstm`,
# `transformer`) take seconds per eager step on a CPU: name them with `--models`.
DEFAULT_WORKLOADS: tuple[str, ...] = ("linear", "mlp", "cnn", "tiny")


def get_workload(name: str) -> Workload:
    """A workload by name; the error lists the valid names.

    Example:
        >>> from funkeras.bench.workloads import get_workload
        >>> w = get_workload("tiny")
        >>> w.batch_size, w.layers, w.optimizer
        (32, (16, 32, 1), 'adam')
    """
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; valid models: {', '.join(WORKLOADS)}"
        ) from None
