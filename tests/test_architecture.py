"""The arrows of the architecture, read from the source with `ast` (nothing runs).

DESIGN.md: `_validation` -> `layers` -> `graph` -> {`models`, `training`}. Layers
know nothing of the graph, models, training, callbacks, saving or inspect;
training knows nothing of models; no module imports another package's underscore
names or writes another object's underscore attributes; no funkeras import hides
inside a function to dodge a cycle. There is no exemptions list: a failure here
names the file and line to fix.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "funkeras"

# Modules every funkeras package may import: the neutral bottom of the tree.
SHARED_PRIVATE = {"funkeras._validation", "funkeras._version", "funkeras._catalogue"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources() -> list[tuple[str, Path, ast.Module]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        out.append((_module_name(path), path, ast.parse(path.read_text(), str(path))))
    return out


SOURCES = _sources()


def _package(module: str) -> str:
    """`funkeras.training.loop` -> `funkeras.training`; top-level modules are their own."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _is_package(module: str) -> bool:
    return (ROOT.parent / module.replace(".", "/") / "__init__.py").exists()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(module: str, tree: ast.Module):
    """Yield `(lineno, target_module, imported_name_or_None, inside_function)`."""

    def walk(node: ast.AST, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield child.lineno, alias.name, None, in_function
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(module, child)
                for alias in child.names:
                    yield child.lineno, target, alias.name, in_function
            yield from walk(child, inner)

    yield from walk(tree, False)


def _funkeras(target: str) -> bool:
    return target == "funkeras" or target.startswith("funkeras.")


def _violations(rule) -> list[str]:
    found = []
    for module, path, tree in SOURCES:
        for lineno, target, name, in_function in _imports(module, tree):
            if not _funkeras(target):
                continue
            why = rule(module, target, name, in_function)
            if why:
                found.append(f"{path.relative_to(ROOT.parent)}:{lineno}: {why}")
    return found


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _full(target: str, name: str | None) -> str:
    """The module an import names: `from funkeras import models` -> funkeras.models."""
    if name and _is_package(target) and (
        (ROOT.parent / target.replace(".", "/") / f"{name}.py").exists()
        or _is_package(f"{target}.{name}")
    ):
        return f"{target}.{name}"
    return target


def test_training_does_not_import_models():
    def rule(module, target, name, in_function):
        if _in(module, "funkeras.training") and _in(
            _full(target, name), "funkeras.models"
        ):
            return f"{module} imports {_full(target, name)} (training never imports models)"

    assert _violations(rule) == []


FORBIDDEN_FOR_LAYERS = (
    "funkeras.graph",
    "funkeras.models",
    "funkeras.training",
    "funkeras.callbacks",
    "funkeras.saving",
    "funkeras.inspect",
    "funkeras.bench",
)


def test_layers_import_nothing_above_them():
    def rule(module, target, name, in_function):
        if not _in(module, "funkeras.layers"):
            return None
        full = _full(target, name)
        for pkg in FORBIDDEN_FOR_LAYERS:
            if _in(full, pkg):
                return f"{module} imports {full} (layers sit below {pkg})"

    assert _violations(rule) == []


def test_graph_imports_no_package_above_it():
    above = ("funkeras.models", "funkeras.training", "funkeras.callbacks",
             "funkeras.saving", "funkeras.inspect", "funkeras.bench")

    def rule(module, target, name, in_function):
        if not _in(module, "funkeras.graph"):
            return None
        full = _full(target, name)
        for pkg in above:
            if _in(full, pkg):
                return f"{module} imports {full} (the graph sits below {pkg})"

    assert _violations(rule) == []


def test_no_underscore_names_across_packages():
    def rule(module, target, name, in_function):
        full = _full(target, name)
        if full in SHARED_PRIVATE:
            return None
        same = _package(module) == _package(full)
        private_path = any(p.startswith("_") for p in full.split(".")[1:])
        if private_path and not same:
            return f"{module} imports the private module {full}"
        if name and name.startswith("_") and not same and name != "__version__":
            return f"{module} imports the private name {target}.{name}"

    assert _violations(rule) == []


def test_no_funkeras_import_inside_a_function():
    def rule(module, target, name, in_function):
        if in_function:
            return f"{module} imports {target} inside a function (a patched cycle?)"

    assert _violations(rule) == []


VALIDATORS = {
    "check_int", "check_float", "check_bool", "check_choice", "normalize_tuple",
    "normalize_dtype", "to_snake_case", "shape_str", "did_you_mean",
}


def test_argument_checks_come_from_validation():
    def rule(module, target, name, in_function):
        if name in VALIDATORS and target != "funkeras._validation":
            return f"{module} imports {name} from {target} (use funkeras._validation)"

    assert _violations(rule) == []


def _written(target: ast.AST):
    """The attribute nodes an assignment target writes (`a._x = `, `a._x[k] = `)."""
    if isinstance(target, ast.Tuple | ast.List):
        for elt in target.elts:
            yield from _written(elt)
    elif isinstance(target, ast.Starred):
        yield from _written(target.value)
    elif isinstance(target, ast.Subscript):
        yield from _written(target.value)
    elif isinstance(target, ast.Attribute):
        yield target


# Python's public namedtuple API is spelled with underscores.
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}


def _foreign_private(node: ast.Attribute) -> bool:
    return (
        node.attr.startswith("_")
        and node.attr not in NAMEDTUPLE_API
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
    )


def test_no_writes_to_other_objects_private_attributes():
    found = []
    for module, path, tree in SOURCES:
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "setattr", "object.__setattr__"
            ) and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                name = node.args[1].value
                obj = node.args[0]
                if (
                    isinstance(name, str) and name.startswith("_")
                    and not name.startswith("__")
                    and not (isinstance(obj, ast.Name) and obj.id in ("self", "cls"))
                ):
                    found.append(
                        f"{path.relative_to(ROOT.parent)}:{node.lineno}: "
                        f"setattr(..., {name!r})"
                    )
            for t in targets:
                for sub in _written(t):
                    if _foreign_private(sub):
                        found.append(
                            f"{path.relative_to(ROOT.parent)}:{node.lineno}: "
                            f"writes {ast.unparse(sub)}"
                        )
    assert found == []


def _own_private_names(tree: ast.Module) -> set[str]:
    """Underscore names a module defines: functions, classes, attributes it sets."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries, setattr names
    return {n for n in names if n.startswith("_")}


def test_no_reads_of_private_attributes_defined_elsewhere():
    """`obj._x` where `_x` is not this module's own makes is someone's internals."""
    found = []
    for module, path, tree in SOURCES:
        own = _own_private_names(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and _foreign_private(node)
                and node.attr not in own
            ):
                found.append(
                    f"{path.relative_to(ROOT.parent)}:{node.lineno}: reads "
                    f"{ast.unparse(node)}"
                )
    assert found == []


@pytest.mark.parametrize("module", ["funkeras.losses", "funkeras.metrics",
                                    "funkeras.optimizers", "funkeras.activations",
                                    "funkeras.initializers", "funkeras.regularizers",
                                    "funkeras.layers", "funkeras.callbacks"])
def test_public_modules_show_their_catalogue_only(module):
    import importlib

    mod = importlib.import_module(module)
    assert hasattr(mod, "__all__"), module
    shown = {n for n in dir(mod) if not n.startswith("_")}
    submodules = {
        n for n in shown if type(getattr(mod, n)).__name__ == "module"
        and getattr(mod, n).__name__.startswith(module + ".")
    }
    extra = shown - set(mod.__all__) - submodules
    assert extra == set(), f"{module} shows helpers: {sorted(extra)}"
