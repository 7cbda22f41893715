"""fit / evaluate / predict: numerics against hand-written loops, modes, masks, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funkeras as fk

L = fk.layers


def linear_model(seed=0):
    return fk.Sequential([fk.Input(shape=(3,)), L.Dense(1)], seed=seed)


def data(n=10, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)
    return x, y


@pytest.mark.parametrize("execution", ["jit", "eager"])
@pytest.mark.parametrize("spe", [1, 2])
def test_fit_equals_hand_written_sgd_with_short_last_batch(execution, spe):
    x, y = data(n=10)
    model = linear_model()
    w0 = [np.asarray(w) for w in model.get_weights()]
    model.compile(
        optimizer=optax.sgd(0.1),
        loss="mse",
        execution=execution,
        steps_per_execution=spe,
    )
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)

    kernel, bias = w0
    for _ in range(2):
        for start in range(0, 10, 4):
            xb, yb = x[start : start + 4], y[start : start + 4]
            err = xb @ kernel + bias - yb  # (b, 1)
            grad_k = 2 * xb.T @ err / len(xb)  # mean over real rows only
            grad_b = 2 * err.sum(0) / len(xb)
            kernel = kernel - 0.1 * grad_k
            bias = bias - 0.1 * grad_b
    got_k, got_b = model.get_weights()
    np.testing.assert_allclose(got_k, kernel, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_b, bias, rtol=1e-5, atol=1e-6)


def test_history_and_epoch_loss_is_mean_over_samples():
    x, y = data(n=10)
    model = linear_model()
    model.compile(optimizer=optax.sgd(0.0), loss="mse", metrics=["mae"])
    h = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(
        h.history["loss"][0], np.mean((pred - y) ** 2), rtol=1e-5
    )
    np.testing.assert_allclose(
        h.history["mae"][0], np.mean(np.abs(pred - y)), rtol=1e-5
    )


def small_net(seed=0):
    inp = fk.Input(shape=(6,))
    h = L.Dense(8, activation="relu")(inp)
    h = L.BatchNormalization()(h)
    a = L.Dropout(0.3)(h)
    b = L.Dense(8, activation="tanh")(h)
    out = L.Dense(3)(L.Add()([a, b]))
    return fk.Model(inp, out, seed=seed)


def cls_data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=(n,)).astype(np.int32)
    return x, y


def test_jit_and_eager_agree_step_by_step_with_dropout_and_batchnorm():
    x, y = cls_data()
    results = {}
    for execution in ("jit", "eager"):
        model = small_net()
        model.compile(
            optimizer="adam",
            loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            execution=execution,
        )
        trace = []
        for _ in range(3):
            model.fit(x, y, batch_size=16, epochs=1, verbose=0, seed=3)
            trace.append([np.asarray(w) for w in model.get_weights()])
        results[execution] = trace
    for a, b in zip(results["jit"], results["eager"], strict=True):
        for wa, wb in zip(a, b, strict=True):
            np.testing.assert_allclose(wa, wb, rtol=2e-5, atol=2e-6)


def test_same_seed_same_everything():
    x, y = cls_data()
    runs = []
    for _ in range(2):
        model = small_net()
        model.compile(
            optimizer="adam",
            loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        h = model.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=7)
        runs.append((h.history["loss"], model.get_weights()))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_recompile_second_epoch_second_fit_and_lr_change():
    x, y = data(n=10)
    model = linear_model()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert model.compile_stats()["train_step"]["compiles"] == 1
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, *a, **k: (
            compiles.append(name) if "backend_compile" in name else None
        )
    )
    try:
        model.opt_state = fk.optimizers.set_learning_rate(model.opt_state, 0.5)
        model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    finally:
        jax.monitoring.clear_event_listeners()
    assert model.compile_stats()["train_step"]["compiles"] == 1
    assert compiles == []
    assert fk.optimizers.get_learning_rate(model.opt_state) == pytest.approx(0.5)


def test_repeated_fit_continues_epoch_count():
    x, y = data()
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse")
    h1 = model.fit(x, y, epochs=2, verbose=0)
    h2 = model.fit(x, y, epochs=2, verbose=0)
    assert h1.epoch == [0, 1] and h2.epoch == [2, 3]


def test_steps_per_execution_gives_the_same_weights_and_logs():
    x, y = cls_data(n=37)
    weights, histories = [], []
    for k in (1, 4):
        model = small_net()
        model.compile(
            optimizer="sgd",
            loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            steps_per_execution=k,
        )
        h = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        weights.append(model.get_weights())
        histories.append(h.history)
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # A fused block reads the metric results once, after its last step: the
    # epoch logs are those of the step-by-step run.
    assert histories[0].keys() == histories[1].keys() == {"loss", "accuracy"}
    for name in histories[0]:
        np.testing.assert_allclose(histories[0][name], histories[1][name], rtol=1e-5)


def test_epoch_order_encodes_rows_and_mask_in_one_vector():
    from funkeras.training.data import ArrayData
    from funkeras.training.loop import _slice_order

    x = np.arange(10, dtype=np.float32)[:, None]
    data = ArrayData(x, x, None, batch_size=4)
    order = data.order(seed=3, epoch=1, shuffle=True, steps=2, block=2)
    # 3 batches cover the 10 rows, padded to whole blocks of 2: 4 batches.
    assert order.shape == (16,) and order.dtype == np.int32
    rows = np.where(order >= 0, order, -1 - order)
    assert sorted(rows[:10].tolist()) == list(range(10))  # a permutation
    np.testing.assert_array_equal(rows[10:], rows[: 16 - 10])  # padding repeats
    for i in range(4):
        got_rows, got_mask = jax.jit(_slice_order, static_argnums=2)(
            jnp.asarray(order), jnp.int32(i), 4
        )
        np.testing.assert_array_equal(got_rows, rows[4 * i : 4 * i + 4])
        # Only the first `steps=2` batches are real.
        np.testing.assert_array_equal(got_mask, np.full(4, i < 2))


def test_model_knows_whether_it_needs_a_key_or_a_penalty():
    plain = fk.Sequential([fk.Input(shape=(3,)), L.Dense(4), L.Dense(1)])
    assert not plain.uses_key and not plain.has_penalty()
    noisy = fk.Sequential([fk.Input(shape=(3,)), L.Dense(4), L.Dropout(0.5)])
    assert noisy.uses_key
    reg = fk.Sequential([fk.Input(shape=(3,)), L.Dense(1, kernel_regularizer="l2")])
    assert reg.has_penalty() and not reg.uses_key
    inp = fk.Input(shape=(3,))
    outer = fk.Model(inp, L.Dense(1)(noisy(inp)))
    assert outer.uses_key and not outer.has_penalty()
    outer_reg = fk.Model(inp, reg(inp))
    assert outer_reg.has_penalty()

    class Penalized(fk.Sequential):
        def penalty(self, params):
            return 0.1 * jnp.sum(params["dense_9"]["kernel"] ** 2)

    custom = Penalized([fk.Input(shape=(3,)), L.Dense(1, name="dense_9")])
    assert custom.has_penalty()
    # Training without a key or a penalty runs (and still learns).
    x, y = data(n=32)
    plain.compile(optimizer=optax.sgd(0.1), loss="mse", execution="eager")
    h = plain.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_custom_penalty_override_is_trained_against():
    class Penalized(fk.Sequential):
        def penalty(self, params):
            return 100.0 * jnp.sum(params["d"]["kernel"] ** 2)

    x, y = data(n=32)
    m = Penalized([fk.Input(shape=(3,)), L.Dense(1, name="d")], seed=0)
    m.compile(optimizer=optax.sgd(0.001), loss="mse")
    h = m.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    kernel = np.asarray(m.get_weights()[0])
    # The logged loss holds the penalty; the update shrinks the kernel toward 0.
    assert h.history["loss"][0] > 100.0 * float(np.sum(kernel**2))


def test_generator_input_with_short_final_batch_matches_arrays():
    x, y = data(n=10)

    def gen():
        for i in range(0, 10, 4):
            yield x[i : i + 4], y[i : i + 4]

    a, b = linear_model(), linear_model()
    for m in (a, b):
        m.compile(optimizer=optax.sgd(0.1), loss="mse")
    a.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    b.fit(gen(), epochs=1, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)
    assert b.compile_stats()["train_step_host"]["compiles"] == 1


def test_generator_inconsistent_shapes_refused():
    def gen():
        yield np.ones((4, 3), np.float32), np.ones((4, 1), np.float32)
        yield np.ones((4, 2), np.float32), np.ones((4, 1), np.float32)

    model = linear_model()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="feature shapes"):
        model.fit(gen(), verbose=0)


def test_evaluate_conventions_and_multi_output_names():
    a = fk.Input(shape=(3,))
    h = L.Dense(4)(a)
    model = fk.Model(a, [L.Dense(1, name="reg")(h), L.Dense(2, name="cls")(h)])
    model.compile(
        optimizer="sgd",
        loss=["mse", fk.losses.SparseCategoricalCrossentropy(from_logits=True)],
        loss_weights=[1.0, 0.5],
        metrics=[["mae"], ["accuracy"]],
    )
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    y1 = np.zeros((8, 1), np.float32)
    y2 = np.zeros((8,), np.int32)
    logs = model.evaluate(x, [y1, y2], return_dict=True, verbose=0)
    assert list(logs) == ["loss", "reg_loss", "cls_loss", "reg_mae", "cls_accuracy"]
    np.testing.assert_allclose(
        logs["loss"], logs["reg_loss"] + 0.5 * logs["cls_loss"], rtol=1e-5
    )
    as_list = model.evaluate(x, [y1, y2], verbose=0)
    assert as_list == pytest.approx(list(logs.values()))
    single = linear_model()
    single.compile(optimizer="sgd", loss="mse")
    assert isinstance(single.evaluate(*data(), verbose=0), float)


def test_predict_numpy_and_batching_independent():
    x, _ = data(n=11)
    model = linear_model()
    full = model.predict(x, batch_size=32, verbose=0)
    small = model.predict(x, batch_size=3, verbose=0)
    assert isinstance(full, np.ndarray) and full.shape == (11, 1)
    np.testing.assert_allclose(full, small, rtol=1e-6)
    k, b = model.get_weights()
    np.testing.assert_allclose(full, x @ k + b, rtol=1e-5)


def test_train_and_test_on_batch():
    x, y = data(n=8)
    model = linear_model()
    model.compile(optimizer=optax.sgd(0.1), loss="mse", metrics=["mae"])
    before = model.test_on_batch(x, y)
    model.train_on_batch(x, y)
    after = model.test_on_batch(x, y)
    assert after[0] < before[0]
    np.testing.assert_allclose(
        model.predict_on_batch(x), model.predict(x, verbose=0), rtol=1e-6
    )


def test_sample_and_class_weights():
    x, y = cls_data(n=16)
    model = small_net()
    model.compile(
        optimizer="sgd", loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    w = np.where(y == 0, 2.0, 1.0).astype(np.float32)
    a = model.evaluate(x, y, sample_weight=w, verbose=0)
    logits = model.predict(x, verbose=0)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per = -logp[np.arange(16), y]
    np.testing.assert_allclose(a, np.sum(per * w) / 16, rtol=1e-5)
    m1, m2 = small_net(), small_net()
    for m in (m1, m2):
        m.compile(
            optimizer="sgd",
            loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    m1.fit(
        x, y, class_weight={0: 2.0, 1: 1.0, 2: 1.0}, epochs=1, verbose=0, shuffle=False
    )
    m2.fit(x, y, sample_weight=w, epochs=1, verbose=0, shuffle=False)
    for wa, wb in zip(m1.get_weights(), m2.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)


def test_frozen_layer_gets_no_update_and_frozen_bn_uses_moving_stats():
    model = fk.Sequential(
        [fk.Input(shape=(4,)), L.Dense(4), L.BatchNormalization(), L.Dense(1)]
    )
    model.layers[0].trainable = False
    model.layers[1].trainable = False
    model.compile(optimizer="adam", loss="mse")
    before = [np.asarray(w) for w in model.get_weights()]
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    model.fit(x, x[:, :1], epochs=2, verbose=0)
    after = model.get_weights()
    for i in range(6):  # dense kernel, bias, gamma, beta, moving mean, moving var
        np.testing.assert_array_equal(before[i], after[i])
    assert not np.array_equal(before[6], after[6])
    assert len(model.trainable_weights) == 2
    assert len(model.non_trainable_weights) == 6


def test_model_params_usable_after_fit_and_fit_does_not_donate_model_arrays():
    x, y = data()
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse")
    held = model.params
    model.fit(x, y, epochs=1, verbose=0)
    np.asarray(held["dense"]["kernel"])  # still alive: fit copied before donating
    np.asarray(model.params["dense"]["kernel"])


def test_uint8_images_and_float64_cast():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(8, 4, 4, 1)).astype(np.uint8)
    y = rng.integers(0, 2, size=(8,)).astype(np.int64)
    model = fk.Sequential([L.Flatten(), L.Dense(2)])
    model.compile(
        optimizer="sgd", loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_allclose(
        model.predict(x, verbose=0),
        model.predict(x.astype(np.float64), verbose=0),
        rtol=1e-6,
    )


class ScaledLoss(fk.Model):
    def compute_loss(self, x, y, y_pred, sample_weight=None):
        err = (y_pred - y) ** 2
        return 3.0 * jnp.sum(err[:, 0] * sample_weight) / jnp.sum(sample_weight)


def test_compute_loss_override():
    x, y = data(n=8)
    inp = fk.Input(shape=(3,))
    model = ScaledLoss(inp, L.Dense(1)(inp))
    model.compile(optimizer="sgd", loss="mse")
    pred = model.predict(x, verbose=0)
    got = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(got, 3.0 * np.mean((pred - y) ** 2), rtol=1e-5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, x, y: m.fit(x, y[:5], verbose=0), "different numbers of rows"),
        (lambda m, x, y: m.fit(x[:0], y[:0], verbose=0), "empty"),
        (lambda m, x, y: m.fit(x, np.full((10,), 7, np.int32), verbose=0), "7"),
        (
            lambda m, x, y: m.fit(
                np.where(x > 1, np.nan, x), np.zeros(10, np.int32), verbose=0
            ),
            "NaN",
        ),
        (
            lambda m, x, y: m.fit(iter([(x, y)]), validation_split=0.2, verbose=0),
            "validation_split",
        ),
    ],
)
def test_bad_input_errors_leave_model_unchanged(call, match):
    x, _ = data(n=10)
    model = fk.Sequential([fk.Input(shape=(3,)), L.Dense(3)])
    model.compile(
        optimizer="sgd", loss=fk.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    before = [np.asarray(w) for w in model.get_weights()]
    with pytest.raises((ValueError, TypeError), match=match):
        call(model, x, np.zeros((10,), np.int32))
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_fit_before_compile_and_unknown_names():
    model = linear_model()
    with pytest.raises(fk.errors.NotCompiledError):
        model.fit(*data(), verbose=0)
    with pytest.raises(ValueError, match="adam"):
        model.compile(optimizer="adma", loss="mse")
    with pytest.raises(ValueError, match="mse|mean_squared"):
        model.compile(optimizer="sgd", loss="msee")
    with pytest.raises(ValueError, match="execution"):
        model.compile(optimizer="sgd", loss="mse", execution="jitt")


def test_builds_from_first_batch():
    model = fk.Sequential([L.Dense(2), L.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    assert not model.built
    model.fit(*data(), epochs=1, verbose=0)
    assert model.built and model.count_params() == 3 * 2 + 2 + 2 + 1


def test_validation_split_and_data_logs():
    x, y = data(n=20)
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    h = model.fit(x, y, validation_split=0.25, epochs=2, verbose=0)
    assert set(h.history) == {"loss", "mae", "val_loss", "val_mae"}
    val_loss, val_mae = model.evaluate(x[15:], y[15:], verbose=0)
    np.testing.assert_allclose(h.history["val_loss"][-1], val_loss, rtol=1e-5)
    np.testing.assert_allclose(h.history["val_mae"][-1], val_mae, rtol=1e-5)


def test_validation_data_tuple():
    x, y = data(n=20)
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse")
    h = model.fit(x[:15], y[:15], validation_data=(x[15:], y[15:]), epochs=1, verbose=0)
    np.testing.assert_allclose(
        h.history["val_loss"][0], model.evaluate(x[15:], y[15:], verbose=0), rtol=1e-5
    )
    with pytest.raises(ValueError, match="validation_data"):
        model.fit(x, y, validation_data=[x, y], epochs=1, verbose=0)


def test_model_is_a_train_host_whose_progress_fit_continues():
    x, y = data(n=10)
    model = linear_model()
    assert isinstance(model, fk.training.TrainHost)
    assert model.progress == fk.training.Progress(epoch=0, step=0, resume=None)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert (model.progress.epoch, model.progress.step) == (2, 6)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert (model.progress.epoch, model.progress.step) == (3, 9)


def test_the_loop_trains_any_train_host_not_only_a_model():
    """`Runner.fit` needs only the `TrainHost` protocol: a hand-written host."""
    from dataclasses import dataclass, field
    from typing import Any

    from funkeras.callbacks import CallbackList
    from funkeras.training import Objective, Progress, Runner, get_executor
    from funkeras.training.data import ArrayData

    @dataclass
    class Host:
        params: Any
        state: Any
        opt_state: Any
        stop_training: bool = False
        progress: Progress = field(default_factory=Progress)

        def publish(self, params, state, opt_state):
            self.params, self.state, self.opt_state = params, state, opt_state

    def apply(params, state, x, *, training=False, key=None, mask=None):
        return x @ params["w"] + params["b"], state

    x, y = data(n=10)
    tx = optax.sgd(0.1)
    params = {"w": jnp.zeros((3, 1)), "b": jnp.zeros((1,))}
    host = Host(params, {}, tx.init(params))
    assert isinstance(host, fk.training.TrainHost)
    runner = Runner(
        apply_fn=apply,
        objective=Objective("mse", ["out"]),
        optimizer=tx,
        executor=get_executor("jit"),
        uses_key=False,
    )
    runner.fit(
        host, ArrayData(x, y, None, 4), epochs=3, initial_epoch=0,
        steps_per_epoch=None, callbacks=CallbackList([]), seed=0, shuffle=True,
        validation=None, validation_freq=1,
    )
    assert (host.progress.epoch, host.progress.step) == (3, 9)
    model = linear_model()
    model.compile(optimizer=optax.sgd(0.1), loss="mse")
    model.set_weights([np.zeros((3, 1)), np.zeros((1,))])
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, seed=0)
    np.testing.assert_allclose(host.params["w"], model.params["dense"]["kernel"],
                               rtol=1e-5, atol=1e-6)
