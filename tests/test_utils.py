"""fk.utils: Keras' helpers against NumPy formulas and keras.utils itself."""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import pytest

import funkeras as fk
from funkeras.utils import (
    pack_x_y_sample_weight,
    pad_sequences,
    split_dataset,
    to_categorical,
    unpack_x_y_sample_weight,
)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("keras is not on the JAX backend")
    return keras


SEQS = [[1, 2, 3, 4], [5], [], [6, 7]]


def test_to_categorical_formula_and_keras():
    labels = np.array([[2], [0], [1]])
    out = to_categorical(labels)
    np.testing.assert_array_equal(out, np.eye(3)[[2, 0, 1]])
    assert out.dtype == np.float64
    assert to_categorical([[0, 1], [1, 1]], num_classes=4).shape == (2, 2, 4)
    on_device = to_categorical(jnp.array([1, 0]), 3)
    assert on_device.dtype == jnp.float32
    np.testing.assert_array_equal(on_device, np.eye(3)[[1, 0]])
    keras = _keras()
    for x, n in ((labels, None), (np.array([3, 1, 0]), 5)):
        theirs = keras.utils.to_categorical(x, n)
        np.testing.assert_array_equal(to_categorical(x, n), theirs)
        assert to_categorical(x, n).dtype == np.asarray(theirs).dtype
    with pytest.raises(ValueError, match="to_categorical: labels must lie"):
        to_categorical([0, 3], num_classes=2)


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [None, 2])
def test_pad_sequences_matches_keras(padding, truncating, maxlen):
    out = pad_sequences(
        SEQS, maxlen=maxlen, padding=padding, truncating=truncating, value=-1
    )
    assert out.dtype == np.int32
    keras = _keras()
    theirs = keras.utils.pad_sequences(
        SEQS, maxlen=maxlen, padding=padding, truncating=truncating, value=-1
    )
    np.testing.assert_array_equal(out, theirs)


def test_pad_sequences_by_hand():
    np.testing.assert_array_equal(
        pad_sequences(SEQS, maxlen=3), [[2, 3, 4], [0, 0, 5], [0, 0, 0], [0, 6, 7]]
    )
    out = pad_sequences(
        [np.ones((2, 3)), np.ones((1, 3))], dtype="float32", padding="post"
    )
    assert out.shape == (2, 2, 3) and out[1, 1].tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="pad_sequences: `padding`"):
        pad_sequences(SEQS, padding="middle")
    with pytest.raises(ValueError, match=r"pad_sequences: `sequences\[1\]` has steps"):
        pad_sequences([np.ones((2, 3)), np.ones((1, 2))])


def test_normalize_formula_and_keras():
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    x[1] = 0.0
    expected = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-30)
    expected[1] = 0.0
    np.testing.assert_allclose(fk.utils.normalize(x), expected, rtol=1e-6)
    np.testing.assert_allclose(
        fk.utils.normalize(x, axis=0, order=1),
        x / np.abs(x).sum(0, keepdims=True),
        rtol=1e-6,
    )
    keras = _keras()
    np.testing.assert_allclose(
        fk.utils.normalize(x), keras.utils.normalize(x), rtol=1e-6
    )
    np.testing.assert_allclose(
        fk.utils.normalize(jnp.asarray(x[[0, 2]])),
        np.asarray(keras.utils.normalize(keras.ops.convert_to_tensor(x[[0, 2]]))),
        rtol=1e-6,
    )


def test_pack_and_unpack():
    assert unpack_x_y_sample_weight((1,)) == (1, None, None)
    assert unpack_x_y_sample_weight([1, 2, 3]) == (1, 2, 3)
    assert unpack_x_y_sample_weight("x") == ("x", None, None)
    with pytest.raises(ValueError, match="tuple of 4"):
        unpack_x_y_sample_weight((1, 2, 3, 4))
    assert pack_x_y_sample_weight(1) == 1
    assert pack_x_y_sample_weight((1, 2)) == ((1, 2),)
    assert pack_x_y_sample_weight(1, 2, 3) == (1, 2, 3)
    keras = _keras()
    for data in ((1,), (1, 2), (1, 2, 3), 5):
        assert unpack_x_y_sample_weight(data) == keras.utils.unpack_x_y_sample_weight(
            data
        )
    for args in ((1,), (1, 2), (1, 2, 3), ((1, 2),)):
        assert pack_x_y_sample_weight(*args) == keras.utils.pack_x_y_sample_weight(
            *args
        )


def test_split_dataset():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    (xl, yl), (xr, yr) = split_dataset((x, y), right_size=3)
    np.testing.assert_array_equal(xl, x[:7])
    np.testing.assert_array_equal(yr, y[7:])
    left, right = split_dataset({"a": x}, left_size=0.2, right_size=0.5)
    assert left["a"].shape == (2, 2) and right["a"].shape == (5, 2)
    (sl, _), (sr, _) = split_dataset((x, y), left_size=6, shuffle=True, seed=0)
    assert sorted(np.concatenate([sl[:, 0], sr[:, 0]]).tolist()) == list(
        range(0, 20, 2)
    )
    again = split_dataset((x, y), left_size=6, shuffle=True, seed=0)
    np.testing.assert_array_equal(again[0][0], sl)
    assert not np.array_equal(sl, x[:6])
    with pytest.raises(ValueError, match="split_dataset: give"):
        split_dataset(x)
    with pytest.raises(ValueError, match="same number of rows"):
        split_dataset((x, y[:5]), left_size=2)
    with pytest.raises(ValueError, match="`left_size` must lie"):
        split_dataset(x, left_size=1.5)


class _Batches(fk.utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.epochs_seen = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        self.epochs_seen += 1


def test_pydataset_feeds_fit_evaluate_predict_like_arrays():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)
    data = _Batches(x, y, 8, workers=4, use_multiprocessing=True)

    def trained(source):
        model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(1)], seed=0)
        model.compile(optimizer="sgd", loss="mse")
        if source is None:
            hist = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        else:
            hist = model.fit(source, epochs=2, verbose=0)
        return model, hist.history["loss"]

    a, loss_a = trained(data)
    b, loss_b = trained(None)
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5)
    assert data.epochs_seen >= 2
    np.testing.assert_allclose(
        a.evaluate(data, verbose=0), b.evaluate(x, y, verbose=0), rtol=1e-5
    )
    np.testing.assert_allclose(
        a.predict(data, verbose=0), b.predict(x, verbose=0), rtol=1e-5
    )
    assert data.num_batches == 3
    # A one-shot generator: predict keeps the batch it peeked at to build.
    gen = ((x[i : i + 8],) for i in range(0, 20, 8))
    np.testing.assert_allclose(
        a.predict(gen, verbose=0), b.predict(x, verbose=0), rtol=1e-5
    )


def test_pydataset_without_len_is_a_clear_error():
    with pytest.raises(TypeError, match="must define `__len__`"):
        len(fk.utils.PyDataset())


def test_plot_model_is_inspect_plot_model(tmp_path):
    assert fk.utils.plot_model is fk.inspect.plot_model
    model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)], seed=0)
    text = fk.utils.plot_model(model, to_file=str(tmp_path / "m.dot"), show_shapes=True)
    assert "dense" in text and (tmp_path / "m.dot").read_text() == text
