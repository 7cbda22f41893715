#!/usr/bin/env bash
# Run funkeras' test suite and benchmark on a machine with an accelerator (GPU/TPU).
#
# Usage (from anywhere):
#   bash benchmarks/device_check.sh [extra arguments for python -m funkeras.bench]
#
# What it does:
#   1. Uses the installed JAX if it already sees an accelerator; otherwise installs
#      `jax[cuda12]` (NVIDIA GPU, found with nvidia-smi) or `jax[tpu]` (a TPU VM).
#   2. Installs funkeras (editable) and its test extra if funkeras is not importable.
#   3. Runs the test suite (`pytest -m "not slow"`) with float32 matmuls at full
#      precision (JAX_DEFAULT_MATMUL_PRECISION=highest: GPUs otherwise may use TF32,
#      which the tests' NumPy tolerances are not written for) and no preallocation
#      (several test workers share the device).
#   4. Runs the benchmark and writes benchmarks/results-<device>.json, the table as
#      benchmarks/results-<device>.md, and the test log as
#      benchmarks/results-<device>-tests.txt.
#
# Environment knobs:
#   PYTHON=python3            the interpreter (default: python3, or python)
#   SKIP_INSTALL=1            never pip install anything
#   SKIP_TESTS=1              benchmark only
#   TEST_WORKERS=4            pytest-xdist workers (0 = in process)
#   TEST_TIMEOUT=300          seconds for the test suite
#   BENCH_TIMEOUT=420         seconds for the benchmark
#   DEVICE_CHECK_ALLOW_CPU=1  run even when no accelerator is found (to try the script)
#
# Exit status: 0 when the benchmark ran and the tests passed; 1 otherwise (the
# results files are written in both cases when the benchmark ran).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
PY="${PYTHON:-$(command -v python3 || command -v python)}"
TEST_WORKERS="${TEST_WORKERS:-4}"
TEST_TIMEOUT="${TEST_TIMEOUT:-300}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-420}"

say() { printf '[device_check] %s\n' "$*" >&2; }

backend() {
  "$PY" - <<'EOF' 2>/dev/null
import jax
print(jax.default_backend())
EOF
}

current="$(backend || true)"
say "python: $PY; JAX backend now: ${current:-none}"
if [[ "$current" != "gpu" && "$current" != "tpu" && "$current" != "cuda" && "$current" != "rocm" ]]; then
  if [[ "${SKIP_INSTALL:-0}" == "1" ]]; then
    say "SKIP_INSTALL=1: not installing an accelerator build of JAX"
  elif command -v nvidia-smi >/dev/null 2>&1; then
    say "NVIDIA GPU found; installing jax[cuda12]"
    "$PY" -m pip install -q -U "jax[cuda12]" || say "pip install jax[cuda12] failed"
  elif [[ -e /dev/accel0 || -n "${TPU_NAME:-}" ]]; then
    say "TPU found; installing jax[tpu]"
    "$PY" -m pip install -q -U "jax[tpu]" || say "pip install jax[tpu] failed"
  fi
  current="$(backend || true)"
fi
if [[ "$current" == "cpu" || -z "$current" ]]; then
  if [[ "${DEVICE_CHECK_ALLOW_CPU:-0}" != "1" ]]; then
    say "no accelerator visible to JAX (backend: ${current:-none}); set DEVICE_CHECK_ALLOW_CPU=1 to run on CPU anyway"
    exit 1
  fi
  say "no accelerator: running on CPU (DEVICE_CHECK_ALLOW_CPU=1)"
fi

if ! "$PY" -c "import funkeras" >/dev/null 2>&1; then
  if [[ "${SKIP_INSTALL:-0}" == "1" ]]; then
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  else
    say "installing funkeras (editable) with its test extra"
    "$PY" -m pip install -q -e ".[test]" || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi

device="$("$PY" - <<'EOF'
import re
import jax
d = jax.devices()[0]
kind = getattr(d, "device_kind", "") or d.platform
print(re.sub(r"[^a-z0-9]+", "-", f"{d.platform}-{kind}".lower()).strip("-"))
EOF
)"
say "device: $device"
"$PY" - <<'EOF' >&2
import jax
for d in jax.devices():
    print(f"[device_check]   {d.platform} {getattr(d, 'device_kind', '?')} (id {d.id})")
EOF

status=0
tests_log="benchmarks/results-${device}-tests.txt"
if [[ "${SKIP_TESTS:-0}" != "1" ]]; then
  say "test suite (pytest -m 'not slow', ${TEST_WORKERS} workers, ${TEST_TIMEOUT} s at most) -> $tests_log"
  workers=()
  if [[ "$TEST_WORKERS" != "0" ]] && "$PY" -c "import xdist" >/dev/null 2>&1; then
    workers=(-n "$TEST_WORKERS")
  fi
  JAX_DEFAULT_MATMUL_PRECISION=highest XLA_PYTHON_CLIENT_PREALLOCATE=false \
    timeout "$TEST_TIMEOUT" "$PY" -m pytest -q -m "not slow" "${workers[@]}" \
    -p no:cacheprovider >"$tests_log" 2>&1
  rc=$?
  tail -n 3 "$tests_log" >&2
  if [[ $rc -ne 0 ]]; then
    say "tests: exit status $rc (124 = timed out); see $tests_log"
    status=1
  fi
fi

json="benchmarks/results-${device}.json"
md="benchmarks/results-${device}.md"
say "benchmark (${BENCH_TIMEOUT} s at most) -> $json, $md"
timeout "$BENCH_TIMEOUT" "$PY" -m funkeras.bench --json "$json" --markdown "$md" "$@"
rc=$?
if [[ $rc -ne 0 ]]; then
  say "benchmark: exit status $rc (124 = timed out)"
  status=1
fi
say "done (status $status)"
exit $status
