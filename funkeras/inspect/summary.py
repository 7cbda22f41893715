"""The summary table: layers, output shapes, parameter counts, and optional costs."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from funkeras._validation import shape_str, to_snake_case
from funkeras.graph import is_symbolic
from funkeras.layers.base import InputLayer, add_batch_axis

__all__ = ["summary_text", "readable_memory_size", "layer_costs"]


def readable_memory_size(size: float) -> str:
    """Bytes as Keras prints them: `2.75 KB` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _readable_count(value: float) -> str:
    """`1234567` as `1.23 M` (powers of 1000), for FLOP counts."""
    for unit in ("", " K", " M", " G", " T"):
        if abs(value) < 1000:
            return f"{value:.0f}{unit}" if unit == "" else f"{value:.2f}{unit}"
        value /= 1000
    return f"{value:.2f} P"


def _count(tree: Any) -> tuple[int, int]:
    leaves = jax.tree.leaves(tree)
    n = sum(int(np.prod(a.shape)) for a in leaves)
    nbytes = sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in leaves)
    return n, nbytes


def _shape_text(tensors: Any) -> str:
    leaves = jax.tree.leaves(tensors, is_leaf=is_symbolic)
    shapes = [shape_str(t.shape) for t in leaves]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _cell(text: str, width: int, right: bool = False) -> str:
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def _wrap(text: str, width: int) -> list[str]:
    """Split `text` into lines of at most `width` at spaces, as Keras' table does.

    A single word longer than `width` keeps its own line (`_cell` then ends it
    with an ellipsis), so `batch_normalization (BatchNormalization)` shows both
    the name and the type instead of losing the type to truncation.
    """
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def layer_costs(model: Any, batch_size: int = 1) -> dict[str, dict[str, float]]:
    """XLA's cost analysis of each layer's inference call: FLOPs and bytes accessed.

    Each layer's `apply` (first call node, `training=False`) is compiled alone for
    a batch of `batch_size` and XLA's `cost_analysis()` is read. A nested model
    counts as one layer (its whole graph).

    Args:
        model: A built model.
        batch_size: The batch the costs are computed for (1: per example).

    Returns:
        `{layer_name: {"flops": float, "bytes": float}}` in graph order.

    Example:
        >>> import funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(4,)), fk.layers.Dense(3)])
        >>> layer_costs(model)["dense"]["flops"]  # 4 x 3 multiply-adds + bias
        27.0
    """
    graph = model.graph
    if graph is None:
        raise ValueError(
            f"{model!r}: layer costs need a built model; build it with "
            "`model.build(input_shape)` or an `fk.Input`."
        )
    params, state = model.param_shapes()
    costs: dict[str, dict[str, float]] = {}
    for layer in graph.layers:
        node = graph.layer_nodes(layer)[0]
        spec = jax.tree.map(lambda t: t.spec, node.inputs, is_leaf=is_symbolic)
        x = add_batch_axis(spec, batch_size)

        def run(p: Any, s: Any, x: Any, layer: Any = layer) -> Any:
            return layer.apply(p, s, x, training=False)[0]

        compiled = (
            jax.jit(run).lower(params[layer.name], state[layer.name], x).compile()
        )
        analysis = compiled.cost_analysis()
        if isinstance(analysis, list | tuple):  # older JAX: one dict per program
            analysis = analysis[0] if analysis else {}
        analysis = analysis or {}
        costs[layer.name] = {
            "flops": float(analysis.get("flops", 0.0)),
            "bytes": float(analysis.get("bytes accessed", 0.0)),
        }
    return costs


def summary_text(
    model: Any,
    line_length: int | None = None,
    *,
    show_cost: bool = False,
    cost_batch_size: int = 1,
) -> str:
    """The text of `model.summary()`: Keras 3's table of layers and totals.

    Columns: layer name and type, output shape (batch as `None`), parameter count,
    and, for graphs that branch or merge, the inputs each layer is connected to.

    Args:
        model: The model.
        line_length: Total width; the first column takes what is added.
        show_cost: Add each layer's FLOPs and bytes accessed, from XLA's cost
            analysis of the layer compiled alone (see `layer_costs`), and totals.
        cost_batch_size: The batch the costs are computed for (1: per example).

    Example:
        >>> import funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(4,)), fk.layers.Dense(3)])
        >>> print(summary_text(model, show_cost=True).splitlines()[-1])
        ... # doctest: +ELLIPSIS
         Total FLOPs: 27 (bytes accessed: ... B), batch of 1
    """
    graph = model.graph
    # Unnamed, a model is titled as it would be named inside another model
    # (`sequential`, `model`), the way Keras titles `Sequential()` "sequential".
    name = model.name or to_snake_case(type(model).__name__)
    if graph is None:
        return (
            f'Model: "{name}"\nThis model has not been built yet. Build it with '
            "`model.build(input_shape)`, an `fk.Input`, or by calling it on data."
        )
    params, state = model.param_shapes()
    costs = layer_costs(model, cost_batch_size) if show_cost else {}
    sequential = type(model).__name__ == "Sequential"
    branched = not sequential and (
        len(graph.input_layers) > 1
        or any(len(n.input_tensors) > 1 for n in graph.nodes)
        or len(jax.tree.leaves(graph.outputs, is_leaf=is_symbolic)) > 1
    )
    widths = [33, 24, 15] + ([12, 12] if show_cost else []) + ([30] if branched else [])
    if line_length is not None and line_length > sum(widths) + len(widths) + 1:
        widths[0] += line_length - (sum(widths) + len(widths) + 1)
    headers = ["Layer (type)", "Output Shape", "Param #"]
    if show_cost:
        headers += ["FLOPs", "Bytes"]
    if branched:
        headers.append("Connected to")
    numeric = {2, 3, 4} if show_cost else {2}

    def row(cells: list[str]) -> str:
        wrapped = [_wrap(c, w - 2) for c, w in zip(cells, widths, strict=True)]
        height = max(len(lines) for lines in wrapped)
        return "\n".join(
            "│"
            + "│".join(
                " "
                + _cell(lines[k] if k < len(lines) else "", w - 2, right=(i in numeric))
                + " "
                for i, (lines, w) in enumerate(zip(wrapped, widths, strict=True))
            )
            + "│"
            for k in range(height)
        )

    def rule(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * w for w in widths) + right

    rows: list[list[str]] = []
    if not sequential:
        in_tensors = jax.tree.leaves(graph.inputs, is_leaf=is_symbolic)
        for layer, t in zip(graph.input_layers, in_tensors, strict=True):
            rows.append(
                [f"{layer.name} (InputLayer)", shape_str(t.shape), "0"]
                + (["0", "0"] if show_cost else [])
                + (["-"] if branched else [])  # Keras: an Input connects to nothing
            )
    for layer in graph.layers:
        nodes = graph.layer_nodes(layer)
        n, _ = _count((params[layer.name], state[layer.name]))
        out = _shape_text(nodes[0].outputs) if len(nodes) == 1 else "multiple"
        cells = [f"{layer.name} ({type(layer).__name__})", out, f"{n:,}"]
        if show_cost:
            cost = costs[layer.name]
            cells += [
                _readable_count(cost["flops"]),
                readable_memory_size(cost["bytes"]),
            ]
        if branched:
            # Keras' `layer[node_index][tensor_index]`: which call of the source
            # layer produced the tensor, and which of that call's outputs it is.
            sources = []
            for node in nodes:
                for t in node.input_tensors:
                    src = t.node.layer
                    calls = (
                        [] if isinstance(src, InputLayer) else graph.layer_nodes(src)
                    )
                    node_index = next(
                        (k for k, call in enumerate(calls) if call is t.node), 0
                    )
                    sources.append(f"{src.name}[{node_index}][{t.index}]")
            cells.append(", ".join(sources) or "-")
        rows.append(cells)

    lines = [
        f'Model: "{name}"',
        rule("┏", "┳", "┓", "━"),
        "┃"
        + "┃".join(
            " " + _cell(h, w - 2, right=(i in numeric)) + " "
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
        + "┃",
        rule("┡", "╇", "┩", "━"),
    ]
    for i, cells in enumerate(rows):
        lines.append(row(cells))
        if i < len(rows) - 1:
            lines.append(rule("├", "┼", "┤", "─"))
    lines.append(rule("└", "┴", "┘", "─"))

    total, total_bytes = _count((params, state))
    mask = model.trainable_mask()
    trainable = [
        p
        for p, on in zip(jax.tree.leaves(params), jax.tree.leaves(mask), strict=True)
        if on
    ]
    t_count, t_bytes = _count(trainable)
    lines += [
        f" Total params: {total:,} ({readable_memory_size(total_bytes)})",
        f" Trainable params: {t_count:,} ({readable_memory_size(t_bytes)})",
        f" Non-trainable params: {total - t_count:,} "
        f"({readable_memory_size(total_bytes - t_bytes)})",
    ]
    if show_cost:
        flops = sum(c["flops"] for c in costs.values())
        nbytes = sum(c["bytes"] for c in costs.values())
        lines.append(
            f" Total FLOPs: {_readable_count(flops)} (bytes accessed: "
            f"{readable_memory_size(nbytes)}), batch of {cost_batch_size}"
        )
    return "\n".join(lines)
