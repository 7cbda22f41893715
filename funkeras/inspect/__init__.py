"""Looking inside a model: its static graph, its compiled programs, its values.

- `summary_text` (behind `model.summary()`), with optional per-layer FLOPs and
  bytes from XLA's cost analysis; `plot_model`/`model_to_dot` draw the graph.
- `compiled_text` gives the jaxpr / StableHLO / HLO of the predict or train
  step; `compile_events` and `compile_report` show what was compiled, how
  often, and what it cost.
- `capture` returns every layer's output (and gradient) for a batch in any
  execution mode; `forward_hooks` calls a function on each layer's output
  during `fit`/`predict` (eager and layerwise); `executor` gives the layerwise
  executor holding the last step's per-layer values.
- `compare_executions` takes one training step in each mode and names the
  first layer where they part.
"""

from funkeras.inspect.capture import (
    Captured,
    capture,
    executor,
    forward_hooks,
    layer_names,
)
from funkeras.inspect.compare import (
    Divergence,
    ExecutionComparison,
    LayerDifference,
    compare_executions,
)
from funkeras.inspect.compiled import (
    CompileEvents,
    CompileReport,
    CompileRow,
    compile_events,
    compile_report,
    compiled_text,
)
from funkeras.inspect.plot import model_to_dot, plot_model
from funkeras.inspect.summary import layer_costs, readable_memory_size, summary_text

__all__ = [
    "summary_text",
    "readable_memory_size",
    "layer_costs",
    "plot_model",
    "model_to_dot",
    "compiled_text",
    "compile_events",
    "compile_report",
    "CompileEvents",
    "CompileReport",
    "CompileRow",
    "capture",
    "Captured",
    "layer_names",
    "forward_hooks",
    "executor",
    "compare_executions",
    "ExecutionComparison",
    "LayerDifference",
    "Divergence",
]
