"""`Objective`: the compiled losses and metrics of a model, as pure functions.

It maps a model's outputs and targets (one or several outputs) to the total loss,
the per-output losses, and the metric states, all with the row mask applied, so
that padded rows never change a number.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from funkeras import losses as losses_lib
from funkeras import metrics as metrics_lib

__all__ = ["Objective", "per_sample_loss"]


def per_sample_loss(loss: Any, y_true: Any, y_pred: Any) -> jax.Array:
    """Per-sample values `(batch,)` of any loss: Keras classes, functions, callables.

    A user callable that returns a scalar (a batch mean) is evaluated per row, so
    that masks and sample weights still apply exactly.
    """
    call = getattr(loss, "call", None)
    fn = call if callable(call) else loss
    values = fn(y_true, y_pred)
    values = jnp.asarray(values)
    if values.ndim == 0:
        values = jax.vmap(lambda t, p: jnp.asarray(fn(t[None], p[None])).reshape(()))(
            y_true, y_pred
        )
    if values.ndim > 1:
        values = jnp.mean(values.reshape(values.shape[0], -1), axis=1)
    return values


class _LossTracker:
    """Running mean of the batch loss, weighted by the number of real rows."""

    name = "loss"

    @staticmethod
    def init() -> tuple[jax.Array, jax.Array]:
        return jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32)

    @staticmethod
    def update(state: Any, value: jax.Array, count: jax.Array) -> Any:
        total, n = state
        return total + value.astype(jnp.float32) * count, n + count

    @staticmethod
    def result(state: Any) -> jax.Array:
        total, n = state
        return total / jnp.maximum(n, 1.0)


def _structure(owner: str, what: str, value: Any, names: Sequence[str]) -> list[Any]:
    """Spread a compile argument over the outputs (one value, list, or dict)."""
    n = len(names)
    if isinstance(value, Mapping):
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(
                f"{owner}: `{what}` names unknown outputs {sorted(unknown)}; the "
                f"outputs are {list(names)}."
            )
        return [value.get(name) for name in names]
    if isinstance(value, list | tuple) and n > 1 and what != "metrics":
        if len(value) != n:
            raise ValueError(
                f"{owner}: `{what}` has {len(value)} entries for {n} outputs "
                f"{list(names)}."
            )
        return list(value)
    return [value] * n


class Objective:
    """Losses, loss weights and metrics for a model's outputs.

    Args:
        loss: One loss for every output, or a list/dict with one per output.
        output_names: The model's output names (Keras' naming of per-output logs).
        loss_weights: Optional scalar weights per output (list or dict).
        metrics: A list of metrics for every output, or a list of lists / dict.
            They ignore sample and class weights (row masks still apply).
        weighted_metrics: Same structure; these metrics receive the sample
            weights. A name `metrics` already has becomes `weighted_<name>`.
        output_shapes: Shapes of the outputs (no batch axis), used to resolve
            `"accuracy"` as Keras does.
    """

    def __init__(
        self,
        loss: Any,
        output_names: Sequence[str],
        *,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        output_shapes: Sequence[tuple[int, ...]] | None = None,
        label_shapes: Sequence[tuple[int, ...] | None] | None = None,
        owner: str = "compile",
    ) -> None:
        self.output_names = list(output_names)
        self.multi = len(self.output_names) > 1
        n = len(self.output_names)
        raw_losses = _structure(owner, "loss", loss, self.output_names)
        self.losses = [None if v is None else losses_lib.get(v) for v in raw_losses]
        if all(v is None for v in self.losses):
            raise ValueError(f"{owner}: `loss` is required to train; got {loss!r}.")
        weights = (
            [1.0] * n
            if loss_weights is None
            else _structure(owner, "loss_weights", loss_weights, self.output_names)
        )
        self.loss_weights = [1.0 if w is None else float(w) for w in weights]

        shapes = list(output_shapes) if output_shapes is not None else [None] * n
        labels = list(label_shapes) if label_shapes is not None else [None] * n
        self.output_shapes = shapes
        self.metrics: list[tuple[int, Any, str]] = []
        # Parallel to `metrics`: whether sample weights (and class weights) reach
        # it. Keras: `weighted_metrics=` get them, `metrics=` do not.
        self.weighted: list[bool] = []
        for weighted, given in ((False, metrics), (True, weighted_metrics)):
            taken = {name for _, _, name in self.metrics}
            for i, items in enumerate(self._per_output(owner, given)):
                for item in items:
                    metric = metrics_lib.get(
                        item, loss=raw_losses[i], output_shape=shapes[i],
                        label_shape=labels[i],
                    )
                    name = metric.name
                    # Keras names a weighted metric as the metric, or
                    # `weighted_<name>` when `metrics=` already holds that name.
                    if weighted and self._log_name(i, name) in taken:
                        name = f"weighted_{name}"
                    self.metrics.append((i, metric, self._log_name(i, name)))
                    self.weighted.append(weighted)
        names = [name for _, _, name in self.metrics]
        if len(set(names)) != len(names):
            dup = sorted({x for x in names if names.count(x) > 1})
            raise ValueError(
                f"{owner}: two metrics share the log name(s) {dup} in {names}; give "
                f"one of them another `name=`."
            )

    def _log_name(self, i: int, name: str) -> str:
        return f"{self.output_names[i]}_{name}" if self.multi else name

    def _per_output(self, owner: str, metrics: Any) -> list[list[Any]]:
        """`metrics` (or `weighted_metrics`) as one list per output."""
        n = len(self.output_names)
        if metrics is None:
            return [[] for _ in range(n)]
        if isinstance(metrics, Mapping):
            spread = _structure(owner, "metrics", metrics, self.output_names)
            return [list(_as_list(m)) for m in spread]
        if (
            self.multi
            and isinstance(metrics, list | tuple)
            and len(metrics) == n
            and all(isinstance(m, list | tuple) or m is None for m in metrics)
        ):
            return [list(_as_list(m)) for m in metrics]
        return [list(_as_list(metrics)) for _ in range(n)]

    # -- structure ------------------------------------------------------------------

    def flatten(self, value: Any, what: str) -> list[Any]:
        """`value` (targets, outputs or weights) as one entry per output, in order.

        `what` names the value in the error for a structure that does not fit.
        """
        if not self.multi:
            return [value]
        if isinstance(value, Mapping):
            return [value[name] for name in self.output_names]
        if isinstance(value, list | tuple):
            return list(value)
        raise ValueError(
            f"The model has {len(self.output_names)} outputs {self.output_names}; "
            f"`{what}` must be a list or dict with one entry per output."
        )

    def _sample_weights(self, sample_weight: Any) -> list[Any]:
        """One sample-weight entry per output: per-output weights, or the same one."""
        if self.multi and isinstance(sample_weight, list | tuple | Mapping):
            return self.flatten(sample_weight, "sample_weight")
        return [sample_weight] * len(self.output_names)

    @property
    def loss_names(self) -> list[str]:
        """The per-output loss logs (`"<output>_loss"`), in output order; none for
        a single output."""
        if not self.multi:
            return []
        return [
            f"{n}_loss"
            for n, fn in zip(self.output_names, self.losses, strict=True)
            if fn is not None
        ]

    @property
    def log_names(self) -> list[str]:
        return ["loss", *self.loss_names, *[name for _, _, name in self.metrics]]

    # -- pure functions ------------------------------------------------------------

    def loss(
        self,
        y_true: Any,
        y_pred: Any,
        sample_weight: Any,
        mask: jax.Array,
        output_masks: Any = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """`(total, per-output losses)`, reduced over the real rows only.

        `output_masks` (the outputs' sequence masks, structured like `y_pred`,
        None where an output has none) makes masked timesteps count for
        nothing, as Keras does with a masked output.
        """
        ys, ps = self.flatten(y_true, "y"), self.flatten(y_pred, "outputs")
        sws = self._sample_weights(sample_weight)
        oms = self._output_masks(output_masks)
        total = jnp.zeros((), jnp.float32)
        parts: dict[str, jax.Array] = {}
        for name, fn, w, t, p, sw, om in zip(
            self.output_names,
            self.losses,
            self.loss_weights,
            ys,
            ps,
            sws,
            oms,
            strict=True,
        ):
            if fn is None:
                continue
            if om is not None and not isinstance(fn, losses_lib.Loss):
                # Keras wraps a loss function in a LossFunctionWrapper.
                fn = losses_lib.LossFunctionWrapper(fn)
            if isinstance(fn, losses_lib.Loss):
                # Loss objects reduce as Keras does (e.g. ignore_class counts only
                # the entries kept), over the real rows.
                reduced = (
                    fn(t, p, sw, mask=mask)
                    if om is None
                    else fn(t, p, sw, mask=mask, sequence_mask=om)
                )
            else:
                values = per_sample_loss(fn, t, p)
                reduced = losses_lib.reduce_loss(values, sample_weight=sw, mask=mask)
            parts[f"{name}_loss"] = reduced
            total = total + w * reduced.astype(jnp.float32)
        return total, parts

    def _output_masks(self, output_masks: Any) -> list[Any]:
        """One sequence mask (or None) per output."""
        if output_masks is None:
            return [None] * len(self.output_names)
        if not self.multi:
            return [output_masks]
        return self.flatten(output_masks, "output masks")

    def init_metrics(self) -> tuple[Any, ...]:
        """Fresh metric states: the loss tracker, per-output trackers, then metrics."""
        trackers = [_LossTracker.init()]
        if self.multi:
            trackers += [_LossTracker.init() for fn in self.losses if fn is not None]
        specs = [
            None if shape is None else jax.ShapeDtypeStruct(tuple(shape), jnp.float32)
            for shape in self.output_shapes
        ]
        metric_states = tuple(_init_metric(m, specs[i]) for i, m, _ in self.metrics)
        return (tuple(trackers), metric_states)

    def update_metrics(
        self,
        states: Any,
        y_true: Any,
        y_pred: Any,
        sample_weight: Any,
        mask: jax.Array,
        loss: jax.Array,
        parts: dict[str, jax.Array],
        output_masks: Any = None,
    ) -> Any:
        """Update every metric state with this batch (padding rows excluded).

        With `output_masks`, the metrics that average a per-timestep function
        (`MeanMetricWrapper`: accuracies, losses as metrics) skip masked
        timesteps, as Keras' do; other metrics see the rows only (Keras'
        ignore the mask too).
        """
        trackers, metric_states = states
        count = jnp.sum(mask).astype(jnp.float32)
        new_trackers = [_LossTracker.update(trackers[0], loss, count)]
        if self.multi:
            # By name: `parts` may come back from a transformation (the aux output
            # of `jax.value_and_grad`) with its keys sorted, not in output order.
            for name, tracker in zip(self.loss_names, trackers[1:], strict=True):
                value = parts.get(name)
                new_trackers.append(
                    tracker
                    if value is None
                    else _LossTracker.update(tracker, value, count)
                )
        ys, ps = self.flatten(y_true, "y"), self.flatten(y_pred, "outputs")
        sws = self._sample_weights(sample_weight)
        oms = self._output_masks(output_masks)
        new_metrics = tuple(
            metric.update(
                state, ys[i], ps[i], sample_weight=sws[i] if weighted else None,
                mask=mask,
            )
            if oms[i] is None or not isinstance(metric, metrics_lib.MeanMetricWrapper)
            else metric.update(
                state, ys[i], ps[i], sample_weight=sws[i] if weighted else None,
                mask=mask, sequence_mask=oms[i],
            )
            for (i, metric, _), weighted, state in zip(
                self.metrics, self.weighted, metric_states, strict=True
            )
        )
        return (tuple(new_trackers), new_metrics)

    def results(self, states: Any) -> dict[str, jax.Array]:
        """The current value of every log (`loss`, per-output losses, metrics)."""
        trackers, metric_states = states
        logs = {"loss": _LossTracker.result(trackers[0])}
        if self.multi:
            for name, tracker in zip(self.loss_names, trackers[1:], strict=True):
                logs[name] = _LossTracker.result(tracker)
        for (_, metric, name), state in zip(self.metrics, metric_states, strict=True):
            logs[name] = metric.result(state)
        return logs


def _init_metric(metric: Any, spec: Any) -> Any:
    """`metric.init(spec)`; a user metric may define `init(self)` without the spec."""
    params = inspect.signature(metric.init).parameters
    return metric.init(spec) if params else metric.init()


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]

