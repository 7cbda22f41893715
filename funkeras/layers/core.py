"""Core layers: `Dense`, `Embedding`, `Identity`, `Activation`, `Masking`.

Like Keras, a layer computes in its own `dtype`: floating inputs are cast to it on
the way in (integer inputs are left to JAX's promotion), so a `float64` array or a
`bfloat16` activation meets a `float32` layer without surprises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from funkeras import activations, initializers, regularizers
from funkeras._validation import check_bool, check_int, shape_str
from funkeras.layers._common import autocast, check_single_spec, resolve
from funkeras.layers.base import Layer, check_last_axis, layer_label
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = ["Dense", "Embedding", "Identity", "Activation", "Masking"]


# ----------------------------------------------------------------------------
# Layers.
# ----------------------------------------------------------------------------


@dataclass(eq=False)
class Dense(Layer):
    """Densely-connected layer: `y = activation(x @ kernel + bias)`.

    The kernel multiplies the last axis of the input, so inputs of any rank >= 2
    work: `(batch, time, features)` gives `(batch, time, units)`, as in Keras.

    Args:
        units: Positive int, size of the last output axis.
        activation: Activation name, callable or `None` (linear).
        use_bias: Whether to add a bias vector.
        kernel_initializer: Initializer of `kernel` (name, config dict or callable).
        bias_initializer: Initializer of `bias`.
        kernel_regularizer: Optional regularizer of `kernel` (adds to `penalty`).
        bias_regularizer: Optional regularizer of `bias`.

    Input shape:
        `(batch, ..., input_dim)`.

    Output shape:
        `(batch, ..., units)`.

    Params: `kernel` `(input_dim, units)`; `bias` `(units,)` if `use_bias`.
    State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.core import Dense
        >>> layer = Dense(3, activation="relu")
        >>> spec = jax.ShapeDtypeStruct((4,), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> {k: v.shape for k, v in params.items()}
        {'kernel': (4, 3), 'bias': (3,)}
        >>> y, state = layer.apply(params, state, jnp.ones((2, 4)))
        >>> y.shape
        (2, 3)
    """

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True

    units: int
    activation: Any = None
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    bias_regularizer: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.units = check_int(owner, "units", self.units)
        check_bool(owner, "use_bias", self.use_bias)
        resolve(owner, "activation", self.activation, activations.get)
        resolve(owner, "kernel_initializer", self.kernel_initializer, initializers.get)
        resolve(owner, "bias_initializer", self.bias_initializer, initializers.get)
        resolve(owner, "kernel_regularizer", self.kernel_regularizer, regularizers.get)
        resolve(owner, "bias_regularizer", self.bias_regularizer, regularizers.get)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        spec = check_single_spec(self, input_spec)
        if len(spec.shape) < 1:
            raise ValueError(
                f"{layer_label(self)}: expected inputs of rank >= 2 (batch included), "
                "got shape (None,). Dense multiplies the last axis; give the input a "
                "feature axis, e.g. `Input(shape=(1,))` or `Reshape((1,))`."
            )
        input_dim = spec.shape[-1]
        kernel_key, bias_key = jax.random.split(key)
        init_kernel = initializers.get(self.kernel_initializer)
        params = {
            "kernel": init_kernel(kernel_key, (input_dim, self.units), self.dtype)
        }
        if self.use_bias:
            init_bias = initializers.get(self.bias_initializer)
            params["bias"] = init_bias(bias_key, (self.units,), self.dtype)
        return params, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        del training, key, mask
        kernel = params["kernel"]
        x = autocast(x, self.dtype)
        if x.ndim < 2:
            raise ValueError(
                f"{layer_label(self)}: expected inputs of rank >= 2 (batch included), "
                f"got x.shape={tuple(x.shape)}."
            )
        check_last_axis(self, x, expected=kernel.shape[0])
        y = jnp.matmul(x, kernel)
        if self.use_bias:
            y = y + params["bias"]
        return activations.get(self.activation)(y), state


@dataclass(eq=False)
class Embedding(Layer):
    """Looks up rows of a table: `y[..., :] = embeddings[x[...], :]`.

    Indices should lie in `[0, input_dim)`. As in NumPy, a negative index counts
    from the end of the table; an index past either end yields a row of NaN (JAX
    fills out-of-bounds reads), so a vocabulary overflow shows up at once instead
    of silently reusing a clamped row.

    Args:
        input_dim: Positive int, size of the vocabulary (largest index + 1).
        output_dim: Positive int, size of each embedding vector.
        embeddings_initializer: Initializer of the table. The default, `"uniform"`,
            is Keras' `RandomUniform(-0.05, 0.05)`.
        embeddings_regularizer: Optional regularizer of the table.
        mask_zero: Whether index 0 is padding: the output then carries the
            sequence mask `x != 0` (Keras' `mask_zero`), which RNNs, attention,
            `GlobalAveragePooling1D` and the loss and metrics consume. Index 0
            is still looked up; use `input_dim = vocabulary size + 1`.

    Input shape:
        `(batch, ...)` integer indices (declare `Input(..., dtype="int32")`).

    Output shape:
        `(batch, ..., output_dim)`, in the layer's `dtype`.

    Params: `embeddings` `(input_dim, output_dim)`. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.core import Embedding
        >>> layer = Embedding(10, 4)
        >>> spec = jax.ShapeDtypeStruct((3,), jnp.int32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> params["embeddings"].shape
        (10, 4)
        >>> y, _ = layer.apply(params, state, jnp.array([[1, 2, 9]]))
        >>> y.shape
        (1, 3, 4)
    """

    uses_key: ClassVar[bool] = False

    input_dim: int
    output_dim: int
    embeddings_initializer: Any = "uniform"
    embeddings_regularizer: Any = None
    mask_zero: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        self.input_dim = check_int(owner, "input_dim", self.input_dim)
        self.output_dim = check_int(owner, "output_dim", self.output_dim)
        resolve(
            owner,
            "embeddings_initializer",
            self.embeddings_initializer,
            initializers.get,
        )
        resolve(
            owner,
            "embeddings_regularizer",
            self.embeddings_regularizer,
            regularizers.get,
        )
        check_bool(owner, "mask_zero", self.mask_zero)

    def _check_index_dtype(self, dtype: Any, shape: tuple[Any, ...]) -> None:
        if not jnp.issubdtype(dtype, jnp.integer):
            raise TypeError(
                f"{layer_label(self)}: expected integer indices, got dtype "
                f"{jnp.dtype(dtype).name} (shape {shape_str(shape)}). Declare the "
                'input as integer, e.g. `Input(shape=..., dtype="int32")`, and pass '
                "int arrays."
            )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        spec = check_single_spec(self, input_spec)
        self._check_index_dtype(spec.dtype, (None, *spec.shape))
        init_embeddings = initializers.get(self.embeddings_initializer)
        table = init_embeddings(key, (self.input_dim, self.output_dim), self.dtype)
        return {"embeddings": table}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        del training, key, mask
        x = jnp.asarray(x)
        self._check_index_dtype(x.dtype, tuple(x.shape))
        embeddings = params["embeddings"]
        # Keras looks indices up as int32 unless they are already int32/int64.
        if x.dtype not in (jnp.int32, jnp.int64):
            x = x.astype(jnp.int32)
        y = jnp.take(embeddings, x, axis=0)
        return y.astype(self.dtype), state

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """`inputs != 0` with `mask_zero=True` (Keras), else None."""
        del mask
        if not self.mask_zero:
            return None
        return jnp.not_equal(jnp.asarray(inputs), 0)


@dataclass(eq=False)
class Identity(Layer):
    """Returns its input unchanged: `y = x` (floating inputs cast to `dtype`).

    Works on any pytree of arrays.

    Input shape:
        Any.

    Output shape:
        Same as the input.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.core import Identity
        >>> layer = Identity()
        >>> spec = jax.ShapeDtypeStruct((2,), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> layer.apply(params, state, jnp.array([[1.0, 2.0]]))[0].tolist()
        [[1.0, 2.0]]
    """

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True

    def apply(
        self,
        params: Params,
        state: State,
        x: Any,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Any, State]:
        del params, training, key, mask
        return autocast(x, self.dtype), state


@dataclass(eq=False)
class Activation(Layer):
    """Applies an activation function elementwise: `y = activation(x)`.

    Args:
        activation: Activation name (`"relu"`, `"gelu"`, ...), callable, or `None`
            (linear).

    Input shape:
        Any.

    Output shape:
        Same as the input.

    Params: none. State: none.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.core import Activation
        >>> layer = Activation("relu")
        >>> spec = jax.ShapeDtypeStruct((3,), jnp.float32)
        >>> params, state = layer.init(jax.random.key(0), spec)
        >>> y, state = layer.apply(params, state, jnp.array([[-1.0, 0.0, 2.0]]))
        >>> y.tolist()
        [[0.0, 0.0, 2.0]]
    """

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True

    activation: Any

    def __post_init__(self) -> None:
        super().__post_init__()
        resolve(type(self).__name__, "activation", self.activation, activations.get)

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        del key
        check_single_spec(self, input_spec)
        return {}, {}

    def apply(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        del params, training, key, mask
        return activations.get(self.activation)(autocast(x, self.dtype)), state


@dataclass(eq=False)
class Masking(Layer):
    """Masks timesteps whose features all equal `mask_value` (Keras' `Masking`).

    The output is the input with those timesteps zeroed, and it carries the
    sequence mask `any(x != mask_value, axis=-1)`: True where a timestep has
    some other value. Layers downstream that consume a mask (RNNs, attention,
    `GlobalAveragePooling1D`, the loss and metrics) skip the masked steps.

    Args:
        mask_value: The value that marks a padded timestep.

    Input shape:
        `(batch, time, features)` (any rank >= 2: the last axis is compared).

    Output shape:
        Same as the input; sequence mask `(batch, time)`.

    Params: none. State: none.

    Example:
        >>> import jax.numpy as jnp
        >>> from funkeras.layers.core import Masking
        >>> layer = Masking(mask_value=0.0)
        >>> x = jnp.array([[[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]]])
        >>> layer.compute_mask(x).tolist()
        [[True, False, True]]
        >>> layer.apply({}, {}, x)[0].tolist()
        [[[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]]]
    """

    uses_key: ClassVar[bool] = False
    supports_masking: ClassVar[bool] = True

    mask_value: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.mask_value, bool) or not isinstance(
            self.mask_value, int | float
        ):
            raise TypeError(
                f"{type(self).__name__}: `mask_value` must be a number, got "
                f"{self.mask_value!r}."
            )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        del key
        spec = check_single_spec(self, input_spec)
        if len(spec.shape) < 1:
            raise ValueError(
                f"{layer_label(self)}: expected inputs of shape (batch, time, "
                f"features), got shape {shape_str((None, *spec.shape))}."
            )
        return {}, {}

    def _keep(self, x: Array) -> Array:
        return jnp.any(jnp.not_equal(x, self.mask_value), axis=-1)

    def apply(
        self,
        params: Params,
        state: State,
        x: Array,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
    ) -> tuple[Array, State]:
        del params, training, key, mask
        x = autocast(jnp.asarray(x), self.dtype)
        keep = self._keep(x)[..., None]
        return jnp.where(keep, x, jnp.zeros((), x.dtype)), state

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """`any(inputs != mask_value, axis=-1)` (Keras)."""
        del mask
        return self._keep(autocast(jnp.asarray(inputs), self.dtype))
