"""The shared end of the train step, its configuration, and the reserved log keys."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funkeras as fk
from funkeras.training import LayerwiseExecutor, Objective, StepConfig
from funkeras.training.state import Batch, TrainState, copy_tree
from funkeras.training.steps import (
    BAD_LABELS,
    NONFINITE,
    PROBES,
    batch_loss,
    finish_step,
    make_train_step,
)

L = fk.layers


def mlp():
    inp = fk.Input(shape=(3,))
    out = L.Dense(2)(L.Dense(4, activation="tanh")(inp))
    model = fk.Model(inp, out, seed=0)
    model.build((None, 3))
    return model


def batch(poisoned=False):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    y = rng.normal(size=(4, 2)).astype(np.float32)
    if poisoned:
        y[1, 0] = np.nan
    return Batch(jnp.asarray(x), jnp.asarray(y), None, jnp.ones((4,), bool))


def fresh_state(model, objective, tx):
    return TrainState.create(
        copy_tree(model.params),
        copy_tree(model.state),
        tx.init(model.params),
        objective.init_metrics(),
        jax.random.key(0),
    )


def steps(model, objective, tx, config):
    """The train step of each executor, built from the same pieces and config."""
    default = make_train_step(model.apply, objective, tx, config)
    layerwise = LayerwiseExecutor().make_train_step(
        default, graph=model.graph, objective=objective, optimizer=tx, config=config
    )
    return {"jit": jax.jit(default), "eager": default, "layerwise": layerwise}


def assert_same(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_reserved_log_keys_keep_their_values():
    assert (NONFINITE, BAD_LABELS, PROBES) == ("_nonfinite", "_bad_labels", "_probes")


def test_step_config_is_frozen_and_rejects_unknown_fields():
    config = StepConfig(finite_gate=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.finite_gate = False
    with pytest.raises(TypeError):
        StepConfig(finite_gates=True)
    with pytest.raises(TypeError):
        StepConfig(0)  # keyword-only
    assert config == StepConfig(finite_gate=True)
    assert hash(config) == hash(StepConfig(finite_gate=True))
    with pytest.raises(TypeError):
        make_train_step(lambda *a, **k: None, None, optax.sgd(0.1), probe_evry=2)


@pytest.mark.parametrize("execution", ["jit", "eager", "layerwise"])
def test_the_finite_gate_keeps_the_old_state_and_sets_the_flag(execution):
    model = mlp()
    objective = Objective("mse", ["out"])
    tx = optax.sgd(0.1)
    step = steps(model, objective, tx, StepConfig(finite_gate=True, probe_every=1))[
        execution
    ]
    ts = fresh_state(model, objective, tx)
    kept, logs = step(copy_tree(ts), batch(poisoned=True))
    assert bool(logs[NONFINITE])
    assert int(kept.step) == 0
    assert_same(kept.params, ts.params)
    assert_same(kept.opt_state, ts.opt_state)
    assert_same(kept.metrics, ts.metrics)
    assert set(logs[PROBES]) == {"param_norm", "grad_norm", "update_norm"}

    new, logs = step(copy_tree(ts), batch())
    assert not bool(logs[NONFINITE])
    assert int(new.step) == 1
    assert np.isfinite(float(logs["loss"]))
    assert not np.allclose(
        np.asarray(jax.tree.leaves(new.params)[0]),
        np.asarray(jax.tree.leaves(ts.params)[0]),
    )


def test_every_executor_gives_the_same_step():
    model = mlp()
    objective = Objective("mse", ["out"])
    tx = optax.sgd(0.1)
    config = StepConfig(finite_gate=True, probe_every=1)
    ts = fresh_state(model, objective, tx)
    out = {
        name: step(copy_tree(ts), batch())
        for name, step in steps(model, objective, tx, config).items()
    }
    ref_ts, ref_logs = out["jit"]
    for name in ("eager", "layerwise"):
        new, logs = out[name]
        for a, b in zip(
            jax.tree.leaves((new.params, logs)),
            jax.tree.leaves((ref_ts.params, ref_logs)),
            strict=True,
        ):
            np.testing.assert_allclose(
                np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6
            )


def test_finish_step_alone():
    model = mlp()
    objective = Objective("mse", ["out"])
    tx = optax.sgd(0.1)
    ts = fresh_state(model, objective, tx)
    zeros = jax.tree.map(jnp.zeros_like, ts.params)
    nan_params = jax.tree.map(lambda a: jnp.full_like(a, jnp.nan), ts.params)
    values = dict(
        loss=jnp.asarray(1.0),
        grads=zeros,
        updates=zeros,
        state=ts.state,
        opt_state=ts.opt_state,
        metrics=ts.metrics,
    )
    gated = StepConfig(finite_gate=True, sparse_check=lambda y: jnp.any(y > 100))
    kept, logs = finish_step(ts, batch(), objective, gated, params=nan_params, **values)
    assert bool(logs[NONFINITE]) and not bool(logs[BAD_LABELS])
    assert int(kept.step) == 0
    assert_same(kept.params, ts.params)

    new, logs = finish_step(
        ts, batch(), objective, StepConfig(results=False), params=nan_params, **values
    )
    assert logs == {}  # no gate asked for: committed as given
    assert int(new.step) == 1
    assert np.isnan(np.asarray(jax.tree.leaves(new.params)[0])).all()


def test_batch_loss_prefers_a_models_loss_fn():
    objective = Objective("mse", ["out"])
    b = batch()
    y_pred = jnp.zeros_like(b.y)
    total, parts = batch_loss(b, y_pred, objective_loss=objective.loss)
    np.testing.assert_allclose(float(total), float(jnp.mean(b.y**2)), rtol=1e-6)
    assert set(parts) == {"out_loss"}
    total, parts = batch_loss(
        b,
        y_pred,
        objective_loss=objective.loss,
        loss_fn=lambda x, y, p, sw, mask: jnp.asarray(3, jnp.int32),
    )
    assert total.dtype == jnp.float32 and float(total) == 3.0 and parts == {}
