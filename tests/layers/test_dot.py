"""`Dot` and `dot` against Keras 3 (two-input models), jit = eager = layerwise."""

import os
import warnings

import numpy as np
import pytest

import funkeras as fk
from funkeras.layers.merging import Dot

CASES = [
    # axes, shape1, shape2, normalize
    (1, (4,), (4,), False),
    (-1, (3, 4), (5, 4), False),
    ((1, 2), (4, 3), (2, 4), True),
    ((2, 1), (3, 4), (4,), False),
    (1, (4,), (4, 6), True),
    ((1, 1), (4, 3, 2), (4, 5), False),
]


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras is not on the JAX backend")
    return keras


@pytest.mark.parametrize("axes,shape1,shape2,normalize", CASES)
def test_dot_matches_keras(keras, tmp_path, axes, shape1, shape2, normalize):
    rng = np.random.default_rng(0)
    x = [
        rng.standard_normal((3, *shape1)).astype(np.float32),
        rng.standard_normal((3, *shape2)).astype(np.float32),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        a, b = keras.Input(shape1), keras.Input(shape2)
        k_model = keras.Model(
            [a, b], keras.layers.Dot(axes, normalize=normalize)([a, b])
        )
        expected = np.asarray(k_model(x))
    a, b = fk.Input(shape=shape1), fk.Input(shape=shape2)
    model = fk.Model([a, b], Dot(axes, normalize=normalize)([a, b]))
    for execution in ("jit", "eager", "layerwise"):
        model.compile(loss="mse", execution=execution)
        np.testing.assert_allclose(
            model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5
        )
    model.save(tmp_path / "dot.fkz")
    loaded = fk.load_model(tmp_path / "dot.fkz")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5
    )


def test_dot_against_numpy_and_the_functional_form():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 3, 4))
    out, _ = Dot(-1).apply({}, {}, [x.astype(np.float32), y.astype(np.float32)])
    np.testing.assert_allclose(
        out, np.einsum("bik,bjk->bij", x, y), rtol=1e-5, atol=1e-5
    )
    a, b = fk.Input(shape=(5, 4)), fk.Input(shape=(3, 4))
    assert fk.layers.dot([a, b], axes=2).shape == (None, 5, 3)
    assert fk.layers.dot([a, b], axes=(2, 2), normalize=True).shape == (None, 5, 3)


def test_bad_arguments_and_inputs_name_the_layer():
    with pytest.raises(ValueError, match="Dot.*pair"):
        Dot((1, 2, 3))
    with pytest.raises(TypeError, match="Dot.*normalize"):
        Dot(1, normalize="yes")
    a, b = fk.Input(shape=(4,)), fk.Input(shape=(5,))
    with pytest.raises(ValueError, match=r"Dot\(name='d'\).*same size"):
        Dot(1, name="d")([a, b])
    with pytest.raises(ValueError, match="Dot.*batch axis"):
        Dot(0)([a, a])
    with pytest.raises(ValueError, match="Dot.*exactly 2"):
        Dot(1)([a, a, a])
