"""The width/depth sweep: where compile time and step time, eager and jit, cross.

MLPs of several widths and depths (256 inputs, 10 classes, batch 64, Adam) run
in funkeras' jit and eager modes (and layerwise when it is available) against
the hand-written jit step. For each model the sweep reports the first step
(compile) time and the steady step time of each mode, and the break-even
point: the number of steps after which jit (compile, then fast steps) has
taken less wall time than eager (a cheap first step, then slow steps),
`(first_jit - first_eager) / (step_eager - step_jit)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from funkeras.bench.runner import run_workload
from funkeras.bench.workloads import mlp_workload

__all__ = ["run_sweep", "format_sweep", "SWEEP_WIDTHS", "SWEEP_DEPTHS"]

SWEEP_WIDTHS = (32, 256, 1024)
SWEEP_DEPTHS = (1, 3, 6)
_INPUTS, _CLASSES, _BATCH = 256, 10, 64


def _break_even(
    first_jit: float, step_jit: float, first_eager: float, step_eager: float
) -> float | None:
    """Steps after which jit's total time is below eager's (None: never)."""
    if step_eager <= step_jit:
        return None
    return max(0.0, (first_jit - first_eager) / ((step_eager - step_jit) / 1000))


def run_sweep(
    *,
    quick: bool = False,
    repeats: int = 3,
    log: Callable[[str], None] = lambda s: None,
) -> list[dict[str, Any]]:
    """Measure the sweep; one dict per (width, depth)."""
    widths, depths = ((16, 64), (1, 2)) if quick else (SWEEP_WIDTHS, SWEEP_DEPTHS)
    out = []
    for depth in depths:
        for width in widths:
            sizes = [_INPUTS] + [width] * depth + [_CLASSES]
            name = f"mlp-{width}x{depth}"
            workload = mlp_workload(
                name,
                sizes,
                batch_size=_BATCH,
                rows=_BATCH * (8 if quick else 32),
                steps=4 if quick else 32,
                eager_steps=2 if quick else 8,
            )
            results, _ = run_workload(
                workload,
                modes=("jit", "eager", "layerwise"),
                repeats=repeats,
                hand_modes=("jit",),
                log=log,
            )
            by_mode = {(r.impl, r.mode): r for r in results}
            jit, eager = by_mode[("funkeras", "jit")], by_mode[("funkeras", "eager")]
            layerwise, hand = (
                by_mode[("funkeras", "layerwise")],
                by_mode[("hand-written", "jit")],
            )
            n_params = sum(
                a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True)
            )
            row: dict[str, Any] = {
                "model": name,
                "width": width,
                "depth": depth,
                "params": n_params,
                "jit_first_step_s": jit.first_step_s,
                "jit_step_ms": jit.step_ms,
                "eager_first_step_s": eager.first_step_s,
                "eager_step_ms": eager.step_ms,
                "layerwise_step_ms": layerwise.step_ms,
                "layerwise_status": layerwise.status
                if layerwise.status == "ok"
                else f"{layerwise.status}: {layerwise.reason}",
                "hand_jit_step_ms": hand.step_ms,
                "jit_ratio_hand": jit.ratio_hand_jit,
            }
            if jit.step_ms and eager.step_ms:
                row["eager_over_jit"] = eager.step_ms / jit.step_ms
                row["compile_in_steps"] = jit.first_step_s / (jit.step_ms / 1000)
                row["break_even_steps"] = _break_even(
                    jit.first_step_s, jit.step_ms, eager.first_step_s, eager.step_ms
                )
            out.append(row)
    return out


def format_sweep(rows: list[dict[str, Any]]) -> str:
    """The sweep as an aligned text table."""
    header = (
        "model",
        "params",
        "jit first s",
        "jit step ms",
        "eager first s",
        "eager step ms",
        "eager/jit",
        "layerwise/jit",
        "jit/hand",
        "compile=steps",
        "jit pays after",
    )
    cells = []
    for r in rows:
        lw = (
            f"{r['layerwise_step_ms'] / r['jit_step_ms']:.1f}"
            if r.get("layerwise_step_ms") and r.get("jit_step_ms")
            else "n/a"
        )
        be = r.get("break_even_steps")
        cells.append(
            (
                r["model"],
                f"{r['params']:,}",
                _f(r.get("jit_first_step_s"), ".2f"),
                _f(r.get("jit_step_ms"), ".3f"),
                _f(r.get("eager_first_step_s"), ".2f"),
                _f(r.get("eager_step_ms"), ".2f"),
                _f(r.get("eager_over_jit"), ".1f"),
                lw,
                _f(r.get("jit_ratio_hand"), ".2f"),
                _f(r.get("compile_in_steps"), ",.0f"),
                "never"
                if be is None and "eager_over_jit" in r
                else _f(be, ",.0f") + " steps"
                if be is not None
                else "-",
            )
        )
    widths = [
        max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
        for i, h in enumerate(header)
    ]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip()
        for c in cells
    ]
    return "\n".join(lines)


def _f(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)
