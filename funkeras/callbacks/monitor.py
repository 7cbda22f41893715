"""`MonitorCallback`: what the callbacks that watch one logged value share.

`EarlyStopping`, `ModelCheckpoint` and `ReduceLROnPlateau` watch a key of the
logs (`monitor`), decide whether a new value is an improvement (`mode`,
`min_delta`) and warn, once per `fit`, when the key is not there.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from funkeras._validation import check_float
from funkeras.callbacks.callback import Callback

__all__ = ["MonitorCallback", "MonitorWarning", "infer_direction"]


class MonitorWarning(UserWarning):
    """A callback's `monitor` key is missing from the logs it watches."""


# Metrics whose larger values are better (Keras' `_direction = "up"`).
_UP_CLASSES = {
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "AUC",
    "Precision",
    "Recall",
    "FBetaScore",
    "F1Score",
    "R2Score",
    "IoU",
    "MeanIoU",
    "BinaryIoU",
    "OneHotIoU",
    "OneHotMeanIoU",
    "PrecisionAtRecall",
    "RecallAtPrecision",
    "SensitivityAtSpecificity",
    "SpecificityAtSensitivity",
    "TruePositives",
    "TrueNegatives",
}
_UP_WORDS = ("acc", "auc", "precision", "recall", "f1", "fbeta", "r2", "iou")
_DOWN_WORDS = (
    "loss",
    "error",
    "mse",
    "mae",
    "mape",
    "msle",
    "rmse",
    "crossentropy",
    "hinge",
    "logcosh",
    "poisson",
    "divergence",
)


def _compiled_metrics(model: Any) -> list[tuple[str, Any]]:
    objective = getattr(getattr(model, "runner", None), "objective", None)
    return [(name, metric) for _, metric, name in getattr(objective, "metrics", [])]


def infer_direction(monitor: str, model: Any = None) -> str | None:
    """`"min"` or `"max"` for a logged quantity, or None when it cannot be told.

    The rule of Keras' `mode="auto"`: losses are minimized; a compiled metric
    goes by its kind (a metric object may say so itself with a `direction`
    attribute, `"up"` or `"down"`); other names by what they contain
    (`accuracy`, `auc`, `precision`... are maximized; `error`, `mse`,
    `crossentropy`... minimized).

    Example:
        >>> infer_direction("val_accuracy"), infer_direction("loss")
        ('max', 'min')
    """
    name = monitor.removeprefix("val_")
    if name == "loss" or name.endswith("_loss"):
        return "min"
    for metric_name, metric in _compiled_metrics(model):
        if metric_name != name:
            continue
        direction = getattr(metric, "direction", None)
        if direction in ("up", "down"):
            return "max" if direction == "up" else "min"
        if type(metric).__name__ in _UP_CLASSES:
            return "max"
        lowered = type(metric).__name__.lower()
        if any(word in lowered for word in _DOWN_WORDS):
            return "min"
    lowered = name.lower()
    if any(word in lowered for word in _UP_WORDS):
        return "max"
    if any(word in lowered for word in _DOWN_WORDS):
        return "min"
    return None


class MonitorCallback(Callback):
    """Base of callbacks watching one logged quantity (Keras' `MonitorCallback`).

    Args:
        monitor: The logs key to watch (`"val_loss"`, `"accuracy"`...).
        mode: `"min"`, `"max"`, or `"auto"` (inferred from the name, see
            `infer_direction`).
        min_delta: A change smaller than this (in absolute value) is no
            improvement.

    A missing key gives one `MonitorWarning` per `fit`, naming the keys that
    are there; the callback then does nothing for that epoch.
    """

    def __init__(
        self, monitor: str = "val_loss", mode: str = "auto", min_delta: float = 0.0
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(
                f"{owner}: `monitor` must be a non-empty str, got {monitor!r}."
            )
        if mode not in ("auto", "min", "max"):
            raise ValueError(
                f"{owner}: `mode` must be one of ['auto', 'min', 'max'], got {mode!r}."
            )
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(check_float(owner, "min_delta", min_delta))
        self._direction: str | None = None
        self._warned = False
        self._restored = False

    def _begin_fit(self) -> bool:
        """Start a `fit`; True when `set_state` restored this callback just before."""
        self._warned = False
        self._direction = None
        restored, self._restored = self._restored, False
        return restored

    def _resolve_direction(self) -> str:
        if self._direction is None:
            if self.mode != "auto":
                self._direction = self.mode
            else:
                direction = infer_direction(self.monitor, self.model)
                if direction is None:
                    raise ValueError(
                        f"{type(self).__name__}: cannot tell whether "
                        f"monitor={self.monitor!r} should be minimized or maximized. "
                        "Pass `mode='min'` or `mode='max'`."
                    )
                self._direction = direction
        return self._direction

    def _monitor_value(
        self, logs: Mapping[str, float] | None, where: str
    ) -> float | None:
        """The monitored value as a float, or None (with one warning per fit)."""
        logs = logs if logs is not None else {}
        if self.monitor in logs:
            return float(logs[self.monitor])
        if not self._warned:
            self._warned = True
            hint = ""
            if self.monitor.startswith("val_"):
                hint = (
                    " Validation keys appear only when `fit` gets `validation_data` "
                    "or `validation_split`, in the epochs it validates."
                )
            warnings.warn(
                MonitorWarning(
                    f"{type(self).__name__}: monitor={self.monitor!r} is not in the "
                    f"logs of {where}; the available keys are {sorted(logs)}.{hint} "
                    "This callback does nothing until the key appears."
                ),
                stacklevel=2,
            )
        return None

    def _is_improvement(self, current: float, reference: float | None) -> bool:
        """Whether `current` beats `reference` by more than `min_delta`."""
        direction = self._resolve_direction()
        if reference is None:
            return True
        if direction == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference
