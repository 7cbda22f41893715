"""Sequence masks: made by Embedding(mask_zero)/Masking, carried by the walker,
consumed by layers, losses and metrics, in jit, eager and layerwise, against
NumPy formulas and Keras 3 given the same weights."""

import os
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras.models.functional import graph_apply_masked

L = fk.layers
EXECUTIONS = ["jit", "eager", "layerwise"]

# Token ids with 0 as padding; row 2 has no padding, row 1 only one real step.
X = np.array([[1, 2, 0, 0], [3, 0, 0, 0], [4, 5, 6, 7], [8, 9, 1, 0]], np.int32)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras is not on the JAX backend")
    return keras


@dataclass(eq=False)
class MaskedSum(L.Layer):
    """A tiny consumer: sums the unmasked steps (all steps without a mask)."""

    uses_key = False
    consumes_sequence_mask = True

    def apply(self, params, state, x, *, training=False, key=None, mask=None,
              sequence_mask=None):
        if sequence_mask is None:
            return jnp.sum(x, axis=1), state
        return jnp.sum(jnp.where(sequence_mask[..., None], x, 0.0), axis=1), state


@dataclass(eq=False)
class Doubler(L.Layer):
    """A layer that does not support masking: the mask stops here."""

    uses_key = False

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        return 2.0 * x, state


def _keras_weights(km):
    return [np.asarray(v.value) for v in km.weights]


def _weights(model):
    return {
        k: {n: np.asarray(v) for n, v in d.items()} for k, d in model.params.items()
    }


# -- the walker --------------------------------------------------------------------


def test_walker_makes_passes_consumes_and_drops_masks():
    inp = fk.Input(shape=(None,), dtype="int32")
    emb = L.Embedding(10, 3, mask_zero=True)(inp)
    dense = L.Dense(2)(emb)  # passes the mask on
    summed = MaskedSum()(dense)  # consumes it
    doubled = Doubler()(dense)  # does not support masking: no mask after it
    model = fk.Model(inp, [summed, dense, doubled], seed=0)
    (y_sum, y_dense, _), _, masks = graph_apply_masked(
        model.graph, model.params, model.state, X
    )
    assert masks[0] is None and masks[2] is None
    np.testing.assert_array_equal(np.asarray(masks[1]), X != 0)
    keep = (X != 0)[..., None]
    np.testing.assert_allclose(y_sum, np.sum(np.where(keep, y_dense, 0), 1), atol=1e-6)
    # `apply` keeps its signature and returns the outputs only.
    out, _ = model.apply(model.params, model.state, X)
    np.testing.assert_allclose(out[0], y_sum, atol=1e-6)


def test_unmasked_graph_passes_no_mask_to_consumers():
    inp = fk.Input(shape=(4, 2))
    out = MaskedSum()(L.Dense(2)(inp))
    model = fk.Model(inp, out, seed=0)
    x = np.ones((2, 4, 2), np.float32)
    y, _, masks = graph_apply_masked(model.graph, model.params, model.state, x)
    assert masks is None
    w = _weights(model)
    want = np.sum(x @ w["dense"]["kernel"] + w["dense"]["bias"], axis=1)
    np.testing.assert_allclose(y, want, atol=1e-5)


def test_nested_model_passes_masks_through_its_inputs_and_outputs():
    inner_in = fk.Input(shape=(None, 3))
    inner = fk.Model(inner_in, L.Dense(3)(inner_in), name="inner", seed=1)
    inp = fk.Input(shape=(None,), dtype="int32")
    h = inner(L.Embedding(10, 3, mask_zero=True)(inp))
    out = MaskedSum()(h)
    model = fk.Model(inp, [out, h], seed=0)
    (y, h_val), _, masks = graph_apply_masked(
        model.graph, model.params, model.state, X
    )
    np.testing.assert_array_equal(np.asarray(masks[1]), X != 0)
    want = np.sum(np.where((X != 0)[..., None], h_val, 0.0), 1)
    np.testing.assert_allclose(y, want, atol=1e-6)
    # The layerwise executor walks into the nested model; the mask follows.
    single = fk.Model(inp, out, seed=0)
    single.set_weights(model.get_weights())
    target = np.zeros((4, 3), np.float32)
    w0, after = single.get_weights(), {}
    for execution in EXECUTIONS:
        single.set_weights(w0)
        single.compile(optimizer="sgd", loss="mse", execution=execution)
        np.testing.assert_allclose(
            single.evaluate(X, target, verbose=0), np.mean(want**2), rtol=1e-5
        )
        single.fit(X, target, batch_size=4, verbose=0)
        after[execution] = single.get_weights()
    for execution in ("eager", "layerwise"):
        for a, b in zip(after["jit"], after[execution], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-6)


# -- the layers that make, pass and merge masks --------------------------------------


def test_embedding_and_masking_compute_masks_as_keras():
    keras = _keras()
    emb = L.Embedding(10, 2, mask_zero=True)
    np.testing.assert_array_equal(np.asarray(emb.compute_mask(X)), X != 0)
    assert L.Embedding(10, 2).compute_mask(X) is None
    x = np.array([[[1.0, 2.0], [0.0, 0.0], [0.5, 0.0]]], np.float32)
    ours = L.Masking(mask_value=0.0)
    theirs = keras.layers.Masking(mask_value=0.0)
    np.testing.assert_array_equal(
        np.asarray(ours.compute_mask(x)), np.asarray(theirs.compute_mask(x))
    )
    np.testing.assert_allclose(ours.apply({}, {}, x)[0], np.asarray(theirs(x)))
    x2 = np.array([[[3.0, 3.0], [3.0, 1.0]]], np.float32)
    np.testing.assert_array_equal(
        np.asarray(L.Masking(mask_value=3.0).compute_mask(x2)), [[False, True]]
    )


@pytest.mark.parametrize(
    "name", ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
)
def test_elementwise_merges_combine_masks_as_keras(name):
    keras = _keras()
    a = np.ones((2, 3, 4), np.float32)
    m1 = np.array([[1, 1, 0], [1, 0, 0]], bool)
    m2 = np.array([[1, 0, 0], [0, 1, 0]], bool)
    ours = getattr(L, name)().compute_mask([a, a], [m1, m2])
    theirs = getattr(keras.layers, name)().compute_mask([a, a], [m1, m2])
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert getattr(L, name)().compute_mask([a, a], [m1, None]) is None


@pytest.mark.parametrize("axis", [-1, 1])
def test_concatenate_masks_as_keras(axis):
    keras = _keras()
    a = np.ones((2, 3, 4), np.float32)
    m1 = np.array([[1, 1, 0], [1, 0, 0]], bool)
    for masks in ([m1, None], [m1, ~m1]):
        ours = L.Concatenate(axis=axis).compute_mask([a, a], masks)
        theirs = keras.layers.Concatenate(axis=axis).compute_mask([a, a], masks)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_pass_through_layers_declare_support():
    for layer in (
        L.Dense(2),
        L.Dropout(0.1),
        L.Activation("relu"),
        L.Identity(),
        L.LayerNormalization(),
        L.BatchNormalization(),
        L.Add(),
        L.Concatenate(),
    ):
        assert layer.supports_masking, layer
    assert L.GlobalAveragePooling1D().consumes_sequence_mask
    assert not L.GlobalMaxPooling1D().consumes_sequence_mask
    assert not L.Flatten().supports_masking


def test_batchnorm_training_moments_skip_masked_steps_as_keras():
    keras = _keras()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 2)).astype(np.float32)
    m = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], bool)
    ours = L.BatchNormalization()
    spec = jax.ShapeDtypeStruct((4, 2), jnp.float32)
    params, state = ours.init(jax.random.key(0), spec)
    y, new_state = ours.apply(params, state, x, training=True, sequence_mask=m)
    theirs = keras.layers.BatchNormalization()
    y_k = theirs(x, training=True, mask=m)
    np.testing.assert_allclose(y, np.asarray(y_k), atol=1e-5)
    np.testing.assert_allclose(
        new_state["moving_mean"], np.asarray(theirs.moving_mean), atol=1e-6
    )


# -- Embedding(mask_zero) + GlobalAveragePooling1D: NumPy, Keras, three executions -----


def _pooled_model():
    inp = fk.Input(shape=(None,), dtype="int32")
    h = L.Dense(3, activation="tanh")(L.Embedding(10, 4, mask_zero=True)(inp))
    out = L.Dense(1)(L.GlobalAveragePooling1D()(L.Dropout(0.0)(h)))
    return fk.Model(inp, out, seed=0)


def _pooled_reference(w, x):
    h = w["embedding"]["embeddings"][x] @ w["dense"]["kernel"] + w["dense"]["bias"]
    h = np.tanh(h)
    keep = (x != 0)[..., None]
    pooled = np.sum(h * keep, 1) / np.sum(keep, 1)
    return pooled @ w["dense_1"]["kernel"] + w["dense_1"]["bias"]


def _keras_pooled(keras, model):
    inp = keras.Input(shape=(None,), dtype="int32")
    h = keras.layers.Dense(3, activation="tanh")(
        keras.layers.Embedding(10, 4, mask_zero=True)(inp)
    )
    out = keras.layers.Dense(1)(
        keras.layers.GlobalAveragePooling1D()(keras.layers.Dropout(0.0)(h))
    )
    km = keras.Model(inp, out)
    km.set_weights(model.get_weights())
    return km


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_masked_pooling_model_equals_numpy_and_keras(execution):
    keras = _keras()
    model = _pooled_model()
    want = _pooled_reference(_weights(model), X)
    np.testing.assert_allclose(model.predict(X, verbose=0), want, atol=1e-5)
    km = _keras_pooled(keras, model)
    np.testing.assert_allclose(np.asarray(km.predict(X, verbose=0)), want, atol=1e-5)

    y = np.arange(4, dtype=np.float32).reshape(4, 1)
    model.compile(optimizer=fk.optimizers.SGD(0.1), loss="mse", execution=execution)
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    np.testing.assert_allclose(
        model.evaluate(X, y, verbose=0), km.evaluate(X, y, verbose=0), rtol=1e-5
    )
    model.fit(X, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    km.fit(X, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), _keras_weights(km), strict=True):
        np.testing.assert_allclose(a, np.asarray(b), atol=1e-5)


def test_layerwise_caches_compiled_layers_by_mask_presence():
    model = _pooled_model()
    model.compile(optimizer="sgd", loss="mse", execution="layerwise")
    y = np.zeros((4, 1), np.float32)
    model.fit(X, y, batch_size=4, epochs=2, verbose=0)
    executor = model.make_runner().executor
    # One compile per layer per mode: the second epoch compiled nothing more.
    assert executor.traces["forward[dense]"] == 1
    acts = executor.activations
    assert acts["dense"].shape == (4, 4, 3)


# -- losses and metrics on a masked (batch, time, classes) output ----------------------


def _tagger():
    inp = fk.Input(shape=(None,), dtype="int32")
    h = L.Embedding(10, 4, mask_zero=True)(inp)
    out = L.Dense(3, activation="softmax")(L.Dense(5, activation="relu")(h))
    return fk.Model(inp, out, seed=0)


def _keras_tagger(keras, model):
    inp = keras.Input(shape=(None,), dtype="int32")
    h = keras.layers.Embedding(10, 4, mask_zero=True)(inp)
    out = keras.layers.Dense(3, activation="softmax")(
        keras.layers.Dense(5, activation="relu")(h)
    )
    km = keras.Model(inp, out)
    km.set_weights(model.get_weights())
    return km


TAGS = np.array([[1, 2, 0, 0], [0, 1, 1, 2], [2, 2, 1, 0], [1, 0, 2, 2]], np.int32)


def _masked_loss_reference(model):
    probs = np.asarray(model.predict(X, verbose=0), np.float64)
    keep = X != 0
    nll = -np.log(np.take_along_axis(probs, TAGS[..., None], -1)[..., 0])
    correct = np.argmax(probs, -1) == TAGS
    return nll[keep].mean(), correct[keep].mean()


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_masked_timesteps_count_for_nothing_in_loss_and_metrics(execution):
    keras = _keras()
    model = _tagger()
    km = _keras_tagger(keras, model)
    model.compile(
        optimizer=fk.optimizers.SGD(0.5),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        execution=execution,
    )
    km.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    want_loss, want_acc = _masked_loss_reference(model)
    ours = model.evaluate(X, TAGS, verbose=0, return_dict=True)
    theirs = km.evaluate(X, TAGS, verbose=0, return_dict=True)
    np.testing.assert_allclose(ours["loss"], want_loss, rtol=1e-5)
    np.testing.assert_allclose(ours["accuracy"], want_acc, rtol=1e-6)
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-5)
    np.testing.assert_allclose(ours["accuracy"], theirs["accuracy"], rtol=1e-6)
    # Two batches of two rows: the running means across batches agree too.
    ours = model.evaluate(X, TAGS, batch_size=2, verbose=0, return_dict=True)
    theirs = km.evaluate(X, TAGS, batch_size=2, verbose=0, return_dict=True)
    np.testing.assert_allclose(ours["loss"], theirs["loss"], rtol=1e-5)
    np.testing.assert_allclose(ours["accuracy"], theirs["accuracy"], rtol=1e-6)
    # A few SGD steps follow Keras' masked gradients.
    hist = model.fit(X, TAGS, batch_size=2, epochs=2, shuffle=False, verbose=0)
    hist_k = km.fit(X, TAGS, batch_size=2, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(
        hist.history["loss"], hist_k.history["loss"], rtol=1e-4
    )
    for a, b in zip(model.get_weights(), _keras_weights(km), strict=True):
        np.testing.assert_allclose(a, np.asarray(b), atol=1e-5)


def test_padding_labels_do_not_change_the_masked_loss():
    model = _tagger()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    other = np.where(X == 0, (TAGS + 1) % 3, TAGS)
    a = model.evaluate(X, TAGS, verbose=0)
    b = model.evaluate(X, other, verbose=0)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    unmasked = np.where(X == 0, 1, X)
    assert abs(model.evaluate(unmasked, TAGS, verbose=0) - a) > 1e-4


def test_loss_refuses_a_mask_that_does_not_fit():
    loss = fk.losses.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match="sequence mask of shape"):
        loss(TAGS, np.ones((4, 4, 3)) / 3, sequence_mask=np.ones((4, 5), bool))


# -- Keras-style layers, explicit masks, variable lengths, saving ---------------------


class KerasMaskedMean(L.Layer):
    """Keras-style: `call(inputs, mask=None)` receives the sequence mask."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return jnp.mean(inputs, axis=1)
        keep = mask[..., None].astype(inputs.dtype)
        return jnp.sum(inputs * keep, 1) / jnp.sum(keep, 1)

    def compute_mask(self, inputs, mask=None):
        return None


class KerasPassThrough(L.Layer):
    """Keras-style: `self.supports_masking = True` passes the mask on."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return 2.0 * inputs


def test_keras_style_supports_masking_set_in_init_passes_the_mask():
    inp = fk.Input(shape=(None,), dtype="int32")
    h = KerasPassThrough()(L.Embedding(10, 3, mask_zero=True)(inp))
    model = fk.Model(inp, [h, KerasPassThrough()(h)], seed=0)
    _, _, masks = graph_apply_masked(model.graph, model.params, model.state, X)
    for m in masks:
        np.testing.assert_array_equal(np.asarray(m), X != 0)
    assert not KerasMaskedMean().compute_mask(X, X != 0)


class KerasMaskMaker(L.Layer):
    """Keras-style: makes a mask with its own `compute_mask`."""

    def call(self, inputs):
        return inputs

    def compute_mask(self, inputs, mask=None):
        return jnp.any(inputs > 0.5, axis=-1)


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_keras_style_layer_receives_and_makes_masks(execution):
    inp = fk.Input(shape=(None,), dtype="int32")
    e = L.Embedding(10, 4, mask_zero=True)(inp)
    out = KerasMaskedMean()(L.Dense(2)(e))
    model = fk.Model(inp, out, seed=0)
    w = _weights(model)
    h = w["embedding"]["embeddings"][X] @ w["dense"]["kernel"] + w["dense"]["bias"]
    keep = (X != 0)[..., None]
    want = np.sum(h * keep, 1) / np.sum(keep, 1)
    np.testing.assert_allclose(model.predict(X, verbose=0), want, atol=1e-5)
    model.compile(optimizer="sgd", loss="mse", execution=execution)
    np.testing.assert_allclose(
        model.evaluate(X, np.zeros((4, 2)), verbose=0), np.mean(want**2), rtol=1e-5
    )

    inp2 = fk.Input(shape=(3, 2))
    made = KerasMaskMaker()(inp2)
    m2 = fk.Model(inp2, MaskedSum()(made), seed=0)
    x = np.array([[[1.0, 0.0], [0.1, 0.2], [0.9, 0.9]]], np.float32)
    np.testing.assert_allclose(m2.predict(x, verbose=0), [[1.9, 0.9]], atol=1e-6)


def test_keras_style_layer_on_arrays_takes_mask_argument():
    layer = KerasMaskedMean()
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    got = layer(x, mask=np.array([[True, False, True]]))
    np.testing.assert_allclose(got, (x[:, 0] + x[:, 2]) / 2)


def test_explicit_mask_argument_sets_the_sequence_mask(tmp_path):
    x_in = fk.Input(shape=(4, 2))
    m_in = fk.Input(shape=(4,), dtype="bool")
    out = MaskedSum()(L.Dense(2)(x_in), mask=m_in)
    model = fk.Model([x_in, m_in], out, seed=0)
    x = np.random.default_rng(0).normal(size=(3, 4, 2)).astype(np.float32)
    m = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], bool)
    w = _weights(model)
    h = x @ w["dense"]["kernel"] + w["dense"]["bias"]
    want = np.sum(h * m[..., None], 1)
    np.testing.assert_allclose(model.predict([x, m], verbose=0), want, atol=1e-5)
    path = tmp_path / "explicit.fkz"
    with fk.saving.custom_object_scope({"MaskedSum": MaskedSum}):
        model.save(path)
        loaded = fk.load_model(path)
    np.testing.assert_allclose(loaded.predict([x, m], verbose=0), want, atol=1e-5)
    for execution in ("eager", "layerwise"):
        model.compile(optimizer="sgd", loss="mse", execution=execution)
        np.testing.assert_allclose(
            model.evaluate([x, m], np.zeros((3, 2)), verbose=0),
            np.mean(want**2),
            rtol=1e-5,
        )
    with pytest.raises(ValueError, match="one mask"):
        MaskedSum()(x_in, mask=[m_in, m_in])
    with pytest.raises(ValueError, match="bool tensor"):
        MaskedSum()(x_in, mask=fk.Input(shape=(4,)))


def test_variable_lengths_compile_once_per_length():
    model = _pooled_model()
    model.compile(optimizer="sgd", loss="mse")
    short = fk.utils.pad_sequences([[1, 2], [3]], maxlen=3, padding="post")
    long = fk.utils.pad_sequences([[1, 2, 3, 4, 5], [3]], maxlen=6, padding="post")
    for x in (short, long, short):
        model.fit(x, np.zeros((2, 1)), batch_size=2, verbose=0)
    w = _weights(model)
    np.testing.assert_allclose(
        model.predict(long, verbose=0), _pooled_reference(w, long), atol=1e-5
    )
    assert model.compile_stats()["train_step"]["compiles"] == 2


def test_masked_model_saves_and_loads(tmp_path):
    model = _tagger()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    path = tmp_path / "tagger.fkz"
    model.save(path)
    loaded = fk.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(X, verbose=0), model.predict(X, verbose=0), atol=1e-6
    )
    np.testing.assert_allclose(
        loaded.evaluate(X, TAGS, verbose=0), model.evaluate(X, TAGS, verbose=0),
        rtol=1e-6,
    )
    masking = fk.Sequential(
        [fk.Input(shape=(3, 2)), L.Masking(0.5), L.GlobalAveragePooling1D()]
    )
    x = np.array([[[1.0, 2.0], [0.5, 0.5], [3.0, 0.5]]], np.float32)
    masking.save(tmp_path / "masking.fkz")
    loaded = fk.load_model(tmp_path / "masking.fkz")
    assert loaded.layers[0].mask_value == 0.5
    np.testing.assert_allclose(loaded.predict(x, verbose=0), [[2.0, 1.25]])
