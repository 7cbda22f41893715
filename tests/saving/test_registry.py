"""The registry: the only way a name read from a file becomes a class."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import funkeras.layers as layers_module
from funkeras.errors import ModelLoadError, NotSerializableError, UnsafeConfigError
from funkeras.layers.base import Layer
from funkeras.layers.core import Dense
from funkeras.models.model import Model
from funkeras.models.sequential import Sequential
from funkeras.saving.registry import (
    get_registered_class,
    register_serializable,
    registry_key,
)


def test_builtin_layers_are_keyed_by_class_name():
    exported = [getattr(layers_module, n) for n in layers_module.__all__]
    classes = [
        c
        for c in exported
        if isinstance(c, type) and issubclass(c, Layer) and c is not Layer
    ]
    assert Dense in classes
    for cls in classes:
        assert registry_key(cls) == cls.__name__
        assert get_registered_class(cls.__name__) is cls


def test_models_are_keyed_sequential_and_functional():
    assert registry_key(Sequential) == "Sequential"
    assert registry_key(Model) == "Functional"
    assert get_registered_class("Sequential") is Sequential
    assert get_registered_class("Functional") is Model


def test_the_abstract_base_class_is_not_loadable():
    with pytest.raises(UnsafeConfigError):
        get_registered_class("Layer")


def test_register_a_user_layer_under_package_and_name():
    @register_serializable(package="test_registry")
    @dataclass(eq=False)
    class Twice(Layer):
        def apply(self, params, state, x, *, training=False, key=None, mask=None):
            return 2 * x, state

    @register_serializable(package="test_registry", name="Thrice")
    @dataclass(eq=False)
    class Three(Layer):
        pass

    assert registry_key(Twice) == "test_registry>Twice"
    assert get_registered_class("test_registry>Twice") is Twice
    assert registry_key(Three) == "test_registry>Thrice"
    assert get_registered_class("test_registry>Thrice") is Three


def test_a_taken_key_refuses_another_class():
    @register_serializable(package="test_registry_taken", name="X")
    class First:
        pass

    class Other:
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_serializable(package="test_registry_taken", name="X")(Other)
    assert get_registered_class("test_registry_taken>X") is First


def test_redefining_the_same_class_replaces_it():
    def define():
        @register_serializable(package="test_registry_redefine")
        class Same:
            pass

        return Same

    first, second = define(), define()
    assert first is not second
    assert get_registered_class("test_registry_redefine>Same") is second
    assert registry_key(second) == "test_registry_redefine>Same"


def test_an_unregistered_class_cannot_be_saved():
    @dataclass(eq=False)
    class Unregistered(Layer):
        pass

    with pytest.raises(NotSerializableError, match="register_serializable"):
        registry_key(Unregistered)


@pytest.mark.parametrize(
    "name",
    [
        "os.system",
        "builtins.eval",
        "importlib.import_module",
        "subprocess.Popen",
        "funkeras.saving.load_model",
        "funkeras.layers.core.Dense",
        "tests.saving.Twice",
        "Custom>Dense",
        "dense",
        "Dense ",
        ">Dense",
        "__main__>X",
        "",
        "D\u0435nse",
    ],
)
def test_unknown_names_are_refused_without_any_lookup(name):
    with pytest.raises(
        UnsafeConfigError, match="not a registered|registry key"
    ) as info:
        get_registered_class(name, where="config.json")
    assert isinstance(info.value, ModelLoadError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "value", [7, None, ["Dense"], {"class_name": "Dense"}, "A" * 500]
)
def test_non_string_or_absurd_keys_are_refused(value):
    with pytest.raises(UnsafeConfigError):
        get_registered_class(value)


@pytest.mark.parametrize(
    "kwargs", [{"package": ""}, {"package": "a>b"}, {"package": 3}, {"name": "x y"}]
)
def test_bad_registration_arguments(kwargs):
    with pytest.raises(TypeError):
        register_serializable(**kwargs)


def test_decorating_a_non_class_is_refused():
    with pytest.raises(TypeError, match="classes"):
        register_serializable(package="test_registry")(lambda x: x)
