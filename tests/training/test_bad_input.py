"""Bad input, refused up front or kept out of the weights.

Each case here was a reproduction: before, the weights turned NaN with no
error, nothing was trained while the logs said loss 0.0, an internal error
came out, or the weights changed before the error. Now every argument of
`fit`/`evaluate`/`predict` is checked before anything is built, traced or
trained (the model is left exactly as it was, names the argument), and no
update whose loss is not finite is applied, whatever its source.
"""

import threading
import warnings

import jax
import numpy as np
import pytest

import funkeras as fk

L = fk.layers


def data(n=64, features=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    w = rng.normal(size=(features, 1)).astype("float32")
    return x, (x @ w).astype("float32")


def dense_model(execution="jit", optimizer="sgd"):
    model = fk.Sequential([fk.Input((8,)), L.Dense(1)], seed=0)
    model.compile(optimizer=optimizer, loss="mse", execution=execution)
    return model


def snapshot(model):
    """Everything a refused call must leave as it was."""
    weights = [np.array(w) for w in model.get_weights()]
    opt = None
    if model.opt_state is not None:
        opt = [np.array(a) for a in jax.tree.leaves(model.opt_state)]
    return weights, opt, model.progress.epoch, model.progress.step


def assert_unchanged(model, before):
    weights, opt, epoch, step = snapshot(model)
    for a, b in zip(before[0], weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (before[1] is None) == (opt is None)
    for a, b in zip(before[1] or [], opt or [], strict=True):
        np.testing.assert_array_equal(a, b)
    assert (epoch, step) == before[2:]


def finite(model):
    return all(np.isfinite(w).all() for w in model.get_weights())


X, Y = data()
NAN_WEIGHTS = np.r_[np.nan, np.ones(63)].astype("float32")


def ragged_generator():
    yield X[:8], Y[:8]


# (call, error type, message fragment): each is refused before anything runs.
REFUSED = [
    (lambda m: m.fit(X, Y, sample_weight=NAN_WEIGHTS, verbose=0),
     ValueError, r"`sample_weight` holds NaN.*rows: \[0\]"),
    (lambda m: m.fit(X, Y, sample_weight=np.ones(3), verbose=0),
     ValueError, r"sample_weight"),
    (lambda m: m.fit(X, (Y > 0).astype("float32"),
                     class_weight={0: float("nan"), 1: 1.0}, verbose=0),
     ValueError, r"`class_weight\[0\]` must be a finite number, got nan"),
    (lambda m: m.fit(X, Y, class_weight=[1.0, 2.0], verbose=0),
     TypeError, "class_weight"),
    (lambda m: m.fit(X, Y, batch_size=-4, verbose=0),
     ValueError, "`batch_size` must be >= 1, got -4"),
    (lambda m: m.fit(X, Y, batch_size=0, verbose=0),
     ValueError, "`batch_size` must be >= 1, got 0"),
    (lambda m: m.fit(X, Y, batch_size=2.5, verbose=0),
     TypeError, "`batch_size` must be an int, got 2.5"),
    (lambda m: m.fit(X, Y, steps_per_epoch=0, epochs=2, verbose=0),
     ValueError, "`steps_per_epoch` must be >= 1, got 0"),
    (lambda m: m.fit(X, Y, epochs=1.5, verbose=0), TypeError, "`epochs`"),
    (lambda m: m.fit(X, Y, validation_split="0.2", verbose=0),
     TypeError, "`validation_split` must be a number, got '0.2'"),
    (lambda m: m.fit(X, Y, validation_split=1.0, verbose=0),
     ValueError, "`validation_split` must be in"),
    (lambda m: m.fit(X, Y, validation_freq=0, verbose=0),
     ValueError, "`validation_freq`"),
    (lambda m: m.fit(X, Y, validation_batch_size=-1, verbose=0,
                     validation_data=(X, Y)),
     ValueError, "`validation_batch_size`"),
    (lambda m: m.fit(X.astype(str), Y, verbose=0),
     TypeError, "`x` has dtype <U.*strings"),
    (lambda m: m.fit(X, None, verbose=0),
     ValueError, r"compiled with a loss, but `y` is None"),
    (lambda m: m.fit((xb for xb in [X[:8], X[8:16]]), verbose=0),
     ValueError, "batches carry no targets"),
    # validation_data is checked before the first epoch trains.
    (lambda m: m.fit(X, Y, validation_data=(X[:, :4], Y), verbose=0),
     ValueError, r"`validation_data` does not fit the model.*\(None, 8\)"),
    (lambda m: m.fit(X, Y, validation_data=(X, Y[:10]), verbose=0),
     ValueError, r"`validation_data`.*rows"),
    (lambda m: m.fit(X, Y, validation_data=(X, np.full_like(Y, np.nan)), verbose=0),
     ValueError, r"`validation_data`.*`y` contains NaN"),
    (lambda m: m.fit(X, Y, validation_data=(X, np.ones((64, 3), "float32")),
                     verbose=0),
     ValueError, r"`validation_data` does not fit the model.*shape"),
    (lambda m: m.fit(X, Y, verbose=0,
                     validation_data=(X, Y, NAN_WEIGHTS)),
     ValueError, "`sample_weight` holds NaN"),
    (lambda m: m.evaluate(X, Y, sample_weight=NAN_WEIGHTS, verbose=0),
     ValueError, r"evaluate: `sample_weight` holds NaN"),
    (lambda m: m.evaluate(X, Y, batch_size="32", verbose=0),
     TypeError, "evaluate: `batch_size` must be an int, got '32'"),
    (lambda m: m.evaluate(X, Y, steps=0, verbose=0), ValueError, "`steps`"),
    (lambda m: m.evaluate(X, None, verbose=0), ValueError, "`y` is None"),
    (lambda m: m.predict(X, batch_size=-1, verbose=0),
     ValueError, "predict: `batch_size` must be >= 1, got -1"),
    (lambda m: m.predict(X, batch_size=2.5, verbose=0),
     TypeError, "predict: `batch_size` must be an int, got 2.5"),
    (lambda m: m.predict(X, batch_size="32", verbose=0),
     TypeError, "predict: `batch_size` must be an int"),
    (lambda m: m.predict("hello", verbose=0),
     TypeError, "predict: `x` is a string"),
    (lambda m: m.predict([[1.0, 2.0], [3.0]], verbose=0),
     ValueError, "predict: `x` is a ragged list"),
    (lambda m: m.train_on_batch(X[:4], Y[:4], sample_weight=NAN_WEIGHTS[:4]),
     ValueError, "train_on_batch: `sample_weight` holds NaN"),
    (lambda m: m.train_on_batch(X[:4], Y[:4], class_weight={0: np.inf}),
     ValueError, "class_weight"),
]


@pytest.mark.parametrize(
    "call, error, match", REFUSED, ids=[f"case{i}" for i in range(len(REFUSED))]
)
def test_refused_up_front_and_the_model_is_left_as_it_was(call, error, match):
    model = dense_model()
    model.fit(X[:16], Y[:16], verbose=0)  # built, with optimizer state
    before = snapshot(model)
    with pytest.raises(error, match=match):
        call(model)
    assert_unchanged(model, before)


def test_a_fresh_model_is_not_built_by_a_refused_call():
    model = fk.Sequential([L.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(X, Y, batch_size=0, verbose=0)
    assert not model.built and model.opt_state is None


def test_a_two_output_model_given_one_target():
    inp = fk.Input((8,))
    model = fk.Model(inp, [L.Dense(1)(inp), L.Dense(1)(inp)])
    model.compile(optimizer="sgd", loss="mse")
    before = snapshot(model)
    with pytest.raises(ValueError, match="2 outputs"):
        model.fit(X, Y, verbose=0)
    assert_unchanged(model, before)


def test_nested_number_lists_are_arrays():
    model = dense_model()
    rows = X[:3].tolist()
    np.testing.assert_allclose(
        model.predict(rows, verbose=0), model.predict(X[:3], verbose=0), rtol=1e-6
    )


# -- the loss gate: no update with a non-finite loss is applied ---------------


def poisoned_batches(bad=1):
    """Four batches of 16 rows; batch `bad` holds a NaN feature."""
    for i in range(4):
        xb = X[i * 16 : (i + 1) * 16].copy()
        if i == bad:
            xb[0, 0] = np.nan
        yield xb, Y[i * 16 : (i + 1) * 16]


@pytest.mark.parametrize("execution", ["jit", "eager", "layerwise"])
def test_a_generator_batch_with_nan_is_skipped_and_named_once(execution):
    model = dense_model(execution)
    with pytest.warns(RuntimeWarning, match="the first was batch 1 of epoch 0") as got:
        model.fit(poisoned_batches(), verbose=0)
    assert len([w for w in got if "non-finite loss" in str(w.message)]) == 1
    assert finite(model)
    # The same as training on the three finite batches alone.
    reference = dense_model(execution)
    reference.fit(
        (b for i, b in enumerate(poisoned_batches()) if i != 1), verbose=0
    )
    for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("source", ["y", "sample_weight", "weights"])
def test_every_source_of_a_non_finite_loss_is_gated(source):
    def batches():
        for i in range(4):
            xb, yb = X[i * 16 : (i + 1) * 16], Y[i * 16 : (i + 1) * 16].copy()
            sw = np.ones(16, "float32")
            if i == 2 and source == "y":
                yb[3] = np.nan
            if i == 2 and source == "sample_weight":
                sw[5] = np.inf
            yield xb, yb, sw

    model = dense_model()
    if source == "weights":
        kernel, bias = model.get_weights()
        model.set_weights([kernel, np.full_like(bias, np.nan)])
        with pytest.warns(RuntimeWarning, match="4 step.*batch 0 of epoch 0"):
            model.fit(batches(), verbose=0)
        assert np.isnan(model.get_weights()[1]).all()  # nothing was applied
        np.testing.assert_array_equal(model.get_weights()[0], kernel)
        return
    with pytest.warns(RuntimeWarning, match="1 step.*batch 2 of epoch 0"):
        model.fit(batches(), epochs=2, verbose=0)
    assert finite(model)


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_the_gate_inside_k_step_blocks(steps_per_execution):
    model = fk.Sequential([fk.Input((8,)), L.Dense(1)], seed=0)
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=steps_per_execution)
    with pytest.warns(RuntimeWarning, match="batch 1 of epoch 0|batches 0-1"):
        model.fit(poisoned_batches(), verbose=0)
    assert finite(model)


@pytest.mark.parametrize("execution", ["jit", "eager", "layerwise"])
def test_train_on_batch_with_nan_inputs_changes_nothing(execution):
    model = dense_model(execution)
    model.train_on_batch(X[:4], Y[:4])
    before = [np.array(w) for w in model.get_weights()]
    with pytest.warns(RuntimeWarning, match="train_on_batch: the batch gave a non"):
        loss = model.train_on_batch(np.full((4, 8), np.nan, "float32"), Y[:4])
    assert np.isnan(loss)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # And a finite batch still trains.
    assert np.isfinite(model.train_on_batch(X[:4], Y[:4]))


def test_a_clean_fit_gives_no_warning():
    model = dense_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, Y, epochs=2, verbose=0)


# -- Embedding ids -------------------------------------------------------------


@pytest.mark.parametrize("bad", [50, 10, -1])
def test_embedding_ids_out_of_range_are_refused(bad):
    model = fk.Sequential(
        [fk.Input((3,), dtype="int32"), L.Embedding(10, 4), L.Flatten(), L.Dense(1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    ids = np.array([[1, 2, 3], [1, bad, 2]])
    before = snapshot(model)
    for call in (
        lambda: model.predict(ids, verbose=0),
        lambda: model.fit(ids, np.ones((2, 1)), verbose=0),
        lambda: model.evaluate(ids, np.ones((2, 1)), verbose=0),
        lambda: model.train_on_batch(ids, np.ones((2, 1))),
    ):
        with pytest.raises(ValueError, match=rf"\[0, 10\).*holds {bad} \(row 1\)"):
            call()
    assert_unchanged(model, before)
    model.fit(np.array([[0, 9, 5]]), np.ones((1, 1)), verbose=0)  # in range: fine


def test_embedding_ids_in_a_functional_model_with_two_inputs():
    ids_in, dense_in = fk.Input((2,), dtype="int32"), fk.Input((4,))
    h = L.Flatten()(L.Embedding(5, 2)(ids_in))
    model = fk.Model([dense_in, ids_in], L.Dense(1)(L.Concatenate()([h, dense_in])))
    with pytest.raises(ValueError, match="input_layer_1.*holds 5"):
        model.predict([np.ones((2, 4)), np.array([[0, 1], [5, 1]])], verbose=0)


# -- sizes before allocation ---------------------------------------------------


@pytest.mark.parametrize("units", [10**12, 10**9])
def test_a_layer_too_big_for_memory_is_refused_at_build(units):
    with pytest.raises(MemoryError, match=rf"{8 * units * 4 + units * 4:,} bytes"):
        fk.Sequential([fk.Input((8,)), L.Dense(units)])
    model = fk.Sequential([L.Dense(units)])  # built from the data
    with pytest.raises(MemoryError, match="kernel"):
        model.predict(np.ones((2, 8)), verbose=0)


def test_the_weight_budget_is_settable():
    fk.utils.set_weight_budget(1_000)
    try:
        with pytest.raises(MemoryError, match=r"360,000 bytes .* 1,000 bytes"):
            fk.Sequential([fk.Input((8,)), L.Dense(10_000)])
        fk.Sequential([fk.Input((8,)), L.Dense(10)])  # 360 bytes: fine
        with pytest.raises(ValueError, match="nbytes"):
            fk.utils.set_weight_budget(0)
    finally:
        fk.utils.set_weight_budget(None)
    assert fk.utils.weight_budget() > 10**8


# -- predict/evaluate from another thread during fit ---------------------------


def test_predict_and_evaluate_from_another_thread_during_fit():
    model = fk.Sequential(
        [fk.Input((8,)), L.Dense(16, activation="relu"), L.Dense(1)], seed=0
    )
    model.compile(optimizer="adam", loss="mse")
    x, y = data(n=256)
    model.fit(x, y, batch_size=8, verbose=0)
    errors, reads, done = [], [0], threading.Event()

    def reader():
        while not done.is_set():
            try:
                assert np.isfinite(model.predict(x[:16], verbose=0)).all()
                assert np.isfinite(model.evaluate(x[:16], y[:16], verbose=0))
                reads[0] += 1
            except Exception as e:  # noqa: BLE001 - collected and asserted
                errors.append(repr(e))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        model.fit(x, y, batch_size=8, epochs=15, verbose=0)
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert reads[0] >= 1
