"""Callbacks: Keras' hooks for watching and steering `fit`."""

from funkeras.callbacks.backup_and_restore import BackupAndRestore
from funkeras.callbacks.callback import Callback, CallbackList
from funkeras.callbacks.csv_logger import CSVLogger
from funkeras.callbacks.early_stopping import EarlyStopping
from funkeras.callbacks.history import History
from funkeras.callbacks.lambda_callback import LambdaCallback
from funkeras.callbacks.layer_update_logger import LayerUpdateLogger, ProbeWarning
from funkeras.callbacks.learning_rate_scheduler import LearningRateScheduler
from funkeras.callbacks.model_checkpoint import ModelCheckpoint
from funkeras.callbacks.monitor import MonitorCallback, MonitorWarning
from funkeras.callbacks.progbar import ProgbarLogger
from funkeras.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from funkeras.callbacks.tensorboard import TensorBoard
from funkeras.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LayerUpdateLogger",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "MonitorCallback",
    "MonitorWarning",
    "ProbeWarning",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TensorBoard",
    "TerminateOnNaN",
]
