"""Models: `Sequential`, functional `Model(inputs, outputs)`, and `Input`.

Keras' model-level saving names are here too: `load_model`, `clone_model`,
`model_from_json` (see `docs/saving.md`, "Coming from Keras").
"""

from funkeras.graph import Input
from funkeras.models.cloning import clone_model
from funkeras.models.model import Model
from funkeras.models.sequential import Sequential
from funkeras.saving import load_model, model_from_json

Functional = Model  # Keras' name for a model built from inputs and outputs

__all__ = [
    "Input",
    "Model",
    "Sequential",
    "Functional",
    "clone_model",
    "load_model",
    "model_from_json",
]
