"""Normalization layers: BatchNormalization (moving statistics, masked moments) and
LayerNormalization, with Keras 3 numerics.

Both compute in float32 when the input is float16/bfloat16 (statistics of
low-precision values overflow and lose digits) and return the input dtype.
`BatchNormalization` keeps its moving statistics in float32 whatever the compute
dtype, so a bfloat16 model does not round them away between steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from funkeras import initializers, regularizers
from funkeras._validation import check_bool, check_float, check_int, shape_str
from funkeras.layers.base import Layer, layer_label
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = [
    "BatchNormalization",
    "LayerNormalization",
    "GroupNormalization",
    "RMSNormalization",
    "UnitNormalization",
]


# ----------------------------------------------------------------------------
# Helpers shared by both layers.
# ----------------------------------------------------------------------------


def _compute_dtype(dtype: Any) -> Any:
    """float32 for float16/bfloat16 (and integer) inputs, else the input's dtype."""
    return jnp.promote_types(dtype, jnp.float32)


def _output_dtype(dtype: Any) -> Any:
    """The input dtype for floating inputs; float32 for integer or bool inputs."""
    return dtype if jnp.issubdtype(dtype, jnp.floating) else _compute_dtype(dtype)




def _check_initializer(owner: str, arg: str, value: Any) -> None:
    if value is None:
        raise ValueError(
            f"{owner}: `{arg}` must be an initializer name, config dict or callable, "
            "got None."
        )
    try:
        initializers.get(value)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{owner}: invalid `{arg}`={value!r}: {e}") from e


def _check_regularizer(owner: str, arg: str, value: Any) -> None:
    if value is None:
        return
    try:
        regularizers.get(value)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{owner}: invalid `{arg}`={value!r}: {e}") from e


def _serialize(module: Any, value: Any) -> Any:
    """A built-in initializer/regularizer instance as data; names and dicts as given.

    A user's own callable cannot be stored as data: it is returned unchanged, so
    the config then holds that callable (usable in memory, not JSON-safe).
    """
    if value is None or isinstance(value, str | dict):
        return value
    try:
        return module.serialize(value)
    except ValueError:
        return value


def _serialized_config(config: dict[str, Any]) -> dict[str, Any]:
    for arg in config:
        if arg.endswith("_initializer"):
            config[arg] = _serialize(initializers, config[arg])
        elif arg.endswith("_regularizer"):
            config[arg] = _serialize(regularizers, config[arg])
    return config


def _check_spec(layer: Layer, input_spec: Any) -> tuple[int, ...]:
    shape = getattr(input_spec, "shape", None)
    if shape is None or not hasattr(input_spec, "dtype"):
        raise TypeError(
            f"{layer_label(layer)}: `input_spec` must be one jax.ShapeDtypeStruct "
            f"(no batch axis), got {type(input_spec).__name__}."
        )
    return tuple(shape)


def _broadcast_shape(ndim: int, axes: Sequence[int], sizes: Sequence[int]) -> list[int]:
    shape = [1] * ndim
    for a, n in zip(axes, sizes, strict=True):
        shape[a] = n
    return shape


# ----------------------------------------------------------------------------
# BatchNormalization.
# ----------------------------------------------------------------------------


@dataclass(eq=False)
class BatchNormalization(Layer):
    """Batch normalization: `gamma * (x - mean) / sqrt(var + epsilon) + beta`.

    In training (`training=True` on a trainable layer) `mean` and `var` are the
    mean and biased variance of the batch over every axis except `axis`, and the
    moving statistics are updated as
    `moving = moving * momentum + batch_statistic * (1 - momentum)`
    (the moving variance with the biased batch variance, as Keras does). In
    inference (`training=False`, or any call on a frozen layer with
    `trainable=False`, as in Keras) the moving statistics are used and the state
    comes back unchanged.

    `mask`, an optional boolean `(batch,)` vector of real rows, restricts the
    batch moments to the real rows, so a short batch padded to a fixed size
    normalizes exactly as the short batch would. A batch with no real row leaves
    the moving statistics unchanged. The mask is ignored in inference.

    float16/bfloat16 inputs are normalized in float32 and the result is cast
    back to the input dtype.

    Args:
        axis: The feature axis (an int, counted with the batch axis, as in Keras;
            `-1` is the last axis). It may not be the batch axis.
        momentum: Momentum of the moving averages, in [0, 1].
        epsilon: Positive float added to the variance before the square root.
        center: Add the learned offset `beta`.
        scale: Multiply by the learned factor `gamma`.
        beta_initializer: Initializer of `beta` (a name, config dict or callable).
        gamma_initializer: Initializer of `gamma`.
        moving_mean_initializer: Initializer of `moving_mean`.
        moving_variance_initializer: Initializer of `moving_variance`.
        beta_regularizer: Optional regularizer of `beta` (added by `penalty`).
        gamma_regularizer: Optional regularizer of `gamma`.

    Input shape:
        Any shape `(batch, ...)` of rank >= 2.

    Output shape:
        The input shape.

    Params: `gamma` (features,) if `scale`; `beta` (features,) if `center`; in the
    layer's `dtype`. State: `moving_mean`, `moving_variance` (features,), float32.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.normalization import BatchNormalization
        >>> bn = BatchNormalization()
        >>> params, state = bn.init(
        ...     jax.random.key(0), jax.ShapeDtypeStruct((1,), jnp.float32))
        >>> y, state = bn.apply(params, state, jnp.array([[1.0], [3.0]]), training=True)
        >>> jnp.round(y, 2).tolist()
        [[-1.0], [1.0]]
        >>> round(float(state["moving_mean"][0]), 4)  # 0.99 * 0 + 0.01 * 2
        0.02
    """

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True
    # Keras' BatchNormalization computes its training moments over the
    # unmasked timesteps of a sequence mask.
    consumes_sequence_mask: ClassVar[bool] = True

    axis: int = -1
    momentum: float = 0.99
    epsilon: float = 1e-3
    center: bool = True
    scale: bool = True
    beta_initializer: Any = "zeros"
    gamma_initializer: Any = "ones"
    moving_mean_initializer: Any = "zeros"
    moving_variance_initializer: Any = "ones"
    beta_regularizer: Any = None
    gamma_regularizer: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.axis = check_int(owner, "axis", self.axis, minimum=None)
        if self.axis == 0:
            raise ValueError(
                f"{owner}: `axis` may not be 0, the batch axis, got axis=0. Pass the "
                "feature axis (-1 for channels-last inputs)."
            )
        self.momentum = check_float(owner, "momentum", self.momentum, low=0.0, high=1.0)
        self.epsilon = check_float(
            owner, "epsilon", self.epsilon, low=0.0, low_inclusive=False
        )
        check_bool(owner, "center", self.center)
        check_bool(owner, "scale", self.scale)
        for arg in (
            "beta_initializer",
            "gamma_initializer",
            "moving_mean_initializer",
            "moving_variance_initializer",
        ):
            _check_initializer(owner, arg, getattr(self, arg))
        for arg in ("beta_regularizer", "gamma_regularizer"):
            _check_regularizer(owner, arg, getattr(self, arg))

    def get_config(self) -> dict[str, Any]:
        """The hyperparameters; built-in initializer/regularizer objects as data."""
        return _serialized_config(super().get_config())

    def _feature_axis(self, shape: Sequence[Any], what: str) -> int:
        """The non-negative feature axis for a batched `shape`, or a clear error."""
        ndim = len(shape)
        axis = self.axis + ndim if self.axis < 0 else self.axis
        if not 1 <= axis < ndim:
            if ndim < 2:
                fix = "BatchNormalization needs a feature axis besides the batch axis."
            else:
                fix = f"Pass `axis` in [1, {ndim - 1}] or [-{ndim - 1}, -1]."
            raise ValueError(
                f"{layer_label(self)}: `axis`={self.axis} is not a feature axis of "
                f"{what} of rank {ndim} (batch included), shape {shape_str(shape)}. "
                + fix
            )
        return axis

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create `gamma`/`beta` (layer dtype) and the float32 moving statistics."""
        shape = (None, *_check_spec(self, input_spec))
        axis = self._feature_axis(shape, "the input")
        features = (shape[axis],)
        k_gamma, k_beta, k_mean, k_var = jax.random.split(key, 4)
        params: Params = {}
        if self.scale:
            params["gamma"] = initializers.get(self.gamma_initializer)(
                k_gamma, features, jnp.dtype(self.dtype)
            )
        if self.center:
            params["beta"] = initializers.get(self.beta_initializer)(
                k_beta, features, jnp.dtype(self.dtype)
            )
        state: State = {
            "moving_mean": initializers.get(self.moving_mean_initializer)(
                k_mean, features, jnp.float32
            ),
            "moving_variance": initializers.get(self.moving_variance_initializer)(
                k_var, features, jnp.float32
            ),
        }
        return params, state

    def apply(
        self,
        params: Params,
        state: State,
        x: Any,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
        sequence_mask: Array | None = None,
    ) -> tuple[Array, State]:
        """Normalize `x`; in training also return the updated moving statistics.

        Args:
            params: `gamma`/`beta` from `init`.
            state: `moving_mean`/`moving_variance` from `init` or the last call.
            x: Input batch.
            training: Use (and fold into the moving statistics) the batch moments.
                Ignored, as in Keras, when the layer is frozen (`trainable=False`).
            key: Unused.
            mask: Optional boolean `(batch,)` vector; only rows marked `True`
                contribute to the batch moments.
            sequence_mask: Optional sequence mask of `x` (rank one less than
                `x`, e.g. `(batch, time)`); only unmasked timesteps contribute
                to the batch moments (Keras' masked moments).

        Returns:
            `(y, state)`: `y` has the shape and dtype of `x`.
        """
        del key
        x = jnp.asarray(x)
        axis = self._feature_axis(x.shape, "`x`")
        features = state["moving_mean"].shape[0]
        if x.shape[axis] != features:
            raise ValueError(
                f"{layer_label(self)}: expected axis {self.axis} of `x` to have "
                f"{features} features (from `init`), got "
                f"x.shape={shape_str(x.shape)}. Did the previous layer's output "
                "size change?"
            )
        compute_dtype = _compute_dtype(x.dtype)
        xc = x.astype(compute_dtype)

        if training and self.trainable:
            reduce_axes = tuple(a for a in range(x.ndim) if a != axis)
            if sequence_mask is not None:
                mean, var, any_rows = _masked_moments(
                    self, xc, reduce_axes, mask, sequence_mask
                )
            else:
                mean, var, any_rows = _batch_moments(self, xc, reduce_axes, mask)
            new_state = dict(state)
            for name, stat in (("moving_mean", mean), ("moving_variance", var)):
                moving = state[name]
                updated = moving.astype(compute_dtype) * self.momentum + stat * (
                    1.0 - self.momentum
                )
                # A batch that is pure padding carries no statistics: keep the old ones.
                new_state[name] = jnp.where(any_rows, updated, moving).astype(
                    moving.dtype
                )
        else:
            mean = state["moving_mean"].astype(compute_dtype)
            var = state["moving_variance"].astype(compute_dtype)
            new_state = state

        y = _batch_norm(
            xc,
            mean,
            var,
            params.get("gamma") if self.scale else None,
            params.get("beta") if self.center else None,
            axis,
            self.epsilon,
        )
        return y.astype(_output_dtype(x.dtype)), new_state


def _batch_moments(
    layer: Layer, x: Array, reduce_axes: tuple[int, ...], mask: Any
) -> tuple[Array, Array, Array]:
    """Mean and biased variance over `reduce_axes`, over the masked rows only.

    Returns `(mean, var, any_rows)`; `any_rows` is False when the mask has no
    real row (the moments are then 0 and must not be used).
    """
    if mask is None:
        mean = jnp.mean(x, axis=reduce_axes)
        var = jnp.var(x, axis=reduce_axes)
        return mean, var, jnp.asarray(True)
    mask = jnp.asarray(mask)
    if mask.ndim != 1:
        raise ValueError(
            f"{layer_label(layer)}: `mask` must be a boolean (batch,) vector of real "
            f"rows, got mask.shape={shape_str(mask.shape)} for "
            f"x.shape={shape_str(x.shape)}."
        )
    rows = mask.astype(bool)[(slice(None),) + (None,) * (x.ndim - 1)]
    # Each real row contributes one value per position of the non-batch reduced
    # axes; those sizes are static, so no arithmetic touches the batch size.
    per_row = math.prod(int(x.shape[a]) for a in reduce_axes if a != 0)
    count = jnp.sum(mask.astype(x.dtype)) * per_row
    safe_count = jnp.maximum(count, 1)
    # `where` (not multiplication) so that padded rows holding inf/NaN cannot leak.
    mean = jnp.sum(jnp.where(rows, x, 0), axis=reduce_axes) / safe_count
    diff = jnp.where(rows, x - mean.reshape(_keep_shape(x, reduce_axes)), 0)
    var = jnp.sum(jnp.square(diff), axis=reduce_axes) / safe_count
    return mean, var, count > 0


def _masked_moments(
    layer: Layer,
    x: Array,
    reduce_axes: tuple[int, ...],
    mask: Any,
    sequence_mask: Any,
) -> tuple[Array, Array, Array]:
    """Keras' moments under a sequence mask (and the row mask, if any).

    The mask is broadcast over the last axis; mean and variance divide by the
    number of unmasked entries plus Keras' epsilon (1e-7), as Keras does.
    """
    seq = jnp.asarray(sequence_mask)
    if seq.ndim != x.ndim - 1:
        raise ValueError(
            f"{layer_label(layer)}: the sequence mask must have one dimension less "
            f"than the inputs, got mask.shape={shape_str(seq.shape)} for "
            f"x.shape={shape_str(x.shape)}."
        )
    keep = jnp.broadcast_to(seq.astype(bool)[..., None], x.shape)
    if mask is not None:
        rows = jnp.asarray(mask).astype(bool)[(slice(None),) + (None,) * (x.ndim - 1)]
        keep = keep & rows
    count = jnp.sum(keep.astype(x.dtype), axis=reduce_axes)
    mean = jnp.sum(jnp.where(keep, x, 0), axis=reduce_axes) / (count + 1e-7)
    diff = jnp.where(keep, x - mean.reshape(_keep_shape(x, reduce_axes)), 0)
    var = jnp.sum(jnp.square(diff), axis=reduce_axes) / (count + 1e-7)
    return mean, var, jnp.any(count > 0)


def _keep_shape(x: Array, reduce_axes: tuple[int, ...]) -> list[int]:
    shape = [1] * x.ndim
    for a in range(x.ndim):
        if a not in reduce_axes:
            shape[a] = int(x.shape[a])
    return shape


def _batch_norm(
    x: Array,
    mean: Array,
    var: Array,
    gamma: Array | None,
    beta: Array | None,
    axis: int,
    epsilon: float,
) -> Array:
    """Keras' `ops.batch_normalization`: `x * inv + (beta - mean * inv)`."""
    shape = _broadcast_shape(x.ndim, [axis], [mean.shape[0]])
    inv = jax.lax.rsqrt(var.reshape(shape) + epsilon)
    if gamma is not None:
        inv = inv * gamma.astype(x.dtype).reshape(shape)
    res = -mean.reshape(shape) * inv
    if beta is not None:
        res = res + beta.astype(x.dtype).reshape(shape)
    return x * inv + res


# ----------------------------------------------------------------------------
# LayerNormalization.
# ----------------------------------------------------------------------------


@dataclass(eq=False)
class LayerNormalization(Layer):
    """Per-example normalization: `gamma * (x - mean) / sqrt(var + epsilon) + beta`.

    `mean` and `var` (biased) are taken over `axis` for each example separately,
    so training and inference compute the same thing and the layer holds no
    state. float16/bfloat16 inputs are normalized in float32 and the result is
    cast back to the input dtype. `gamma` and `beta` span the normalized axes,
    in the order `axis` lists them (Keras' layout).

    Args:
        axis: The axis or list of axes to normalize over (counted with the batch
            axis, as in Keras; `-1` is the last axis). The batch axis is not
            allowed.
        epsilon: Positive float added to the variance (Keras 3 default 1e-3).
        center: Add the learned offset `beta`.
        scale: Multiply by the learned factor `gamma`.
        beta_initializer: Initializer of `beta` (a name, config dict or callable).
        gamma_initializer: Initializer of `gamma`.
        beta_regularizer: Optional regularizer of `beta` (added by `penalty`).
        gamma_regularizer: Optional regularizer of `gamma`.

    Input shape:
        Any shape `(batch, ...)` that has every axis in `axis`.

    Output shape:
        The input shape.

    Params: `gamma` if `scale`, `beta` if `center`, both of shape
    `tuple(input_shape[a] for a in axis)`, in the layer's `dtype`. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.normalization import LayerNormalization
        >>> ln = LayerNormalization()
        >>> params, state = ln.init(
        ...     jax.random.key(0), jax.ShapeDtypeStruct((2,), jnp.float32))
        >>> y, _ = ln.apply(params, state, jnp.array([[1.0, 3.0], [0.0, -4.0]]))
        >>> jnp.round(y, 2).tolist()
        [[-1.0, 1.0], [1.0, -1.0]]
    """

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True

    axis: int | list[int] = -1
    epsilon: float = 1e-3
    center: bool = True
    scale: bool = True
    beta_initializer: Any = "zeros"
    gamma_initializer: Any = "ones"
    beta_regularizer: Any = None
    gamma_regularizer: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if isinstance(self.axis, list | tuple):
            if not self.axis:
                raise ValueError(
                    f"{owner}: `axis` must name at least one axis, got {self.axis!r}."
                )
            self.axis = [check_int(owner, "axis", a, minimum=None) for a in self.axis]
            axes = self.axis
        elif isinstance(self.axis, int | np.integer):
            self.axis = check_int(owner, "axis", self.axis, minimum=None)
            axes = [self.axis]
        else:
            raise TypeError(
                f"{owner}: `axis` must be an int or a list of ints, got {self.axis!r} "
                f"({type(self.axis).__name__})."
            )
        if 0 in axes:
            raise ValueError(
                f"{owner}: `axis` may not include 0, the batch axis, got "
                f"axis={self.axis!r}. Normalize over feature axes (-1 by default)."
            )
        self.epsilon = check_float(
            owner, "epsilon", self.epsilon, low=0.0, low_inclusive=False
        )
        check_bool(owner, "center", self.center)
        check_bool(owner, "scale", self.scale)
        for arg in ("beta_initializer", "gamma_initializer"):
            _check_initializer(owner, arg, getattr(self, arg))
        for arg in ("beta_regularizer", "gamma_regularizer"):
            _check_regularizer(owner, arg, getattr(self, arg))

    def get_config(self) -> dict[str, Any]:
        """The hyperparameters; built-in initializer/regularizer objects as data."""
        return _serialized_config(super().get_config())

    def _axes(self, shape: Sequence[Any], what: str) -> list[int]:
        """The non-negative axes (in `axis` order) for a batched `shape`."""
        ndim = len(shape)
        given = self.axis if isinstance(self.axis, list) else [self.axis]
        axes = [a + ndim if a < 0 else a for a in given]
        if any(not 1 <= a < ndim for a in axes):
            raise ValueError(
                f"{layer_label(self)}: `axis`={self.axis!r} is out of range for "
                f"{what} of rank {ndim} (batch included), shape {shape_str(shape)}. "
                f"Use axes in [1, {ndim - 1}] or [-{ndim - 1}, -1]."
            )
        if len(set(axes)) != len(axes):
            raise ValueError(
                f"{layer_label(self)}: `axis`={self.axis!r} names the same axis twice "
                f"for {what} of shape {shape_str(shape)}."
            )
        return axes

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create `gamma`/`beta` over the normalized axes, in the layer's dtype."""
        shape = (None, *_check_spec(self, input_spec))
        axes = self._axes(shape, "the input")
        param_shape = tuple(shape[a] for a in axes)
        k_gamma, k_beta = jax.random.split(key)
        params: Params = {}
        if self.scale:
            params["gamma"] = initializers.get(self.gamma_initializer)(
                k_gamma, param_shape, jnp.dtype(self.dtype)
            )
        if self.center:
            params["beta"] = initializers.get(self.beta_initializer)(
                k_beta, param_shape, jnp.dtype(self.dtype)
            )
        return params, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Any,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        """Normalize each example of `x` over `axis`; `state` passes through.

        Returns:
            `(y, state)`: `y` has the shape and dtype of `x`.
        """
        del training, key, mask
        x = jnp.asarray(x)
        axes = self._axes(x.shape, "`x`")
        sizes = [int(x.shape[a]) for a in axes]
        for name in ("gamma", "beta"):
            p = params.get(name)
            if p is not None and tuple(p.shape) != tuple(sizes):
                raise ValueError(
                    f"{layer_label(self)}: `{name}` has shape {shape_str(p.shape)} "
                    f"(from `init`) but the normalized axes {self.axis!r} of `x` have "
                    f"sizes {tuple(sizes)} (x.shape={shape_str(x.shape)}). Did the "
                    "previous layer's output shape change?"
                )
        compute_dtype = _compute_dtype(x.dtype)
        xc = x.astype(compute_dtype)
        mean = jnp.mean(xc, axis=tuple(axes), keepdims=True)
        var = jnp.var(xc, axis=tuple(axes), keepdims=True)
        inv = jax.lax.rsqrt(var + self.epsilon)
        # Keras reshapes (not transposes) the params onto the normalized axes.
        shape = _broadcast_shape(x.ndim, axes, sizes)
        if self.scale:
            inv = inv * params["gamma"].astype(compute_dtype).reshape(shape)
        res = -mean * inv
        if self.center:
            res = res + params["beta"].astype(compute_dtype).reshape(shape)
        y = xc * inv + res
        return y.astype(_output_dtype(x.dtype)), state


# ----------------------------------------------------------------------------
# GroupNormalization, RMSNormalization, UnitNormalization.
# ----------------------------------------------------------------------------


def _feature_axis(layer: Layer, axis: int, ndim: int, what: str) -> int:
    """`axis` as a non-negative axis of a rank-`ndim` value (batch included)."""
    a = axis + ndim if axis < 0 else axis
    if not 1 <= a < ndim:
        raise ValueError(
            f"{layer_label(layer)}: `axis`={axis} is out of range for {what} of "
            f"rank {ndim} (batch included). Use an axis in [1, {ndim - 1}] or "
            f"[-{ndim - 1}, -1]; the batch axis cannot be normalized over."
        )
    return a


@dataclass(eq=False)
class GroupNormalization(Layer):
    """Group normalization: channels split into `groups`, each normalized per example.

    For each example and group, `mean` and `var` are taken over the group's
    channels and every other non-batch axis; then
    `gamma * (x - mean) / sqrt(var + epsilon) + beta` with per-channel `gamma`
    and `beta`. `groups=-1` puts every channel in its own group (instance
    normalization); `groups=1` is layer normalization over all axes. Computed in
    float32 for float16/bfloat16 inputs, as Keras does.

    Args:
        groups: Positive int dividing the channel count, or -1 (Keras' default
            32).
        axis: The channel axis (an int, counted with the batch axis; -1 by
            default).
        epsilon: Positive float added to the variance (1e-3).
        center: Add the learned per-channel offset `beta`.
        scale: Multiply by the learned per-channel factor `gamma`.
        beta_initializer: Initializer of `beta`.
        gamma_initializer: Initializer of `gamma`.
        beta_regularizer: Optional regularizer of `beta` (added by `penalty`).
        gamma_regularizer: Optional regularizer of `gamma`.

    Params: `gamma` if `scale`, `beta` if `center`, both `(channels,)`. State:
    none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.normalization import GroupNormalization
        >>> gn = GroupNormalization(groups=2)
        >>> spec = jax.ShapeDtypeStruct((4,), jnp.float32)
        >>> params, state = gn.init(jax.random.key(0), spec)
        >>> y, _ = gn.apply(params, state, jnp.array([[1.0, 3.0, 10.0, 10.0]]))
        >>> jnp.round(y, 2).tolist()
        [[-1.0, 1.0, 0.0, 0.0]]
    """

    uses_key: ClassVar[bool] = False

    groups: int = 32
    axis: int = -1
    epsilon: float = 1e-3
    center: bool = True
    scale: bool = True
    beta_initializer: Any = "zeros"
    gamma_initializer: Any = "ones"
    beta_regularizer: Any = None
    gamma_regularizer: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.groups = check_int(owner, "groups", self.groups, minimum=-1)
        if self.groups == 0:
            raise ValueError(
                f"{owner}: `groups` must be a positive int or -1 (one group per "
                "channel), got 0."
            )
        self.axis = check_int(owner, "axis", self.axis, minimum=None)
        if self.axis == 0:
            raise ValueError(f"{owner}: `axis` may not be 0, the batch axis.")
        self.epsilon = check_float(
            owner, "epsilon", self.epsilon, low=0.0, low_inclusive=False
        )
        check_bool(owner, "center", self.center)
        check_bool(owner, "scale", self.scale)
        for arg in ("beta_initializer", "gamma_initializer"):
            _check_initializer(owner, arg, getattr(self, arg))
        for arg in ("beta_regularizer", "gamma_regularizer"):
            _check_regularizer(owner, arg, getattr(self, arg))

    def get_config(self) -> dict[str, Any]:
        """The hyperparameters; built-in initializer/regularizer objects as data."""
        return _serialized_config(super().get_config())

    def _layout(self, shape: Sequence[Any], what: str) -> tuple[int, int, int]:
        """`(axis, channels, groups)` for a batched `shape`, checked."""
        axis = _feature_axis(self, self.axis, len(shape), what)
        channels = shape[axis]
        groups = channels if self.groups == -1 else self.groups
        if channels < groups or channels % groups:
            raise ValueError(
                f"{layer_label(self)}: groups={self.groups} must divide the "
                f"{channels} channels of axis {self.axis} ({what} shape "
                f"{shape_str(shape)}). Use a divisor of {channels}, or -1."
            )
        return axis, channels, groups

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create `gamma`/`beta` of shape `(channels,)`."""
        shape = (None, *_check_spec(self, input_spec))
        _, channels, _ = self._layout(shape, "the input")
        k_gamma, k_beta = jax.random.split(key)
        dtype = jnp.dtype(self.dtype)
        params: Params = {}
        if self.scale:
            params["gamma"] = initializers.get(self.gamma_initializer)(
                k_gamma, (channels,), dtype
            )
        if self.center:
            params["beta"] = initializers.get(self.beta_initializer)(
                k_beta, (channels,), dtype
            )
        return params, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Any,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        """Normalize each example's channel groups; returns `(y, state)`."""
        del training, key, mask
        x = jnp.asarray(x)
        axis, channels, groups = self._layout(x.shape, "`x`")
        compute_dtype = _compute_dtype(x.dtype)
        shape = [*x.shape[:axis], groups, channels // groups, *x.shape[axis + 1 :]]
        xg = x.astype(compute_dtype).reshape(shape)
        reduce = tuple(a for a in range(1, xg.ndim) if a != axis)
        mean = jnp.mean(xg, axis=reduce, keepdims=True)
        var = jnp.var(xg, axis=reduce, keepdims=True)
        inv = jax.lax.rsqrt(var + self.epsilon)
        param_shape = [1] * xg.ndim
        param_shape[axis], param_shape[axis + 1] = groups, channels // groups
        if self.scale:
            inv = inv * params["gamma"].astype(compute_dtype).reshape(param_shape)
        res = -mean * inv
        if self.center:
            res = res + params["beta"].astype(compute_dtype).reshape(param_shape)
        y = (xg * inv + res).reshape(x.shape)
        return y.astype(_output_dtype(x.dtype)), state


@dataclass(eq=False)
class RMSNormalization(Layer):
    """Root-mean-square normalization: `x / sqrt(mean(x**2) + epsilon) * scale`.

    The mean is over `axis` for each example; `scale` is learned and spans the
    normalized axes. Computed in float32 for float16/bfloat16 inputs and
    returned in the input dtype (Keras' `ops.rms_normalization`).

    Args:
        axis: The axis or list of axes to normalize over (with the batch axis
            counted; -1 by default).
        epsilon: Positive float added to the mean square (1e-6).

    Params: `scale`, shaped like the normalized axes in sorted order. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.normalization import RMSNormalization
        >>> rms = RMSNormalization()
        >>> params, state = rms.init(
        ...     jax.random.key(0), jax.ShapeDtypeStruct((2,), jnp.float32))
        >>> y, _ = rms.apply(params, state, jnp.array([[3.0, 4.0]]))
        >>> [round(v, 3) for v in (y[0] * 12.5**0.5).tolist()]
        [3.0, 4.0]
    """

    uses_key: ClassVar[bool] = False

    axis: int | list[int] = -1
    epsilon: float = 1e-6

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if isinstance(self.axis, list | tuple):
            if not self.axis:
                raise ValueError(f"{owner}: `axis` must name at least one axis.")
            self.axis = [check_int(owner, "axis", a, minimum=None) for a in self.axis]
        else:
            self.axis = check_int(owner, "axis", self.axis, minimum=None)
        self.epsilon = check_float(
            owner, "epsilon", self.epsilon, low=0.0, low_inclusive=False
        )

    def _axes(self, shape: Sequence[Any], what: str) -> list[int]:
        given = self.axis if isinstance(self.axis, list) else [self.axis]
        return sorted(_feature_axis(self, a, len(shape), what) for a in given)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create `scale` (ones) over the normalized axes."""
        del key
        shape = (None, *_check_spec(self, input_spec))
        sizes = tuple(shape[a] for a in self._axes(shape, "the input"))
        return {"scale": jnp.ones(sizes, jnp.dtype(self.dtype))}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Any,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        """Return `(x / rms(x) * scale, state)`."""
        del training, key, mask
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(self.dtype)  # Keras autocasts floating inputs
        axes = self._axes(x.shape, "`x`")
        sizes = tuple(int(x.shape[a]) for a in axes)
        scale = params["scale"]
        if tuple(scale.shape) != sizes:
            raise ValueError(
                f"{layer_label(self)}: `scale` has shape {shape_str(scale.shape)} "
                f"(from `init`) but the normalized axes of x.shape="
                f"{shape_str(x.shape)} have sizes {sizes}."
            )
        compute_dtype = _compute_dtype(x.dtype)
        xc = x.astype(compute_dtype)
        rrms = jax.lax.rsqrt(
            jnp.mean(jnp.square(xc), axis=tuple(axes), keepdims=True) + self.epsilon
        )
        scale = scale.astype(compute_dtype).reshape(
            _broadcast_shape(x.ndim, axes, sizes)
        )
        return (xc * rrms * scale).astype(_output_dtype(x.dtype)), state


@dataclass(eq=False)
class UnitNormalization(Layer):
    """Scale each example to unit L2 norm over `axis`: `x / max(||x||, 1e-12)`.

    Args:
        axis: The axis or list of axes the norm is taken over (with the batch
            axis counted; -1 by default).

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.normalization import UnitNormalization
        >>> UnitNormalization().apply({}, {}, jnp.array([[3.0, 4.0]]))[0].tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True

    axis: int | list[int] = -1

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        if isinstance(self.axis, list | tuple):
            if not self.axis:
                raise ValueError(f"{owner}: `axis` must name at least one axis.")
            self.axis = [check_int(owner, "axis", a, minimum=None) for a in self.axis]
        elif isinstance(self.axis, int | np.integer):
            self.axis = check_int(owner, "axis", self.axis, minimum=None)
        else:
            raise TypeError(
                f"{owner}: `axis` must be an int or a list of ints, got {self.axis!r}."
            )

    def _axes(self, ndim: int, what: str) -> tuple[int, ...]:
        given = self.axis if isinstance(self.axis, list) else [self.axis]
        return tuple(_feature_axis(self, a, ndim, what) for a in given)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Validate `axis` against `input_spec`; no params or state."""
        del key
        self._axes(len(_check_spec(self, input_spec)) + 1, "the input")
        return {}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Any,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        """Return `(x / ||x||, state)` (Keras' `ops.normalize`, order 2)."""
        del params, training, key, mask
        x = jnp.asarray(x).astype(self.dtype)
        axes = self._axes(x.ndim, "`x`")
        inv = jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axes, keepdims=True))
        return x * jnp.minimum(inv, 1e12), state
