"""`python -m funkeras.bench`: funkeras' execution modes against hand-written JAX.

Runs the benchmark workloads (linear regression, a 784-512-512-10 MLP, a small
CNN, a tiny 16-32-1 MLP) on generated data, in every execution mode (jit, jit
with `steps_per_execution`, eager, layerwise), against hand-written JAX loops
timed in the same process in alternating rounds, and prints a table: first
step (compile) time, median step time, samples per second, the ratio to the
hand-written `jax.jit` step and to funkeras' jit mode, compile counts and the
memory held. `--json`, `--csv`, `--markdown` and `--png` write the results;
`--peers` adds other libraries (each in its own process) and `--sweep` a
width/depth sweep of MLPs (compile time against step time, eager against jit).
`--distributed` times the data-parallel step on simulated CPU devices against a
hand-written `NamedSharding` step, in its own process (`funkeras.bench.distributed`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from funkeras.bench import report
from funkeras.bench.distributed import format_distributed, run_distributed
from funkeras.bench.peers import PEERS, format_peers, run_peers
from funkeras.bench.runner import MODES, run_workload
from funkeras.bench.sweep import format_sweep, run_sweep
from funkeras.bench.workloads import DEFAULT_WORKLOADS, WORKLOADS, get_workload

__all__ = ["main", "build_parser", "run"]

_QUICK = dict(steps=8, eager_steps=2, repeats=2, spe=4, rows_steps=8)


def _names(kind: str, valid: Sequence[str]) -> Any:
    """An argparse type: a comma-separated list of names, each checked."""

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        bad = [n for n in names if n not in valid]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(map(repr, bad)) or repr(text)}; "
                f"valid {kind}s: {', '.join(valid)}"
            )
        return names

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of `python -m funkeras.bench`."""
    p = argparse.ArgumentParser(
        prog="python -m funkeras.bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--models",
        type=_names("model", list(WORKLOADS)),
        default=list(DEFAULT_WORKLOADS),
        help=f"comma-separated workloads, from: {', '.join(WORKLOADS)} (the "
        "sequence workloads lstm and transformer run only when named)",
    )
    p.add_argument(
        "--modes",
        type=_names("mode", list(MODES)),
        default=list(MODES),
        help=f"comma-separated funkeras modes, from: {', '.join(MODES)} "
        "(jit-spe is jit with --spe steps per execution)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="rows per step (default: each workload's own)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps per timed round in jit modes (default: per workload)",
    )
    p.add_argument(
        "--eager-steps",
        type=int,
        default=None,
        help="steps per timed round in eager/layerwise modes",
    )
    p.add_argument(
        "--rows",
        type=int,
        default=None,
        help="rows of generated data (default: per workload)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed rounds per variant, the median is reported "
        "(default: 5, 3 for the CNN)",
    )
    p.add_argument(
        "--spe", type=int, default=32, help="steps_per_execution K of the jit-spe mode"
    )
    p.add_argument(
        "--optimizer",
        choices=("optax", "keras"),
        default="optax",
        help="funkeras' optimizer: the same optax transform as the "
        "hand-written loop, or funkeras' Keras-named factory",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and few rounds (seconds; for tests)",
    )
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--csv", metavar="PATH", help="write the rows as CSV")
    p.add_argument("--markdown", metavar="PATH", help="write the tables as Markdown")
    p.add_argument(
        "--png",
        metavar="PATH",
        help="write a bar chart of the ratios (needs matplotlib)",
    )
    p.add_argument(
        "--peers",
        nargs="?",
        const=",".join(PEERS),
        default=None,
        type=_names("peer", list(PEERS)),
        help=f"also time other libraries, each in its own process "
        f"(default all: {', '.join(PEERS)}); missing ones are skipped",
    )
    p.add_argument(
        "--sweep",
        action="store_true",
        help="add a width/depth sweep of MLPs (jit against eager)",
    )
    p.add_argument(
        "--distributed",
        nargs="?",
        const=8,
        default=None,
        type=int,
        metavar="DEVICES",
        help="also time the DataParallel MLP step on DEVICES simulated CPU devices "
        "(default 8) against a hand-written NamedSharding jit step",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def run(args: argparse.Namespace, argv: Sequence[str] | None) -> dict[str, Any]:
    """Run the benchmark described by parsed `args`; return the JSON payload."""
    import jax  # noqa: F401 - imported before timing starts

    def log(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    env = report.environment(list(argv) if argv is not None else None)
    log(
        f"funkeras.bench on {env['device']} ({env['cpu']}, {env['cpu_count']} cores); "
        f"jax {env['versions']['jax']}, optax {env['versions']['optax']}"
    )
    quick = _QUICK if args.quick else {}
    spe = args.spe if not args.quick or args.spe != 32 else quick["spe"]
    repeats = args.repeats or quick.get("repeats")
    started = time.perf_counter()
    results: list[Any] = []
    workloads: list[dict[str, Any]] = []
    for name in args.models:
        workload = get_workload(name)
        batch = args.batch_size or workload.batch_size
        steps = args.steps or quick.get("steps")
        rows = args.rows or (batch * quick["rows_steps"] if quick else None)
        log(f"{name}: {workload.title}")
        rows_out, facts = run_workload(
            workload,
            modes=tuple(args.modes),
            batch_size=args.batch_size,
            steps=steps,
            eager_steps=args.eager_steps or quick.get("eager_steps"),
            rows=rows,
            repeats=repeats,
            spe=spe,
            optimizer=args.optimizer,
            log=log,
        )
        results.extend(rows_out)
        workloads.append(facts)
    targets = report.evaluate_targets(results, spe)
    payload: dict[str, Any] = {
        "environment": env,
        "settings": {
            "models": args.models,
            "modes": args.modes,
            "spe": spe,
            "repeats": repeats,
            "optimizer": args.optimizer,
            "quick": bool(args.quick),
        },
        "workloads": workloads,
        "results": results,
        "targets": targets,
    }
    print(
        f"\nfunkeras.bench  {env['device']}  jax {env['versions']['jax']}  "
        f"optax {env['versions']['optax']}  ({env['cpu_count']} cores: {env['cpu']})"
    )
    print(report.format_table(results))
    if targets:
        print("\nTargets:")
        print(report.format_targets(targets))
    if args.sweep:
        log("sweep: MLP width x depth, funkeras jit against eager")
        sweep = run_sweep(
            quick=bool(args.quick), repeats=max(2, min(repeats or 3, 3)), log=log
        )
        payload["sweep"] = sweep
        print("\nSweep (MLP, batch 64, Adam): compile time against step time")
        print(format_sweep(sweep))
    if args.peers:
        peers = run_peers(
            args.peers,
            args.models,
            batch_size=args.batch_size,
            quick=bool(args.quick),
            repeats=repeats or 3,
            log=log,
        )
        payload["peers"] = peers
        print(
            "\nPeers (each in its own process, against a hand-written jit step "
            "timed alternately in that process)"
        )
        print(format_peers(peers))
    if args.distributed:
        dist = run_distributed(
            args.distributed,
            "mlp",
            rounds=repeats or 5,
            steps=8 if args.quick else 32,
            log=log,
        )
        payload["distributed"] = dist
        print("\nDistributed (own process, simulated devices)")
        print(format_distributed(dist))
    payload["environment"]["load_average_end"] = _loadavg()
    payload["environment"]["wall_s"] = round(time.perf_counter() - started, 1)
    print(
        f"\n{env['command']}  ({payload['environment']['wall_s']} s; load average "
        f"{_fmt_load(env['load_average'])} at start, "
        f"{_fmt_load(payload['environment']['load_average_end'])} at end)"
    )
    if args.json:
        report.write_json(args.json, payload)
    if args.csv:
        report.write_csv(args.csv, results)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown_report(payload))
    if args.png:
        report.write_png(args.png, results, f"funkeras.bench on {env['device']}")
    return payload


def markdown_report(payload: dict[str, Any]) -> str:
    """The run as Markdown: environment, table, targets, sweep and peers."""
    env = payload["environment"]
    v = env["versions"]
    lines = [
        f"Machine: {env['cpu']} ({env['cpu_count']} cores), {env['platform']}; "
        f"device `{env['device']}`; Python {env['python']}, jax {v['jax']}, "
        f"jaxlib {v['jaxlib']}, optax {v['optax']}, numpy {v['numpy']}; "
        f"{env['date_utc']}; load average {_fmt_load(env['load_average'])} at start.",
        "",
        f"Command: `{env['command']}`",
        "",
        report.markdown_table(payload["results"]),
    ]
    if payload.get("targets"):
        lines += [
            "",
            "Targets:",
            "",
            "```",
            report.format_targets(payload["targets"]),
            "```",
        ]
    if payload.get("sweep"):
        lines += ["", "Sweep:", "", "```", format_sweep(payload["sweep"]), "```"]
    if payload.get("peers"):
        lines += ["", "Peers:", "", "```", format_peers(payload["peers"]), "```"]
    if payload.get("distributed"):
        text = format_distributed(payload["distributed"])
        lines += ["", "Distributed:", "", "```", text, "```"]
    return "\n".join(lines) + "\n"


def _loadavg() -> list[float] | None:
    import os

    try:
        return list(os.getloadavg())
    except OSError:
        return None


def _fmt_load(load: list[float] | None) -> str:
    return "n/a" if not load else "/".join(f"{x:.1f}" for x in load)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m funkeras.bench`; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "eager_steps", "rows", "repeats", "spe"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.png:
        report.require_matplotlib()
    run(args, argv)
    return 0
