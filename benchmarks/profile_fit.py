"""Where the time of a funkeras step goes, against the hand-written JAX step.

Run: `python benchmarks/profile_fit.py [--models tiny,mlp] [--section all]`.

Sections (each prints its own findings):

* `dispatch`: the cost of calling a compiled program on funkeras' train-state
  pytree (typed PRNG key, metric state, counters) against the hand-written
  `(params, opt_state)` and a NumPy batch: identity programs, so only the
  dispatch is timed.
* `overhead`: `fit`'s fixed costs: per call and per epoch, from `fit` calls of
  the same total steps split into different epochs, against the bare program
  loop; and whether changing `steps_per_epoch` recompiles the step.
* `hlo`: the jitted train step's program: StableHLO op counts (what funkeras
  adds), compiled instruction count, XLA's flop/byte estimates and temp bytes.
* `eager`: primitives dispatched per eager step, by funkeras source line.
* `cprofile`: the Python side of `fit` (top functions by own time), jit and eager.

This script reads funkeras internals (the runner's programs) to lower the
exact step `fit` runs; it is a diagnostic, not an API.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import pstats
import re
import statistics
import time
import traceback
from typing import Any

import jax
import numpy as np

from funkeras.bench.handwritten import HandWritten, make_step
from funkeras.bench.workloads import WORKLOADS, make_optimizer
from funkeras.training.data import ArrayData
from funkeras.training.state import TrainState, copy_tree, to_device

SECTIONS = ("dispatch", "overhead", "hlo", "eager", "cprofile")


def _model(w: Any, execution: str = "jit", spe: int = 1) -> Any:
    m = w.build_model()
    m.compile(
        optimizer=make_optimizer(w),
        loss=w.funkeras_loss(),
        execution=execution,
        steps_per_execution=spe,
    )
    return m


def _capture(m: Any) -> dict[str, Any]:
    """Record the raw functions the runner hands to its executor."""
    captured: dict[str, Any] = {}
    runner = m.make_runner()
    wrap = runner.executor.wrap

    def spy(fn: Any, name: str, donate_argnums: tuple[int, ...] = ()) -> Any:
        captured[name] = (fn, donate_argnums)
        return wrap(fn, name, donate_argnums=donate_argnums)

    runner.executor.wrap = spy
    runner._programs.clear()
    return captured


def _train_state(m: Any) -> Any:
    runner = m.make_runner()
    return TrainState.create(
        copy_tree(m.params),
        copy_tree(m.state),
        copy_tree(m.opt_state),
        runner.init_metrics(),
        jax.random.key(0),
    )


def _per_call_us(fn: Any, first: Any, *rest: Any, n: int = 2000) -> float:
    state = first
    for _ in range(50):
        state = fn(state, *rest)[0]
    jax.block_until_ready(state)
    best = []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            state = fn(state, *rest)[0]
        jax.block_until_ready(state)
        best.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(best)


def dispatch(w: Any) -> None:
    b = w.batch_size
    x, y = w.make_data(b * 16, 0)
    m = _model(w)
    m.fit(x, y, batch_size=b, epochs=1, steps_per_epoch=2, verbose=0)
    data = ArrayData(x, y, None, b)
    order = to_device(data.order(0, 0, True, 16, 1))
    arrays = data.device_arrays
    ident = lambda: jax.jit(lambda t, *a: (t, {}), donate_argnums=0)  # noqa: E731
    ts = _train_state(m)
    print(
        f"  train-state leaves: {len(jax.tree.leaves(ts))} "
        f"(params {len(jax.tree.leaves(ts.params))}, opt_state "
        f"{len(jax.tree.leaves(ts.opt_state))}, "
        f"metrics {len(jax.tree.leaves(ts.metrics))})"
    )
    rows = [
        (
            "funkeras TrainState (typed key) + data + order",
            _per_call_us(ident(), _train_state(m), arrays, order),
        ),
        (
            "same, key stored as raw uint32 key data",
            _per_call_us(
                ident(),
                _train_state(m)._replace(key=jax.random.key_data(jax.random.key(0))),
                arrays,
                order,
            ),
        ),
        ("typed PRNG key alone", _per_call_us(ident(), jax.random.key(0))),
        (
            "raw uint32 key data alone",
            _per_call_us(ident(), jax.random.key_data(jax.random.key(0))),
        ),
        (
            "hand-written (params, opt_state) + NumPy batch",
            _per_call_us(ident(), copy_tree((ts.params, ts.opt_state)), x[:b], y[:b]),
        ),
    ]
    for label, us in rows:
        print(f"  {us:8.1f} us/call  {label}")


def overhead(w: Any) -> None:
    b = w.batch_size
    steps = 128
    x, y = w.make_data(b * steps, 0)
    m = _model(w)
    captured = _capture(m)
    fits = {}
    for epochs in (1, 4, 16):
        per = steps // epochs
        m.fit(x, y, batch_size=b, epochs=epochs, steps_per_epoch=per, verbose=0)
        samples = []
        for i in range(5):
            start = time.perf_counter()
            m.fit(
                x,
                y,
                batch_size=b,
                epochs=epochs,
                steps_per_epoch=per,
                verbose=0,
                seed=i,
            )
            jax.block_until_ready(m.params)
            samples.append((time.perf_counter() - start) * 1000)
        fits[epochs] = statistics.median(samples)
    stats = m.compile_stats().get("train_step", {})
    fn, donate = captured["train_step"]
    program = jax.jit(fn, donate_argnums=donate)
    data = ArrayData(x, y, None, b)
    order = to_device(data.order(0, 0, True, steps, 1))
    ts = _train_state(m)
    ts, _ = program(ts, data.device_arrays, order)
    samples = []
    for _ in range(5):
        ts = ts._replace(batch=jax.device_put(np.zeros((), np.int32)))
        start = time.perf_counter()
        for _ in range(steps):
            ts, logs = program(ts, data.device_arrays, order)
        float(logs["loss"])
        samples.append((time.perf_counter() - start) * 1000)
    bare = statistics.median(samples)
    hand = HandWritten(w, "jit", x, y, b, steps)
    hand.first_step()
    hand.run(1, 0)
    hs = []
    for _ in range(5):
        start = time.perf_counter()
        hand.run(1, 0)
        hs.append((time.perf_counter() - start) * 1000)
    hand_ms = statistics.median(hs)
    per_epoch = (fits[16] - fits[1]) / 15
    print(
        f"  {steps} steps: fit in 1 epoch {fits[1]:.2f} ms, 4 epochs {fits[4]:.2f} ms, "
        f"16 epochs {fits[16]:.2f} ms; bare step-program loop {bare:.2f} ms; "
        f"hand-written loop {hand_ms:.2f} ms"
    )
    print(
        f"  => per epoch {per_epoch:.3f} ms; "
        f"per fit call {fits[1] - bare - per_epoch:.3f} "
        f"ms; program per step {bare / steps * 1000:.1f} us vs hand-written "
        f"{hand_ms / steps * 1000:.1f} us"
    )
    print(
        f"  train_step compiles after fits with steps_per_epoch 128, 32, 8: "
        f"{stats.get('compiles')} (1 = no recompile)"
    )


def hlo(w: Any) -> None:
    b = w.batch_size
    x, y = w.make_data(b * 8, 0)
    m = _model(w)
    captured = _capture(m)
    m.fit(x, y, batch_size=b, epochs=1, steps_per_epoch=2, verbose=0)
    fn, donate = captured["train_step"]
    data = ArrayData(x, y, None, b)
    lowered = jax.jit(fn, donate_argnums=donate).lower(
        _train_state(m), data.device_arrays, to_device(data.order(0, 0, True, 2, 1))
    )
    tx = make_optimizer(w)
    p = w.init_params(jax.random.key(0))
    hand = jax.jit(make_step(w, tx), donate_argnums=(0, 1)).lower(
        p, tx.init(p), x[:b], y[:b]
    )

    def ops(text: str) -> collections.Counter[str]:
        return collections.Counter(re.findall(r"stablehlo\.([a-z_]+)", text))

    fo, ho = ops(lowered.as_text()), ops(hand.as_text())
    extra = {k: fo[k] - ho.get(k, 0) for k in sorted(fo) if fo[k] != ho.get(k, 0)}
    fc, hc = lowered.compile(), hand.compile()

    def instrs(c: Any) -> int:
        return sum(1 for line in c.as_text().splitlines() if " = " in line)

    def cost(c: Any) -> dict[str, float]:
        ca = c.cost_analysis()
        return (ca[0] if isinstance(ca, list) else ca) or {}

    fa, ha = cost(fc), cost(hc)
    print(
        f"  StableHLO ops: funkeras {sum(fo.values())}, "
        f"hand-written {sum(ho.values())}; "
        f"difference by op: {extra}"
    )
    print(
        f"  compiled HLO instructions: funkeras {instrs(fc)}, hand-written {instrs(hc)}"
    )
    print(
        f"  flops: funkeras {fa.get('flops', 0):,.0f}, "
        f"hand-written {ha.get('flops', 0):,.0f}; "
        f"bytes accessed: {fa.get('bytes accessed', 0):,.0f} vs "
        f"{ha.get('bytes accessed', 0):,.0f}"
    )
    fm, hm = fc.memory_analysis(), hc.memory_analysis()
    if fm is not None and hm is not None:
        print(
            f"  temp bytes: funkeras {fm.temp_size_in_bytes:,}, hand-written "
            f"{hm.temp_size_in_bytes:,}; argument bytes "
            f"{fm.argument_size_in_bytes:,} vs "
            f"{hm.argument_size_in_bytes:,} "
            "(funkeras' include the device-resident data)"
        )


def eager(w: Any) -> None:
    from jax._src import core

    b = w.batch_size
    x, y = w.make_data(b * 16, 0)
    m = _model(w, "eager")
    m.fit(x, y, batch_size=b, epochs=1, steps_per_epoch=2, verbose=0)
    sites: collections.Counter[tuple[str, str]] = collections.Counter()
    depth = [0]
    original = core.Primitive.bind

    def bind(self: Any, *args: Any, **kwargs: Any) -> Any:
        if depth[0] == 0:
            frames = [
                f
                for f in traceback.extract_stack(limit=60)
                if "/funkeras/" in f.filename and "/bench/" not in f.filename
            ]
            where = (
                f"{frames[-1].filename.split('/funkeras/')[-1]}:{frames[-1].lineno} "
                f"{(frames[-1].line or '').strip()[:60]}"
                if frames
                else "outside funkeras"
            )
            sites[(self.name, where)] += 1
        depth[0] += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            depth[0] -= 1

    n = 8
    core.Primitive.bind = bind
    try:
        m.fit(x, y, batch_size=b, epochs=1, steps_per_epoch=n, verbose=0)
    finally:
        core.Primitive.bind = original
    hand_sites: collections.Counter[str] = collections.Counter()

    def hand_bind(self: Any, *args: Any, **kwargs: Any) -> Any:
        if depth[0] == 0:
            hand_sites[self.name] += 1
        depth[0] += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            depth[0] -= 1

    loop = HandWritten(w, "eager", x, y, b, n)
    loop.first_step()
    core.Primitive.bind = hand_bind
    try:
        loop.run(1, 0)
    finally:
        core.Primitive.bind = original
    print(
        f"  top-level dispatches per step: funkeras {sum(sites.values()) / n:.1f}, "
        f"hand-written {sum(hand_sites.values()) / n:.1f}"
    )
    for (name, where), count in sites.most_common(14):
        print(f"    {count / n:4.1f}  {name:22s} {where}")


def cprofile(w: Any) -> None:
    b = w.batch_size
    x, y = w.make_data(b * 64, 0)
    for execution, steps in (("jit", 64), ("eager", 8)):
        m = _model(w, execution)
        m.fit(x, y, batch_size=b, epochs=1, steps_per_epoch=steps, verbose=0)
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(3):
            m.fit(x, y, batch_size=b, epochs=1, steps_per_epoch=steps, verbose=0)
        jax.block_until_ready(m.params)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(12)
        body = [ln for ln in out.getvalue().splitlines() if re.match(r"\s+\d", ln)]
        print(
            f"  {execution}: 3 fits x {steps} steps; top functions by own time "
            f"(ncalls tottime percall cumtime percall where):"
        )
        for line in body[:12]:
            print("    " + re.sub(r"/\S*/site-packages/", "", line.strip())[:150])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="tiny,mlp")
    p.add_argument("--section", default="all", help=f"all, or one of {SECTIONS}")
    args = p.parse_args()
    sections = SECTIONS if args.section == "all" else tuple(args.section.split(","))
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    for name in args.models.split(","):
        w = WORKLOADS[name]
        for section in sections:
            print(f"\n[{name}] {section}")
            globals()[section](w)


if __name__ == "__main__":
    main()
