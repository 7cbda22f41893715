"""The `transformer` benchmark workload: funkeras' model and its hand-written
twin compute the same function (so the timing compares like with like)."""

from __future__ import annotations

import jax
import numpy as np

from funkeras.bench import workloads_transformer as wt
from funkeras.bench.workloads import WORKLOADS, get_workload


def hand_params_from(weights: list[np.ndarray]) -> dict:
    """The twin's params from funkeras' `get_weights()` (Keras' order)."""
    it = iter(weights)
    tok, pos = next(it), next(it)
    blocks = []
    for _ in range(wt.BLOCKS):
        names = [
            "q",
            "qb",
            "k",
            "kb",
            "v",
            "vb",
            "o",
            "ob",
            "g1",
            "b1",
            "f1",
            "f1b",
            "f2",
            "f2b",
            "g2",
            "b2",
        ]
        blocks.append({n: next(it) for n in names})
    head, head_b = next(it), next(it)
    assert next(it, None) is None
    return {"tok": tok, "pos": pos, "blocks": blocks, "head": head, "head_b": head_b}


def test_twin_computes_the_same_function():
    workload = get_workload("transformer")
    assert WORKLOADS["transformer"] is workload
    x, y = workload.make_data(2, 0)
    assert x.shape == y.shape == (2, wt.SEQ) and x.dtype == np.int32
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # next-token targets
    model = workload.build_model()
    params = hand_params_from(model.get_weights())
    want = model.predict(x, verbose=0)
    got = jax.jit(workload.apply)(params, x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    hand = workload.init_params(jax.random.key(0))
    shapes = [a.shape for a in jax.tree.leaves(hand_params_from(model.get_weights()))]
    assert sorted(shapes) == sorted(a.shape for a in jax.tree.leaves(hand))
