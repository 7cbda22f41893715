"""Shared fixtures; the suite runs on CPU with warnings as errors (pyproject)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

import funkeras.random  # noqa: E402


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture(autouse=True)
def _seed_stream():
    """Restart the process-wide seed stream, so every test's models repeat."""
    funkeras.random.set_random_seed(0)
    yield
