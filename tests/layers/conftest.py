"""`keras_parity`: one layer in Keras 3 and in funkeras, same weights, same numbers.

The Keras layer sits in a `keras.Sequential` built in the test; its weights are
replaced by NumPy draws through model-level `set_weights` and moved to the
funkeras model with `get_weights`/`set_weights` in Keras' order (so the order
and every weight's shape are part of what is checked). The funkeras model then
predicts under `jit`, `eager` and `layerwise`, and once more after a
`save`/`load_model` round trip; every result must equal Keras' to 1e-5.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import funkeras as fk

EXECUTIONS = ("jit", "eager", "layerwise")


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras is not on the JAX backend")
    return keras


def _inputs(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.issubdtype(np.dtype(dtype), np.integer):
        return rng.integers(0, 200, (2, *shape)).astype(dtype)
    return (rng.standard_normal((2, *shape)) * 2).astype(dtype)


@pytest.fixture
def keras_parity(tmp_path) -> Callable[..., None]:
    """`check(make_keras, make_fk, shape, dtype="float32")`.

    `make_keras(keras.layers)` and `make_fk()` build the two layers with the same
    arguments; `shape` is one example's shape (no batch axis).
    """
    keras = _keras()
    counter = iter(range(1000))

    def check(
        make_keras: Callable[[Any], Any],
        make_fk: Callable[[], Any],
        shape: tuple[int, ...],
        dtype: str = "float32",
        tol: float = 1e-5,
    ) -> np.ndarray:
        seed = next(counter)
        x = _inputs(shape, dtype, seed)
        with warnings.catch_warnings():  # Keras' own NumPy 2 deprecation notes
            warnings.simplefilter("ignore", DeprecationWarning)
            k_model = keras.Sequential(
                [keras.Input(shape, dtype=dtype), make_keras(keras.layers)]
            )
            rng = np.random.default_rng(100 + seed)
            weights = [
                rng.standard_normal(w.shape).astype(w.dtype)
                for w in k_model.get_weights()
            ]
            k_model.set_weights(weights)
            expected = np.asarray(k_model(x))

        f_model = fk.Sequential([fk.Input(shape=shape, dtype=dtype), make_fk()])
        assert [w.shape for w in f_model.get_weights()] == [w.shape for w in weights]
        f_model.set_weights(weights)
        for execution in EXECUTIONS:
            f_model.compile(loss="mse", execution=execution)
            y = f_model.predict(x, verbose=0)
            assert y.shape == expected.shape, execution
            assert y.dtype == expected.dtype, execution
            np.testing.assert_allclose(
                y.astype(np.float64),
                expected.astype(np.float64),
                rtol=tol,
                atol=tol,
                err_msg=f"execution={execution}",
            )
        path = tmp_path / f"model_{seed}.fkz"
        f_model.save(path)
        loaded = fk.load_model(path)
        np.testing.assert_allclose(
            loaded.predict(x, verbose=0).astype(np.float64),
            expected.astype(np.float64),
            rtol=tol,
            atol=tol,
            err_msg="after save/load",
        )
        return expected

    return check
