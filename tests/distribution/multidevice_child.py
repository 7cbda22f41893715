"""Run by tests/distribution/test_distribution.py in a subprocess with 8 simulated
CPU devices (`XLA_FLAGS=--xla_force_host_platform_device_count=8`): every check
on several devices in one JAX start-up. Prints `CHECK <name>` per passed check.
"""

import os
import sys
import tempfile

import jax
import numpy as np
from jax.sharding import PartitionSpec as P

import funkeras as fk

D = fk.distribution
assert len(jax.devices()) == 8, jax.devices()
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 summation order across devices

rng = np.random.default_rng(0)
X = rng.normal(size=(60, 12)).astype(np.float32)  # 60 = 3 * 16 + 12: a short last batch
Y = rng.normal(size=(60, 8)).astype(np.float32)
XV, YV = X[:24] + 0.5, Y[:24]


def done(name):
    print("CHECK", name, flush=True)


def make(bn=False):
    layers = [fk.Input(shape=(12,)), fk.layers.Dense(16, activation="relu")]
    if bn:
        layers.append(fk.layers.BatchNormalization())
    layers += [fk.layers.Dropout(0.25), fk.layers.Dense(8)]
    return fk.Sequential(layers, seed=3)


def trained(dist, weights, *, bn=False, k=1, iterable=False, epochs=2, **compile_kw):
    """A model compiled under `dist` (per-model), set to `weights`, fit on X."""
    model = make(bn)
    model.set_weights(weights)
    model.compile(
        optimizer="adam",
        loss="mse",
        metrics=["mae"],
        steps_per_execution=k,
        distribution=dist,
        **compile_kw,
    )
    if iterable:
        hist = model.fit(Batches(), epochs=epochs, verbose=0)
    else:
        hist = model.fit(X, Y, batch_size=16, epochs=epochs, verbose=0, seed=5)
    return model, hist


class Batches:
    """An iterable of `(x, y)` batches (a loader), the last one short."""

    def __iter__(self):
        for i in range(0, 60, 16):
            yield X[i : i + 16], Y[i : i + 16]


def same(a, b, what):
    for i, (u, v) in enumerate(zip(a.get_weights(), b.get_weights(), strict=True)):
        np.testing.assert_allclose(v, u, **TOL, err_msg=f"{what}: weight {i}")


W0 = make().get_weights()
W0_BN = make(bn=True).get_weights()
dp = D.DataParallel()
mesh = D.DeviceMesh((2, 4), ("batch", "model"), D.list_devices())
layout = D.LayoutMap(mesh)
layout["dense.*kernel"] = (None, "model")
layout["dense.*bias"] = ("model",)
mp = D.ModelParallel(layout_map=layout, batch_dim_name="batch")

# -- data parallel: same numbers as one device, params on all 8 devices ------------
one, h1 = trained(None, W0)
par, h8 = trained(dp, W0)
same(one, par, "DataParallel fit")
np.testing.assert_allclose(h8.history["loss"], h1.history["loss"], **TOL)
kernel = par.params["dense"]["kernel"]
assert len(kernel.sharding.device_set) == 8 and kernel.sharding.spec == P(), (
    kernel.sharding
)
assert kernel.sharding.is_fully_replicated
done("data_parallel_fit_matches_one_device")

# The step compiled once, and a second fit compiles nothing new.
assert par.compile_stats()["train_step"]["compiles"] == 1, par.compile_stats()
par.fit(X, Y, batch_size=16, epochs=1, verbose=0)
assert par.compile_stats()["train_step"]["compiles"] == 1, par.compile_stats()
one.fit(X, Y, batch_size=16, epochs=1, verbose=0)
same(one, par, "second fit")
done("step_compiles_once")

# evaluate and predict give one device's numbers.
e1 = one.evaluate(X, Y, batch_size=16, verbose=0, return_dict=True)
e8 = par.evaluate(X, Y, batch_size=16, verbose=0, return_dict=True)
for k_ in e1:
    np.testing.assert_allclose(e8[k_], e1[k_], **TOL)
np.testing.assert_allclose(par.predict(X, verbose=0), one.predict(X, verbose=0), **TOL)
np.testing.assert_allclose(
    par.predict(X[:3], verbose=0), one.predict(X[:3], verbose=0), **TOL
)  # 3 rows: the batch is padded to split evenly
assert par.compile_stats()["test_step"]["compiles"] == 1
done("evaluate_predict_match")

# Fused K-step blocks and batches from an iterable (split by device_put).
same(trained(None, W0, k=2)[0], trained(dp, W0, k=2)[0], "steps_per_execution=2")
same(trained(None, W0, iterable=True)[0], trained(dp, W0, iterable=True)[0], "iterable")
with fk.training.state.placement(dp):  # what the loop does with a host batch
    split = fk.training.state.batch_to_device(
        fk.training.Batch(X[:16], Y[:16], None, np.ones(16, bool))
    )
assert split.x.sharding.spec == P("batch") and split.x.sharding.shard_shape(
    (16, 12)
) == (2, 12), split.x.sharding
done("fused_blocks_and_iterables")

# BatchNorm's masked moments when the padded last batch is split across devices.
same(trained(None, W0_BN, bn=True)[0], trained(dp, W0_BN, bn=True)[0], "batchnorm")
done("batchnorm_row_mask_split")

# -- model parallel: kernels split on "model", same numbers ------------------------
mpar, _ = trained(mp, W0)
same(one_mp := trained(None, W0)[0], mpar, "ModelParallel fit")
k0 = mpar.params["dense"]["kernel"]
assert k0.sharding.spec == P(None, "model"), k0.sharding
assert k0.sharding.shard_shape(k0.shape) == (12, 4)
assert mpar.params["dense_1"]["bias"].sharding.spec == P("model")
moments = [a for a in jax.tree.leaves(mpar.opt_state) if a.shape == (12, 16)]
assert moments and all(a.sharding.spec == P(None, "model") for a in moments)
assert mpar.compile_stats()["train_step"]["compiles"] == 1
np.testing.assert_allclose(
    mpar.predict(X, verbose=0), one_mp.predict(X, verbose=0), **TOL
)
done("model_parallel_fit_matches_one_device")

# A global distribution: weights are made in their layout before any compile.
D.set_distribution(mp)
fresh = make()
assert fresh.params["dense"]["kernel"].sharding.spec == P(None, "model")
fresh.compile(optimizer="sgd", loss="mse")
fresh.fit(X, Y, batch_size=16, epochs=1, verbose=0)
assert fresh.params["dense"]["kernel"].sharding.spec == P(None, "model")
D.set_distribution(None)
done("global_distribution_creates_sharded_weights")

# -- callbacks: EarlyStopping, ModelCheckpoint; save gathers to the host -----------
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "best.fkz")

    def with_callbacks(dist):
        model = make()
        model.set_weights(W0)
        model.compile(optimizer="adam", loss="mse", distribution=dist)
        cbs = [
            fk.callbacks.EarlyStopping(patience=1, restore_best_weights=True),
            fk.callbacks.ModelCheckpoint(path, save_best_only=True),
        ]
        hist = model.fit(
            X,
            Y,
            batch_size=16,
            epochs=6,
            verbose=0,
            validation_data=(XV, YV),
            callbacks=cbs,
        )
        return model, hist

    a, ha = with_callbacks(None)
    b, hb = with_callbacks(mp)
    np.testing.assert_allclose(hb.history["val_loss"], ha.history["val_loss"], **TOL)
    same(a, b, "EarlyStopping restore")
    loaded = fk.load_model(path)  # written from sharded arrays, read on one device
    assert len(loaded.params["dense"]["kernel"].sharding.device_set) == 1
    np.testing.assert_allclose(
        loaded.predict(X, verbose=0), b.predict(X, verbose=0), **TOL
    )
    b.save(os.path.join(tmp, "m.fkz"))
    again = fk.load_model(os.path.join(tmp, "m.fkz"))
    for u, v in zip(again.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    # The restored best weights go back into their layout at the next fit,
    # which compiles nothing new.
    b.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    assert b.params["dense"]["kernel"].sharding.spec == P(None, "model")
    assert b.compile_stats()["train_step"]["compiles"] == 1, b.compile_stats()
done("callbacks_and_saving")

# -- bad input, refused before anything is traced ----------------------------------


def refused(fn, *words):
    try:
        fn()
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert all(w in msg for w in words), msg
        return
    raise AssertionError(f"not refused: {words}")


def fit_with(dist, batch_size=16, model=None):
    model = model or make()
    model.compile(optimizer="sgd", loss="mse", distribution=dist)
    model.fit(X, Y, batch_size=batch_size, epochs=1, verbose=0)


refused(lambda: fit_with(dp, batch_size=12), "batch_size=12", "8", "16")
bad_dim = D.LayoutMap(D.DeviceMesh((1, 8), ("batch", "model")))
bad_dim["dense_1/kernel"] = ("model", None)  # (16, 8): fine; dense/kernel is (12, 16)
bad_dim["dense/kernel"] = ("model", None)  # 12 rows over 8 devices
refused(
    lambda: fit_with(D.ModelParallel(layout_map=bad_dim)),
    "dense/kernel",
    "12",
    "not divisible",
    "'model'",
)
nothing = D.LayoutMap(mesh)
nothing["conv.*kernel"] = (None, "model")
refused(
    lambda: fit_with(D.ModelParallel(layout_map=nothing)),
    "conv.*kernel",
    "match no weight",
    "dense/kernel",
)
rank = D.LayoutMap(mesh)
rank["dense/bias"] = (None, "model")
refused(
    lambda: fit_with(D.ModelParallel(layout_map=rank)),
    "dense/bias",
    "2 entries",
    "(16,)",
)
refused(
    lambda: make().compile(loss="mse", execution="eager", distribution=dp),
    "execution='eager'",
    "DataParallel",
)
refused(
    lambda: make().compile(loss="mse", execution="layerwise", distribution=mp),
    "execution='layerwise'",
)
refused(
    lambda: layout.__setitem__("x", ("batch", "data")), "'data'", "('batch', 'model')"
)
refused(
    lambda: D.ModelParallel(layout_map=layout, batch_dim_name="rows"),
    "rows",
    "('batch', 'model')",
)
refused(lambda: D.DeviceMesh((2, 2), ("batch", "model")), "(2, 2)", "8")
done("bad_input")
sys.exit(0)
