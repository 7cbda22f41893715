"""The registry of serializable classes: the only way a saved name becomes a class.

A saved config names every layer and model by a registry key: built-in layers by
their class name (`"Dense"`, `"Conv2D"`), models by `"Sequential"` or
`"Functional"`, and user classes by `"package>Name"` after they are registered in
code with `register_serializable`. Loading looks names up in this dictionary and
nowhere else: no module is imported and no attribute is looked up by a name read
from a file, so a config naming `os.system` or `builtins.eval` is simply an
unknown key.

Example:
    >>> from dataclasses import dataclass
    >>> import funkeras as fk
    >>> from funkeras.saving.registry import (
    ...     get_registered_class, register_serializable, registry_key)
    >>> @register_serializable(package="demo")
    ... @dataclass(eq=False)
    ... class Twice(fk.layers.Layer):
    ...     def apply(self, params, state, x, *, training=False, key=None, mask=None):
    ...         return 2 * x, state
    >>> registry_key(Twice)
    'demo>Twice'
    >>> get_registered_class("demo>Twice") is Twice
    True
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any, TypeVar

from funkeras import layers as layers_module
from funkeras.errors import NotSerializableError, UnsafeConfigError
from funkeras.layers.base import Layer

__all__ = [
    "register_serializable",
    "register_keras_serializable",
    "register_builtin",
    "registry_key",
    "get_registered_class",
    "get_registered_object",
    "get_registered_name",
    "get_custom_objects",
    "CustomObjectScope",
    "custom_object_scope",
    "is_model_class",
]

T = TypeVar("T", bound=type)

_USER: dict[str, type] = {}  # "package>Name" -> class
_USER_KEYS: dict[type, str] = {}
_BUILTIN: dict[str, type] = {}  # "Dense" -> class
_BUILTIN_KEYS: dict[type, str] = {}
_MODEL_BASES: list[type] = []  # classes whose subclasses are models
_LOCK = threading.RLock()
_POPULATED = False
_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
MAX_KEY_LENGTH = 200
_SCOPES = threading.local()  # .stack: the active custom_object_scope dicts


def _populate_builtins() -> None:
    """Fill the built-in table from `funkeras.layers.__all__`.

    Runs once, the first time the registry is consulted; the names come from the
    library's own export list. The model classes register themselves with
    `register_builtin` when `funkeras.models` is imported (the registry never
    imports the models).
    """
    global _POPULATED
    if _POPULATED:
        return
    with _LOCK:
        if _POPULATED:
            return
        table: dict[str, type] = {}
        for export in getattr(layers_module, "__all__", ()):
            obj = getattr(layers_module, export, None)
            if isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer:
                if obj.__name__ in table and table[obj.__name__] is not obj:
                    raise RuntimeError(
                        f"funkeras.layers exports two classes named {obj.__name__!r}."
                    )
                table[obj.__name__] = obj
        for key, cls in table.items():
            _BUILTIN.setdefault(key, cls)
            _BUILTIN_KEYS.setdefault(cls, key)
        _POPULATED = True


def register_builtin(key: str, *, model: bool = False) -> Callable[[T], T]:
    """Register one of the library's own classes under a built-in key.

    The model classes use it at import time (`"Sequential"`, `"Functional"`),
    so that the loader finds them without importing `funkeras.models`. User
    classes use `register_serializable` instead.

    Args:
        key: The key saved configs name the class by (no `">"`).
        model: The class is a model base: it and its subclasses pass
            `is_model_class`.

    Returns:
        The decorator, which returns the class unchanged.
    """
    if not isinstance(key, str) or not _PART.fullmatch(key):
        raise TypeError(f"register_builtin: invalid key {key!r}.")

    def decorator(cls: T) -> T:
        with _LOCK:
            old = _BUILTIN.get(key)
            if old is not None and old is not cls:
                raise ValueError(
                    f"register_builtin: {key!r} is already registered to "
                    f"{old.__module__}.{old.__qualname__}."
                )
            _BUILTIN[key] = cls
            _BUILTIN_KEYS[cls] = key
            if model:
                _MODEL_BASES.append(cls)
        return cls

    return decorator


def is_model_class(cls: Any) -> bool:
    """Whether `cls` is a model class: a subclass of a registered model base.

    Example:
        >>> import funkeras as fk
        >>> is_model_class(fk.Sequential), is_model_class(fk.layers.Dense)
        (True, False)
    """
    return isinstance(cls, type) and issubclass(cls, tuple(_MODEL_BASES))


def register_serializable(
    package: str = "Custom", name: str | None = None
) -> Callable[[T], T]:
    """Register a class so that saved configs can name it as `"package>Name"`.

    Use it as a class decorator on user layers (and models) before saving, and
    again in the loading program before loading: the registry is filled by code,
    never by a file. Registering a second, different class under a taken key is
    an error (a class redefined in a notebook, same module and qualified name,
    replaces the old one).

    Args:
        package: A namespace for the key, e.g. your project's name.
        name: The name within the package; the class's `__name__` by default.

    Returns:
        The decorator, which returns the class unchanged.

    Raises:
        TypeError: `package` or `name` is not a valid identifier-like string, or
            the decorated object is not a class.
        ValueError: the key is taken by a different class.

    Example:
        >>> from dataclasses import dataclass
        >>> import funkeras as fk
        >>> @register_serializable(package="my_project", name="Doubler")
        ... @dataclass(eq=False)
        ... class Twice(fk.layers.Layer):
        ...     def apply(self, params, state, x, *, training=False, **kwargs):
        ...         return 2 * x, state
        >>> registry_key(Twice)
        'my_project>Doubler'
    """
    for arg, value in (("package", package), ("name", name)):
        if value is None and arg == "name":
            continue
        if not isinstance(value, str) or not _PART.fullmatch(value):
            raise TypeError(
                f"register_serializable: `{arg}` must be a non-empty name of letters, "
                f"digits, '_', '.', '-', got {value!r}."
            )

    def decorator(cls: T) -> T:
        if not isinstance(cls, type):
            raise TypeError(
                "register_serializable decorates classes; got "
                f"{type(cls).__name__} {cls!r}."
            )
        key = f"{package}>{name or cls.__name__}"
        if len(key) > MAX_KEY_LENGTH:
            raise TypeError(f"register_serializable: key {key!r} is too long.")
        with _LOCK:
            old = _USER.get(key)
            if (
                old is not None
                and old is not cls
                and (
                    old.__module__ != cls.__module__
                    or old.__qualname__ != cls.__qualname__
                )
            ):
                raise ValueError(
                    f"register_serializable: {key!r} is already registered to "
                    f"{old.__module__}.{old.__qualname__}; choose another `package` "
                    "or `name`."
                )
            if old is not None:
                _USER_KEYS.pop(old, None)
            _USER[key] = cls
            _USER_KEYS[cls] = key
        return cls

    return decorator


def registry_key(cls: type) -> str:
    """The key under which `cls` is saved: `"Dense"`, `"Functional"`, `"pkg>Name"`.

    Raises:
        NotSerializableError: `cls` is neither built in nor registered.

    Example:
        >>> import funkeras as fk
        >>> [registry_key(c) for c in (fk.layers.Dense, fk.Sequential, fk.Model)]
        ['Dense', 'Sequential', 'Functional']
    """
    _populate_builtins()
    key = _BUILTIN_KEYS.get(cls) or _USER_KEYS.get(cls) or _scoped_key(cls)
    if key is None:
        raise NotSerializableError(
            f"{cls.__module__}.{cls.__qualname__} is not registered, so a saved "
            "config could not name it: register it with "
            "@fk.saving.register_serializable() (Keras' name: "
            "register_keras_serializable), or save and load it inside "
            "`fk.saving.custom_object_scope({name: cls})`; the loading program "
            "must register it (or pass it in `custom_objects`) again."
        )
    return key


def get_registered_class(key: Any, *, where: str = "config") -> type:
    """The class registered under `key` (built-in names or `"package>Name"`).

    Only the registry is consulted; nothing is imported or looked up by name.

    Args:
        key: A registry key read from a file.
        where: Where the key was read, for the message.

    Raises:
        UnsafeConfigError: `key` is not a string, or no class is registered under it.

    Example:
        >>> get_registered_class("Dense").__name__
        'Dense'
        >>> get_registered_class("os.system")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        funkeras.errors.UnsafeConfigError: config: 'os.system' is not a registered ...
    """
    _populate_builtins()
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise UnsafeConfigError(
            f"{where}: a class name must be a registry key string, got "
            f"{str(key)[:80]!r}."
        )
    cls = _scoped_class(key)
    if cls is None:
        # Built-in keys have no ">"; a plain user key comes from get_custom_objects.
        cls = _BUILTIN.get(key) or _USER.get(key)
    if cls is None:
        raise UnsafeConfigError(
            f"{where}: {key[:80]!r} is not a registered funkeras class. Built-in "
            "layers are named by class name ('Dense'); user classes must be "
            "registered in code with @fk.saving.register_serializable() before "
            "loading, or passed in code as `custom_objects={name: cls}`. Names "
            "read from a file are never imported."
        )
    return cls


# ----------------------------------------------------------------------------
# Keras' names: register_keras_serializable, custom objects and their scope.
# ----------------------------------------------------------------------------

register_keras_serializable = register_serializable
"""Keras' name for `register_serializable` (same key, `"package>Name"`)."""


def _check_custom_objects(owner: str, objects: Any) -> dict[str, type]:
    """A `{name: class}` dict given in code, checked (classes only, valid names)."""
    if objects is None:
        return {}
    if not isinstance(objects, Mapping):
        raise TypeError(
            f"{owner}: `custom_objects` must be a dict {{name: class}}, got "
            f"{type(objects).__name__}."
        )
    out: dict[str, type] = {}
    for name, obj in objects.items():
        parts = name.split(">") if isinstance(name, str) else []
        if not (
            1 <= len(parts) <= 2
            and len(name) <= MAX_KEY_LENGTH
            and all(_PART.fullmatch(p) for p in parts)
        ):
            raise TypeError(
                f"{owner}: custom object name {name!r} must be a class name "
                "('MyLayer') or a registry key ('package>MyLayer')."
            )
        if not isinstance(obj, type):
            raise TypeError(
                f"{owner}: custom object {name!r} must be a class (a layer or "
                f"model), got {type(obj).__name__} {obj!r:.80}. funkeras files name "
                "functions (activations, losses) only from its own tables, so a "
                "function needs no entry here; wrap custom math in a Layer."
            )
        out[name] = obj
    return out


def _stack() -> list[dict[str, type]]:
    stack = getattr(_SCOPES, "stack", None)
    if stack is None:
        stack = _SCOPES.stack = []
    return stack


def _scoped_class(key: str) -> type | None:
    for scope in reversed(_stack()):
        if key in scope:
            return scope[key]
    return None


def _scoped_key(cls: type) -> str | None:
    for scope in reversed(_stack()):
        for key, obj in scope.items():
            if obj is cls:
                return key
    return None


class CustomObjectScope:
    """Within the `with` block, names in `custom_objects` resolve to their classes.

    Keras' `custom_object_scope`: saving inside the scope names a class by its
    key in the dict, and loading inside it finds the class by that key, before
    the built-in and registered classes. The dict comes from code; names read
    from a file are still only looked up, never imported. Scopes nest and are
    per thread.

    Args:
        custom_objects: `{name: class}`; a name is `"MyLayer"` or
            `"package>MyLayer"`. `None` is an empty scope.

    Example:
        >>> from dataclasses import dataclass
        >>> import funkeras as fk
        >>> @dataclass(eq=False)
        ... class Halve(fk.layers.Layer):
        ...     def apply(self, params, state, x, *, training=False, **kwargs):
        ...         return x / 2, state
        >>> with custom_object_scope({"Halve": Halve}):
        ...     get_registered_class("Halve") is Halve
        True
        >>> get_registered_object("Halve") is None
        True
    """

    def __init__(self, custom_objects: Mapping[str, type] | None = None) -> None:
        self.custom_objects = _check_custom_objects(
            "custom_object_scope", custom_objects
        )

    def __enter__(self) -> CustomObjectScope:
        _stack().append(self.custom_objects)
        return self

    def __exit__(self, *exc: Any) -> None:
        _stack().pop()


custom_object_scope = CustomObjectScope


class _CustomObjects(MutableMapping[str, type]):
    """The registered user classes as Keras' `get_custom_objects()` dict (live)."""

    def __getitem__(self, key: str) -> type:
        return _USER[key]

    def __setitem__(self, key: str, cls: type) -> None:
        (key, cls), = _check_custom_objects("get_custom_objects()", {key: cls}).items()
        package, _, name = key.rpartition(">")
        register_serializable(package=package or "Custom", name=name)(cls)
        if not package:  # Keras' plain names: also findable as "Custom>Name"
            with _LOCK:
                _USER[key] = cls

    def __delitem__(self, key: str) -> None:
        with _LOCK:
            cls = _USER.pop(key)
            if _USER_KEYS.get(cls) == key:
                del _USER_KEYS[cls]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(_USER))

    def __len__(self) -> int:
        return len(_USER)

    def __repr__(self) -> str:
        return repr(dict(_USER))


def get_custom_objects() -> MutableMapping[str, type]:
    """Keras' global custom objects: the registered user classes, by key.

    A live mapping: `get_custom_objects()["pkg>MyLayer"] = MyLayer` registers
    the class as `register_serializable` does (a plain `"MyLayer"` key is
    registered as `"Custom>MyLayer"` and also found by the plain name);
    deleting a key unregisters it.

    Example:
        >>> from dataclasses import dataclass
        >>> import funkeras as fk
        >>> @register_keras_serializable(package="doc_objects")
        ... @dataclass(eq=False)
        ... class Third(fk.layers.Layer):
        ...     def apply(self, params, state, x, *, training=False, **kwargs):
        ...         return x / 3, state
        >>> get_custom_objects()["doc_objects>Third"] is Third
        True
    """
    return _CustomObjects()


def get_registered_object(
    name: str,
    custom_objects: Mapping[str, type] | None = None,
    module_objects: Mapping[str, type] | None = None,
) -> type | None:
    """The class registered under `name`, or `None` (Keras' lookup order).

    Looks in the active `custom_object_scope`s, the registered user classes,
    `custom_objects`, `module_objects` and the built-in classes, in that order.
    Nothing is imported by name.

    Example:
        >>> get_registered_object("Dense").__name__
        'Dense'
        >>> get_registered_object("os.system") is None
        True
    """
    custom = _check_custom_objects("get_registered_object", custom_objects)
    module = _check_custom_objects("get_registered_object", module_objects)
    if not isinstance(name, str):
        raise TypeError(f"get_registered_object: `name` must be a str, got {name!r}.")
    _populate_builtins()
    for table in (*reversed(_stack()), _USER, custom, module, _BUILTIN):
        if name in table:
            return table[name]
    return None


def get_registered_name(obj: Any) -> str:
    """The key a saved config names `obj` (a class, or an instance) by.

    As Keras: the registry key when the class is registered (`"pkg>Name"`),
    otherwise the class's `__name__`.

    Example:
        >>> import funkeras as fk
        >>> get_registered_name(fk.layers.Dense)
        'Dense'
    """
    cls = obj if isinstance(obj, type) else type(obj)
    _populate_builtins()
    key = _BUILTIN_KEYS.get(cls) or _USER_KEYS.get(cls) or _scoped_key(cls)
    return key or cls.__name__
