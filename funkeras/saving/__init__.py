"""Saving: model files, weights files, train-state checkpoints and exported programs.

A saved file is data: layers are named by registry key only, never imported by a
name read from the file, and every loader validates sizes, shapes and dtypes
before it allocates. Every save is atomic. See `format.load_model` for the threat
model and `export` for what a loaded exported program may do.
"""

from funkeras.saving.checkpoints import (
    Checkpoint,
    CheckpointManager,
    config_fingerprint,
    restore_checkpoint,
    save_checkpoint,
)
from funkeras.saving.export import ExportedModel, export_model, load_exported
from funkeras.saving.format import (
    DEFAULT_MAX_PARAMS,
    load_model,
    load_weights,
    save_model,
    save_weights,
)
from funkeras.saving.registry import (
    get_registered_class,
    register_serializable,
    registry_key,
)

__all__ = [
    "Checkpoint",
    "CheckpointManager",
    "DEFAULT_MAX_PARAMS",
    "ExportedModel",
    "config_fingerprint",
    "export_model",
    "get_registered_class",
    "load_exported",
    "load_model",
    "load_weights",
    "register_serializable",
    "registry_key",
    "restore_checkpoint",
    "save_checkpoint",
    "save_model",
    "save_weights",
]
