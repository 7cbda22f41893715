"""funkeras: Keras-style neural networks on JAX with a pure functional core.

Layers are pure functions over parameter pytrees; a model composes them into one
`apply` that runs compiled under `jax.jit` or op by op, and trains with optax
through Keras' `compile`/`fit`/`evaluate`/`predict`.
"""

from funkeras import (
    activations,
    callbacks,
    constraints,
    distribution,
    errors,
    initializers,
    inspect,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    random,
    regularizers,
    saving,
    testing,
    training,
    utils,
)
from funkeras._version import __version__
from funkeras.models import Input, Model, Sequential
from funkeras.saving import load_model

__all__ = [
    "__version__",
    "Input",
    "Model",
    "Sequential",
    "load_model",
    "activations",
    "callbacks",
    "constraints",
    "distribution",
    "errors",
    "initializers",
    "inspect",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "random",
    "regularizers",
    "saving",
    "testing",
    "training",
    "utils",
]
