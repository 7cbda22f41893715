"""Models: `Sequential`, functional `Model(inputs, outputs)`, and `Input`."""

from funkeras.graph import Input
from funkeras.models.model import Model
from funkeras.models.sequential import Sequential

Functional = Model  # Keras' name for a model built from inputs and outputs

__all__ = ["Input", "Model", "Sequential", "Functional"]
