"""Kill savers at many points; the file on disk must always be a complete save.

Usage: python crash_driver.py DIR   (writes DIR/report.json, then saves in a loop
until killed: the test kills this process too, mid-`save_model`).

Phase 1 forks writer processes from this warmed-up process (no JAX runs in the
forks: the archive bytes are computed first), and
- SIGKILLs each one after a random delay while it saves two models alternately
  with the same `atomic_write` that `save_model` uses;
- makes others SIGKILL themselves at injected points: after each chunk written,
  before the `fsync`, before the `os.replace`, and after it (before the
  directory `fsync`).
After each kill the target must be byte-for-byte one of the two complete saves,
the previous one for kills before the rename.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

import funkeras as fk  # noqa: E402
from funkeras.saving import archive  # noqa: E402
from funkeras.saving import format as fmt  # noqa: E402

KILLS = 40


def model(init: str):
    return fk.Sequential(
        [
            fk.Input(shape=(3,)),
            fk.layers.Dense(64, kernel_initializer=init),
            fk.layers.Dense(2),
        ],
        seed=0,
    )


def chunks_of(data: bytes) -> list[bytes]:
    members = [
        (name, bytes(body))
        for name, body in archive.read_archive(
            data, kind="model", required={"config.json", "weights.safetensors"}
        ).items()
    ]
    return archive.build_archive("model", members)


def in_child(body) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            body()
        finally:
            os._exit(0)
    return pid


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    out_dir = sys.argv[1]
    target = os.path.join(out_dir, "m.fkz")
    models = [model("ones"), model("zeros")]
    saves = []
    for i, m in enumerate(models):
        path = os.path.join(out_dir, f"ref{i}.fkz")
        fmt.save_model(m, path)
        with open(path, "rb") as f:
            saves.append(f.read())
    chunks = [chunks_of(s) for s in saves]
    assert [b"".join(map(bytes, c)) for c in chunks] == saves
    archive.atomic_write(target, chunks[0])
    rng = random.Random(0)
    report = {"random_kills": [], "injected": [], "temp_files_seen": 0}

    def current() -> int:
        with open(target, "rb") as f:
            data = f.read()
        return saves.index(data) if data in saves else -1

    for _ in range(KILLS):

        def loop() -> None:
            i = 1
            while True:
                archive.atomic_write(target, chunks[i % 2])
                i += 1

        pid = in_child(loop)
        time.sleep(rng.uniform(0, 0.02))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        report["random_kills"].append(current())
        report["temp_files_seen"] += sum(
            n.endswith(".tmp") for n in os.listdir(out_dir)
        )

    stages = [f"after-chunk-{k}" for k in range(len(chunks[0]))]
    stages += ["before-fsync", "before-replace", "after-replace"]
    for stage in stages:
        before = current()
        new = 1 - before

        def save(stage=stage, new=new) -> None:
            if stage.startswith("after-chunk-"):
                k = int(stage.rsplit("-", 1)[1])

                def gen():
                    for i, chunk in enumerate(chunks[new]):
                        yield chunk
                        if i == k:
                            die()

                archive.atomic_write(target, gen())
                return
            if stage == "before-fsync":
                os.fsync = lambda fd: die()
            elif stage == "before-replace":
                os.replace = lambda a, b: die()
            else:
                archive._fsync_directory = lambda d: die()
            archive.atomic_write(target, chunks[new])

        pid = in_child(save)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        want = new if stage == "after-replace" else before
        report["injected"].append(
            {"stage": stage, "killed": killed, "ok": current() == want}
        )

    loaded = fmt.load_model(target)
    kernel = np.asarray(loaded.params["dense"]["kernel"])
    report["final_load"] = float(kernel[0, 0]) in (0.0, 1.0)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f)
    sys.stdout.write("phase2\n")
    sys.stdout.flush()
    i = 0
    while True:  # killed by the test, in the middle of some save_model
        fmt.save_model(models[i % 2], os.path.join(out_dir, "live.fkz"))
        i += 1


if __name__ == "__main__":
    main()
