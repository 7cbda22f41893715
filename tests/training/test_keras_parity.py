"""Behaviours Keras' own guides rely on: log names, weighted metrics, the optimizer
object, callback hooks, the validation split, aliases, initializers, verbosity."""

import math

import numpy as np
import pytest

import funkeras as fk

L = fk.layers


# -- per-output losses land on their own output's name -------------------------------


def _zeta_alpha_model():
    inp = fk.Input(shape=(3,))
    zeta = L.Dense(1, name="zeta")(inp)
    alpha = L.Dense(1, name="alpha")(inp)
    return fk.Model(inp, [zeta, alpha], seed=0)


@pytest.mark.parametrize("execution", ["jit", "eager", "layerwise"])
def test_per_output_losses_follow_output_names_not_alphabet(execution):
    model = _zeta_alpha_model()
    assert model.output_names == ["zeta", "alpha"]
    model.compile("sgd", loss=["mse", "mse"], execution=execution)
    x = np.ones((8, 3), np.float32)
    y_zeta = np.full((8, 1), 1000.0, np.float32)  # a loss near 1e6
    y_alpha = np.zeros((8, 1), np.float32)  # a loss near 1
    params0 = model.get_weights()

    # Each output's loss from the initial weights, by NumPy.
    kz, bz, ka, ba = (np.asarray(w) for w in params0)
    want_zeta = np.mean((x @ kz + bz - y_zeta) ** 2)
    want_alpha = np.mean((x @ ka + ba - y_alpha) ** 2)
    assert want_zeta > 1e5 and want_alpha < 1e2

    logs = model.train_on_batch(x, [y_zeta, y_alpha], return_dict=True)
    np.testing.assert_allclose(logs["zeta_loss"], want_zeta, rtol=1e-4)
    np.testing.assert_allclose(logs["alpha_loss"], want_alpha, rtol=1e-4)

    model.set_weights(params0)
    model.compile("sgd", loss=["mse", "mse"], execution=execution)
    history = model.fit(x, [y_zeta, y_alpha], batch_size=8, verbose=0)
    np.testing.assert_allclose(history.history["zeta_loss"][0], want_zeta, rtol=1e-4)
    np.testing.assert_allclose(history.history["alpha_loss"][0], want_alpha, rtol=1e-4)

    evaluated = model.evaluate(x, [y_zeta, y_alpha], verbose=0, return_dict=True)
    assert evaluated["zeta_loss"] > 1e3 * evaluated["alpha_loss"]


# -- weighted_metrics: sample and class weights reach them, and only them --------------


def _threshold_model():
    """sigmoid(x): predicts the positive class exactly where x > 0."""
    model = fk.Sequential(
        [fk.Input(shape=(1,)), L.Dense(1, activation="sigmoid")], seed=0
    )
    model.set_weights([np.ones((1, 1), np.float32), np.zeros((1,), np.float32)])
    return model


def _imbalanced():
    # 12 rows, 3 positives; the model calls 5 rows positive (2 right, 3 wrong).
    x = np.array([3, 2, -1, 1, 1, 1, -2, -3, -1, -2, -4, -1], np.float32)[:, None]
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], np.float32)[:, None]
    return x, y


def _precision(pred, y, w):
    tp = np.sum(w * ((pred == 1) & (y == 1)))
    fp = np.sum(w * ((pred == 1) & (y == 0)))
    return tp / (tp + fp)


def test_weighted_metrics_get_sample_weights_and_metrics_do_not():
    x, y = _imbalanced()
    pred = (x[:, 0] > 0).astype(int)
    sw = np.array([5, 5, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1], np.float32)
    model = _threshold_model()
    model.compile(
        "sgd", loss="binary_crossentropy", metrics=["precision", "mae"],
        weighted_metrics=["precision"],
    )
    logs = model.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
    assert list(logs) == ["loss", "precision", "mae", "weighted_precision"]
    ones = np.ones_like(sw)
    np.testing.assert_allclose(logs["precision"], _precision(pred, y[:, 0], ones))
    np.testing.assert_allclose(
        logs["weighted_precision"], _precision(pred, y[:, 0], sw), rtol=1e-6
    )
    assert abs(logs["precision"] - logs["weighted_precision"]) > 0.3
    p = 1 / (1 + np.exp(-x[:, 0]))
    np.testing.assert_allclose(logs["mae"], np.mean(np.abs(p - y[:, 0])), rtol=1e-6)


@pytest.mark.parametrize("execution", ["jit", "layerwise"])
def test_class_weight_reaches_weighted_metrics_only_during_fit(execution):
    x, y = _imbalanced()
    pred = (x[:, 0] > 0).astype(int)
    model = _threshold_model()
    model.compile(
        fk.optimizers.SGD(0.0), loss="binary_crossentropy", metrics=["precision"],
        weighted_metrics=["precision"], execution=execution,
    )
    history = model.fit(
        x, y, class_weight={0: 1.0, 1: 5.0}, batch_size=12, verbose=0
    ).history
    w = np.where(y[:, 0] == 1, 5.0, 1.0)
    np.testing.assert_allclose(
        history["precision"][0], _precision(pred, y[:, 0], np.ones(12))
    )
    np.testing.assert_allclose(
        history["weighted_precision"][0], _precision(pred, y[:, 0], w), rtol=1e-6
    )


def test_weighted_metric_names_match_keras():
    x, y = _imbalanced()
    model = _threshold_model()
    model.compile("sgd", loss="mse", metrics=["mae"], weighted_metrics=["mse"])
    assert list(model.evaluate(x, y, verbose=0, return_dict=True)) == [
        "loss", "mae", "mse",
    ]
    inp = fk.Input(shape=(3,))
    model = fk.Model(inp, [L.Dense(1, name="zeta")(inp), L.Dense(1, name="alpha")(inp)])
    model.compile(
        "sgd", loss=["mse", "mse"], metrics=[["mae"], ["mae"]],
        weighted_metrics=[["mae"], ["mse"]],
    )
    xs = np.ones((4, 3), np.float32)
    ys = [np.ones((4, 1), np.float32)] * 2
    logs = model.evaluate(xs, ys, verbose=0, return_dict=True)
    # Keras 3 gives the same set of names for this compile.
    assert sorted(logs) == sorted([
        "loss", "zeta_loss", "alpha_loss", "zeta_mae", "alpha_mae",
        "zeta_weighted_mae", "alpha_mse",
    ])


def test_two_metrics_with_one_log_name_are_refused():
    model = _threshold_model()
    model.compile("sgd", loss="mse", metrics=["mae", "mae"])
    x, y = _imbalanced()
    with pytest.raises(ValueError, match=r"share the log name.*mae"):
        model.evaluate(x, y, verbose=0)


# -- model.optimizer and model.metrics_names -------------------------------------------


def _sgd_step(model, lr, x, y):
    """One plain SGD step on mse for a Dense(1), by NumPy."""
    k, b = (np.asarray(w, np.float64) for w in model.get_weights())
    err = x @ k + b - y
    grad_k = 2 * x.T @ err / err.size
    grad_b = 2 * err.sum(0) / err.size
    return [k - lr * grad_k, b - lr * grad_b]


def test_model_optimizer_learning_rate_reads_and_sets_without_recompile():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2)).astype(np.float32)
    y = rng.normal(size=(8, 1)).astype(np.float32)
    model = fk.Sequential([fk.Input(shape=(2,)), L.Dense(1)], seed=0)
    assert model.optimizer is None
    model.compile(fk.optimizers.SGD(0.1), loss="mse")
    assert isinstance(model.optimizer, fk.optimizers.Optimizer)
    assert model.optimizer is model.optimizer
    assert model.optimizer.learning_rate == pytest.approx(0.1)

    # Set before the first step (no optimizer state yet): the first step uses it.
    model.optimizer.learning_rate = 0.05
    assert model.optimizer.learning_rate == pytest.approx(0.05)
    want = _sgd_step(model, 0.05, x, y)
    model.train_on_batch(x, y)
    for got, w in zip(model.get_weights(), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    assert isinstance(model.optimizer.learning_rate, float)

    # Set between steps: the next step uses it, with the same compiled step.
    model.fit(x, y, batch_size=8, verbose=0)
    compiles = model.compile_stats()
    model.optimizer.learning_rate = 0.3
    want = _sgd_step(model, 0.3, x, y)
    model.fit(x, y, batch_size=8, verbose=0, shuffle=False)
    for got, w in zip(model.get_weights(), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    assert model.optimizer.learning_rate == pytest.approx(0.3)
    assert model.compile_stats()["train_step"]["compiles"] == (
        compiles["train_step"]["compiles"]
    )

    with pytest.raises(ValueError, match="finite number >= 0"):
        model.optimizer.learning_rate = -1.0


def test_optimizer_by_name_and_unbound_learning_rate():
    model = fk.Sequential([fk.Input(shape=(2,)), L.Dense(1)], seed=0)
    model.compile("adam", loss="mse")
    assert model.optimizer.class_name == "Adam"
    assert model.optimizer.learning_rate == pytest.approx(0.001)
    free = fk.optimizers.Adam(0.01)
    assert free.learning_rate == 0.01
    with pytest.raises(AttributeError, match="compiled model's optimizer"):
        free.learning_rate = 0.1


def test_metrics_names_as_keras():
    model = fk.Sequential([fk.Input(shape=(2,)), L.Dense(1)], seed=0)
    assert model.metrics_names == []
    model.compile("sgd", loss="mse", metrics=["mae"], weighted_metrics=["mse"])
    assert model.metrics_names == ["loss", "mae", "mse"]
    x = np.ones((4, 2), np.float32)
    model.fit(x, np.ones((4, 1), np.float32), verbose=0)
    assert model.metrics_names == ["loss", "mae", "mse"]
    assert len(model.evaluate(x, np.ones((4, 1)), verbose=0)) == 3


# -- test and predict hooks fire as in Keras -----------------------------------------

_HOOKS = [
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
    "on_predict_batch_begin", "on_predict_batch_end",
]


def _recorder(base):
    """A callback class over `base` that records (hook, batch/epoch) in order."""

    def make(hook):
        def method(self, *args, **kwargs):
            self.events.append((hook, *[a for a in args if isinstance(a, int)]))
            if hook == "on_test_end":
                self.test_end_logs.append(sorted(args[-1] if args else kwargs["logs"]))

        return method

    attrs = {h: make(h) for h in _HOOKS}

    def init(self):
        base.__init__(self)
        self.events, self.test_end_logs = [], []

    attrs["__init__"] = init
    return type("Recorder", (base,), attrs)


_KERAS_FIT_EVENTS = [
    ("on_train_begin",), ("on_epoch_begin", 0),
    ("on_train_batch_begin", 0), ("on_train_batch_end", 0),
    ("on_train_batch_begin", 1), ("on_train_batch_end", 1),
    ("on_test_begin",), ("on_test_batch_begin", 0), ("on_test_batch_end", 0),
    ("on_test_end",), ("on_epoch_end", 0), ("on_train_end",),
]
_KERAS_PREDICT_EVENTS = [
    ("on_predict_begin",),
    ("on_predict_batch_begin", 0), ("on_predict_batch_end", 0),
    ("on_predict_batch_begin", 1), ("on_predict_batch_end", 1),
    ("on_predict_batch_begin", 2), ("on_predict_batch_end", 2),
    ("on_predict_end",),
]


def _run_hooks(lib, recorder):
    model = lib.Sequential([lib.Input(shape=(2,)), lib.layers.Dense(1)])
    model.compile("sgd", "mse", metrics=["mae"])
    x, y = np.ones((10, 2), np.float32), np.ones((10, 1), np.float32)
    fit_cb, predict_cb = recorder(), recorder()
    model.fit(x, y, batch_size=4, validation_split=0.3, verbose=0, callbacks=[fit_cb])
    model.predict(x, batch_size=4, verbose=0, callbacks=[predict_cb])
    return fit_cb, predict_cb


def test_fit_validation_and_predict_fire_keras_hooks_in_keras_order():
    fit_cb, predict_cb = _run_hooks(fk, _recorder(fk.callbacks.Callback))
    assert fit_cb.events == _KERAS_FIT_EVENTS
    assert fit_cb.test_end_logs == [["loss", "mae"]]  # not val_-prefixed, as Keras
    assert predict_cb.events == _KERAS_PREDICT_EVENTS


def test_hook_order_is_keras_own(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    fit_cb, predict_cb = _run_hooks(keras, _recorder(keras.callbacks.Callback))
    assert fit_cb.events == _KERAS_FIT_EVENTS
    assert fit_cb.test_end_logs == [["loss", "mae"]]
    assert predict_cb.events == _KERAS_PREDICT_EVENTS


def test_validation_without_test_hooks_keeps_working():
    # No callback overrides a test hook: validation takes the hook-free path.
    model = fk.Sequential([fk.Input(shape=(2,)), L.Dense(1)], seed=0)
    model.compile("sgd", "mse")
    x, y = np.ones((10, 2), np.float32), np.ones((10, 1), np.float32)
    history = model.fit(x, y, validation_split=0.3, verbose=0, epochs=2)
    assert len(history.history["val_loss"]) == 2


# -- validation_split cuts where Keras cuts --------------------------------------------


@pytest.mark.parametrize(
    ("n", "split"), [(3601, 0.2), (10, 0.3), (7, 0.5), (1000, 0.1), (33, 0.25)]
)
def test_validation_split_keeps_keras_number_of_training_rows(n, split):
    from funkeras.training.data import split_validation

    x = np.arange(n, dtype=np.float32)[:, None]
    (tx, _, _), (vx, _, _) = split_validation(x, x, None, split)
    keras_cut = int(math.floor(n * (1.0 - split)))  # Keras' train_validation_split
    assert len(tx) == keras_cut and len(vx) == n - keras_cut
    np.testing.assert_array_equal(vx[:, 0], np.arange(keras_cut, n))


def test_validation_split_steps_for_3601_rows_at_batch_32():
    # Keras: 2880 training rows -> 90 steps (the split used to keep 2881 -> 91).
    model = fk.Sequential([fk.Input(shape=(1,)), L.Dense(1)], seed=0)
    model.compile("sgd", "mse")
    seen = []

    class Steps(fk.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.params["steps"])

    x = np.zeros((3601, 1), np.float32)
    model.fit(x, x, batch_size=32, validation_split=0.2, verbose=0, callbacks=[Steps()])
    assert seen == [90]


def test_validation_split_that_leaves_no_rows_is_refused():
    from funkeras.training.data import split_validation

    x = np.zeros((1, 1), np.float32)
    with pytest.raises(ValueError, match="no training rows out of 1"):
        split_validation(x, x, None, 0.5)


# -- Keras' lowercase regularizers and functional merges -----------------------------


def test_lowercase_regularizer_aliases_are_keras_classes():
    r = fk.regularizers
    assert r.l1 is r.L1 and r.l2 is r.L2 and r.l1_l2 is r.L1L2
    assert r.orthogonal_regularizer is r.OrthogonalRegularizer
    x = np.array([[1.0, -2.0], [3.0, 0.5]], np.float32)
    np.testing.assert_allclose(float(r.l2(1e-2)(x)), 1e-2 * np.sum(x**2), rtol=1e-6)
    np.testing.assert_allclose(
        float(r.l1_l2(l1=0.1, l2=0.2)(x)),
        0.1 * np.sum(np.abs(x)) + 0.2 * np.sum(x**2),
        rtol=1e-6,
    )
    layer = L.Dense(2, kernel_regularizer=r.l2(1e-3))
    assert layer.kernel_regularizer == r.L2(1e-3)


def _orthogonal_numpy(x, factor, mode):
    v = x if mode == "rows" else x.T
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    g = v @ v.T
    n = g.shape[0]
    return factor * 0.5 * np.sum(np.abs(g * (1 - np.eye(n)))) / (n * (n - 1) / 2)


@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_regularizer_matches_formula_and_keras(mode, monkeypatch):
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    reg = fk.regularizers.orthogonal_regularizer(factor=0.3, mode=mode)
    got = float(reg(x))
    np.testing.assert_allclose(got, _orthogonal_numpy(x, 0.3, mode), rtol=1e-5)
    assert fk.regularizers.get(fk.regularizers.serialize(reg)) == reg
    with pytest.raises(ValueError, match="rank 2"):
        reg(np.ones((2, 2, 2), np.float32))
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    keras_reg = keras.regularizers.OrthogonalRegularizer(factor=0.3, mode=mode)
    want = float(keras_reg(keras.ops.convert_to_tensor(x)))  # its tensor path
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize(
    ("fn", "cls", "ref"),
    [
        ("add", "Add", lambda a, b: a + b),
        ("subtract", "Subtract", lambda a, b: a - b),
        ("multiply", "Multiply", lambda a, b: a * b),
        ("average", "Average", lambda a, b: (a + b) / 2),
        ("maximum", "Maximum", np.maximum),
        ("minimum", "Minimum", np.minimum),
        ("concatenate", "Concatenate", lambda a, b: np.concatenate([a, b], -1)),
    ],
)
def test_functional_merge_forms_build_and_call_the_layer(fn, cls, ref):
    a, b = fk.Input(shape=(3,)), fk.Input(shape=(3,))
    out = getattr(fk.layers, fn)([a, b], name="merged")
    model = fk.Model([a, b], out)
    assert type(model.get_layer("merged")).__name__ == cls
    rng = np.random.default_rng(1)
    xa, xb = (rng.normal(size=(5, 3)).astype(np.float32) for _ in range(2))
    np.testing.assert_allclose(
        model.predict([xa, xb], verbose=0), ref(xa, xb), rtol=1e-6
    )


def test_functional_concatenate_takes_axis():
    a, b = fk.Input(shape=(2, 3)), fk.Input(shape=(4, 3))
    assert fk.layers.concatenate([a, b], axis=1).shape == (None, 6, 3)


# -- initializers: seed= and Keras' init(shape, dtype) --------------------------------

_SEEDED = [
    ("RandomUniform", dict(minval=-1.0, maxval=1.0)),
    ("RandomNormal", dict(mean=0.5, stddev=2.0)),
    ("TruncatedNormal", dict(stddev=1.0)),
    ("VarianceScaling", dict(scale=2.0, mode="fan_out", distribution="uniform")),
    ("GlorotUniform", {}),
    ("GlorotNormal", {}),
    ("HeUniform", {}),
    ("HeNormal", {}),
    ("LecunUniform", {}),
    ("LecunNormal", {}),
    ("Orthogonal", dict(gain=1.5)),
]


@pytest.mark.parametrize(("name", "kwargs"), _SEEDED)
def test_seeded_initializer_called_as_keras_repeats_and_equals_keras(
    name, kwargs, monkeypatch
):
    init = getattr(fk.initializers, name)(**kwargs, seed=3)
    a = np.asarray(init((40, 30)))
    assert a.shape == (40, 30) and a.dtype == np.float32
    np.testing.assert_array_equal(a, np.asarray(init((40, 30))))
    assert init.get_config()["seed"] == 3
    assert fk.initializers.get(fk.initializers.serialize(init)) == init
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    want = np.asarray(getattr(keras.initializers, name)(**kwargs, seed=3)((40, 30)))
    np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-7)


def test_keras_call_statistics_dtype_and_unseeded_behaviour():
    init = fk.initializers.HeNormal()
    a = np.asarray(init((400, 50)))
    # Truncated normal with std sqrt(2 / fan_in): its samples' std is that value.
    np.testing.assert_allclose(a.std(), np.sqrt(2 / 400), rtol=0.03)
    assert abs(a.mean()) < 0.003 and np.abs(a).max() <= 2 * np.sqrt(2 / 400) / 0.8796
    # Unseeded, as Keras: one instance repeats itself, two instances differ.
    np.testing.assert_array_equal(a, np.asarray(init((400, 50))))
    assert not np.array_equal(a, np.asarray(fk.initializers.HeNormal()((400, 50))))
    assert init((2, 3), dtype="float16").dtype == np.float16
    assert fk.initializers.Zeros()((2,)).tolist() == [0.0, 0.0]
    assert fk.initializers.Constant(0.5)(shape=(2,), dtype=None).tolist() == [0.5] * 2


def test_key_convention_still_drives_layers_and_ignores_seed():
    import jax

    init = fk.initializers.GlorotUniform(seed=3)
    key = jax.random.key(5)
    np.testing.assert_array_equal(
        init(key, (4, 3)), fk.initializers.GlorotUniform()(key, (4, 3))
    )
    raw = jax.random.key_data(key)  # raw uint32[2] key data works too
    assert init(raw, (4, 3)).shape == (4, 3)
    # Inside a model, the model's seed decides: two seeded layers still differ.
    model = fk.Sequential(
        [fk.Input(shape=(4,)), L.Dense(4, kernel_initializer=init),
         L.Dense(4, kernel_initializer=init)],
        seed=0,
    )
    k1, _, k2, _ = model.get_weights()
    assert not np.array_equal(k1, k2)


def test_initializer_seed_is_checked():
    with pytest.raises(ValueError, match="seed"):
        fk.initializers.RandomNormal(seed=-1)
    with pytest.raises(TypeError, match="no shape was given"):
        fk.initializers.RandomNormal()()


# -- evaluate and predict show progress by default, as Keras ------------------------


def test_evaluate_and_predict_show_progress_by_default(capsys):
    model = fk.Sequential([fk.Input(shape=(2,)), L.Dense(1)], seed=0)
    model.compile("sgd", "mse", metrics=["mae"])
    x, y = np.ones((70, 2), np.float32), np.zeros((70, 1), np.float32)
    capsys.readouterr()

    loss, mae = model.evaluate(x, y)
    out = capsys.readouterr()
    shown = out.out + out.err
    assert "3/3" in shown
    assert f"loss: {loss:.4f}" in shown and f"mae: {mae:.4f}" in shown

    model.predict(x)
    out = capsys.readouterr()
    assert "3/3" in out.out + out.err

    model.evaluate(x, y, verbose=2)
    line = capsys.readouterr().out
    assert line.startswith("3/3 - ") and f"loss: {loss:.4f}" in line

    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""

    with pytest.raises(ValueError, match="verbose"):
        model.evaluate(x, y, verbose="loud")


def test_progress_does_not_show_during_fit_validation(capsys):
    model = fk.Sequential([fk.Input(shape=(2,)), L.Dense(1)], seed=0)
    model.compile("sgd", "mse")
    x, y = np.ones((10, 2), np.float32), np.zeros((10, 1), np.float32)
    model.fit(x, y, validation_split=0.3, verbose=0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


# -- TensorBoard takes Keras' embeddings arguments (and says it writes none) ---------


def test_tensorboard_accepts_embeddings_arguments_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="no embeddings are written"):
        tb = fk.callbacks.TensorBoard(
            tmp_path, embeddings_freq=1, embeddings_metadata={"embedding": "m.tsv"}
        )
    assert tb.embeddings_freq == 1
    assert tb.embeddings_metadata == {"embedding": "m.tsv"}
    quiet = fk.callbacks.TensorBoard(tmp_path, embeddings_freq=0)  # no warning
    assert quiet.embeddings_freq == 0
    with pytest.raises(ValueError, match="embeddings_freq"):
        fk.callbacks.TensorBoard(tmp_path, embeddings_freq=-1)
    with pytest.raises(TypeError, match="embeddings_metadata"):
        fk.callbacks.TensorBoard(tmp_path, embeddings_metadata=3)


def test_tensorboard_with_embeddings_freq_still_writes_scalars(tmp_path):
    pytest.importorskip("tensorboardX")
    model = fk.Sequential([fk.Input(shape=(2,)), L.Dense(1)], seed=0)
    model.compile("sgd", "mse")
    with pytest.warns(UserWarning, match="no embeddings"):
        tb = fk.callbacks.TensorBoard(tmp_path, embeddings_freq=1)
    model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0, callbacks=[tb])
    written = [p.name for p in (tmp_path / "train").iterdir()]
    assert written and all(name.startswith("events.") for name in written)


# -- test_step and predict_step overrides are honoured ---------------------------------


class _Custom(fk.Model):
    def predict_step(self, params, state, x):
        return super().predict_step(params, state, x) * 2.0 + 1.0

    def test_step(self, params, state, metrics, batch):
        import jax.numpy as jnp

        metrics, logs = super().test_step(params, state, metrics, batch)
        return metrics, {**logs, "twice_loss": 2.0 * logs["loss"], "one": jnp.ones(())}


def _custom_model(cls=_Custom):
    inp = fk.Input(shape=(2,))
    return cls(inp, L.Dense(1)(inp), seed=0)


@pytest.mark.parametrize(
    ("execution", "spe"), [("jit", 1), ("jit", 2), ("eager", 1), ("layerwise", 1)]
)
def test_test_step_and_predict_step_overrides_are_used(execution, spe):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 2)).astype(np.float32)
    y = rng.normal(size=(7, 1)).astype(np.float32)
    model = _custom_model()
    k, b = (np.asarray(w) for w in model.get_weights())
    plain = x @ k + b
    np.testing.assert_allclose(model.predict(x, verbose=0), plain * 2 + 1, rtol=1e-5)

    model.compile("sgd", "mse", execution=execution, steps_per_execution=spe)
    np.testing.assert_allclose(
        model.predict(x, batch_size=3, verbose=0), plain * 2 + 1, rtol=1e-5
    )
    np.testing.assert_allclose(
        model.predict_on_batch(x[:2]), plain[:2] * 2 + 1, rtol=1e-5
    )
    logs = model.evaluate(x, y, batch_size=3, verbose=0, return_dict=True)
    want = np.mean((plain - y) ** 2)
    np.testing.assert_allclose(logs["loss"], want, rtol=1e-5)
    np.testing.assert_allclose(logs["twice_loss"], 2 * want, rtol=1e-5)
    assert logs["one"] == 1.0
    assert model.test_on_batch(x, y, return_dict=True)["one"] == 1.0
    history = model.fit(x, y, validation_split=0.3, verbose=0).history
    assert history["val_one"] == [1.0]


def test_keras_signature_overrides_get_a_clear_error():
    # Keras' JAX signatures `train_step/test_step/predict_step(self, state,
    # data)` are honoured (tests/models/test_keras_jax_api.py); a one-argument
    # `predict_step(self, data)` (Keras' TensorFlow/torch form) is refused.
    class KerasPredict(fk.Model):
        def predict_step(self, data):
            return data

    with pytest.raises(TypeError, match=r"predict_step: an override"):
        _custom_model(KerasPredict).predict(np.ones((2, 2)), verbose=0)
