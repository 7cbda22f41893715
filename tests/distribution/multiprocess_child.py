"""One of two processes (4 simulated CPU devices each) joined over localhost by
tests/distribution/test_distribution.py: each feeds its half of every global
batch under DataParallel; the weights must equal one device trained on the
global batches. Prints `PROCESS <id> OK` when they do.
"""

import sys

import numpy as np

import funkeras as fk

port, pid = sys.argv[1], int(sys.argv[2])
fk.distribution.initialize(f"127.0.0.1:{port}", 2, pid)

import jax  # noqa: E402

assert jax.process_count() == 2 and len(jax.devices()) == 8, jax.devices()
rng = np.random.default_rng(0)
X = rng.normal(size=(56, 6)).astype(np.float32)  # 3 full global batches + a short one
Y = rng.normal(size=(56, 3)).astype(np.float32)


def make():
    return fk.Sequential(
        [
            fk.Input(shape=(6,)),
            fk.layers.Dense(8, activation="relu"),
            fk.layers.Dense(3),
        ],
        seed=2,
    )


class Mine:
    """This process' half of each global batch of 16; of the short last one (8
    rows) 4 rows each, padded and masked by each process as one device would."""

    def __iter__(self):
        for i in range(0, 56, 16):
            xs, ys = X[i : i + 16], Y[i : i + 16]
            half = len(xs) // 2
            yield xs[pid * half : (pid + 1) * half], ys[pid * half : (pid + 1) * half]


class Everything:
    def __iter__(self):
        for i in range(0, 56, 16):
            yield X[i : i + 16], Y[i : i + 16]


w0 = make().get_weights()
model = make()
model.set_weights(w0)
model.compile(optimizer="adam", loss="mse", distribution=fk.distribution.DataParallel())
hist = model.fit(Mine(), epochs=2, verbose=0)
assert model.compile_stats()["train_step_host"]["compiles"] == 1
ref = make()
ref.set_weights(w0)
ref.compile(optimizer="adam", loss="mse")
ref_hist = ref.fit(Everything(), epochs=2, verbose=0)
for a, b in zip(ref.get_weights(), model.get_weights(), strict=True):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(hist.history["loss"], ref_hist.history["loss"], rtol=1e-5)
print("PROCESS", pid, "OK", flush=True)
jax.distributed.shutdown()
