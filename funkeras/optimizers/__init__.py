"""Keras optimizer names and arguments, built as optax transformations.

`Adam(...)`, `SGD(...)` and the other factories return optax transformations
configured with Keras 3's names, defaults and formulas; `get("adam")` builds one
by name, `serialize`/`deserialize` save and rebuild it, and the learning-rate
schedules (`ExponentialDecay`, `CosineDecay`, ...) follow Keras' formulas.
docs/optimizers.md says how the learning rate lives in the optimizer state and
where optax's update rules differ from Keras' (with the formulas).

The modules: `base` (`Optimizer` and the common builder), `factories` (the
optimizers), `schedules`, `lookup` (`get`, `serialize`, `deserialize`) and
`learning_rate` (`get_learning_rate`, `set_learning_rate`).

Example:
    >>> from funkeras import optimizers
    >>> optimizers.serialize(optimizers.get("sgd", learning_rate=0.5))["config"][
    ...     "learning_rate"]
    0.5
"""

from funkeras.optimizers.base import Optimizer
from funkeras.optimizers.factories import (
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    Nadam,
    RMSprop,
)
from funkeras.optimizers.learning_rate import get_learning_rate, set_learning_rate
from funkeras.optimizers.lookup import deserialize, get, serialize
from funkeras.optimizers.schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
    PolynomialDecay,
    deserialize_schedule,
    serialize_schedule,
)

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "Nadam",
    "Lion",
    "Adafactor",
    "get",
    "serialize",
    "deserialize",
    "get_learning_rate",
    "set_learning_rate",
    "LearningRateSchedule",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
    "serialize_schedule",
    "deserialize_schedule",
]
