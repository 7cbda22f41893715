"""The benchmark harness behind `python -m funkeras.bench`.

It times funkeras' `fit` in each execution mode (`"jit"`, `"jit"` with
`steps_per_execution`, `"eager"`, `"layerwise"`) against hand-written JAX
training loops on the same networks, data, optimizer and batch, in one
process and in alternating rounds, and reports compile time, median step
time, throughput, ratios, compile counts and memory. Other libraries can be
added side by side (`--peers`, each in its own process).

Example:
    >>> from funkeras.bench import WORKLOADS, MODES
    >>> sorted(WORKLOADS)
    ['cnn', 'linear', 'lstm', 'mlp', 'tiny']
    >>> MODES
    ('jit', 'jit-spe', 'eager', 'layerwise')
"""

from funkeras.bench.cli import build_parser, main, run
from funkeras.bench.runner import MODES, Result, run_workload
from funkeras.bench.workloads import WORKLOADS, Workload, get_workload

__all__ = [
    "MODES",
    "WORKLOADS",
    "Result",
    "Workload",
    "build_parser",
    "get_workload",
    "main",
    "run",
    "run_workload",
]
