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
    check_file_name,
    load_model,
    load_weights,
    save_model,
    save_weights,
)
from funkeras.saving.registry import (
    CustomObjectScope,
    custom_object_scope,
    get_custom_objects,
    get_registered_class,
    get_registered_name,
    get_registered_object,
    register_keras_serializable,
    register_serializable,
    registry_key,
)
from funkeras.saving.serialization import deserialize, model_from_json, serialize

__all__ = [
    "Checkpoint",
    "CheckpointManager",
    "CustomObjectScope",
    "DEFAULT_MAX_PARAMS",
    "ExportedModel",
    "check_file_name",
    "config_fingerprint",
    "custom_object_scope",
    "deserialize",
    "export_model",
    "get_custom_objects",
    "get_registered_class",
    "get_registered_name",
    "get_registered_object",
    "load_exported",
    "load_model",
    "load_weights",
    "model_from_json",
    "register_keras_serializable",
    "register_serializable",
    "registry_key",
    "restore_checkpoint",
    "save_checkpoint",
    "save_model",
    "save_weights",
    "serialize",
]
