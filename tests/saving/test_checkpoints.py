"""Train-state checkpoints: any pytree by key path, restored bit for bit."""

from __future__ import annotations

import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest

from funkeras.errors import CheckpointMismatchError, WeightsMismatchError
from funkeras.saving.checkpoints import (
    CheckpointManager,
    config_fingerprint,
    library_versions,
    restore_checkpoint,
    save_checkpoint,
)


class Pair(NamedTuple):
    first: jax.Array
    second: dict


def _tree():
    params = {"dense": {"kernel": jnp.arange(6.0).reshape(3, 2), "bias": jnp.zeros(2)}}
    return {
        "params": params,
        "opt_state": optax.adam(1e-3).init(params),
        "pair": Pair(
            jnp.asarray([1, 2], jnp.int32), {"x": jnp.asarray(0.5, jnp.bfloat16)}
        ),
        "list": [jnp.ones(1), np.full((2,), np.nan, np.float32)],
        "key": jax.random.key(7),
        "rbg_keys": jax.random.split(jax.random.key(3, impl="rbg"), 2),
        "step": 12,
        "lr": 0.1,
        "neg_zero": -0.0,
        "flag": True,
        "name": "run-1",
    }


def _bits(tree):
    def leaf(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(
            x.dtype, jax.dtypes.prng_key
        ):
            return ("key", str(x.dtype), np.asarray(jax.random.key_data(x)).tobytes())
        if isinstance(x, float):
            return ("float", x.hex())
        if isinstance(x, bool | int | str):
            return (type(x).__name__, x)
        return (str(x.dtype), x.shape, np.asarray(x).tobytes())

    return jax.tree.map(leaf, tree)


def test_round_trip_is_bit_exact_for_every_kind_of_leaf(tmp_path):
    tree = _tree()
    path = tmp_path / "c.fkc"
    save_checkpoint(path, tree, {"epoch": 3, "best": float("inf"), "wait": 1}, step=12)
    restored = restore_checkpoint(path, like=tree)
    assert _bits(restored.tree) == _bits(tree)
    assert jax.tree.structure(restored.tree) == jax.tree.structure(tree)
    assert isinstance(restored.tree["pair"], Pair)
    assert isinstance(restored.tree["list"][1], np.ndarray)  # NumPy in, NumPy out
    assert restored.tree["pair"].second["x"].dtype == ml_dtypes.bfloat16
    assert restored.metadata == {"epoch": 3, "best": float("inf"), "wait": 1}
    assert restored.step == 12
    assert restored.versions == library_versions()
    assert {"jax", "jaxlib", "optax", "funkeras"} <= set(restored.versions)


def test_restore_into_abstract_shapes(tmp_path):
    tree = _tree()
    path = tmp_path / "c.fkc"
    save_checkpoint(path, tree)
    like = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if hasattr(x, "shape") else x,
        tree,
    )
    restored = restore_checkpoint(path, like=like).tree
    assert _bits(restored)["params"] == _bits(tree)["params"]
    assert str(restored["key"].dtype) == "key<fry>"
    np.testing.assert_array_equal(
        jax.random.key_data(restored["key"]), jax.random.key_data(tree["key"])
    )


def test_the_same_tree_gives_the_same_bytes(tmp_path):
    save_checkpoint(tmp_path / "a.fkc", _tree(), {"epoch": 1})
    save_checkpoint(tmp_path / "b.fkc", _tree(), {"epoch": 1})
    assert (tmp_path / "a.fkc").read_bytes() == (tmp_path / "b.fkc").read_bytes()


def test_a_structure_mismatch_is_reported_by_key_path(tmp_path):
    tree = _tree()
    path = tmp_path / "c.fkc"
    save_checkpoint(path, tree)
    other = dict(
        tree,
        params={"dense": {"kernel": jnp.zeros((3, 3)), "bias": jnp.zeros(2)}},
        extra=jnp.zeros(1),
    )
    del other["lr"]
    with pytest.raises(WeightsMismatchError) as info:
        restore_checkpoint(path, like=other)
    message = str(info.value)
    assert "missing in the file: 'extra'" in message
    assert "unexpected in the file: 'lr'" in message
    with pytest.raises(
        WeightsMismatchError, match=r"'params/dense/kernel': expected float32\[3, 3\]"
    ):
        restore_checkpoint(path, like=dict(tree, params=other["params"]))
    with pytest.raises(WeightsMismatchError, match="expected a key<rbg> key array"):
        restore_checkpoint(path, like=dict(tree, key=jax.random.key(0, impl="rbg")))
    with pytest.raises(WeightsMismatchError, match="'step': expected a Python float"):
        restore_checkpoint(path, like=dict(tree, step=1.0))


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    config_a = {
        "name": "a",
        "layers": [{"class_name": "Dense", "config": {"units": 2}}],
    }
    config_b = {
        "name": "a",
        "layers": [{"class_name": "Dense", "config": {"units": 3}}],
    }
    assert config_fingerprint(config_a) == config_fingerprint(
        dict(reversed(config_a.items()))
    )
    path = tmp_path / "c.fkc"
    save_checkpoint(path, {"w": jnp.ones(2)}, model_config=config_a)
    assert (
        restore_checkpoint(path, {"w": jnp.ones(2)}, model_config=config_a)
        .tree["w"]
        .shape
    )
    with pytest.raises(CheckpointMismatchError, match="different model"):
        restore_checkpoint(path, {"w": jnp.ones(2)}, model_config=config_b)
    save_checkpoint(path, {"w": jnp.ones(2)})
    with pytest.raises(CheckpointMismatchError, match="records no model config"):
        restore_checkpoint(path, {"w": jnp.ones(2)}, model_config=config_a)


def test_unstorable_leaves_are_refused(tmp_path):
    with pytest.raises(TypeError, match="'f'"):
        save_checkpoint(tmp_path / "c.fkc", {"f": lambda: 0})
    with pytest.raises(TypeError, match="callable"):
        save_checkpoint(tmp_path / "c.fkc", {"w": jnp.ones(1)}, {"callback": print})
    assert not os.listdir(tmp_path)


def test_manager_keeps_the_last_n(tmp_path):
    manager = CheckpointManager(tmp_path / "ckpts", max_to_keep=2)
    assert manager.latest_step() is None
    with pytest.raises(FileNotFoundError):
        manager.restore(like={"w": jnp.ones(1)})
    for step in (5, 10, 15):
        manager.save(step, {"w": jnp.full((1,), float(step))}, {"epoch": step})
    assert manager.all_steps() == [10, 15]
    assert sorted(os.listdir(tmp_path / "ckpts")) == ["ckpt_10.fkc", "ckpt_15.fkc"]
    assert manager.latest_step() == 15
    assert float(manager.restore(like={"w": jnp.ones(1)}).tree["w"][0]) == 15.0
    assert manager.restore(10, like={"w": jnp.ones(1)}).metadata == {"epoch": 10}
    with pytest.raises(ValueError, match="max_to_keep"):
        CheckpointManager(tmp_path, max_to_keep=0)


def test_interrupted_training_resumes_bit_for_bit(tmp_path):
    tx = optax.adam(1e-2)

    def loss(p, x):
        return jnp.mean((x @ p["w"] + p["b"]) ** 2)

    @jax.jit
    def step(s, x):
        key, sub = jax.random.split(s["key"])
        grads = jax.grad(loss)(s["params"], x + 0.01 * jax.random.normal(sub, x.shape))
        updates, opt = tx.update(grads, s["opt"], s["params"])
        return {
            "params": optax.apply_updates(s["params"], updates),
            "opt": opt,
            "key": key,
            "step": s["step"] + 1,
        }

    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    start = {
        "params": params,
        "opt": tx.init(params),
        "key": jax.random.key(42),
        "step": jnp.asarray(0),
    }
    batches = np.random.default_rng(0).normal(size=(6, 4, 3)).astype(np.float32)

    full = start
    for x in batches:
        full = step(full, x)

    manager = CheckpointManager(tmp_path, max_to_keep=1)
    state = start
    for i, x in enumerate(batches[:3]):
        state = step(state, x)
        manager.save(i + 1, state, {"data_position": i + 1})
    del state  # the process "dies" here
    restored = manager.restore(like=jax.eval_shape(lambda: start))
    state = restored.tree
    for x in batches[restored.metadata["data_position"] :]:
        state = step(state, x)
    assert _bits(state) == _bits(full)
