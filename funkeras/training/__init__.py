"""Training: the pure steps, the executors and the loops (no `Model` here)."""

from funkeras.training.executors import (
    EagerExecutor,
    Executor,
    JitExecutor,
    get_executor,
)
from funkeras.training.host import Progress, ResumePoint, TrainHost
from funkeras.training.layerwise import LayerwiseExecutor  # registers "layerwise"
from funkeras.training.loop import Runner
from funkeras.training.objective import Objective
from funkeras.training.state import Batch, TrainState
from funkeras.training.steps import (
    StepConfig,
    all_finite,
    layer_probes,
    make_predict_step,
    make_test_step,
    make_train_step,
)

__all__ = [
    "Batch",
    "TrainState",
    "Objective",
    "Runner",
    "TrainHost",
    "Progress",
    "ResumePoint",
    "Executor",
    "JitExecutor",
    "EagerExecutor",
    "LayerwiseExecutor",
    "get_executor",
    "StepConfig",
    "make_train_step",
    "make_test_step",
    "make_predict_step",
    "all_finite",
    "layer_probes",
]
