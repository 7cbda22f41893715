"""The metric catalogue: `get` (Keras' `compile` rules for names such as
"accuracy"), `serialize` and `deserialize`."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from funkeras import losses
from funkeras._catalogue import Catalogue
from funkeras._validation import to_snake_case
from funkeras.metrics.accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    accuracy_for,
)
from funkeras.metrics.base import FUNCTIONS, Mean, MeanMetricWrapper, Metric, Sum
from funkeras.metrics.confusion_metrics import (
    AUC,
    F1Score,
    FalseNegatives,
    FalsePositives,
    FBetaScore,
    Precision,
    Recall,
    TrueNegatives,
    TruePositives,
)
from funkeras.metrics.iou import BinaryIoU, IoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from funkeras.metrics.regression import (
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    R2Score,
    RootMeanSquaredError,
)

__all__ = ["get", "serialize", "deserialize"]

_CLASSES_LIST = (
    Mean,
    Sum,
    MeanMetricWrapper,
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    MeanAbsoluteError,
    MeanSquaredError,
    RootMeanSquaredError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    LogCoshError,
    R2Score,
    Precision,
    Recall,
    AUC,
    FBetaScore,
    F1Score,
    IoU,
    MeanIoU,
    BinaryIoU,
    OneHotIoU,
    OneHotMeanIoU,
    TruePositives,
    FalsePositives,
    TrueNegatives,
    FalseNegatives,
)
_ALIASES = {
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError,
    "rmse": RootMeanSquaredError,
    "RMSE": RootMeanSquaredError,
}
# Names in logs (snake_case, and Keras' short aliases), then class names.
_NAMES = Catalogue(
    "metric",
    {
        **{
            to_snake_case(cls.__name__): cls
            for cls in _CLASSES_LIST
            if cls is not MeanMetricWrapper
        },
        **_ALIASES,
    },
)
_TAIL = (
    "Known metrics: " + str(sorted(_NAMES.names())) + ", the class names, and the "
    "loss names (averaged over samples)."
)
_CLASSES = Catalogue(
    "metric",
    {cls.__name__: cls for cls in _CLASSES_LIST},
    tail=_TAIL,
    suggest_from=[
        *_NAMES.names(),
        *FUNCTIONS.names(),
        *losses.base.CATALOGUE.names(),
        "acc",
    ],
)


def get(
    identifier: Any,
    loss: Any = None,
    output_shape: Sequence[Any] | None = None,
    *,
    label_shape: Sequence[Any] | None = None,
    custom_objects: dict[str, Any] | None = None,
) -> Metric | None:
    """Resolve a metric given by name, config dict, class, instance or function.

    Strings take the metric's name in logs, as in Keras' `compile`
    (`get("mae").name == "mae"`). `"accuracy"`/`"acc"` resolve as `compile` does:
    by the loss (binary crossentropy: `BinaryAccuracy`, with threshold 0 for
    logits; sparse categorical: `SparseCategoricalAccuracy`; categorical:
    `CategoricalAccuracy`), else by shapes (one output unit: binary; labels of
    lower rank or one label column: sparse; else categorical), else exact
    `Accuracy`. Loss names (`"binary_crossentropy"`, `"kld"`, ...) give the loss'
    mean over samples; a function is wrapped in `MeanMetricWrapper`.

    Args:
        identifier: `None`, a name, a dict `{"class_name", "config"}`, a `Metric`
            class or instance, or a per-sample function.
        loss: The compiled loss (name, function or `Loss`), for `"accuracy"`.
        output_shape: The shape of one prediction, without the batch axis
            (`(10,)`), or its spec; for `"accuracy"`.
        label_shape: The shape of one label, without the batch axis (`()` for
            integer class ids), or its spec; for `"accuracy"`.
        custom_objects: Optional mapping of extra names to classes or functions.

    Returns:
        A `Metric` instance (or `None`).

    Raises:
        ValueError: For an unknown name (with the closest known names), or an
            `"accuracy"` that the shapes cannot decide.

    Example:
        >>> from funkeras import metrics
        >>> metrics.get("accuracy", loss="sparse_categorical_crossentropy")
        SparseCategoricalAccuracy(name='accuracy')
        >>> metrics.get("acc", output_shape=(1,))
        BinaryAccuracy(name='acc')
        >>> metrics.get("mae")
        MeanAbsoluteError(name='mae')
    """
    if identifier is None:
        return None
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier, custom_objects)
    if isinstance(identifier, str):
        if custom_objects and identifier in custom_objects:
            return get(custom_objects[identifier])
        if identifier.lower() in ("accuracy", "acc"):
            return accuracy_for(identifier, loss, output_shape, label_shape)
        cls = _NAMES.find(identifier) or _CLASSES.find(identifier)
        if cls is not None:
            if cls is MeanMetricWrapper:
                raise ValueError(
                    "metrics.get('MeanMetricWrapper'): it needs a function `fn`."
                )
            return cls(name=identifier)
        fn = FUNCTIONS.find(identifier)
        if fn is not None:
            return MeanMetricWrapper(fn, name=identifier)
        try:
            fn = losses.get(identifier)
        except ValueError:
            raise _CLASSES.unknown(identifier) from None
        if isinstance(fn, losses.LossFunctionWrapper):
            return MeanMetricWrapper(fn.fn, name=identifier, **fn.fn_kwargs)
        return MeanMetricWrapper(fn, name=identifier)
    if inspect.isclass(identifier):
        if not issubclass(identifier, Metric):
            raise TypeError(f"Could not interpret metric identifier {identifier!r}.")
        return identifier()
    if isinstance(identifier, losses.LossFunctionWrapper):
        return MeanMetricWrapper(
            identifier.fn, name=identifier.name, **identifier.fn_kwargs
        )
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(
        f"Could not interpret metric identifier {identifier!r}: expected a name, a "
        "config dict, a Metric or a function."
    )


def serialize(metric: Metric) -> dict[str, Any]:
    """A JSON-safe description of a metric (`get`/`deserialize` invert it).

    Args:
        metric: A `Metric` instance.

    Returns:
        `{"class_name": ..., "config": ...}`.

    Example:
        >>> from funkeras import metrics
        >>> config = metrics.serialize(metrics.BinaryAccuracy(threshold=0.3))
        >>> config["config"]["threshold"]
        0.3
    """
    if not isinstance(metric, Metric):
        raise TypeError(f"serialize expects a Metric, got {metric!r}.")
    return _CLASSES.serialize(metric)


def deserialize(
    config: dict[str, Any], custom_objects: dict[str, Any] | None = None
) -> Metric:
    """Rebuild a metric from `serialize`'s output.

    Args:
        config: `{"class_name": ..., "config": ...}`.
        custom_objects: Optional mapping of extra names to `Metric` classes.

    Returns:
        The `Metric` instance.

    Raises:
        ValueError: For a malformed config or an unknown class name.

    Example:
        >>> from funkeras import metrics
        >>> metrics.deserialize({"class_name": "AUC", "config": {"curve": "PR"}}).curve
        'PR'
    """
    return _CLASSES.deserialize(config, custom_objects=custom_objects, base=Metric)
