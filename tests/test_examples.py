"""Every script in `examples/` runs with `--smoke`, and its figures make sense.

Each example is loaded from its file (it is a script, not a package module) and
its `main(["--smoke"])` is called in this process; the assertions are on what
`main` returns.
"""

from __future__ import annotations

import math
import pathlib
import runpy

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str) -> object:
    namespace = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"example_{name}")
    return namespace["main"](["--smoke"])


def test_every_example_is_tested_and_listed():
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    tested = sorted(
        name.removeprefix("test_") for name in globals() if name.startswith("test_")
    )
    assert set(scripts) <= set(tested), set(scripts) - set(tested)
    readme = (EXAMPLES / "README.md").read_text()
    for script in scripts:
        assert f"{script}.py" in readme, script


def test_linear_regression(capsys):
    max_diff = run_example("linear_regression")
    assert max_diff < 1e-4  # gradient descent reached the least-squares solution
    assert "np.linalg.lstsq" in capsys.readouterr().out


def check_digits(name: str) -> None:
    pytest.importorskip("sklearn")
    result = run_example(name)
    assert result["test_accuracy"] > 0.6  # 10 classes: chance is 0.1
    assert math.isfinite(result["test_loss"]) and result["train_seconds"] > 0


def test_digits_mlp():
    check_digits("digits_mlp")


def test_digits_cnn():
    check_digits("digits_cnn")


def test_two_inputs():
    logs = run_example("two_inputs")
    assert {"loss", "score_loss", "kind_loss", "score_mae", "kind_accuracy"} <= set(
        logs
    )
    assert logs["kind_accuracy"] > 0.6  # 3 classes: chance is 1/3
    assert logs["score_mae"] < 0.5 * logs["baseline_mae"]
    # The total loss is the weighted sum of the outputs' losses (weights 1 and 0.5).
    assert logs["loss"] == pytest.approx(
        logs["score_loss"] + 0.5 * logs["kind_loss"], rel=1e-4
    )


def test_custom_layer():
    result = run_example("custom_layer")
    assert result["checks_passed"] >= 10
    assert result["test_mse"] < 0.6 * result["baseline_mse"]
    assert result["reload_max_difference"] == 0.0


def test_callbacks():
    result = run_example("callbacks")
    # Early stopping ended the run and put the best epoch's weights back; the
    # best-only checkpoint on disk holds the same weights.
    assert result["last_val_loss"] >= result["best_val_loss"]
    assert result["restored_val_loss"] == pytest.approx(
        result["best_val_loss"], rel=1e-5
    )
    assert result["checkpoint_val_loss"] == pytest.approx(
        result["best_val_loss"], rel=1e-5
    )
    # The crashed-and-resumed run equals the uninterrupted one exactly.
    assert result["resume_max_difference"] == 0.0
    assert result["history_epochs"] == 4


def test_debugging(capsys):
    result = run_example("debugging")
    assert result["eager_vs_jit_max_difference"] < 1e-5
    assert result["variables_logged"] == 6  # 3 Dense layers: kernel and bias
    assert 0 < result["median_kernel_update_ratio"] < 1
    assert result["layers_hooked"] == 2  # the two ReLU layers
    assert result["layers_recorded"] == 3
    assert result["modes_agree"] == 1.0
    out = capsys.readouterr().out
    assert "[eager] training=True" in out and "primal=" in out  # values printed
    assert "LayerUpdateLogger: step 4" in out  # reports after steps 4, 8, ... (--smoke)


def test_save_export_serve():
    result = run_example("save_export_serve")
    for key in ("load_model", "continued", "load_weights", "exported", "served"):
        assert result[f"{key}_max_difference"] < 1e-5, key
    assert result["served_status"] == 200
    assert result["bad_request_status"] == 400


def test_accelerators():
    result = run_example("accelerators")
    assert result["platform"] in {"cpu", "gpu", "tpu"}
    for execution in ("jit", "eager"):
        run = result[execution]
        assert run["ms_per_step"] > 0 and 0 <= run["accuracy"] <= 1
        assert result["platform"] in run["params_on"].lower() or (
            result["platform"] == "gpu" and "cuda" in run["params_on"].lower()
        )
    assert result["eager_over_jit"] > 1  # op-by-op dispatch costs more than one program


def test_transformer_lm(capsys):
    result = run_example("transformer_lm")
    assert result["loss"] < result["target"]  # the example's stated smoke target
    assert len(result["sample"]) == 80
    assert "target: below" in capsys.readouterr().out


def test_sequence_classifier():
    result = run_example("sequence_classifier")
    assert result["test_accuracy"] > 0.8  # 2 classes: chance is 0.5
    # The mask makes padding invisible: a sentence alone gives the same logits.
    assert result["padding_gap"] < 1e-5


def test_segmentation():
    result = run_example("segmentation")
    assert result["loss"] < 0.7 * result["first_loss"]  # it learned
    # Better than calling every pixel background, which is right on most pixels.
    assert result["mean_iou"] > result["baseline_mean_iou"] + 0.15
    assert 0.0 <= result["mean_iou"] <= 1.0
    # The MeanIoU metric in compile agrees with the NumPy confusion matrix.
    assert abs(result["mean_iou_metric"] - result["mean_iou"]) < 1e-5
