"""The layer graph as a picture: DOT text always, SVG/PNG/PDF through Graphviz."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Any

import jax

from funkeras._validation import shape_str
from funkeras.graph import Graph, is_symbolic, match_inputs

__all__ = ["model_to_dot", "plot_model"]

_RENDERED = ("svg", "png", "pdf")


def _quote(text: str) -> str:
    return (
        '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    )


class _Dot:
    def __init__(
        self,
        show_shapes: bool,
        show_dtype: bool,
        show_layer_names: bool,
        show_layer_activations: bool,
        show_trainable: bool,
        expand_nested: bool,
    ) -> None:
        self.show_shapes = show_shapes
        self.show_dtype = show_dtype
        self.show_layer_names = show_layer_names
        self.show_layer_activations = show_layer_activations
        self.show_trainable = show_trainable
        self.expand_nested = expand_nested
        self.lines: list[str] = []
        self.count = 0

    def node_id(self) -> str:
        self.count += 1
        return f"n{self.count}"

    def label(self, layer: Any) -> str:
        kind = type(layer).__name__
        parts = [f"{layer.name} ({kind})" if self.show_layer_names else kind]
        activation = getattr(layer, "activation", None)
        if self.show_layer_activations and isinstance(activation, str):
            parts.append(f"activation: {activation}")
        if self.show_trainable:
            parts.append(f"trainable: {getattr(layer, 'trainable', True)}")
        return "\n".join(parts)

    def edge(self, src: str, dst: str, tensor: Any, indent: str) -> None:
        bits = []
        if self.show_shapes:
            bits.append(shape_str(tensor.shape))
        if self.show_dtype:
            bits.append(str(tensor.dtype))
        attr = f" [label={_quote(' '.join(bits))}]" if bits else ""
        self.lines.append(f"{indent}{src} -> {dst}{attr};")

    def graph(
        self, graph: Graph, producers: dict[int, str] | None, indent: str
    ) -> dict[int, str]:
        """Draw `graph`'s nodes; return the node id producing each tensor."""
        made: dict[int, str] = {}
        ids: dict[int, str] = {}
        in_tensors = jax.tree.leaves(graph.inputs, is_leaf=is_symbolic)
        for t, layer in zip(in_tensors, graph.input_layers, strict=True):
            nid = self.node_id()
            self.lines.append(f"{indent}{nid} [label={_quote(self.label(layer))}];")
            made[t.id] = nid
            if producers is not None and t.id in producers:
                self.edge(producers[t.id], nid, t, indent)
        for node in graph.nodes:
            layer = node.layer
            sub = getattr(layer, "graph", None)
            if self.expand_nested and isinstance(sub, Graph):
                cluster = self.node_id()
                self.lines.append(f"{indent}subgraph cluster_{cluster} {{")
                self.lines.append(f"{indent}  label={_quote(self.label(layer))};")
                fed = jax.tree.leaves(
                    match_inputs(sub, node.inputs, self.label(layer)),
                    is_leaf=is_symbolic,
                )
                inner_in = jax.tree.leaves(sub.inputs, is_leaf=is_symbolic)
                # Inner inputs are fed by the outer producers (matched as `apply` does).
                outer = {i.id: made[o.id] for o, i in zip(fed, inner_in, strict=True)}
                inner = self.graph(sub, outer, indent + "  ")
                self.lines.append(f"{indent}}}")
                inner_out = jax.tree.leaves(sub.outputs, is_leaf=is_symbolic)
                for t, it in zip(node.output_tensors, inner_out, strict=True):
                    made[t.id] = inner[it.id]
                continue
            nid = ids.get(id(layer))
            if nid is None:
                nid = self.node_id()
                ids[id(layer)] = nid
                self.lines.append(f"{indent}{nid} [label={_quote(self.label(layer))}];")
            for t in node.input_tensors:
                self.edge(made[t.id], nid, t, indent)
            for t in node.output_tensors:
                made[t.id] = nid
        return made


def model_to_dot(
    model: Any,
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
) -> str:
    """The model's layer graph as Graphviz DOT text (Keras' `model_to_dot` options).

    One box per layer (a layer called several times is one box with several
    edges), one edge per tensor, labelled with its shape (batch as `None`) when
    `show_shapes`.

    Example:
        >>> import funkeras as fk
        >>> model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])
        >>> print(model_to_dot(model, show_shapes=True).splitlines()[-2])
          n1 -> n2 [label="(None, 3)"];
    """
    graph = getattr(model, "graph", None)
    if not isinstance(graph, Graph):
        raise ValueError(
            f"plot_model: {model!r} is not built; build it with "
            "`model.build(input_shape)` or an `fk.Input` first."
        )
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(
            f"plot_model: `rankdir` must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}."
        )
    dot = _Dot(
        show_shapes,
        show_dtype,
        show_layer_names,
        show_layer_activations,
        show_trainable,
        expand_nested,
    )
    dot.graph(graph, None, "  ")
    head = [
        f"digraph {_quote(model.name or 'model')} {{",
        f"  graph [rankdir={rankdir}, dpi={int(dpi)}];",
        '  node [shape=box, style="rounded", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    return "\n".join([*head, *dot.lines, "}"]) + "\n"


def plot_model(
    model: Any,
    to_file: str = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
) -> str:
    """Draw the model's layer graph into `to_file`; return the DOT text.

    A `.dot` or `.gv` file gets the DOT text itself (no dependency). `.svg`,
    `.png` and `.pdf` are rendered by Graphviz's `dot` program, which must be
    installed (`apt install graphviz`, `brew install graphviz`, `conda install
    graphviz`). The options are Keras' `plot_model` options.

    Raises:
        RuntimeError: for an image format when Graphviz's `dot` is not found.
        ValueError: for an unknown file extension.
    """
    text = model_to_dot(
        model,
        show_shapes=show_shapes,
        show_dtype=show_dtype,
        show_layer_names=show_layer_names,
        rankdir=rankdir,
        expand_nested=expand_nested,
        dpi=dpi,
        show_layer_activations=show_layer_activations,
        show_trainable=show_trainable,
    )
    path = os.fspath(to_file)
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext in ("dot", "gv"):
        _write_atomic(path, text.encode())
        return text
    if ext not in _RENDERED:
        raise ValueError(
            f"plot_model: cannot write {path!r}; use a .dot/.gv file (DOT text) or "
            f"{', '.join('.' + e for e in _RENDERED)} (rendered by Graphviz)."
        )
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(
            f"plot_model: writing {path!r} needs Graphviz's `dot` program, which is "
            "not on PATH. Install Graphviz (apt install graphviz / brew install "
            "graphviz / conda install graphviz), or write DOT text with a '.dot' file "
            "name."
        )
    done = subprocess.run(
        [exe, f"-T{ext}"],
        input=text.encode(),
        capture_output=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"plot_model: Graphviz failed to render {path!r}: "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    _write_atomic(path, done.stdout)
    return text


def _write_atomic(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".plot_model-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
