"""A model's weights are created layer by layer, eagerly (no whole-model compile),
and are the same numbers as the pure `init` compiled with `jax.jit`."""

import jax
import numpy as np

import funkeras as fk

L = fk.layers


def test_eager_weights_equal_the_jitted_pure_init():
    model = fk.Sequential(
        [
            fk.Input((6, 4)),
            L.Conv1D(3, 2),
            L.BatchNormalization(),
            L.Flatten(),
            L.Dense(5, activation="relu"),
            L.Dropout(0.1),
            L.Dense(2),
        ],
        seed=7,
    )
    params, state = jax.jit(model.init, static_argnums=1)(
        jax.random.key(7), jax.ShapeDtypeStruct((6, 4), "float32")
    )
    want = jax.tree.leaves((params, state))
    got = jax.tree.leaves((model.params, model.state))
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_deep_model_initialises_layer_by_layer():
    # 120 layers: one compiled init program for all of them took minutes.
    model = fk.Sequential([fk.Input((4,))] + [L.Dense(4) for _ in range(120)], seed=0)
    weights = model.get_weights()
    assert len(weights) == 240
    assert all(np.isfinite(w).all() for w in weights)
    assert not np.array_equal(weights[0], weights[2])  # one key per layer
