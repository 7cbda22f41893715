"""Keras 3 model configs (`config.json` of a `.keras` file) read as data.

A Keras config names each layer by class (`"class_name": "Dense"`), the module
Keras would import it from, and an optional registered name. funkeras reads
only the class name and looks it up in its own layer catalogue; `module` and
`registered_name` are never imported, and serve only to recognise a custom
class (a module outside Keras, or a registered `"package>Name"`), which is
refused with its name, as is `Lambda` (its function is Python code stored in
the file) and any class funkeras does not have.

Translation of a layer's Keras config into funkeras arguments is by name, with
no per-layer table: every Keras argument the funkeras class accepts is passed
as it is (funkeras layers take Keras' argument names, so a layer added to the
catalogue later is read with no edit here). Nested Keras objects
(initializers, regularizers) lose their `module`/`registered_name` keys and
their `None` entries, and a dtype policy becomes its name. A Keras argument
funkeras does not accept is dropped only when it is set to its neutral value
(`None`, `False`, `data_format="channels_last"`, ...) or is a random seed
(funkeras draws randomness from the step key); any other value is refused with
the layer, the argument and the value.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import jax

from funkeras._validation import short_message
from funkeras.errors import ConfigError, ModelLoadError, UnsafeConfigError
from funkeras.graph import Input, is_symbolic
from funkeras.saving.registry import get_registered_class, is_model_class

__all__ = ["model_from_keras_config", "compile_config_from_keras"]

MODEL_CLASSES = ("Sequential", "Functional", "Model")
TENSOR = "__keras_tensor__"
# Keras arguments funkeras layers do not take, and the values that make them
# no-ops (dropped when the file holds one of these).
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "data_format": ("channels_last",),
    "synchronized": (False,),
    "renorm": (False,),
    "renorm_momentum": (0.99,),
    "rms_scaling": (False,),
    "mask_zero": (False,),
    "sparse": (False,),
    "ragged": (False,),
    "optional": (False,),
    "autocast": (True,),
}
# Dropped whatever their value, with the reason.
IGNORED = {"seed": "funkeras draws randomness from the step key, not a layer seed"}
DTYPE_POLICIES = ("DTypePolicy", "FloatDTypePolicy")


def _where(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _is_custom(entry: Mapping[str, Any]) -> str | None:
    """What makes `entry` a custom (non-Keras) class, or None."""
    module = entry.get("module")
    registered = entry.get("registered_name")
    name = entry.get("class_name")
    if isinstance(module, str) and module != "keras" and not module.startswith(
        "keras."
    ):
        return f"module {module[:80]!r}"
    if registered is not None and registered != name:
        return f"registered name {str(registered)[:80]!r}"
    return None


def _plain(value: Any, where: str) -> Any:
    """A Keras config value as funkeras data (nested objects stripped to data)."""
    if isinstance(value, list):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, Mapping):
        return value
    name = value.get("class_name")
    if isinstance(name, str) and "config" in value:
        if name in DTYPE_POLICIES and isinstance(value["config"], Mapping):
            return value["config"].get("name", "float32")
        if name == "function" or name == TENSOR:
            raise UnsafeConfigError(
                f"{where}: a Python function ({str(value.get('config'))[:80]!r}) "
                "is stored here; funkeras reads names of its own activations, "
                "losses and initializers only and never runs code from a file."
            )
        custom = _is_custom(value)
        if custom is not None:
            raise UnsafeConfigError(
                f"{where}: {name[:80]!r} is a custom class ({custom}); funkeras "
                "looks names up in its own catalogues and never imports one "
                "read from a file."
            )
        config = value["config"]
        if isinstance(config, Mapping):
            config = {
                k: _plain(v, _where(where, k))
                for k, v in config.items()
                if v is not None
            }
        return {"class_name": name, "config": config}
    return {k: _plain(v, _where(where, k)) for k, v in value.items()}


def _layer_class(entry: Any, where: str) -> tuple[str, type]:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("class_name"), str):
        raise ConfigError(f"{where}: a layer entry needs a string `class_name`.")
    name = entry["class_name"]
    if not isinstance(entry.get("config"), Mapping):
        raise ConfigError(f"{where}: the config of {name[:80]!r} must be an object.")
    if name == "Lambda":
        raise UnsafeConfigError(
            f"{where}: 'Lambda' layer: its function is Python code stored in the "
            "file, and funkeras never runs code from a file. Rebuild the model in "
            "funkeras (with a registered layer in place of the Lambda) and load "
            "the weights with `model.load_weights('model.weights.h5')`."
        )
    custom = _is_custom(entry)
    if custom is not None:
        raise UnsafeConfigError(
            f"{where}: {name[:80]!r} is a custom Keras class ({custom}); funkeras "
            "reads Keras' built-in layers only and never imports a class named by "
            "a file. Rebuild the model in funkeras and load the weights with "
            "`model.load_weights('model.weights.h5')`."
        )
    if name in MODEL_CLASSES:
        return name, type(None)
    try:
        cls = get_registered_class(name, where=where)
    except UnsafeConfigError:
        raise UnsafeConfigError(
            f"{where}: Keras layer {name[:80]!r} is not in funkeras' layer "
            "catalogue, so this model cannot be rebuilt. Build it in funkeras "
            "with the layers funkeras has and load the weights with "
            "`model.load_weights('model.weights.h5')`."
        ) from None
    if ">" in name or is_model_class(cls):
        raise UnsafeConfigError(
            f"{where}: {name[:80]!r} is not a built-in Keras layer name."
        )
    return name, cls


def _arguments(cls: type) -> set[str] | None:
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    names = set()
    for p in parameters:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return None
        if p.kind is not inspect.Parameter.VAR_POSITIONAL:
            names.add(p.name)
    return names


def _layer(entry: Mapping[str, Any], where: str) -> Any:
    name, cls = _layer_class(entry, where)
    if name in MODEL_CLASSES:
        return model_from_keras_config(entry, where)
    accepted = _arguments(cls)
    kwargs: dict[str, Any] = {}
    for key, value in entry["config"].items():
        if not isinstance(key, str):
            raise ConfigError(f"{where}: config keys must be strings.")
        if accepted is None or key in accepted:
            kwargs[key] = _plain(value, _where(f"{where}.config", key))
        elif value is None or key in IGNORED or value in NEUTRAL.get(key, ()):
            continue
        else:
            raise ConfigError(
                f"{where}: Keras' {name} argument `{key}`={str(value)[:80]} has no "
                f"funkeras equivalent (funkeras' {name} takes "
                f"{sorted(accepted)}); this model cannot be rebuilt as it is."
            )
    try:
        layer = cls.from_config(kwargs)
    except ModelLoadError:
        raise
    except Exception as e:  # a layer refusing its arguments: any exception type
        raise ConfigError(
            f"{where}: funkeras' {name} refused the Keras config: "
            f"{type(e).__name__}: {short_message(e, 400)}"
        ) from None
    return layer


def _input(config: Any, where: str, name: str | None = None) -> Any:
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}: an InputLayer config must be an object.")
    for key in ("sparse", "ragged"):
        if config.get(key):
            raise ConfigError(
                f"{where}: a {key} Input is not supported by funkeras (dense "
                "arrays only)."
            )
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if shape is None and config.get("shape") is not None:
        shape = [None, *config["shape"]]
    if (
        not isinstance(shape, list)
        or not shape
        or not all(d is None or (isinstance(d, int) and d >= 0) for d in shape)
    ):
        raise ConfigError(
            f"{where}: an InputLayer needs `batch_shape` as a list of sizes, got "
            f"{str(shape)[:80]}."
        )
    dtype = config.get("dtype", "float32")
    dtype = _plain(dtype, where)
    if not isinstance(dtype, str):
        raise ConfigError(f"{where}: InputLayer dtype must be a name.")
    try:
        return Input(
            shape=tuple(shape[1:]), dtype=dtype, name=name or config.get("name")
        )
    except Exception as e:
        raise ConfigError(
            f"{where}: the Input was refused: {short_message(e, 300)}"
        ) from None


def _sequential(config: Mapping[str, Any], where: str) -> Any:
    entries = config.get("layers")
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: a Sequential config needs a `layers` list.")
    items: list[Any] = []
    start = 0
    if (
        entries
        and isinstance(entries[0], Mapping)
        and entries[0].get("class_name") == "InputLayer"
    ):
        items.append(_input(entries[0].get("config"), f"{where}.layers[0]"))
        start = 1
    elif isinstance(config.get("build_input_shape"), list):
        items.append(
            _input({"batch_shape": config["build_input_shape"]}, where, None)
        )
    else:
        raise ConfigError(
            f"{where}: the Sequential model has no input shape (no InputLayer and "
            "no build_input_shape), so its weights cannot be placed."
        )
    for i, entry in enumerate(entries[start:], start):
        items.append(_layer(entry, f"{where}.layers[{i}]"))
    cls = get_registered_class("Sequential")
    name = config.get("name")
    try:
        model = cls(items, name=name if isinstance(name, str) else None)
    except ModelLoadError:
        raise
    except Exception as e:
        raise ConfigError(
            f"{where}: the Sequential model could not be built: "
            f"{type(e).__name__}: {short_message(e, 400)}"
        ) from None
    return model


def _ref(value: Any, outputs: dict[str, list[list[Any]]], where: str) -> Any:
    ok = (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:])
    )
    if not ok:
        raise ConfigError(f"{where}: malformed tensor reference {str(value)[:120]}.")
    name, node, index = value
    nodes = outputs.get(name)
    if nodes is None or not 0 <= node < len(nodes) or not 0 <= index < len(
        nodes[node]
    ):
        raise KeyError(name)
    return nodes[node][index]


def _is_ref(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def _io_tree(value: Any, outputs: dict[str, list[list[Any]]], where: str) -> Any:
    if _is_ref(value):
        return _ref(value, outputs, where)
    if isinstance(value, list):
        return [_io_tree(v, outputs, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {k: _io_tree(v, outputs, f"{where}.{k}") for k, v in value.items()}
    raise ConfigError(f"{where}: malformed model inputs/outputs {str(value)[:120]}.")


def _arg(value: Any, outputs: dict[str, list[list[Any]]], where: str) -> Any:
    if isinstance(value, Mapping) and value.get("class_name") == TENSOR:
        config = value.get("config")
        history = config.get("keras_history") if isinstance(config, Mapping) else None
        return _ref(history, outputs, where)
    if isinstance(value, list):
        return [_arg(v, outputs, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {k: _arg(v, outputs, f"{where}.{k}") for k, v in value.items()}
    return value


def _functional(config: Mapping[str, Any], where: str) -> Any:
    entries = config.get("layers")
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: a functional config needs a `layers` list.")
    outputs: dict[str, list[list[Any]]] = {}
    pending: list[tuple[str, Any, list[Any], str]] = []
    for i, entry in enumerate(entries):
        at = f"{where}.layers[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{at}: a layer entry needs a string `name`.")
        lname = entry["name"]
        if lname in outputs:
            raise ConfigError(f"{at}: two layers are named {lname!r}.")
        if entry.get("class_name") == "InputLayer":
            outputs[lname] = [[_input(entry.get("config"), at, lname)]]
            continue
        layer = _layer(entry, at)
        layer.name = lname
        outputs[lname] = []
        nodes = entry.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise ConfigError(f"{at}: `inbound_nodes` must be a list.")
        pending.append((lname, layer, list(nodes), at))
    # Keras lists layers, not calls, in graph order: replay the calls as their
    # inputs become available (a shared layer's later calls may wait).
    while any(nodes for _, _, nodes, _ in pending):
        progress = False
        for lname, layer, nodes, at in pending:
            while nodes:
                node = nodes[0]
                where_node = f"{at}.inbound_nodes[{len(outputs[lname])}]"
                if not isinstance(node, Mapping):
                    raise ConfigError(f"{where_node}: a node must be an object.")
                try:
                    args = _arg(node.get("args", []), outputs, where_node)
                    kwargs = _arg(node.get("kwargs", {}), outputs, where_node)
                except KeyError:
                    break
                if not isinstance(args, list) or not isinstance(kwargs, dict):
                    raise ConfigError(f"{where_node}: malformed `args`/`kwargs`.")
                kwargs = {k: v for k, v in kwargs.items() if v is not None}
                try:
                    out = layer(*args, **kwargs)
                except ModelLoadError:
                    raise
                except Exception as e:
                    raise ConfigError(
                        f"{where_node}: calling layer {lname!r} failed: "
                        f"{type(e).__name__}: {short_message(e, 400)}"
                    ) from None
                outputs[lname].append(jax.tree.leaves(out, is_leaf=is_symbolic))
                nodes.pop(0)
                progress = True
        if not progress:
            stuck = [lname for lname, _, nodes, _ in pending if nodes]
            raise ConfigError(
                f"{where}: the calls of layer(s) {stuck[:10]} use tensors that no "
                "layer produces (a cycle or a dangling reference)."
            )
    try:
        inputs = _io_tree(config.get("input_layers"), outputs, f"{where}.input_layers")
        outs = _io_tree(config.get("output_layers"), outputs, f"{where}.output_layers")
    except KeyError as e:
        raise ConfigError(
            f"{where}: the model's inputs or outputs name an unknown tensor of "
            f"{e.args[0]!r}."
        ) from None
    cls = get_registered_class("Functional")
    name = config.get("name")
    try:
        return cls(inputs, outs, name=name if isinstance(name, str) else None)
    except ModelLoadError:
        raise
    except Exception as e:
        raise ConfigError(
            f"{where}: the functional model could not be built: "
            f"{type(e).__name__}: {short_message(e, 400)}"
        ) from None


def model_from_keras_config(spec: Any, where: str = "config.json") -> Any:
    """A funkeras model (fresh weights) from a Keras 3 model config.

    Args:
        spec: `{"class_name": "Sequential" | "Functional", "config": {...}}` as
            Keras writes it (`module`, `registered_name`, `build_config` and
            `compile_config` may be present; nothing is imported).
        where: How messages name the config.

    Raises:
        UnsafeConfigError: a `Lambda`, a custom class, or a class funkeras
            does not have (named in the message).
        ConfigError: a malformed config, or a Keras argument with no funkeras
            equivalent.

    Example:
        >>> spec = {"class_name": "Sequential", "config": {"name": "mlp",
        ...     "layers": [
        ...         {"class_name": "InputLayer", "config": {"batch_shape": [None, 3]}},
        ...         {"class_name": "Dense", "config": {"units": 2,
        ...                                            "kernel_constraint": None}}]}}
        >>> model = model_from_keras_config(spec)
        >>> model.name, model.count_params()
        ('mlp', 8)
    """
    if not isinstance(spec, Mapping) or not isinstance(spec.get("class_name"), str):
        raise ConfigError(f"{where}: the model entry needs a string `class_name`.")
    name = spec["class_name"]
    if name not in MODEL_CLASSES or _is_custom(spec) is not None:
        _layer_class(spec, where)  # refuses Lambda / custom classes by name
        raise UnsafeConfigError(
            f"{where}: {name[:80]!r} is not a Keras Sequential or functional model "
            "(a subclassed Keras model's `call` is Python code, which funkeras "
            "never runs from a file). Rebuild the model in funkeras and load the "
            "weights with `model.load_weights('model.weights.h5')`."
        )
    config = spec.get("config")
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}: the model's `config` must be an object.")
    if name == "Sequential":
        model = _sequential(config, f"{where}[{config.get('name')!r}]")
    elif "input_layers" in config and "output_layers" in config:
        model = _functional(config, f"{where}[{config.get('name')!r}]")
    else:
        raise UnsafeConfigError(
            f"{where}: the {name!r} model has no layer graph (a subclassed Keras "
            "model); funkeras rebuilds Sequential and functional models only."
        )
    if config.get("trainable") is False:
        model.trainable = False
    return model


def compile_config_from_keras(config: Any) -> dict[str, Any]:
    """funkeras' compile config from Keras' `compile_config` (names as data).

    Raises:
        ValueError: a part funkeras cannot express (the caller loads the model
            uncompiled and says why).
    """
    if not isinstance(config, Mapping) or config.get("optimizer") is None:
        raise ValueError("the file has no optimizer in its compile config")
    optimizer = _plain(config["optimizer"], "compile_config.optimizer")
    if isinstance(optimizer, Mapping):
        optimizer = {
            "class_name": optimizer["class_name"],
            "config": {
                k: v
                for k, v in optimizer.get("config", {}).items()
                if not (k == "use_ema" and v is False)
            },
        }
    steps = config.get("steps_per_execution", 1)
    return {
        "optimizer": optimizer,
        "loss": _plain(config.get("loss"), "compile_config.loss"),
        "loss_weights": config.get("loss_weights"),
        "metrics": _plain(config.get("metrics"), "compile_config.metrics"),
        "weighted_metrics": _plain(
            config.get("weighted_metrics"), "compile_config.weighted_metrics"
        ),
        "steps_per_execution": steps if isinstance(steps, int) else 1,
        "execution": "eager" if config.get("run_eagerly") is True else "jit",
    }
