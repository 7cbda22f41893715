"""Load many hostile artefacts in one process, under an audit hook, and report.

Usage: python hostile_worker.py INDEX.json  (prints one JSON report on stdout)

Everything is imported and every loader is warmed up on the valid files first;
then `sys.addaudithook` is installed, so any later attempt to run a command,
spawn or fork a process, unpickle, unmarshal, compile or exec code, open a
socket, or open, list, rename or delete any file other than the artefact being
loaded is blocked and recorded (read-only opens of imported modules' own `.py`
sources, which `linecache` reads when JAX formats a traceback or a warning, are
allowed and listed). Peak memory (`ru_maxrss`) is reported too.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import hostile  # noqa: E402
import numpy as np  # noqa: E402

import funkeras.errors as errors  # noqa: E402
from funkeras.saving import checkpoints, export  # noqa: E402
from funkeras.saving import format as fmt  # noqa: E402

BLOCKED_PREFIXES = (
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.listdir",
    "os.scandir",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.utime",
    "shutil.",
    "subprocess.",
    "pty.",
    "pickle.",
    "marshal.",
    "socket.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "webbrowser.",
    "ctypes.",
    "compile",
    "exec",
    "code.__new__",
    "function.__new__",
    "sys._getframe",
    "builtins.input",
    "import",
)


def _module_sources() -> set[str]:
    return {getattr(m, "__file__", None) or "" for m in list(sys.modules.values())}


WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Guard:
    def __init__(self) -> None:
        self.allowed: str | None = None
        self.violations: list[str] = []
        self.library_reads: list[str] = []
        self.active = False

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            if isinstance(path, int):
                return
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & WRITE_FLAGS
            )
            if writes:
                self._block(f"open{(os.fspath(path), mode, flags)}")
            path = os.fspath(path)
            if path == self.allowed:
                return
            if path.endswith(".py") and path in _module_sources():
                # The source of an imported module, read by linecache when JAX
                # formats a traceback or a warning: not artefact-driven access.
                self.library_reads.append(path)
                return
            self._block(f"open{(os.fspath(path), mode, flags)}")
        elif event.startswith(BLOCKED_PREFIXES):
            self._block(f"{event}{str(args)[:200]}")

    def _block(self, what: str) -> None:
        self.violations.append(what)
        raise PermissionError(f"blocked by the test's audit hook: {what}")


def loaders(valid: dict[str, str]) -> dict[str, object]:
    model = hostile.reference_model()
    like = hostile.checkpoint_tree()
    config = hostile.reference_config()
    return {
        "model": lambda p: fmt.load_model(p),
        "weights": lambda p: fmt.load_weights(model, p),
        "checkpoint": lambda p: checkpoints.restore_checkpoint(
            p, like, model_config=config
        ),
        "export": lambda p: export.load_exported(p),
        # Keras-written files of `reference_model()`'s architecture.
        "keras_model": lambda p: fmt.load_model(p),
        "keras_weights": lambda p: fmt.load_weights(model, p),
    }


def main() -> None:
    with open(sys.argv[1]) as f:
        index = json.load(f)
    load = loaders(index["valid"])
    warm = {}
    for target, path in index["valid"].items():
        try:
            load[target](path)
            warm[target] = "ok"
        except Exception as e:  # reported: the valid files must load
            warm[target] = f"{type(e).__name__}: {e}"
    # Walk a few refusals of every category once, so lazy imports happen now.
    seen: set[str] = set()
    for item in index["items"]:
        category = item["name"].split("/")[0]
        if category not in seen:
            seen.add(category)
            try:
                load[item["target"]](item["file"])
            except Exception:
                pass
    np.asarray(0)
    guard = Guard()
    sys.addaudithook(guard)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    guard.active = True
    results = []
    start = time.perf_counter()
    for item in index["items"]:
        guard.allowed = item["file"]
        before = len(guard.violations)
        t0 = time.perf_counter()
        try:
            load[item["target"]](item["file"])
            outcome, message = "accepted", ""
        except Exception as e:
            outcome, message = type(e).__name__, str(e)
            expected = getattr(errors, item["expect"])
            if not isinstance(e, expected):
                outcome = f"wrong:{outcome}"
        results.append(
            {
                "name": item["name"],
                "outcome": outcome,
                "expect": item["expect"],
                "match": item["match"],
                "message": message[:600],
                "matched": item["match"] is None or item["match"] in message,
                "violations": guard.violations[before:],
                "seconds": round(time.perf_counter() - t0, 4),
            }
        )
    guard.active = False
    report = {
        "warm": warm,
        "results": results,
        "base_rss_kb": base_rss,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "seconds": time.perf_counter() - start,
        "library_reads": sorted(set(guard.library_reads)),
    }
    sys.stdout.write(json.dumps(report))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
