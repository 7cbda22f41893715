"""Every docstring example under `funkeras/` runs and prints what it says.

One test per module (found with `pkgutil`), so a failure names its module and
pytest-xdist spreads the work. `funkeras.bench` (the benchmark harness, which
times peers) is left out; a module whose examples need an optional extra is
skipped when that extra is not installed.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil

import pytest

import funkeras

SKIPPED_PACKAGES = ("funkeras.bench",)

# Modules whose examples need an optional extra (pyproject `optional-dependencies`),
# with the import that extra provides.
NEEDS_EXTRA = {
    "funkeras.callbacks.tensorboard": "tensorboardX",
    "funkeras.saving.export": "flatbuffers",
}


def _has_examples(name: str) -> bool:
    """Whether the module's source holds a `>>>` prompt (read, not imported)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return False
    with open(spec.origin, encoding="utf-8") as f:
        return ">>>" in f.read()


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(funkeras.__path__, prefix="funkeras."):
        name = info.name
        if name.startswith(SKIPPED_PACKAGES) or name.endswith(".__main__"):
            continue
        if _has_examples(name):
            names.append(name)
    return sorted(names)


MODULES = _modules()


def test_modules_are_discovered():
    # The walk must see the subpackages, or the doctest run silently shrinks.
    for expected in (
        "funkeras.layers.core",
        "funkeras.models.model",
        "funkeras.losses",
        "funkeras.testing",
    ):
        assert expected in MODULES
    assert not any(m.startswith("funkeras.bench") for m in MODULES)


@pytest.mark.parametrize("module_name", MODULES)
def test_doctests(module_name):
    extra = NEEDS_EXTRA.get(module_name)
    if extra is not None and importlib.util.find_spec(extra) is None:
        pytest.skip(f"{module_name}'s examples need the optional `{extra}`")
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    # Only the module's own objects: re-exported ones are tested where defined.
    tests = [t for t in finder.find(module) if t.examples]
    assert tests, f"{module_name} holds '>>>' but no docstring example was found"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS, verbose=False)
    failures: list[str] = []
    for test in sorted(tests, key=lambda t: t.name):
        out: list[str] = []
        result = runner.run(test, out=out.append, clear_globs=True)
        if result.failed:
            failures.append("".join(out))
    assert not failures, f"{len(failures)} docstring(s) failed:\n" + "\n".join(failures)
