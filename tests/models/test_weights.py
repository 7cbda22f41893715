"""Weights on the model facade: Keras order, round trips, refusals, freezing, lookup."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import funkeras as fk
from funkeras.layers.core import Dense
from funkeras.layers.merging import Add
from funkeras.layers.normalization import BatchNormalization
from funkeras.layers.regularization import Dropout
from funkeras.layers.reshaping import Flatten


def _mlp(**dense_kwargs):
    """Input(4) -> Dense(3) -> BatchNormalization -> Dense(2)."""
    return fk.Sequential(
        [
            fk.Input(shape=(4,)),
            Dense(3),
            BatchNormalization(),
            Dense(2, **dense_kwargs),
        ]
    )


def _nested():
    """An `encoder` Sequential (Dense(3), BN) inside a Sequential, then Dense(2)."""
    encoder = fk.Sequential(
        [fk.Input(shape=(4,)), Dense(3), BatchNormalization()], name="encoder"
    )
    outer = fk.Sequential([fk.Input(shape=(4,)), encoder, Dense(2, name="head")])
    return outer, encoder


# Keras order: layer by layer; Dense kernel, bias; BN gamma, beta, moving_mean,
# moving_variance; a nested model's weights in its own order, in its place.
MLP_ORDER = [
    ("dense", "kernel", (4, 3)),
    ("dense", "bias", (3,)),
    ("batch_normalization", "gamma", (3,)),
    ("batch_normalization", "beta", (3,)),
    ("batch_normalization", "moving_mean", (3,)),
    ("batch_normalization", "moving_variance", (3,)),
    ("dense_1", "kernel", (3, 2)),
    ("dense_1", "bias", (2,)),
]


def _lookup(model, layer, name):
    tree = model.params if name in model.params.get(layer, {}) else model.state
    return np.asarray(tree[layer][name])


def test_get_weights_follows_keras_order():
    model = _mlp()
    weights = model.get_weights()
    assert [w.shape for w in weights] == [shape for _, _, shape in MLP_ORDER]
    for w, (layer, name, _) in zip(weights, MLP_ORDER, strict=True):
        assert isinstance(w, np.ndarray)
        np.testing.assert_array_equal(w, _lookup(model, layer, name))
    # Fresh BN statistics and Dense bias are Keras' initial values.
    np.testing.assert_array_equal(weights[4], np.zeros(3))
    np.testing.assert_array_equal(weights[5], np.ones(3))
    np.testing.assert_array_equal(weights[1], np.zeros(3))
    # `weights` lists the same arrays in the same order.
    for w, v in zip(weights, model.weights, strict=True):
        np.testing.assert_array_equal(w, np.asarray(v))


def test_get_weights_recurses_into_nested_models():
    outer, _ = _nested()
    weights = outer.get_weights()
    assert [w.shape for w in weights] == [
        (4, 3),
        (3,),
        (3,),
        (3,),
        (3,),
        (3,),
        (3, 2),
        (2,),
    ]
    p, s = outer.params, outer.state
    expected = [
        p["encoder"]["dense"]["kernel"],
        p["encoder"]["dense"]["bias"],
        p["encoder"]["batch_normalization"]["gamma"],
        p["encoder"]["batch_normalization"]["beta"],
        s["encoder"]["batch_normalization"]["moving_mean"],
        s["encoder"]["batch_normalization"]["moving_variance"],
        p["head"]["kernel"],
        p["head"]["bias"],
    ]
    for w, e in zip(weights, expected, strict=True):
        np.testing.assert_array_equal(w, np.asarray(e))


def test_set_weights_round_trip_casts_and_changes_outputs():
    model = _mlp()
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    before = model.predict(x, verbose=0)
    rng = np.random.default_rng(1)
    new = [rng.normal(size=w.shape) for w in model.get_weights()]  # float64
    new[5] = np.abs(new[5]) + 0.5  # a valid moving variance
    model.set_weights(new)
    got = model.get_weights()
    for g, n in zip(got, new, strict=True):
        assert g.dtype == np.float32  # cast to the weight's dtype, as Keras does
        np.testing.assert_allclose(g, n.astype(np.float32))
    # The model computes with the new weights (inference BN: moving statistics).
    k0, b0, gamma, beta, mean, var, k1, b1 = (w.astype(np.float64) for w in new)
    h = x @ k0 + b0
    h = gamma * (h - mean) / np.sqrt(var + 1e-3) + beta
    ref = h @ k1 + b1
    after = model.predict(x, verbose=0)
    np.testing.assert_allclose(after, ref, rtol=1e-4, atol=1e-4)
    assert not np.allclose(after, before)
    # And get_weights -> set_weights is the identity.
    model.set_weights(model.get_weights())
    for g, n in zip(model.get_weights(), got, strict=True):
        np.testing.assert_array_equal(g, n)


def _aligned(shape, value, align=64):
    """A float32 array whose buffer is `align`-byte aligned (JAX may then alias it)."""
    n = int(np.prod(shape))
    buf = np.empty(n + align, np.float32)
    start = (-buf.ctypes.data % align) // buf.itemsize
    out = buf[start : start + n].reshape(shape)
    out[...] = value
    return out


def test_set_weights_does_not_alias_the_callers_arrays():
    model = _mlp()
    new = [_aligned(w.shape, 0.5) for w in model.get_weights()]
    model.set_weights(new)
    new[0][...] = 99.0
    assert float(np.asarray(model.params["dense"]["kernel"])[0, 0]) == 0.5


def test_get_weights_returns_writable_copies():
    model = _mlp()
    weights = model.get_weights()
    weights[0][0, 0] = 123.0  # Keras users edit weights in place
    assert float(np.asarray(model.params["dense"]["kernel"])[0, 0]) != 123.0


def test_set_weights_wrong_count_is_refused_and_model_unchanged():
    model = _mlp()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"expects 8 arrays, got 7"):
        model.set_weights(before[:-1])
    with pytest.raises(ValueError, match=r"expects 8 arrays, got 9"):
        model.set_weights([*before, before[0]])
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_set_weights_wrong_shape_is_refused_and_model_unchanged():
    model = _mlp()
    before = model.get_weights()
    # Every array but the last is valid: a non-atomic update would keep them.
    bad = [np.full(w.shape, 7.0, np.float32) for w in before]
    bad[-1] = np.zeros((3,), np.float32)
    with pytest.raises(ValueError, match=r"dense_1/bias has shape \(2,\), got \(3,\)"):
        model.set_weights(bad)
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    # A transposed kernel is refused too (no silent reshape).
    bad = list(before)
    bad[0] = before[0].T
    with pytest.raises(
        ValueError, match=r"dense/kernel has shape \(4, 3\), got \(3, 4\)"
    ):
        model.set_weights(bad)


def test_weights_of_an_unbuilt_model_explain_how_to_build():
    model = fk.Sequential([Dense(2)])
    with pytest.raises(ValueError, match="build"):
        model.get_weights()
    with pytest.raises(ValueError, match="build"):
        model.count_params()


def test_count_params_against_a_hand_count():
    # Dense(4->3): 4*3 + 3; BN(3): gamma, beta, moving mean and variance; Dense(3->2).
    assert _mlp().count_params() == (4 * 3 + 3) + 4 * 3 + (3 * 2 + 2)
    outer, encoder = _nested()
    assert encoder.count_params() == (4 * 3 + 3) + 4 * 3
    assert outer.count_params() == encoder.count_params() + 3 * 2 + 2
    # Conv-free layers hold nothing; a shared layer counts once.
    inp = fk.Input(shape=(2, 3))
    flat = Flatten()(inp)
    shared = Dense(6)
    out = Add()([shared(flat), shared(Dropout(0.5)(flat))])
    model = fk.Model(inp, out)
    assert model.count_params() == 6 * 6 + 6
    assert sum(w.size for w in model.get_weights()) == model.count_params()


def _names(model, arrays):
    """Map arrays back to `layer/var` names by identity with `model.weights`."""
    labels = {}
    for path, is_param, _ in model._weight_entries():
        labels[id(model._get_path(model.params if is_param else model.state, path))] = (
            "/".join(path)
        )
    return [labels[id(a)] for a in arrays]


def test_trainable_and_non_trainable_weights_with_a_frozen_layer():
    model = _mlp(trainable=False)
    assert _names(model, model.trainable_weights) == [
        "dense/kernel",
        "dense/bias",
        "batch_normalization/gamma",
        "batch_normalization/beta",
    ]
    assert _names(model, model.non_trainable_weights) == [
        "batch_normalization/moving_mean",
        "batch_normalization/moving_variance",
        "dense_1/kernel",
        "dense_1/bias",
    ]
    # The optimizer's mask agrees with trainable_weights.
    mask = model.trainable_mask()
    assert mask["dense_1"] == {"kernel": False, "bias": False}
    assert mask["dense"] == {"kernel": True, "bias": True}
    n_trainable = sum(w.size for w in model.trainable_weights)
    n_frozen = sum(w.size for w in model.non_trainable_weights)
    assert n_trainable == 4 * 3 + 3 + 3 + 3
    assert n_trainable + n_frozen == model.count_params()


def test_frozen_batch_normalization_holds_only_non_trainable_weights():
    model = _mlp()
    model.get_layer("batch_normalization").trainable = False
    assert _names(model, model.non_trainable_weights) == [
        "batch_normalization/gamma",
        "batch_normalization/beta",
        "batch_normalization/moving_mean",
        "batch_normalization/moving_variance",
    ]


def test_model_trainable_false_propagates_through_nested_models():
    outer, encoder = _nested()
    assert len(outer.trainable_weights) == 6  # encoder Dense 2 + BN 2, head 2
    encoder.trainable = False
    assert _names(outer, outer.trainable_weights) == ["head/kernel", "head/bias"]
    assert len(outer.non_trainable_weights) == 6
    outer.trainable = False
    assert outer.trainable_weights == []
    assert len(outer.non_trainable_weights) == 8
    assert all(not layer.trainable for layer in encoder.layers)
    mask = outer.trainable_mask()
    assert not any(jax.tree.leaves(mask))
    # As in Keras, unfreezing the model unfreezes every layer in it.
    outer.trainable = True
    assert encoder.trainable and all(layer.trainable for layer in encoder.layers)
    assert len(outer.trainable_weights) == 6
    assert all(jax.tree.leaves(outer.trainable_mask()))


def test_model_built_frozen_freezes_its_layers():
    model = fk.Sequential([fk.Input(shape=(3,)), Dense(2)], trainable=False)
    assert model.trainable_weights == []
    assert len(model.non_trainable_weights) == 2
    with pytest.raises(TypeError, match="bool"):
        model.trainable = "no"


def test_layers_lists():
    model = _mlp()
    assert [layer.name for layer in model.layers] == [
        "dense",
        "batch_normalization",
        "dense_1",
    ]  # as in Keras 3, a Sequential does not list its Input
    assert model.layers is not model.layers  # a copy: editing it changes nothing
    model.layers.pop()
    assert len(model.layers) == 3

    inp = fk.Input(shape=(3,), name="features")
    a = Dense(2, name="a")(inp)
    b = Dense(2, name="b")(inp)
    functional = fk.Model(inp, Add(name="sum")([a, b]))
    assert [layer.name for layer in functional.layers] == ["features", "a", "b", "sum"]
    assert type(functional.layers[0]).__name__ == "InputLayer"

    outer, encoder = _nested()
    assert outer.layers == [encoder, outer.get_layer("head")]


def test_get_layer_by_name_and_index():
    model = _mlp()
    dense_1 = model.get_layer("dense_1")
    assert isinstance(dense_1, Dense) and dense_1.units == 2
    assert model.get_layer(index=0) is model.layers[0]
    assert model.get_layer(index=-1) is dense_1
    assert model.get_layer(name="batch_normalization") is model.layers[1]
    outer, encoder = _nested()
    assert outer.get_layer("encoder") is encoder


def test_get_layer_errors_name_what_exists():
    model = _mlp()
    with pytest.raises(ValueError, match=r"no layer named 'dense_9'.*'dense_1'"):
        model.get_layer("dense_9")
    with pytest.raises(ValueError, match=r"index 3 is out of range for 3 layers"):
        model.get_layer(index=3)
    with pytest.raises(ValueError, match=r"index -4 is out of range"):
        model.get_layer(index=-4)
    with pytest.raises(ValueError):
        model.get_layer()


def test_get_layer_refuses_name_and_index_together():
    model = _mlp()
    with pytest.raises(ValueError, match="only"):
        model.get_layer("dense", 2)
