"""The public face: documented names exist, are documented, and nothing leaks."""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import pkgutil
import re
import tomllib

import pytest

import funkeras
import funkeras as fk

ROOT = pathlib.Path(funkeras.__file__).resolve().parent.parent


def _public_modules() -> list[str]:
    names = ["funkeras"]
    for info in pkgutil.walk_packages(funkeras.__path__, prefix="funkeras."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts):
            continue
        names.append(info.name)
    return sorted(names)


PUBLIC_MODULES = _public_modules()
PACKAGES = sorted(
    m for m in PUBLIC_MODULES if hasattr(importlib.import_module(m), "__path__")
)

# Public-looking helpers that a module shares with its siblings but does not
# export (the package `__init__` is what makes a name public). New entries need a
# reason; otherwise add the name to `__all__` or give it a leading underscore.
SHARED_HELPERS = {
    # pooling.py reuses the convolution geometry.
    "funkeras.layers.convolutional": {
        "normalize_data_format",
        "same_padding",
        "padding_pairs",
        "check_spatial_rank",
        "check_valid_extent",
    },
    "funkeras.models.serialization": {"layer_outputs"},
    "funkeras.saving.safetensors_io": {"dtype_code", "TensorInfo"},
    "funkeras.training.data": {"pad_order", "pad_batch"},
    "funkeras.training.loop": {"prefetch"},
    "funkeras.inspect.compiled": {"CompileEvent"},
    # The benchmark harness is a command-line tool, not a library surface.
    "funkeras.bench.cli": {"markdown_report"},
    "funkeras.bench.peers": {"installed"},
}


def test_top_level_names():
    assert (
        fk.Sequential
        is importlib.import_module("funkeras.models.sequential").Sequential
    )
    assert fk.Model is importlib.import_module("funkeras.models.model").Model
    assert fk.Input is importlib.import_module("funkeras.models.functional").Input
    assert callable(fk.load_model)
    for module in (
        "layers",
        "losses",
        "metrics",
        "optimizers",
        "callbacks",
        "errors",
        "activations",
        "initializers",
        "regularizers",
        "models",
    ):
        assert inspect.ismodule(getattr(fk, module)), module
        assert module in fk.__all__
    for name in ("Sequential", "Model", "Input", "__version__"):
        assert name in fk.__all__


def test_version_matches_the_pyproject_source():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, _, name = attr.rpartition(".")
    assert module == "funkeras._version" and name == "__version__"
    source = (ROOT / "funkeras" / "_version.py").read_text()
    values = [
        node.value.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    ]
    assert values == [fk.__version__]
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*(\.dev\d+)?", fk.__version__)


DOCUMENTED_LAYERS = [
    "Layer",
    "InputLayer",
    "Dense",
    "Embedding",
    "Identity",
    "Activation",
    "Dropout",
    "Flatten",
    "Reshape",
    "Permute",
    "Conv1D",
    "Conv2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "AveragePooling1D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "BatchNormalization",
    "LayerNormalization",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
]


@pytest.mark.parametrize("name", DOCUMENTED_LAYERS)
def test_layers_are_exported_under_their_keras_names(name):
    cls = getattr(fk.layers, name)
    assert name in fk.layers.__all__
    assert inspect.isclass(cls) and issubclass(cls, fk.layers.Layer)
    assert cls.__module__.startswith("funkeras.layers.")


def test_documented_helpers_exist():
    for module in (
        fk.losses,
        fk.metrics,
        fk.optimizers,
        fk.activations,
        fk.initializers,
        fk.regularizers,
    ):
        assert callable(module.get), module.__name__
    assert inspect.isclass(fk.callbacks.Callback)
    assert inspect.isclass(fk.callbacks.EarlyStopping)
    assert issubclass(fk.errors.ModelLoadError, ValueError)
    assert issubclass(fk.errors.GraphError, fk.errors.FunkerasError)


# Known gaps, each a strict xfail so that fixing it flips the test to a failure
# that asks for the marker's removal.
UNDOCUMENTED: dict[str, str] = {}


@pytest.mark.parametrize(
    "module_name",
    [
        pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=UNDOCUMENTED[m]))
        if m in UNDOCUMENTED
        else m
        for m in PUBLIC_MODULES
    ],
)
def test_all_names_exist_are_unique_and_documented(module_name):
    module = importlib.import_module(module_name)
    assert module.__doc__ and module.__doc__.strip(), f"{module_name} has no docstring"
    exported = getattr(module, "__all__", None)
    if exported is None:
        exported = [
            n
            for n, o in vars(module).items()
            if not n.startswith("_") and _defined_in(o, module_name)
        ]
    assert len(set(exported)) == len(exported), f"duplicates in {module_name}.__all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{module_name}.__all__ names missing attributes: {missing}"
    undocumented = []
    for name in exported:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        doc = obj.__doc__ or ""
        # A dataclass without a docstring gets its signature as __doc__.
        if not doc.strip() or (
            inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")
        ):
            undocumented.append(name)
    assert not undocumented, f"{module_name}: no docstring on {undocumented}"


def _defined_in(obj, module_name: str) -> bool:
    return (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(
        obj, "__module__", None
    ) == module_name


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_expose_only_all_and_submodules(package):
    # A package __init__ is re-exports only: any other public attribute leaked in.
    module = importlib.import_module(package)
    exported = set(getattr(module, "__all__", ()))
    leaked = []
    for name, obj in vars(module).items():
        if name.startswith("_") or name in exported:
            continue
        if inspect.ismodule(obj) and obj.__name__ == f"{package}.{name}":
            continue  # a submodule, bound by any import of it
        leaked.append(name)
    assert not leaked, f"{package} exposes {leaked} outside __all__"


@pytest.mark.parametrize(
    "module_name", [m for m in PUBLIC_MODULES if m not in PACKAGES]
)
def test_modules_define_no_public_names_outside_all(module_name):
    module = importlib.import_module(module_name)
    if not hasattr(module, "__all__"):
        return  # then every public definition is exported (checked above)
    extra = {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and name not in module.__all__
        and _defined_in(obj, module_name)
    }
    unexpected = sorted(extra - SHARED_HELPERS.get(module_name, set()))
    assert not unexpected, (
        f"{module_name} defines public {unexpected} outside __all__: export them or "
        "prefix them with '_'"
    )
