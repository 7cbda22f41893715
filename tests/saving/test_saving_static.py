"""funkeras/saving never imports pickle, marshal or importlib, nor calls eval/exec."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "funkeras" / "saving"
FILES = sorted(PACKAGE.glob("*.py"))
BANNED_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "marshal",
    "importlib",
    "shelve",
    "dill",
    "cloudpickle",
    "joblib",
    "yaml",
    "h5py",
    "subprocess",
    "pydoc",
}
BANNED_CALLS = {"eval", "exec", "compile", "__import__", "execfile"}
# The one module that reads HDF5 (Keras 3 weights) does it through h5py, behind
# its own refusals (links, virtual datasets, non-numeric dtypes, sizes).
ALLOWED = {"keras_h5.py": {"h5py"}}


def test_the_package_has_files():
    names = {f.name for f in FILES}
    assert {
        "__init__.py",
        "archive.py",
        "registry.py",
        "format.py",
        "checkpoints.py",
        "export.py",
        "safetensors_io.py",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_code_loading_modules_or_dynamic_evaluation(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in BANNED_MODULES - ALLOWED.get(path.name, set()):
                    problems.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            top = (node.module or "").split(".")[0]
            if top in BANNED_MODULES - ALLOWED.get(path.name, set()):
                problems.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else (func.attr if isinstance(func, ast.Attribute) else None)
            )
            builtin = isinstance(func, ast.Name) or (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "builtins"
            )
            if name in BANNED_CALLS and builtin:
                problems.append(f"line {node.lineno}: call to {name}")
            if (
                name == "load"
                and isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in ("np", "numpy", "jnp")
            ):
                problems.append(f"line {node.lineno}: numpy load (can unpickle)")
            for kw in node.keywords:
                if kw.arg == "allow_pickle":
                    problems.append(f"line {node.lineno}: allow_pickle")
        elif isinstance(node, ast.Name) and node.id in ("eval", "exec", "__import__"):
            problems.append(f"line {node.lineno}: reference to {node.id}")
    assert not problems, f"{path.name}: {problems}"
