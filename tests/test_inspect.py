"""funkeras.inspect: capture, forward hooks, compare_executions, summary costs, plots,
compiled text and the compile report."""

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import funkeras as fk
from funkeras import inspect as fi
from funkeras.models.functional import graph_apply

L = fk.layers
EXECUTIONS = ("eager", "layerwise", "jit")


def branchy(seed=0):
    """A nested model, a shared layer, a branch and a merge."""
    inner = fk.Sequential(
        [fk.Input(shape=(4,)), L.Dense(4, activation="tanh", name="d")], name="inner"
    )
    inp = fk.Input(shape=(3,))
    h = L.Dense(4, activation="relu", name="first")(inp)
    shared = L.Dense(4, name="shared")
    merged = L.Add(name="merge")([shared(h), shared(inner(h))])
    out = L.Dense(2, name="out")(merged)
    return fk.Model(inp, out, seed=seed)


def data(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)).astype(np.float32), rng.normal(size=(n, 2)).astype(
        np.float32
    )


def dense(p, x, act=lambda v: v):
    return act(x @ p["kernel"] + p["bias"])


def manual_forward(p, x):
    """The model written out by hand."""
    first = dense(p["first"], x, jax.nn.relu)
    d = dense(p["inner"]["d"], first, jnp.tanh)
    s0, s1 = dense(p["shared"], first), dense(p["shared"], d)
    merged = s0 + s1
    return {
        "first": first,
        "inner/d": d,
        "inner": d,
        "shared": (s0, s1),
        "merge": merged,
        "out": dense(p["out"], merged),
    }


def assert_close(a, b, rtol=1e-5, atol=1e-6):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


# -- capture --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    """One uncompiled model shared by the tests that only read it."""
    return branchy()


def test_capture_equals_a_manual_forward_pass(model):
    x, _ = data()
    want = manual_forward(model.params, x)
    for execution in EXECUTIONS:
        got = fi.capture(model, x, execution=execution)
        assert list(got) == ["first", "shared", "inner/d", "merge", "out", "inner"]
        assert list(got) == fi.layer_names(model)
        for name in want:
            assert_close(got[name], want[name])
    only = fi.capture(model, x, layers=["out", "inner/d"], execution="layerwise")
    assert list(only) == ["out", "inner/d"]


def test_captured_gradients_equal_grad_of_the_whole_loss(model):
    x, y = data()
    # Reference: a zero perturbation added to each node's output through
    # graph_apply's hook; the gradient with respect to it is d loss / d output.
    graph = model.graph
    nodes = graph.nodes

    def loss_of(eps):
        def hook(node, out):
            return out + eps[nodes.index(node)]

        pred, _ = graph_apply(graph, model.params, model.state, x, hook=hook)
        return jnp.mean(jnp.mean((pred - y) ** 2, axis=-1))

    eps = [jnp.zeros((len(x), *jax.tree.leaves(n.outputs)[0].shape[1:])) for n in nodes]
    loss, grads = jax.value_and_grad(loss_of)(eps)
    by_node = {n.layer.name: [] for n in nodes}
    for n, g in zip(nodes, grads, strict=True):
        by_node[n.layer.name].append(g)
    for execution in EXECUTIONS:
        got = fi.capture(model, x, y=y, loss="mse", execution=execution)
        assert isinstance(got, fi.Captured)
        np.testing.assert_allclose(got.loss, loss, rtol=1e-6)
        assert_close(got.grads["first"], by_node["first"][0])
        assert_close(got.grads["shared"], tuple(by_node["shared"]))
        assert_close(got.grads["merge"], by_node["merge"][0])
        assert_close(got.grads["out"], by_node["out"][0])
        assert_close(
            got.grads["inner"], by_node["inner"][0]
        )  # the nested model's output
        assert_close(
            got.grads["inner/d"], by_node["inner"][0]
        )  # ... is its layer's output
        assert_close(got.outputs["out"], model.predict(x, verbose=0))


def test_capture_in_training_mode_matches_across_executions():
    inp = fk.Input(shape=(3,))
    h = L.Dropout(0.5, name="drop")(
        L.BatchNormalization(name="bn")(L.Dense(6, name="d")(inp))
    )
    model = fk.Model(inp, L.Dense(2, name="out")(h))
    x, _ = data(n=6)
    before = jax.tree.map(np.array, model.state)
    results = [
        fi.capture(model, x, execution=e, training=True, seed=3) for e in EXECUTIONS
    ]
    dropped = np.asarray(results[0]["drop"]) == 0
    assert 0.1 < dropped.mean() < 0.9  # dropout is on, with the same mask in every mode
    bn = np.asarray(results[0]["bn"])
    np.testing.assert_allclose(bn.mean(0), 0, atol=1e-5)  # batch statistics
    for other in results[1:]:
        assert_close(other, results[0])
    assert_close(model.state, before, rtol=0, atol=0)  # statistics not written back


def test_capture_refuses_unknown_layers_and_gradients_without_a_loss(model):
    x, y = data()
    with pytest.raises(
        ValueError, match=r"unknown layer name\(s\) \['nope'\].*'first'.*'inner/d'"
    ):
        fi.capture(model, x, layers=["first", "nope"])
    with pytest.raises(ValueError, match="gradients need a loss"):
        fi.capture(model, x, y=y)
    with pytest.raises(ValueError, match="execution"):
        fi.capture(model, x, execution="graph")


# -- forward hooks ---------------------------------------------------------------------


def test_forward_hooks_see_outputs_and_can_replace_them():
    model = branchy()
    x, y = data()
    weights = model.get_weights()
    for execution in ("eager", "layerwise"):
        model.compile(optimizer=optax.sgd(0.0), loss="mse", execution=execution)
        seen = []

        def watch(name, out):
            seen.append((name, np.asarray(out).shape))  # concrete arrays in predict

        with fi.forward_hooks(model, watch):
            model.predict(x, batch_size=5, verbose=0)
        assert [n for n, _ in seen] == [
            "first",
            "shared",
            "inner/d",
            "shared",
            "merge",
            "out",
        ]
        assert "apply" not in vars(model.get_layer("first"))  # removed after the block

        def silence(name, out):
            return jnp.zeros_like(out) if name == "out" else None

        with fi.forward_hooks(model, silence):
            assert not np.any(model.predict(x, verbose=0))
            logs = model.fit(x, y, batch_size=5, epochs=1, verbose=0).history
        np.testing.assert_allclose(logs["loss"][0], np.mean(y**2), rtol=1e-5)
        assert np.any(model.predict(x, verbose=0))
        assert_close(model.get_weights(), weights, rtol=0, atol=0)  # SGD(0): unchanged

        with fi.forward_hooks(
            model, lambda name, out: out[:, :1] if name == "first" else None
        ):
            with pytest.raises(
                ValueError, match=r"'first'.*shape \(5, 4\).*got shape \(5, 1\)"
            ):
                model.predict(x, batch_size=5, verbose=0)


def test_forward_hooks_are_refused_under_jit():
    model = fk.Sequential([fk.Input(shape=(3,)), L.Dense(2)])
    with pytest.raises(ValueError, match="not compiled.*eager"):
        with fi.forward_hooks(model, print):
            pass
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="execution='jit'.*trace time"):
        with fi.forward_hooks(model, print):
            pass


# -- compare_executions ----------------------------------------------------------------


@dataclass(eq=False)
class NanUnderJit(L.Layer):
    """Identity, except inside a compiled program: the bug the tool exists for."""

    def apply(self, params, state, x, *, training=False, key=None, mask=None):
        t = x
        while isinstance(t, jax.core.Tracer) and hasattr(t, "primal"):
            t = t.primal
        staged = isinstance(t, jax.core.Tracer)
        return (x * jnp.nan if staged else x), state


def test_compare_executions_agrees_and_names_the_first_layer_that_parts():
    model = branchy()
    model.compile(optimizer=optax.sgd(0.1), loss="mse")
    x, y = data()
    weights = model.get_weights()
    report = fi.compare_executions(model, x, y)
    assert report.agree and report.reference == "jit"
    assert [r.name for r in report.layers] == [
        "first",
        "shared",
        "inner/d",
        "merge",
        "out",
    ]
    assert all(
        v < 1e-5
        for r in report.layers
        for d in (r.activation, r.grad, r.update)
        for v in d.values()
    )
    assert report.layers[3].grad == {}  # Add has no params
    assert "agrees with jit everywhere" in str(report)
    assert_close(model.get_weights(), weights, rtol=0, atol=0)  # the model is unchanged

    inp = fk.Input(shape=(3,))
    h = NanUnderJit(name="bad")(L.Dense(4, name="ok")(inp))
    broken = fk.Model(inp, L.Dense(2, name="head")(h))
    broken.compile(optimizer="sgd", loss="mse")
    report = fi.compare_executions(broken, x, y, executions=("eager", "jit"))
    assert report.first_divergence["jit"] == fi.Divergence(
        "jit", "bad", "activation", np.inf
    )
    assert np.isnan(report.losses["jit"]) and np.isfinite(report.losses["eager"])
    text = str(report)
    assert re.search(
        r"jit: first parts from eager at the activation of layer 'bad'", text
    )


def test_compare_executions_needs_a_loss():
    model = fk.Sequential([fk.Input(shape=(3,)), L.Dense(2)])
    x, y = data()
    with pytest.raises(ValueError, match="no loss.*compile"):
        fi.compare_executions(model, x, y)
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="no loss"):
        fi.compare_executions(model, x, y)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="at least two"):
        fi.compare_executions(model, x, y, executions=("jit", "fast"))


# -- the static graph ------------------------------------------------------------------


def test_summary_costs_come_from_xla_cost_analysis():
    model = fk.Sequential(
        [fk.Input(shape=(8,)), L.Dense(16, name="a"), L.Dense(4, name="b")]
    )
    costs = fi.layer_costs(model, batch_size=2)
    assert costs["a"]["flops"] == 2 * (2 * 8 * 16) + 2 * 16  # multiply-adds + bias
    assert costs["b"]["flops"] == 2 * (2 * 16 * 4) + 2 * 4
    assert costs["a"]["bytes"] >= 4 * (8 * 16 + 16)  # at least the weights are read
    plain = fi.summary_text(model)
    text = fi.summary_text(model, show_cost=True)
    assert "FLOPs" in text and "FLOPs" not in plain
    assert "│        272 │" in text  # layer a, batch of 1: 2*8*16 + 16
    assert text.splitlines()[-1].startswith(" Total FLOPs: 404 ")  # 272 + 2*16*4 + 4
    assert plain.splitlines()[-3:] == text.splitlines()[-4:-1]


def test_plot_model_writes_dot_and_needs_graphviz_for_images(
    model, tmp_path, monkeypatch
):
    text = fi.plot_model(
        model, tmp_path / "m.dot", show_shapes=True, expand_nested=True
    )
    assert Path(tmp_path / "m.dot").read_text() == text
    assert text.startswith('digraph "model" {')
    assert 'label="shared (Dense)"' in text and "subgraph cluster_" in text
    assert len(re.findall(r'-> n\d+ \[label="\(None, 4\)"\]', text)) >= 5
    flat = fi.model_to_dot(model)
    assert "cluster" not in flat and 'label="inner (Sequential)"' in flat
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="Graphviz's `dot`.*'.dot' file name"):
        fi.plot_model(model, tmp_path / "m.svg")
    assert not (tmp_path / "m.svg").exists()
    with pytest.raises(ValueError, match="cannot write"):
        fi.plot_model(model, tmp_path / "m.txt")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_plot_model_renders_svg(model, tmp_path):
    fi.plot_model(model, tmp_path / "m.svg", show_shapes=True)
    assert "<svg" in (tmp_path / "m.svg").read_text()


def test_compiled_text_of_predict_and_train_steps():
    model = fk.Sequential([fk.Input(shape=(3,)), L.Dense(2)])
    x, y = data()
    jaxpr = fi.compiled_text(model, x)
    assert "dot_general" in jaxpr and jaxpr.startswith("{ lambda")
    hlo = fi.compiled_text(model, x, form="stablehlo")
    assert "stablehlo.dot_general" in hlo and "tensor<5x3xf32>" in hlo
    with pytest.raises(ValueError, match="compiled with a loss"):
        fi.compiled_text(model, x, y, step="train")
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="needs targets"):
        fi.compiled_text(model, x, step="train")
    train = fi.compiled_text(model, x, y, step="train")
    assert (
        train.count("dot_general") == 2
    )  # forward, kernel gradient (no input gradient)
    assert "HloModule" in fi.compiled_text(model, x, form="hlo")
    with pytest.raises(ValueError, match="form"):
        fi.compiled_text(model, x, form="llvm")


def test_compile_report_counts_match_jax_monitoring_events():
    model = branchy()
    model.compile(optimizer=optax.sgd(0.1), loss="mse", execution="layerwise")
    x, y = data(n=8)
    with fi.compile_events() as events:
        model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    report = fi.compile_report(model, events)
    rows = {r.name: r for r in report.rows}
    assert rows["train_step"].calls == 4 and rows["train_step"].compiles == 0
    compiled = [r for r in report.rows if r.compiles]
    assert {
        "forward[shared]",
        "backward[shared]",
        "forward[inner/d]",
        "loss_and_output_grads",
        "apply_updates",
    } <= {r.name for r in compiled}
    for row in compiled:
        assert row.traces == row.compiles == 1
        assert events.count("compile", row.name) == 1 and row.compile_seconds > 0
    assert rows["forward[shared]"].calls == 8  # two calls per step, one program
    text = str(report)
    assert (
        "Compile report (execution='layerwise')" in text and "forward[shared]" in text
    )

    with fi.compile_events() as again:
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert all(again.count("trace", r.name) == 0 for r in compiled)


# -- docs ------------------------------------------------------------------------------


def test_debugging_doc_examples_run(capsys):
    doc = Path(__file__).resolve().parents[1] / "docs" / "debugging.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert len(blocks) >= 7
    namespace = {}
    for block in blocks:
        exec(compile(block, str(doc), "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    # eager: print inside apply shows values at every step (autodiff tracers)
    assert len(re.findall(r"training=True mean=.*primal=-?\d", out)) == 2
    assert len(re.findall(r"batch mean -?\d\.\d{3}", out)) == 2  # jax.debug.print
    assert "dead ReLU units: " in out and "update/param ratio of hidden" in out
    assert "layerwise: agrees with jit everywhere." in out
