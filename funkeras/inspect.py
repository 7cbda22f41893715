"""Looking inside a model: the summary table and parameter accounting."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from funkeras.layers.base import InputLayer, _is_symbolic, _shape_str

__all__ = ["summary_text", "readable_memory_size"]


def readable_memory_size(size: float) -> str:
    """Bytes as Keras prints them: `2.75 KB` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _count(tree: Any) -> tuple[int, int]:
    leaves = jax.tree.leaves(tree)
    n = sum(int(np.prod(a.shape)) for a in leaves)
    nbytes = sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in leaves)
    return n, nbytes


def _shape_text(tensors: Any) -> str:
    leaves = jax.tree.leaves(tensors, is_leaf=_is_symbolic)
    shapes = [_shape_str(t.shape) for t in leaves]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _cell(text: str, width: int, right: bool = False) -> str:
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def summary_text(model: Any, line_length: int | None = None) -> str:
    """The text of `model.summary()`: Keras 3's table of layers and totals.

    Columns: layer name and type, output shape (batch as `None`), parameter count,
    and, for graphs that branch or merge, the inputs each layer is connected to.
    """
    graph = model.graph
    name = model.name or "model"
    if graph is None:
        return (
            f'Model: "{name}"\nThis model has not been built yet. Build it with '
            "`model.build(input_shape)`, an `fk.Input`, or by calling it on data."
        )
    params, state = model._param_shapes()
    sequential = type(model).__name__ == "Sequential"
    branched = not sequential and (
        len(graph.input_layers) > 1
        or any(len(n.input_tensors) > 1 for n in graph.nodes)
        or len(jax.tree.leaves(graph.outputs, is_leaf=_is_symbolic)) > 1
    )
    widths = [33, 24, 15] + ([30] if branched else [])
    if line_length is not None and line_length > sum(widths) + len(widths) + 1:
        widths[0] += line_length - (sum(widths) + len(widths) + 1)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (
        ["Connected to"] if branched else []
    )

    def row(cells: list[str]) -> str:
        return (
            "│"
            + "│".join(
                " " + _cell(c, w - 2, right=(i == 2)) + " "
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + "│"
        )

    def rule(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * w for w in widths) + right

    rows: list[list[str]] = []
    if not sequential:
        for layer in graph.input_layers:
            t = jax.tree.leaves(graph.inputs, is_leaf=_is_symbolic)[
                graph.input_layers.index(layer)
            ]
            rows.append(
                [f"{layer.name} (InputLayer)", _shape_str(t.shape), "0"]
                + ([""] if branched else [])
            )
    for layer in graph.layers:
        nodes = graph.layer_nodes(layer)
        n, _ = _count((params[layer.name], state[layer.name]))
        out = _shape_text(nodes[0].outputs) if len(nodes) == 1 else "multiple"
        cells = [f"{layer.name} ({type(layer).__name__})", out, f"{n:,}"]
        if branched:
            sources = []
            for node in nodes:
                for t in node.input_tensors:
                    src = t.node.layer
                    suffix = "" if isinstance(src, InputLayer) else f"[{t.index}]"
                    sources.append(f"{src.name}{suffix}")
            cells.append(", ".join(sources))
        rows.append(cells)

    lines = [
        f'Model: "{name}"',
        rule("┏", "┳", "┓", "━"),
        "┃"
        + "┃".join(
            " " + _cell(h, w - 2, right=(i == 2)) + " "
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
    return "\n".join(lines)
