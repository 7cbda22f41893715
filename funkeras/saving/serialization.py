"""Keras' serialization names: `serialize`, `deserialize` and `model_from_json`.

A serialized layer or model is `{"class_name": registry key, "config":
get_config()}`: funkeras' own config (the one inside a `.fkz` file), not Keras'.
Deserializing looks the class up in the registry (and in `custom_objects` given
in code); nothing is imported by a name read from the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from funkeras import layers as layers_module
from funkeras.errors import ConfigError
from funkeras.layers.base import Layer
from funkeras.saving import archive
from funkeras.saving.format import MAX_CONFIG_BYTES
from funkeras.saving.registry import (
    custom_object_scope,
    get_registered_class,
    is_model_class,
    registry_key,
)

__all__ = ["serialize", "deserialize", "model_from_json"]


def serialize(layer: Layer) -> dict[str, Any]:
    """A layer (or model) as data: `{"class_name": key, "config": get_config()}`.

    Keras' `keras.layers.serialize`; the config is funkeras'. An unregistered
    user class raises `NotSerializableError` (register it, or serialize inside a
    `custom_object_scope` naming it).

    Example:
        >>> import funkeras as fk
        >>> data = fk.layers.serialize(fk.layers.Dense(3, name="d"))
        >>> data["class_name"], data["config"]["units"]
        ('Dense', 3)
        >>> fk.layers.deserialize(data).units
        3
    """
    if not isinstance(layer, Layer):
        raise TypeError(
            f"serialize: expected a funkeras layer or model, got "
            f"{type(layer).__name__}."
        )
    return {"class_name": registry_key(type(layer)), "config": layer.get_config()}


def deserialize(
    config: Mapping[str, Any], custom_objects: Mapping[str, type] | None = None
) -> Layer:
    """A new layer (or model, weights fresh) from `serialize`'s output.

    Keras' `keras.layers.deserialize`. `custom_objects` (`{name: class}`, from
    code) are looked up first, as inside `custom_object_scope`.

    Raises:
        ConfigError: `config` is not `{"class_name", "config"}`.
        UnsafeConfigError: the class name is not registered (nor in
            `custom_objects`).
    """
    if (
        not isinstance(config, Mapping)
        or set(config) - {"module", "registered_name"} != {"class_name", "config"}
        or not isinstance(config["config"], Mapping)
    ):
        raise ConfigError(
            "deserialize: expected {'class_name': str, 'config': dict} (what "
            f"`serialize` returns), got {str(config)[:200]}."
        )
    with custom_object_scope(custom_objects):
        cls = get_registered_class(config["class_name"], where="deserialize")
        if is_model_class(cls):
            return cls.from_config(dict(config["config"]), resolve=get_registered_class)
        return cls.from_config(dict(config["config"]))


def model_from_json(
    json_string: str, custom_objects: Mapping[str, type] | None = None
) -> Any:
    """A new model (weights fresh) from `model.to_json()`.

    Keras' `keras.models.model_from_json`. The JSON is funkeras' config (as in a
    `.fkz` file), not Keras'. It is parsed strictly (size and depth bounded,
    duplicate keys refused) and classes are looked up, never imported.

    Example:
        >>> import funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])
        >>> twin = fk.models.model_from_json(model.to_json())
        >>> type(twin).__name__, twin.count_params()
        ('Sequential', 8)
    """
    if not isinstance(json_string, str | bytes):
        raise TypeError(
            "model_from_json: expected a JSON string, got "
            f"{type(json_string).__name__}."
        )
    raw = json_string.encode() if isinstance(json_string, str) else json_string
    data = archive.parse_json(raw, what="model_from_json", max_bytes=MAX_CONFIG_BYTES)
    model = deserialize(data, custom_objects)
    if not is_model_class(type(model)):
        raise ConfigError(
            f"model_from_json: the JSON describes a {type(model).__name__} layer, "
            "not a model; use `fk.layers.deserialize(json.loads(...))`."
        )
    return model


# Keras' `keras.layers.serialize`/`deserialize`. They need the registry, which
# sits above the layers (layers import nothing of saving), so the layers
# package lists them in its `__all__` and they are attached here.
layers_module.serialize = serialize
layers_module.deserialize = deserialize
