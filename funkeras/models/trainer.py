"""Keras' training surface on the model facade: compile, fit, evaluate, predict.

The methods here validate arguments, shape the data, and hand pure functions
(`apply`, `penalty`, the graph description) to `funkeras.training`, which knows
nothing of the `Model` class.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
import optax
from tqdm.auto import tqdm

from funkeras import distribution as distribution_lib
from funkeras import losses as losses_lib
from funkeras import metrics as metrics_lib
from funkeras import optimizers as optimizers_lib
from funkeras._validation import short_message
from funkeras.callbacks.callback import Callback, CallbackList
from funkeras.callbacks.history import History
from funkeras.callbacks.progbar import ProgbarLogger
from funkeras.errors import NotCompiledError
from funkeras.graph import match_inputs
from funkeras.layers import subclassing as sc
from funkeras.layers.base import layer_label
from funkeras.layers.core import Embedding
from funkeras.losses.probabilistic import loss_kind
from funkeras.models import keras_jax
from funkeras.training.arguments import (
    check_class_weight,
    check_fit_arguments,
    check_inputs,
    check_optional_int,
    check_sample_weight,
)
from funkeras.training.data import (
    ArrayData,
    IterableData,
    as_host_array,
    data_fingerprint,
    is_array_like,
    split_validation,
    unpack_batch,
)
from funkeras.training.executors import EXECUTIONS, get_executor
from funkeras.training.host import Progress
from funkeras.training.loop import Runner
from funkeras.training.objective import Objective
from funkeras.training.state import Batch, TrainState, copy_tree, to_device
from funkeras.training.steps import NONFINITE
from funkeras.utils.dataset import unpack_x_y_sample_weight

__all__ = ["Trainer"]


def _is_sparse_ce(loss: Any) -> bool:
    """Whether `loss` is a sparse categorical crossentropy (by type, not by name)."""
    return loss_kind(loss) == "sparse"


class Trainer:
    """Mixin giving `Model` Keras' `compile`/`fit`/`evaluate`/`predict`."""

    def __init__(self) -> None:
        self._compile_config: dict[str, Any] | None = None
        self._runner: Runner | None = None
        self._plain_runner: Runner | None = None  # predict without compile
        self._sparse_outputs: list[tuple[int, int]] = []
        self._bound_optimizer: Any = None
        self._pending_rate: float | None = None
        # Keras' JAX API: the variable layout, the optimizer's state structure
        # and the compiled loss tracker / metrics (made with the runner).
        self._layout: keras_jax.VariableLayout | None = None
        self._opt_treedef: Any = None
        self._compiled_metrics: list[Any] = []
        self.progress = Progress()
        self.history: History | None = None

    # -- compile ---------------------------------------------------------------

    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        execution: str | None = None,
        jit_compile: Any = "auto",
        distribution: Any = None,
    ) -> None:
        """Configure training: optimizer, loss, metrics and how steps run.

        Args:
            optimizer: A Keras name (`"adam"`), a factory result
                (`fk.optimizers.Adam(1e-3)`), or any `optax.GradientTransformation`.
            loss: A Keras loss name, `fk.losses` object or function
                `(y_true, y_pred) -> per-sample loss`; a list/dict for several outputs.
            loss_weights: Scalar weight per output (list or dict).
            metrics: Metric names or `fk.metrics.Metric` objects (a list, or a
                list of lists / dict for several outputs). As in Keras, they
                ignore `sample_weight` and `class_weight`.
            weighted_metrics: Metrics that receive `sample_weight` and
                `class_weight` (same structure as `metrics`). A name already in
                `metrics` is logged as `weighted_<name>`, as Keras does.
            run_eagerly: Keras' spelling of `execution="eager"`.
            steps_per_execution: K steps per compiled call (fused with
                `lax.scan` under jit); batch callbacks run once per K steps.
            execution: `"jit"` (default: the static graph), `"eager"` (op by op:
                `print`/`breakpoint()` inside layers), or `"layerwise"`.
            jit_compile: Keras' flag; `False` means `execution="eager"`.
            distribution: A `fk.distribution.DataParallel` or `ModelParallel`
                for this model; None takes the global one
                (`fk.distribution.set_distribution`) at this call. Needs
                `execution="jit"`. Not saved with the model.

        Changing `trainable` flags later requires compiling again, as in Keras.
        Compiling again resets the optimizer state.
        """
        owner = "compile"
        if execution is None:
            execution = "eager" if (run_eagerly or jit_compile is False) else "jit"
        elif run_eagerly and execution != "eager":
            raise ValueError(
                f"{owner}: `run_eagerly=True` contradicts `execution={execution!r}`."
            )
        if execution not in EXECUTIONS:
            close = difflib.get_close_matches(str(execution), EXECUTIONS, n=1)
            raise ValueError(
                f"{owner}: `execution` must be one of {list(EXECUTIONS)}, got "
                f"{execution!r}." + (f" Did you mean {close[0]!r}?" if close else "")
            )
        if (
            isinstance(steps_per_execution, bool)
            or not isinstance(steps_per_execution, int)
            or steps_per_execution < 1
        ):
            raise ValueError(
                f"{owner}: `steps_per_execution` must be a positive int, got "
                f"{steps_per_execution!r}."
            )
        if distribution is None:
            distribution = distribution_lib.distribution()
        elif not isinstance(distribution, distribution_lib.Distribution):
            raise TypeError(
                f"{owner}: `distribution` must be a `fk.distribution.DataParallel` or "
                f"`ModelParallel`, got {type(distribution).__name__}."
            )
        get_executor(execution, distribution)  # refuses eager/layerwise with one
        tx = optimizers_lib.get(optimizer)
        if loss is not None:
            _check_losses(loss)
        self._compile_config = dict(
            optimizer=optimizer,
            tx=tx,
            loss=loss,
            loss_weights=loss_weights,
            metrics=metrics,
            weighted_metrics=weighted_metrics,
            steps_per_execution=steps_per_execution,
            execution=execution,
            distribution=distribution,
        )
        self._runner = None
        self.opt_state = None
        self._bound_optimizer = None
        self._pending_rate = None
        self._layout = None
        self._opt_treedef = None
        self._compiled_metrics = []

    @property
    def compiled(self) -> bool:
        return self._compile_config is not None

    @property
    def optimizer(self) -> Any:
        """The optimizer `compile` got, as Keras' `model.optimizer` (None before).

        For a name or an `fk.optimizers` object it is an `fk.optimizers.Optimizer`
        whose `learning_rate` reads the rate the next step uses (a float) and
        can be assigned a float, effective from the next step, no recompile. A
        bare optax transformation is returned as given.
        """
        if self._compile_config is None:
            return None
        tx = self._compile_config["tx"]
        if not isinstance(tx, optimizers_lib.Optimizer):
            return tx
        if self._bound_optimizer is None:
            self._bound_optimizer = tx.bound(
                self._read_rate, self._write_rate, self._stateless_apply
            )
        return self._bound_optimizer

    def _read_rate(self) -> Any:
        tx = self._compile_config["tx"]
        if self.opt_state is None:
            if self._pending_rate is not None:
                return self._pending_rate
            if tx.arguments is None:
                return None
            rate = tx.arguments["learning_rate"]
            return float(rate(0)) if callable(rate) else float(rate)
        return optimizers_lib.get_learning_rate(self.opt_state, optimizer=tx)

    def _write_rate(self, value: Any) -> None:
        if self.opt_state is None:
            # No optimizer state yet (it is made with the first step): checked
            # on a throwaway state now, applied when the real one is made.
            tx = self._compile_config["tx"]
            optimizers_lib.set_learning_rate(tx.init(np.zeros((1,), np.float32)), value)
            self._pending_rate = float(value)
            return
        self.opt_state = optimizers_lib.set_learning_rate(self.opt_state, value)

    @property
    def metrics_names(self) -> list[str]:
        """The names of the logs `evaluate` returns, in its order: `["loss",
        *per-output losses, *metrics]` (Keras 2's meaning; Keras 3 lists
        `"compile_metrics"` in place of the metric names). `[]` before
        `compile`; `["loss"]` until the model is built and its metrics known."""
        if self._compile_config is None:
            return []
        if self._runner is not None:
            return list(self._runner.objective.log_names)
        if not self.built:
            return ["loss"]
        cfg = self._compile_config
        graph = self.require_graph("metrics_names")
        objective = Objective(
            cfg["loss"] if cfg["loss"] is not None else _NoLoss(),
            self.output_names,
            loss_weights=cfg["loss_weights"],
            metrics=cfg["metrics"],
            weighted_metrics=cfg["weighted_metrics"],
            output_shapes=[tuple(s.shape) for s in jax.tree.leaves(graph.output_spec)],
            owner=f"{self._owner()}.compile",
        )
        return list(objective.log_names)

    @property
    def execution(self) -> str | None:
        return (
            None if self._compile_config is None else self._compile_config["execution"]
        )

    @property
    def loss(self) -> Any:
        """The `loss` given to `compile` (None if not compiled or given none)."""
        return None if self._compile_config is None else self._compile_config["loss"]

    @property
    def steps_per_execution(self) -> int:
        """The `compile(steps_per_execution=K)` setting (1 when not compiled)."""
        if self._compile_config is None:
            return 1
        return int(self._compile_config["steps_per_execution"])

    @property
    def compiled_optimizer(self) -> Any:
        """The optimizer `compile` resolved (an `fk.optimizers` object or the optax
        transformation given), before frozen weights are masked out; None if not
        compiled. Its schedule, if any, gives the learning rate at a step."""
        return None if self._compile_config is None else self._compile_config["tx"]

    @property
    def runner(self) -> Runner | None:
        """The runner of the compile settings, or None until `make_runner` built it
        (the first `fit`/`evaluate`/`predict` or batch call does)."""
        return self._runner

    def _require_compiled(self, what: str) -> dict[str, Any]:
        if self._compile_config is None:
            raise NotCompiledError(
                f"{self._owner()}: call `model.compile(optimizer=..., loss=...)` before "
                f"`{what}`."
            )
        return self._compile_config

    def make_runner(self, y: Any = None) -> Runner:
        """The runner of the compile settings (its step programs), built on first use.

        `y` (host labels), when given, lets `"accuracy"` resolve as Keras does
        from the label shape. Building it also creates the optimizer state.

        Raises:
            NotCompiledError: the model is not compiled.
            ValueError: the model is not built.
        """
        if self._runner is not None:
            return self._runner
        cfg = self._require_compiled("training")
        graph = self.require_graph("compile")
        output_shapes = [tuple(s.shape) for s in jax.tree.leaves(graph.output_spec)]
        no_loss: Any = _NoLoss()
        if cfg["loss"] is None and (self.has_activity_losses() or self.has_penalty()):
            # Keras: a model whose layers add losses trains on those alone.
            no_loss = _AddedLossesOnly()
        objective = Objective(
            cfg["loss"] if cfg["loss"] is not None else no_loss,
            self.output_names,
            loss_weights=cfg["loss_weights"],
            metrics=cfg["metrics"],
            weighted_metrics=cfg["weighted_metrics"],
            output_shapes=output_shapes,
            label_shapes=_label_shapes(y, self.output_names),
            owner=f"{self._owner()}.compile",
        )
        if cfg["execution"] == "layerwise" and self.has_activity_losses():
            raise ValueError(
                f"{self._owner()}.compile: a layer of this model adds a loss that "
                "depends on its inputs (`add_loss` in `call`); the layerwise "
                "executor differentiates layer by layer and does not carry such "
                "losses yet. Use execution='jit' or 'eager'."
            )
        tx = cfg["tx"]
        mask = self.trainable_mask()
        if not all(jax.tree.leaves(mask)):
            labels = jax.tree.map(lambda on: "train" if on else "freeze", mask)
            tx = optax.multi_transform(
                {"train": tx, "freeze": optax.set_to_zero()}, labels
            )
        constraints = {
            path: c for path, c in self.weight_constraints().items()
            if keras_jax.get_path(mask, path)
        }
        if constraints:
            tx = _constrained(tx, constraints)
        loss_fn = None
        if type(self).compute_loss is not Trainer.compute_loss:

            def loss_fn(x: Any, y: Any, y_pred: Any, sw: Any, mask: Any) -> Any:
                weight = mask.astype(np.float32) if sw is None else sw * mask
                return self.compute_loss(x, y, y_pred, weight)

        self._layout = keras_jax.VariableLayout(
            self._weight_entries(), self.param_shapes()
        )
        self._opt_treedef = jax.tree.structure(jax.eval_shape(tx.init, self.params))
        self._compiled_metrics = [metrics_lib.Mean(name="loss")]
        if objective.metrics:
            self._compiled_metrics.append(keras_jax.CompileMetrics(objective))
        keras_train = type(self).train_step is not Trainer.train_step and (
            keras_jax.is_keras_train_step(self.train_step)
        )
        keras_test = type(self).test_step is not Trainer.test_step and (
            keras_jax.is_keras_step(self.test_step, 4)
        )
        custom_step = custom_test = None
        runner_objective: Any = objective
        if keras_train or keras_test:
            # Keras' JAX contract: the train state is seen as Keras' four lists,
            # the metric states as the variables of `self.metrics`.
            runner_objective = keras_jax.KerasMetrics(objective, lambda: self.metrics)
            custom_step = keras_jax.keras_train_step(
                self.train_step if keras_train else self._keras_train_step,
                self._layout, self._opt_treedef, self.uses_key,
            )
            custom_test = keras_jax.keras_test_step(
                self.test_step if keras_test else self._keras_test_step,
                self._layout,
            )
        else:
            if type(self).train_step is not Trainer.train_step:
                custom_step = self.train_step
            if type(self).test_step is not Trainer.test_step:
                custom_test = _check_step_override(
                    self.test_step, "test_step", "params, state, metrics, batch",
                    "(metrics, logs)",
                )
        sparse = [
            (i, shape[-1])
            for i, (fn, shape) in enumerate(
                zip(objective.losses, output_shapes, strict=True)
            )
            if fn is not None and _is_sparse_ce(fn) and shape
        ]
        sparse_check = None
        if sparse:

            def sparse_check(y: Any) -> Any:
                ys = objective.flatten(y, "y")
                flags = [
                    losses_lib.sparse_labels_out_of_range(ys[i], c) for i, c in sparse
                ]
                return np.logical_or.reduce(flags) if len(flags) > 1 else flags[0]

        self._sparse_outputs = sparse
        self._runner = Runner(
            apply_fn=self.apply,
            objective=runner_objective,
            optimizer=tx,
            executor=get_executor(cfg["execution"], cfg["distribution"]),
            steps_per_execution=cfg["steps_per_execution"],
            penalty_fn=self.penalty if self.has_penalty() else None,
            loss_fn=loss_fn,
            train_step=custom_step,
            test_step=custom_test,
            predict_step=self._custom_predict_step(),
            graph=graph,
            sparse_check=sparse_check,
            uses_key=self.uses_key,
            distribution=cfg["distribution"],
            masked_apply_fn=self.apply_masked,
        )
        if cfg["distribution"] is not None:
            # Weights made before the distribution was known move to their layout.
            params, state, _ = self._runner.place_weights(self.params, self.state)
            self.publish(params, state, self.opt_state)
        if self.opt_state is None:
            self.opt_state = self._runner.init_optimizer_state(self.params, self.state)
            if self._pending_rate is not None:
                self.opt_state = optimizers_lib.set_learning_rate(
                    self.opt_state, self._pending_rate
                )
                self._pending_rate = None
        return self._runner

    def _distribution(self) -> Any:
        """The distribution weights are made in: the compile's, else the global."""
        if self._compile_config is not None:
            return self._compile_config["distribution"]
        return distribution_lib.distribution()

    def compile_stats(self) -> dict[str, dict[str, Any]]:
        """Per step function: how many times it was compiled (traced) and called."""
        return {} if self._runner is None else self._runner.executor.report()

    def get_compile_config(self) -> dict[str, Any] | None:
        """The compile arguments as JSON-safe data (None if not compiled).

        Raises:
            TypeError: if the optimizer, a loss or a metric is a Python object
                that has no registered name (it cannot be saved as data).
        """
        if self._compile_config is None:
            return None
        cfg = self._compile_config

        def ser(value: Any, module: Any) -> Any:
            if value is None or isinstance(value, str):
                return value
            if isinstance(value, Mapping):
                return {k: ser(v, module) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [ser(v, module) for v in value]
            return module.serialize(value)

        out = {
            "optimizer": optimizers_lib.serialize(cfg["tx"]),
            "loss": ser(cfg["loss"], losses_lib),
            "loss_weights": cfg["loss_weights"],
            "metrics": ser(cfg["metrics"], metrics_lib),
            "steps_per_execution": cfg["steps_per_execution"],
            "execution": cfg["execution"],
        }
        if cfg["weighted_metrics"] is not None:
            out["weighted_metrics"] = ser(cfg["weighted_metrics"], metrics_lib)
        return out

    def compile_from_config(self, config: Mapping[str, Any]) -> None:
        """Compile from `get_compile_config()`'s data (names resolved by registry)."""

        def resolve(value: Any, module: Any) -> Any:
            if value is None or isinstance(value, str):
                return value
            if isinstance(value, Mapping) and "class_name" in value:
                return module.get(dict(value))
            if isinstance(value, Mapping):
                return {k: resolve(v, module) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [resolve(v, module) for v in value]
            return value

        self.compile(
            optimizer=optimizers_lib.get(config["optimizer"]),
            loss=resolve(config.get("loss"), losses_lib),
            loss_weights=config.get("loss_weights"),
            metrics=resolve(config.get("metrics"), metrics_lib),
            weighted_metrics=resolve(config.get("weighted_metrics"), metrics_lib),
            steps_per_execution=config.get("steps_per_execution", 1),
            execution=config.get("execution", "jit"),
        )

    # -- overridable pieces (Keras' customization points) ----------------------------

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """The scalar training loss. Override it on a subclass to customize the loss.

        An override receives `sample_weight` with padding rows weighted 0 (a short
        final batch is padded); the regularization penalty is added after it.

        Inside a Keras-style `train_step(state, data)` / `test_step` it is
        Keras' `compute_loss`: the compiled loss over the batch's real rows,
        plus the regularization penalty of the weights of the latest
        `stateless_call` (or `stateless_compute_loss`).
        """
        del x, training
        runner = self.make_runner()
        batch = jax.tree.leaves(y_pred)[0].shape[0]
        scope = keras_jax.current_scope()
        if scope is not None:
            mask = scope.rows(batch)
            if mask is None:
                mask = np.ones((batch,), bool)
            total, _ = runner.objective.loss(y, y_pred, sample_weight, mask)
            if scope.params is not None and self.has_penalty():
                total = total + self.penalty(scope.params)
            for added in scope.losses or []:  # `add_loss` terms of the inputs
                total = total + added
            return total
        mask = (
            np.ones((batch,), bool)
            if sample_weight is None
            else sample_weight > 0
        )
        total, _ = runner.objective.loss(y, y_pred, sample_weight, mask)
        return total

    def train_step(self, *args: Any) -> Any:
        """One pure training step. Override on a subclass for a custom loop (a GAN).

        Two contracts are honoured:

        - funkeras': `train_step(self, train_state, batch) -> (train_state,
          logs)` on a `TrainState` and a `Batch`;
        - Keras' JAX one: `train_step(self, state, data) -> (logs, state)` with
          `state = (trainable_variables, non_trainable_variables,
          optimizer_variables, metrics_variables)`, lists of arrays (see
          `stateless_call`, `optimizer.stateless_apply`, `self.metrics`).

        The override is Keras' when its arguments are named `(state, data)`.
        Either way it must be pure and jit-compatible (it is compiled once).
        `super().train_step(...)` runs the built-in one of the same contract.
        """
        if len(args) == 2 and not isinstance(args[0], TrainState):
            return self._keras_train_step(*args)
        return self.make_runner().default_train_step()(*args)

    def test_step(self, *args: Any) -> Any:
        """One pure evaluation step, used by `evaluate`, `test_on_batch` and fit's
        validation. Override on a subclass to customize evaluation.

        funkeras' contract: `(params, state, metrics, batch) -> (metrics, logs)`,
        `metrics` the metric states (`runner.init_metrics()`'s structure) and
        logs a dict of scalar arrays. Keras' JAX contract: `test_step(self,
        state, data) -> (logs, state)` with `state = (trainable_variables,
        non_trainable_variables, metrics_variables)`. Pure and jit-compatible;
        `super().test_step(...)` runs the built-in one.
        """
        if len(args) == 2:
            return self._keras_test_step(*args)
        return self.make_runner().default_test_step()(*args)

    def predict_step(self, *args: Any) -> Any:
        """One pure prediction step, used by `predict` and `predict_on_batch`.
        Override on a subclass to customize prediction (post-processing, several
        outputs).

        funkeras' contract: `(params, state, x) -> y`, `y` an array or a pytree
        of arrays with the batch axis first. Keras' JAX contract:
        `predict_step(self, state, data) -> (y, non_trainable_variables)` with
        `state = (trainable_variables, non_trainable_variables)`.
        `super().predict_step(...)` runs the built-in one.
        """
        if len(args) == 2:
            tv, ntv = args[0]
            x, _, _ = unpack_x_y_sample_weight(args[1])
            return self.stateless_call(tv, ntv, x, training=False)
        return self._predict_runner().default_predict_step()(*args)

    # -- Keras' JAX customization API -----------------------------------------------

    @property
    def metrics(self) -> list[Any]:
        """The metrics as Keras lists them: once the model is compiled and its
        runner made, the loss tracker (`Mean(name="loss")`) and, when `compile`
        got metrics, `"compile_metrics"`; then the `fk.metrics.Metric` objects
        the model holds as attributes. A Keras-style `train_step(state, data)`
        receives their variables, in this order, as `metrics_variables`.
        """
        return [*self._compiled_metrics, *keras_jax.tracked_metrics(self)]

    def variable_layout(self) -> keras_jax.VariableLayout:
        """Where `trainable_variables`/`non_trainable_variables` live in
        `(params, state)` (made with the runner; fresh before it)."""
        if self._layout is not None:
            return self._layout
        return keras_jax.VariableLayout(self._weight_entries(), self.param_shapes())

    @property
    def trainable_variables(self) -> list[Any]:
        """Keras' `model.trainable_variables`: the trained weights in Keras'
        order, as `ModelVariable`s (`.value`, `.assign`)."""
        return [keras_jax.ModelVariable(self, path, p, t)
                for path, p, t in self._weight_entries() if t]

    @property
    def non_trainable_variables(self) -> list[Any]:
        """Keras' `model.non_trainable_variables`: frozen weights and layer
        state (BatchNorm's moving statistics), in Keras' order."""
        return [keras_jax.ModelVariable(self, path, p, t)
                for path, p, t in self._weight_entries() if not t]

    @property
    def variables(self) -> list[Any]:
        """`trainable_variables + non_trainable_variables`."""
        return [*self.trainable_variables, *self.non_trainable_variables]

    def stateless_call(
        self,
        trainable_variables: Any,
        non_trainable_variables: Any,
        *args: Any,
        return_losses: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Keras' `stateless_call`: the model on `args` with the weights given.

        Pure: `trainable_variables` and `non_trainable_variables` are lists in
        the order of `model.trainable_variables` / `non_trainable_variables`
        (arrays or the variables themselves). Returns `(outputs,
        new_non_trainable_variables)`, plus the list of added losses with
        `return_losses=True`. It is `apply` on the params and state those lists
        make: `stateless_call(tv, ntv, x)[0]` equals `model.apply(params,
        state, x)[0]`.

        Example:
            >>> import numpy as np
            >>> import funkeras as fk
            >>> model = fk.Sequential([fk.Input(shape=(3,)), fk.layers.Dense(2)])
            >>> tv = [v.value for v in model.trainable_variables]
            >>> y, ntv = model.stateless_call(tv, [], np.ones((4, 3), np.float32))
            >>> y.shape
            (4, 2)
        """
        training = bool(kwargs.pop("training", False) or False)
        if kwargs:
            raise TypeError(
                f"{self._owner()}.stateless_call: unexpected arguments "
                f"{sorted(kwargs)} (it takes the inputs, `training` and "
                "`return_losses`)."
            )
        x = args[0] if len(args) == 1 else list(args)
        if self.graph is None:
            self._build_from_data(x)
        layout = self.variable_layout()
        params, state = layout.merge(trainable_variables, non_trainable_variables)
        scope = keras_jax.current_scope()
        key = mask = None
        if scope is not None:
            key = scope.next_key() if self.uses_key else None
            mask = scope.rows(jax.tree.leaves(x)[0].shape[0])
            scope.params = params
        elif training and self.uses_key:
            key = jax.random.key(self.seed)
        with sc.collect_losses() as added:
            y, new_state = self.apply(params, state, x, training=training, key=key,
                                      mask=mask)
        if scope is not None:
            scope.losses = list(added)
        _, ntv = layout.split(params, new_state)
        if return_losses:
            losses = [self.penalty(params)] if self.has_penalty() else []
            return y, ntv, [*added, *losses]
        return y, ntv

    def stateless_compute_loss(
        self,
        trainable_variables: Any,
        non_trainable_variables: Any,
        metrics_variables: Any,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> tuple[Any, tuple[Any, Any, Any]]:
        """Keras' `stateless_compute_loss`: `compute_loss` with the weights given
        (their regularization penalty included). Returns `(loss,
        (trainable_variables, non_trainable_variables, metrics_variables))`."""
        params, _ = self.variable_layout().merge(
            trainable_variables, non_trainable_variables, "stateless_compute_loss"
        )
        scope = keras_jax.current_scope()
        entered = (keras_jax.step_scope() if scope is None
                   else contextlib.nullcontext(scope))
        with entered as sc:
            sc.params = params
            loss = self._call_compute_loss(x, y, y_pred, sample_weight, training)
        return loss, (trainable_variables, non_trainable_variables, metrics_variables)

    def _call_compute_loss(self, x: Any, y: Any, y_pred: Any, sw: Any,
                           training: bool) -> Any:
        params = inspect.signature(self.compute_loss).parameters
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        if "training" in params or var_kw:
            return self.compute_loss(x, y, y_pred, sw, training=training)
        return self.compute_loss(x, y, y_pred, sw)

    def compute_loss_and_updates(
        self,
        trainable_variables: Any,
        non_trainable_variables: Any,
        metrics_variables: Any,
        x: Any,
        y: Any,
        sample_weight: Any,
        training: bool = False,
        optimizer_variables: Any = None,
    ) -> tuple[Any, tuple[Any, Any, Any]]:
        """Keras' `compute_loss_and_updates`: `(loss, (y_pred,
        non_trainable_variables, metrics_variables))`, differentiable in
        `trainable_variables` (what the built-in Keras-style `train_step`
        hands to `jax.value_and_grad`)."""
        del optimizer_variables
        y_pred, ntv = self.stateless_call(
            trainable_variables, non_trainable_variables, x, training=training
        )
        loss, (_, ntv, mv) = self.stateless_compute_loss(
            trainable_variables, ntv, metrics_variables, x=x, y=y, y_pred=y_pred,
            sample_weight=sample_weight, training=training,
        )
        return loss, (y_pred, ntv, mv)

    def _stateless_apply(self, optimizer_variables: Any, grads: Any,
                         trainable_variables: Any) -> Any:
        self.make_runner()
        return keras_jax.stateless_apply(
            self._runner.optimizer, self._opt_treedef, self.variable_layout(),
            optimizer_variables, grads, trainable_variables,
        )

    def _keras_metrics_update(self, metrics_variables: Any, loss: Any, y: Any,
                              y_pred: Any, sample_weight: Any) -> Any:
        """Keras' built-in metric update: the loss tracker gets the loss
        (weighted by the real rows), `"compile_metrics"` the batch; the logs are
        every metric's result."""
        view = keras_jax.KerasMetrics(None, lambda: self.metrics)
        scope = keras_jax.current_scope()
        batch = jax.tree.leaves(y_pred)[0].shape[0]
        mask = None if scope is None else scope.rows(batch)
        rows = batch if mask is None else jax.numpy.sum(mask.astype(np.float32))
        new: list[Any] = []
        logs: dict[str, Any] = {}
        loss_tracker = self._compiled_metrics[0] if self._compiled_metrics else None
        for metric, values in view.slices(metrics_variables):
            if metric is loss_tracker:
                values = metric.stateless_update_state(values, loss, sample_weight=rows)
            elif isinstance(metric, keras_jax.CompileMetrics):
                values = metric.stateless_update_state(values, y, y_pred, sample_weight)
            logs[metric.name] = metric.stateless_result(values)
            new += list(values)
        return keras_jax.flatten_logs(logs), new

    def _keras_train_step(self, state: Any, data: Any) -> Any:
        """The built-in train step in Keras' JAX form."""
        tv, ntv, ov, mv = state
        x, y, sw = unpack_x_y_sample_weight(data)
        grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
        (loss, (y_pred, ntv, mv)), grads = grad_fn(tv, ntv, mv, x, y, sw, training=True)
        tv, ov = self._stateless_apply(ov, grads, tv)
        logs, mv = self._keras_metrics_update(mv, loss, y, y_pred, sw)
        return logs, (tv, ntv, ov, mv)

    def _keras_test_step(self, state: Any, data: Any) -> Any:
        """The built-in test step in Keras' JAX form."""
        tv, ntv, mv = state
        x, y, sw = unpack_x_y_sample_weight(data)
        y_pred, ntv = self.stateless_call(tv, ntv, x, training=False)
        loss, (tv, ntv, mv) = self.stateless_compute_loss(
            tv, ntv, mv, x=x, y=y, y_pred=y_pred, sample_weight=sw, training=False
        )
        logs, mv = self._keras_metrics_update(mv, loss, y, y_pred, sw)
        return logs, (tv, ntv, mv)

    def _custom_predict_step(self) -> Any:
        if type(self).predict_step is Trainer.predict_step:
            return None
        if keras_jax.is_keras_step(self.predict_step, 3):
            return keras_jax.keras_predict_step(
                self.predict_step, self.variable_layout()
            )
        return _check_step_override(
            self.predict_step, "predict_step", "params, state, x", "y"
        )

    # -- data plumbing ----------------------------------------------------------

    def _build_from_data(self, x: Any) -> None:
        if self.built:
            return
        leaves = jax.tree.leaves(x)
        if not leaves:
            raise ValueError(
                f"{self._owner()}: cannot build the model from empty data."
            )
        integer_ok = _wants_integers(self)
        spec = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(
                tuple(np.shape(a))[1:], _input_dtype(a, integer_ok)
            ),
            x,
        )
        self._build_from_spec(spec)

    def _check_embedding_ids(self, what: str, x: Any) -> None:
        """Refuse ids outside [0, input_dim) for an Embedding fed by a model input.

        Checked once on the host for array data (as sparse labels are): on the
        device an id past the table reads a row of NaN, and a negative id reads
        a row from the end.
        """
        graph = self.require_graph(what)
        tables = [
            (layer, t)
            for layer in graph.layers
            if isinstance(layer, Embedding)
            for node in graph.layer_nodes(layer)
            for t in node.input_tensors
            if t.node.layer in graph.input_layers
        ]
        if not tables:
            return
        flat = match_inputs(graph, x, self._owner())
        for layer, t in tables:
            ids = np.asarray(flat[graph.input_layers.index(t.node.layer)])
            if ids.size == 0 or not np.issubdtype(ids.dtype, np.number):
                continue
            low, high = ids.min(), ids.max()
            if low < 0 or high >= layer.input_dim:
                bad = high if high >= layer.input_dim else low
                row = int(np.argwhere(ids == bad)[0][0])
                raise ValueError(
                    f"{self._owner()}: {layer_label(layer)} takes ids in "
                    f"[0, {layer.input_dim}) (its `input_dim`), but the input "
                    f"'{t.node.layer.name}' holds {bad} (row {row}). Grow "
                    "`input_dim` or map unknown ids to a reserved index."
                )

    def _check_labels(self, y: Any) -> None:
        """Refuse sparse labels outside [0, num_classes) (checked once on the host)."""
        if y is None or self._compile_config is None:
            return
        runner = self.make_runner(y)
        if not self._sparse_outputs:
            return
        ys = runner.objective.flatten(y, "y")
        for i, classes in self._sparse_outputs:
            losses_lib.check_sparse_labels(np.asarray(ys[i]), classes)

    def _array_data(
        self, x: Any, y: Any, sw: Any, batch_size: int | None, class_weight: Any = None
    ) -> ArrayData:
        data = ArrayData(x, y, sw, batch_size or 32)
        hx, hy, hsw = data.host
        self._build_from_data(hx)
        self._check_embedding_ids("data", hx)
        self._check_labels(hy)
        if class_weight is not None:
            data.host = (hx, hy, _class_weights(class_weight, hy, hsw))
        return data

    def _callbacks(
        self,
        callbacks: Any,
        verbose: Any,
        params: dict[str, Any],
        history: History | None = None,
    ) -> CallbackList:
        cbs: list[Callback] = []
        if history is not None:
            cbs.append(history)
        cbs.extend(callbacks or [])
        level = 1 if verbose == "auto" else int(verbose)
        if level and not any(isinstance(c, ProgbarLogger) for c in cbs):
            cbs.append(ProgbarLogger(verbose=level))
        return CallbackList(cbs, model=self, params=params)

    # -- fit / evaluate / predict -------------------------------------------------

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: Sequence[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: Mapping[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int | None = None,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
        seed: int = 0,
    ) -> History:
        """Train the model; return a `History` of per-epoch logs.

        Args:
            x: Arrays (one, or a list/dict for several inputs), or an iterable of
                `(x, y)` / `(x, y, sample_weight)` batches (a generator, a PyTorch
                or Grain loader).
            y: Targets for array `x`.
            batch_size: Rows per step for arrays (default 32).
            epochs: How many epochs to train. Repeated `fit` calls continue the
                epoch count (so data order keeps changing); with `initial_epoch`,
                Keras' meaning: train from `initial_epoch` up to epoch `epochs`.
            verbose: 0 silent, 1 (or "auto") progress bar, 2 one line per epoch.
            callbacks: `fk.callbacks.Callback` instances.
            validation_split: Fraction of the array rows (the last ones, before
                shuffling) held out for validation.
            validation_data: `(x_val, y_val)` or `(x_val, y_val, sample_weight)`,
                or an iterable of batches.
            shuffle: Shuffle array rows each epoch (order = f(seed, epoch)).
            class_weight: `{class: weight}` applied as sample weights.
            sample_weight: Per-row weights `(n,)` for array data.
            initial_epoch: Epoch to start from (Keras' meaning).
            steps_per_epoch: Steps per epoch (needed for endless iterables).
            validation_steps: Batches of validation data per evaluation.
            validation_batch_size: Batch size for array validation data.
            validation_freq: Validate every this many epochs.
            seed: Seed of the data order and of the dropout keys.

        Returns:
            The `History` (also stored as `model.history`).
        """
        self._require_compiled("fit")
        if x is None:
            raise ValueError(f"{self._owner()}.fit: `x` is required.")
        # Every argument is checked before anything is built or trained.
        validation_split = check_fit_arguments(
            batch_size=batch_size, epochs=epochs, validation_split=validation_split,
            shuffle=shuffle, initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
            validation_batch_size=validation_batch_size,
            validation_freq=validation_freq, seed=seed, class_weight=class_weight,
        )
        x = check_inputs("fit", x)
        sample_weight = check_sample_weight("fit", sample_weight, None)
        val_source: Any = None
        if is_array_like(x):
            if validation_split:
                if validation_data is not None:
                    raise ValueError(
                        "fit: pass either `validation_split` or `validation_data`, not both."
                    )
                (x, y, sample_weight), val_source = split_validation(
                    x, y, sample_weight, validation_split
                )
            self._require_targets("fit", y)
            data: ArrayData | IterableData = self._array_data(
                x, y, sample_weight, batch_size, class_weight
            )
            steps = data.steps(steps_per_epoch)
        else:
            if y is not None or sample_weight is not None:
                raise ValueError(
                    "fit: with an iterable `x`, targets and weights come from its "
                    "batches; do not pass `y` or `sample_weight`."
                )
            if validation_split:
                raise ValueError(
                    "fit: `validation_split` needs array data (a generator cannot be "
                    "split); pass `validation_data` instead."
                )
            if class_weight is not None:
                raise ValueError("fit: `class_weight` needs array data.")
            data = IterableData(x, steps_per_epoch)
            first = data.peek()
            if first is None:
                raise ValueError("fit: the data yielded no batch.")
            self._require_targets("fit", first[1], batches=True)
            self._build_from_data(first[0])
            self.make_runner(first[1])
            steps = steps_per_epoch
        if validation_data is not None:
            # Keras: a tuple is `(x_val, y_val)` or `(x_val, y_val, sample_weight)`.
            if isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
                val_source = validation_data
            elif is_array_like(validation_data):
                raise ValueError(
                    "fit: `validation_data` must be a tuple `(x_val, y_val)` or "
                    "`(x_val, y_val, sample_weight)`, or an iterable of batches."
                )
            else:
                val_source = validation_data
        runner = self.make_runner()

        validation = None
        if val_source is not None:
            vbs = validation_batch_size or batch_size
            if isinstance(val_source, tuple):
                # Checked (rows, finiteness, shapes against the model) before
                # the first epoch trains, and put on the device once.
                val_source = self._validation_arrays(val_source, vbs)

            def validation() -> dict[str, float]:
                # Keras runs the fit's callbacks' test hooks (`on_test_begin`,
                # the test batch hooks, `on_test_end`) around validation.
                return self._evaluate_logs(val_source, vbs, validation_steps, cbs)

        if initial_epoch is None:
            start, end = self.progress.epoch, self.progress.epoch + epochs
        else:
            start, end = int(initial_epoch), epochs
        history = History()
        self.history = history
        cbs = self._callbacks(
            callbacks,
            verbose,
            {
                "epochs": end,
                "steps": steps,
                "verbose": verbose,
                "initial_epoch": start,
                # What a backup of this fit belongs to (BackupAndRestore).
                "run": {
                    "seed": int(seed),
                    "data": data_fingerprint(x, y, sample_weight)
                    if is_array_like(x)
                    else None,
                },
            },
            history,
        )
        runner.fit(
            self,
            data,
            epochs=end,
            initial_epoch=start,
            steps_per_epoch=steps_per_epoch,
            callbacks=cbs,
            seed=seed,
            shuffle=shuffle,
            validation=validation,
            validation_freq=validation_freq,
        )
        return history

    def _require_targets(self, what: str, y: Any, batches: bool = False) -> None:
        """Refuse data without targets for a model compiled with a loss, and
        targets whose structure does not match the model's outputs."""
        if y is not None and self.built:
            names = list(self.output_names)
            if len(names) > 1 and not (
                (isinstance(y, list | tuple) and len(y) == len(names))
                or (isinstance(y, Mapping) and set(names) <= set(y))
            ):
                if isinstance(y, list | tuple):
                    got = f"a {type(y).__name__} of {len(y)}"
                elif isinstance(y, Mapping):
                    got = f"keys {sorted(y)}"
                else:
                    got = "one array"
                raise ValueError(
                    f"{self._owner()}.{what}: the model has {len(names)} outputs "
                    f"{names}; `y` must be a list or dict with one entry per output, "
                    f"got {got}."
                )
        cfg = self._compile_config
        if (
            y is not None
            or cfg is None
            or cfg["loss"] is None
            or type(self).compute_loss is not Trainer.compute_loss
            or type(self).train_step is not Trainer.train_step
        ):
            return
        got = (
            "the data's batches carry no targets (each is `x` alone); yield "
            "`(x, y)` or `(x, y, sample_weight)`"
            if batches
            else "`y` is None; pass the targets"
        )
        raise ValueError(
            f"{self._owner()}.{what}: the model was compiled with a loss, but {got}."
        )

    def _validation_arrays(self, val: tuple[Any, ...], batch_size: Any) -> ArrayData:
        """`validation_data=(x, y[, sample_weight])` as checked device data.

        Checked before training: rows, finiteness, and one traced (not run)
        test step, so that a feature or target shape the model cannot take is
        refused while the weights are untouched.
        """
        vx, vy, vsw = unpack_batch(val)
        vx = check_inputs("fit", vx, "validation_data[0]")
        self._require_targets("fit", vy)
        vsw = check_sample_weight("fit", vsw, None)
        try:
            data = ArrayData(vx, vy, vsw, batch_size or 32)
        except (TypeError, ValueError) as e:
            raise type(e)(f"fit: `validation_data`: {e}") from e
        self._check_labels(data.host[1])
        runner = self.make_runner()
        step = runner.custom_test_step or runner.default_test_step()
        try:
            jax.eval_shape(
                step, self.params, self.state, runner.init_metrics(), data.spec_batch()
            )
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"fit: `validation_data` does not fit the model: {short_message(e)}"
            ) from e
        return data

    def _source(
        self, x: Any, y: Any, sw: Any, batch_size: int | None, steps: int | None
    ) -> ArrayData | IterableData:
        if isinstance(x, ArrayData):
            return x
        if is_array_like(x):
            return self._array_data(x, y, sw, batch_size)
        if isinstance(x, tuple) and len(x) in (2, 3) and is_array_like(x[0]):
            xx, yy, ss = unpack_batch(x)
            return self._array_data(xx, yy, ss, batch_size)
        if y is not None:
            raise ValueError("With an iterable `x`, targets come from its batches.")
        source = IterableData(x, steps)
        first = source.peek()
        if first is None:
            raise ValueError(f"{self._owner()}: the data yielded no batch.")
        self._build_from_data(first[0])
        self.make_runner(first[1])
        return source

    def _evaluate_logs(
        self,
        x: Any,
        batch_size: int | None,
        steps: int | None,
        cbs: CallbackList,
        y: Any = None,
        sample_weight: Any = None,
        progress: Sequence[Any] = (),
    ) -> dict[str, float]:
        if not isinstance(x, ArrayData):
            x = check_inputs("evaluate", x)
            if is_array_like(x):
                self._require_targets("evaluate", y)
            sample_weight = check_sample_weight("evaluate", sample_weight, None)
        data = self._source(x, y, sample_weight, batch_size, steps)
        for bar in progress:
            bar.total = data.steps(steps) if isinstance(data, ArrayData) else steps
        runner = self.make_runner()
        return runner.evaluate(self, data, steps=steps, callbacks=cbs)

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Sequence[Callback] | None = None,
        return_dict: bool = False,
    ) -> Any:
        """Loss and metrics on data, as Keras returns them.

        `verbose`: as Keras, `"auto"` (the default) or 1 shows a progress bar,
        2 one line at the end, 0 nothing.

        Returns:
            The loss (a float) when there are no metrics, else `[loss, *metrics]`;
            a dict of every log with `return_dict=True`.
        """
        self._require_compiled("evaluate")
        if x is None:
            raise ValueError(f"{self._owner()}.evaluate: `x` is required.")
        check_optional_int("evaluate", "batch_size", batch_size)
        check_optional_int("evaluate", "steps", steps)
        progress = _progress("evaluate", verbose)
        cbs = CallbackList(
            [*(callbacks or []), *progress], model=self, params={"steps": steps}
        )
        logs = self._evaluate_logs(
            x, batch_size, steps, cbs, y=y, sample_weight=sample_weight,
            progress=progress,
        )
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: Sequence[Callback] | None = None,
    ) -> Any:
        """The model's outputs for `x`, as NumPy arrays (a list/dict for several).

        `verbose`: as Keras, `"auto"` (the default) or 1 shows a progress bar,
        2 one line at the end, 0 nothing.
        """
        check_optional_int("predict", "batch_size", batch_size)
        check_optional_int("predict", "steps", steps)
        x = check_inputs("predict", x)
        iterable = not is_array_like(x)
        if iterable:
            source = IterableData(x, steps)
            first = source.peek()
            if first is None:
                raise ValueError(f"{self._owner()}.predict: the data yielded no batch.")
            self._build_from_data(first[0])
            x = source
        else:
            x = jax.tree.map(lambda a: as_host_array(a, "x"), x)
            self._build_from_data(x)
            self._check_embedding_ids("predict", x)
        runner = self._predict_runner()
        progress = _progress("predict", verbose)
        if not iterable:
            n = jax.tree.leaves(x)[0].shape[0]
            total = -(-n // min(batch_size or 32, max(n, 1)))
            for bar in progress:
                bar.total = total if steps is None else min(int(steps), total)
        else:
            for bar in progress:
                bar.total = steps
        cbs = CallbackList(
            [*(callbacks or []), *progress], model=self, params={"steps": steps}
        )
        return runner.predict(
            self,
            x,
            batch_size=batch_size or 32,
            steps=steps,
            callbacks=cbs,
            iterable=iterable,
        )

    def _predict_runner(self) -> Runner:
        if self._compile_config is not None:
            return self.make_runner()
        runner = self._plain_runner
        if runner is None:
            dist = distribution_lib.distribution()
            runner = Runner(
                apply_fn=self.apply,
                objective=None,
                optimizer=None,
                executor=get_executor("jit", dist),
                predict_step=self._custom_predict_step(),
                distribution=dist,
            )
            self._plain_runner = runner
        return runner

    # -- single batches ----------------------------------------------------------------

    def make_batch(self, x: Any, y: Any = None, sample_weight: Any = None) -> Batch:
        """One batch as the steps take it, on the device: every row real (mask all
        True), inputs cast as `fit` casts them, labels checked. Builds the model
        from `x` if needed."""
        sw = check_sample_weight("train_on_batch", sample_weight, None)
        x = check_inputs("train_on_batch", x)
        x = jax.tree.map(lambda a: as_host_array(a, "x"), x)
        y = None if y is None else jax.tree.map(lambda a: as_host_array(a, "y"), y)
        self._build_from_data(x)
        self._check_embedding_ids("batch", x)
        n = jax.tree.leaves(x)[0].shape[0]
        self._check_labels(y)
        if sw is not None and sw.shape[0] != n:
            raise ValueError(
                f"{self._owner()}: `sample_weight` must have shape ({n},), got "
                f"{sw.shape}."
            )
        return to_device(Batch(x, y, sw, np.ones((n,), bool)))

    def _result(self, logs: Mapping[str, Any], return_dict: bool) -> Any:
        out = self.make_runner().host_logs(logs)
        if return_dict:
            return out
        values = list(out.values())
        return values[0] if len(values) == 1 else values

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: Any = None,
        return_dict: bool = False,
    ) -> Any:
        """One optimizer step on one batch; returns that batch's loss (and metrics)."""
        self._require_compiled("train_on_batch")
        if class_weight is not None:
            check_class_weight("train_on_batch", class_weight)
        self._require_targets("train_on_batch", y)
        batch = self.make_batch(x, y, sample_weight)
        if class_weight is not None:
            batch = batch._replace(
                sample_weight=_class_weights(class_weight, batch.y, batch.sample_weight)
            )
        runner = self.make_runner()
        with runner.scope():
            ts = TrainState.create(
                copy_tree(self.params),
                copy_tree(self.state),
                copy_tree(self.opt_state),
                runner.init_metrics(),
                jax.random.key(self.seed),
                step=self.progress.step,
                epoch=self.progress.epoch,
            )
            # The loss gate, as in `fit`: a batch whose loss is not finite
            # changes nothing, and says so.
            ts, logs = runner.train_host_program(loss_gate=True)(ts, to_device(batch))
        self.publish(ts.params, ts.state, ts.opt_state)
        self.progress.step = int(ts.step)
        if bool(np.asarray(logs.get(NONFINITE, False))):
            warnings.warn(
                f"{self._owner()}.train_on_batch: the batch gave a non-finite loss; "
                "the update was not applied (look for NaN or infinite values in "
                "`x`, `y` or `sample_weight`, or lower the learning rate).",
                RuntimeWarning,
                stacklevel=2,
            )
            logs = {k: (v if k.startswith("_") else np.float32(np.nan))
                    for k, v in logs.items()}
        return self._result(logs, return_dict)

    def test_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        return_dict: bool = False,
    ) -> Any:
        """Loss (and metrics) of one batch in inference mode."""
        self._require_compiled("test_on_batch")
        batch = self.make_batch(x, y, sample_weight)
        runner = self.make_runner()
        with runner.scope():
            _, logs = runner.test_host_program()(
                *to_device((self.params, self.state)), runner.init_metrics(),
                to_device(batch),
            )
        return self._result(logs, return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """Outputs for one batch, as NumPy."""
        x = jax.tree.map(lambda a: as_host_array(a, "x"), x)
        self._build_from_data(x)
        runner = self._predict_runner()
        with runner.scope():
            y = runner.predict_host_program()(*to_device((self.params, self.state)), x)
        return jax.tree.map(np.asarray, y)


def _constrained(tx: Any, constraints: dict[tuple[str, ...], Any]) -> Any:
    """`tx` whose updates land each constrained weight on `c(w + update)`:
    Keras applies a weight's constraint after every optimizer update. The
    optimizer state keeps `tx`'s structure."""

    def update(updates: Any, state: Any, params: Any = None, **extra: Any) -> Any:
        updates, state = tx.update(updates, state, params, **extra)
        updates = jax.tree.map(lambda u: u, updates)  # fresh dicts to write into
        for path, constraint in constraints.items():
            p = keras_jax.get_path(params, path)
            u = keras_jax.get_path(updates, path)
            new = jax.numpy.asarray(constraint(p + u), p.dtype)
            keras_jax.put_path(updates, path, (new - p).astype(u.dtype))
        return updates, state

    return optax.GradientTransformationExtraArgs(tx.init, update)


class _StepProgress(Callback):
    """`evaluate`'s and `predict`'s display: a tqdm bar over the batches
    (`verbose=1`, refreshed at most every 0.2 s) or one line at the end (`2`)."""

    def __init__(self, what: str, verbose: int) -> None:
        super().__init__()
        self.what, self.verbose = what, verbose
        self.total: int | None = None  # batches, when known (set by the caller)
        self._bar: Any = None
        self._start = 0.0
        self._seen = 0
        self._last = 0.0

    def _begin(self, logs: Any = None) -> None:
        self._start = time.perf_counter()
        self._seen = 0
        if self.verbose == 1:
            self._bar = tqdm(
                total=self.total, unit="step", dynamic_ncols=True,
                leave=True, mininterval=0.2, file=sys.stdout,
                bar_format="{n_fmt}/{total_fmt} {bar} {elapsed}{postfix}",
            )

    def _batch(self, batch: int, logs: Any = None) -> None:
        self._seen = batch + 1
        if self._bar is not None:
            self._bar.update(self._seen - self._bar.n)
            now = time.perf_counter()
            if self.what == "evaluate" and logs and now - self._last >= 0.2:
                self._last = now
                self._bar.set_postfix_str(_fmt_logs(logs), refresh=False)

    def _end(self, logs: Any = None) -> None:
        shown = _fmt_logs(logs) if (self.what == "evaluate" and logs) else ""
        if self.total is not None:
            self._seen = max(self._seen, self.total)
        if self._bar is not None:
            self._bar.update(self._seen - self._bar.n)
            if shown:
                self._bar.set_postfix_str(shown, refresh=False)
            self._bar.close()
            self._bar = None
        elif self.verbose == 2:
            elapsed = time.perf_counter() - self._start
            steps = max(self._seen, 1)
            per_step = elapsed / steps * 1e3
            line = f"{steps}/{steps} - {elapsed:.2f}s - {per_step:.2f}ms/step"
            print(line + (f" - {shown}" if shown else ""))

    on_test_begin = on_predict_begin = _begin
    on_test_batch_end = on_predict_batch_end = _batch
    on_test_end = on_predict_end = _end


def _check_step_override(step: Any, name: str, args: str, returns: str) -> Any:
    """`step` (a bound override) if it takes funkeras' arguments; a clear error
    for Keras' signatures (`(data)`, or JAX Keras' `(state, data)`)."""
    want = len(args.split(", "))
    try:
        params = inspect.signature(step).parameters.values()
    except (TypeError, ValueError):
        return step
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return step
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in positional if p.default is p.empty]
    if len(required) <= want <= len(positional):
        return step
    raise TypeError(
        f"{name}: an override on a funkeras Model takes `({args})` and returns "
        f"`{returns}` (pure and jit-compatible; `super().{name}(...)` runs the "
        f"built-in one); this one takes {len(positional)} argument(s): "
        f"{[p.name for p in positional]}. Keras' `{name}(self, data)` / "
        f"`(self, state, data)` forms are not funkeras' signature."
    )


def _fmt_logs(logs: Mapping[str, Any]) -> str:
    return " - ".join(f"{k}: {float(v):.4f}" for k, v in logs.items())


def _progress(what: str, verbose: Any) -> list[Callback]:
    """The display callback of `evaluate`/`predict` for `verbose` (Keras' values)."""
    if verbose == "auto":
        level = 1
    elif not isinstance(verbose, int) or verbose < 0:
        raise ValueError(
            f"{what}: `verbose` must be 'auto', 0, 1 or 2, got {verbose!r}."
        )
    else:
        level = min(int(verbose), 2)
    return [] if level == 0 else [_StepProgress(what, level)]


class _NoLoss:
    """Stands in when `compile` got no loss: training refuses, predict works."""

    name = "no_loss"

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        raise ValueError(
            "compile: no `loss` was given; pass one to `compile` to train or evaluate."
        )


class _AddedLossesOnly:
    """The compiled loss of a model compiled without `loss` whose layers add
    losses (`add_loss`, regularizers): zero, so the added losses are the loss."""

    name = "added_losses"

    def __call__(self, y_true: Any, y_pred: Any) -> Any:
        del y_true
        return jax.numpy.zeros((jax.tree.leaves(y_pred)[0].shape[0],), np.float32)


def _label_shapes(y: Any, names: list[str]) -> list[Any] | None:
    """Per output, the shape of one label (no batch axis), when `y` is known."""
    if y is None:
        return None
    if len(names) > 1:
        if isinstance(y, Mapping):
            ys = [y.get(n) for n in names]
        elif isinstance(y, list | tuple) and len(y) == len(names):
            ys = list(y)
        else:
            return None
    else:
        ys = [y]
    return [None if v is None else tuple(np.shape(v))[1:] for v in ys]


def _wants_integers(model: Any) -> bool:
    """Whether a model built from data should keep integer inputs (token ids)."""
    try:
        layers = model.layers  # a Sequential lists its layers before it is built
    except ValueError:  # a model that knows its layers only once built
        return False
    return bool(layers) and isinstance(layers[0], Embedding)


def _input_dtype(a: Any, integer_ok: bool) -> Any:
    """The Input dtype for data `a`: float32 as Keras, unless ids feed an Embedding."""
    dtype = np.dtype(a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype)
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        return np.dtype("int32") if integer_ok else np.dtype("float32")
    if dtype == np.float64:
        return np.dtype("float32")
    return dtype


def _class_weights(class_weight: Mapping[int, float], y: Any, sw: Any) -> np.ndarray:
    check_class_weight("fit", class_weight)
    labels = np.asarray(y)
    if labels.ndim > 1 and labels.shape[-1] > 1:
        labels = labels.argmax(-1)
    labels = labels.reshape(labels.shape[0], -1)[:, 0].astype(np.int64)
    table = np.ones((int(max(max(class_weight), labels.max())) + 1,), np.float32)
    for k, v in class_weight.items():
        table[int(k)] = float(v)
    weights = table[labels]
    if sw is not None:
        weights = weights * np.asarray(sw, np.float32)
    return weights


def _check_losses(loss: Any) -> None:
    items = (
        list(loss.values())
        if isinstance(loss, Mapping)
        else (list(loss) if isinstance(loss, list | tuple) else [loss])
    )
    for item in items:
        if item is not None:
            losses_lib.get(item)
