"""The transformation type `Optimizer` and the builder every Keras optimizer
shares: argument checks, clipping, weight decay, gradient accumulation and the
injected (float32) hyperparameters."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from funkeras._validation import check_float, check_int
from funkeras.optimizers.schedules import (
    SCHEDULES,
    LearningRateSchedule,
    deserialize_schedule,
    serialize_schedule,
)
from funkeras.typing import Array, ArrayLike, PyTree

__all__ = [
    "Optimizer",
]


class Optimizer(optax.GradientTransformationExtraArgs):
    """An optax transformation built from a Keras optimizer, with its config.

    It is an `optax.GradientTransformationExtraArgs` (`init`, `update`) and is
    used exactly like one; it also remembers the Keras class name and arguments
    it was built from, so `serialize` can save it and `get` can rebuild it.
    Create it with the factories (`Adam(...)`, `get("sgd")`), not directly.

    Example:
        >>> from funkeras.optimizers import Adam
        >>> tx = Adam(learning_rate=0.01)
        >>> isinstance(tx, optax.GradientTransformation), tx.class_name
        (True, 'Adam')
    """

    _class_name: str | None = None
    _arguments: dict[str, Any] | None = None
    _rate_access: tuple[Callable[[], Any], Callable[[float], None]] | None = None
    _stateless: Callable[..., Any] | None = None

    def __new__(
        cls,
        init: Any,
        update: Any,
        *,
        class_name: str | None = None,
        arguments: dict[str, Any] | None = None,
        rate_access: tuple[Callable[[], Any], Callable[[float], None]] | None = None,
        stateless_apply: Callable[..., Any] | None = None,
    ) -> Optimizer:
        self = super().__new__(cls, init, update)
        self._class_name = class_name
        self._arguments = dict(arguments) if arguments is not None else None
        self._rate_access = rate_access
        self._stateless = stateless_apply
        return self

    def stateless_apply(
        self, optimizer_variables: Any, grads: Any, trainable_variables: Any
    ) -> tuple[list[Any], list[Any]]:
        """Keras' `optimizer.stateless_apply` on a compiled model's optimizer.

        Pure: returns `(new trainable_variables, new optimizer_variables)`, lists
        in the order of `model.trainable_variables` and of the optimizer
        variables a Keras-style `train_step(state, data)` receives (the leaves
        of the optax state). Constraints of the weights are applied after the
        update, as in Keras.

        Example:
            >>> import jax, numpy as np
            >>> import funkeras as fk
            >>> model = fk.Sequential([fk.Input(shape=(2,)), fk.layers.Dense(1)])
            >>> model.compile(optimizer=fk.optimizers.SGD(0.1), loss="mse")
            >>> tv = [v.value for v in model.trainable_variables]
            >>> ov = jax.tree.leaves(model.make_runner() and model.opt_state)
            >>> grads = [np.ones(v.shape, np.float32) for v in tv]
            >>> new_tv, _ = model.optimizer.stateless_apply(ov, grads, tv)
            >>> bool(np.allclose(new_tv[1], tv[1] - 0.1))
            True
        """
        if self._stateless is None:
            raise AttributeError(
                f"{self._class_name or 'Optimizer'}.stateless_apply: only a compiled "
                "model's optimizer (`model.optimizer`) knows the model's variables; "
                "compile the model first."
            )
        return self._stateless(optimizer_variables, grads, trainable_variables)

    @property
    def class_name(self) -> str | None:
        """The Keras class name (`"Adam"`), or None for a bare transformation."""
        return self._class_name

    @property
    def arguments(self) -> dict[str, Any] | None:
        """The Keras arguments it was built from (a copy), or None."""
        return None if self._arguments is None else dict(self._arguments)

    @property
    def learning_rate(self) -> Any:
        """The learning rate, as Keras' `optimizer.learning_rate`.

        On a model's optimizer (`model.optimizer` after `compile`) it is the rate
        the next step will use, a float read from the model's optimizer state;
        assigning a float changes it from the next step on, with no recompile.
        On an optimizer no model holds, it is the argument it was built with (a
        float or a schedule) and cannot be assigned (build a new one instead).

        Example:
            >>> import funkeras as fk
            >>> model = fk.Sequential([fk.Input(shape=(2,)), fk.layers.Dense(1)])
            >>> model.compile(optimizer=fk.optimizers.SGD(0.1), loss="mse")
            >>> model.optimizer.learning_rate = 0.01
            >>> round(model.optimizer.learning_rate, 6)
            0.01
        """
        if self._rate_access is not None:
            return self._rate_access[0]()
        return None if self._arguments is None else self._arguments["learning_rate"]

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        if self._rate_access is None:
            raise AttributeError(
                f"{self._class_name or 'Optimizer'}: `learning_rate` can be assigned "
                "only on a compiled model's optimizer (`model.optimizer.learning_rate "
                "= 0.01`), where it lives in the optimizer state; build a new "
                "optimizer for another initial rate."
            )
        self._rate_access[1](value)

    def bound(
        self, read: Callable[[], Any], write: Callable[[float], None],
        stateless_apply: Callable[..., Any] | None = None,
    ) -> Optimizer:
        """A copy whose `learning_rate` is read with `read()` and set with
        `write(value)` (how a model exposes the rate in its optimizer state).

        Example:
            >>> from funkeras.optimizers import SGD
            >>> box = [0.5]
            >>> tx = SGD(0.5).bound(lambda: box[0], lambda v: box.__setitem__(0, v))
            >>> tx.learning_rate = 0.25
            >>> box
            [0.25]
        """
        return Optimizer(
            self.init, self.update, class_name=self._class_name,
            arguments=self._arguments, rate_access=(read, write),
            stateless_apply=stateless_apply,
        )

    def get_config(self) -> dict[str, Any]:
        """The Keras arguments as a JSON-safe dict (a schedule as its own config).

        Raises:
            TypeError: the learning rate is a callable that is not a funkeras
                schedule, or the transformation carries no arguments.
        """
        if self._class_name is None or self._arguments is None:
            raise TypeError(_NOT_SERIALIZABLE.format(what="this transformation"))
        config = dict(self._arguments)
        rate = config["learning_rate"]
        if callable(rate):
            if not isinstance(rate, LearningRateSchedule):
                raise TypeError(
                    f"{self._class_name}: cannot serialize learning_rate={rate!r}: "
                    "a plain callable schedule has no saved form. Use one of "
                    f"funkeras' schedules ({', '.join(SCHEDULES.names())}) or a float."
                )
            config["learning_rate"] = serialize_schedule(rate)
        return config

    def __repr__(self) -> str:
        if self._class_name is None or self._arguments is None:
            return super().__repr__()
        args = ", ".join(f"{k}={v!r}" for k, v in self._arguments.items())
        return f"{self._class_name}({args})"


_NOT_SERIALIZABLE = (
    "Cannot serialize {what}: only the optimizers built by funkeras.optimizers "
    "(get('adam'), Adam(...), ...) remember their arguments. An arbitrary optax "
    "transformation (or one wrapped around a funkeras optimizer) has no config; "
    "rebuild it in code when loading, or save the model without its optimizer."
)


def _check_learning_rate(
    owner: str, value: Any
) -> float | Callable[[ArrayLike], Array]:
    if isinstance(value, Mapping):
        return deserialize_schedule(value)
    if callable(value):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(
            f"{owner}: `learning_rate` must be a float, a schedule "
            "(ExponentialDecay(...), CosineDecay(...), any optax schedule "
            "`step -> rate`) or a schedule config dict, "
            f"got {value!r} ({type(value).__name__})."
        )
    rate = float(value)
    if not (math.isfinite(rate) and rate >= 0.0):
        raise ValueError(
            f"{owner}: `learning_rate` must be a finite number >= 0, got {value!r}."
        )
    return rate


def _optional_positive(owner: str, arg: str, value: Any) -> float | None:
    if value is None:
        return None
    return check_float(owner, arg, value, low=0.0, low_inclusive=False)


def _check_common(owner: str, args: dict[str, Any]) -> dict[str, Any]:
    """Validate Keras' base optimizer arguments in place and return `args`."""
    args["learning_rate"] = _check_learning_rate(owner, args["learning_rate"])
    if args["weight_decay"] is not None:
        args["weight_decay"] = check_float(
            owner, "weight_decay", args["weight_decay"], low=0.0
        )
    for arg in ("clipnorm", "clipvalue", "global_clipnorm"):
        args[arg] = _optional_positive(owner, arg, args[arg])
    clips = [
        a for a in ("clipnorm", "clipvalue", "global_clipnorm") if args[a] is not None
    ]
    if len(clips) > 1:
        raise ValueError(
            f"{owner}: only one of `clipnorm`, `clipvalue` and `global_clipnorm` "
            f"can be set, got {', '.join(f'{a}={args[a]}' for a in clips)}."
        )
    if args["gradient_accumulation_steps"] is not None:
        args["gradient_accumulation_steps"] = check_int(
            owner,
            "gradient_accumulation_steps",
            args["gradient_accumulation_steps"],
            minimum=2,
        )
    if args["name"] is not None and not isinstance(args["name"], str):
        raise TypeError(f"{owner}: `name` must be a string, got {args['name']!r}.")
    return args


def _check_unit(owner: str, arg: str, value: Any) -> float:
    return check_float(owner, arg, value, low=0.0, high=1.0)


def _clip_by_norm_per_leaf(max_norm: ArrayLike) -> optax.GradientTransformation:
    """Keras' `clipnorm`: scale each leaf `g` by `max_norm / max(||g||, max_norm)`."""

    def clip(updates: PyTree, params: PyTree = None) -> PyTree:
        del params

        def leaf(g: Array) -> Array:
            norm = jnp.sqrt(jnp.sum(jnp.square(g.astype(jnp.float32))))
            return (g * (max_norm / jnp.maximum(norm, max_norm))).astype(g.dtype)

        return jax.tree.map(leaf, updates)

    return optax.stateless(clip)


def _build(
    class_name: str,
    args: dict[str, Any],
    hyperparams: dict[str, Any],
    rule: Callable[[dict[str, Any]], optax.GradientTransformation],
    static: Sequence[str] = (),
) -> Optimizer:
    """Wrap `rule` in Keras' clipping, weight decay and accumulation, with injection.

    `hyperparams` are the rule's own arguments (besides `learning_rate`): numbers
    become float32 entries of `opt_state.hyperparams` (schedules are re-evaluated
    every step), booleans, None and the names in `static` stay Python values.
    `rule(h)` gets the current values and returns the scaled, signed update.
    """
    injected = {
        "learning_rate": args["learning_rate"],
        "weight_decay": args["weight_decay"],
        "clipnorm": args["clipnorm"],
        "clipvalue": args["clipvalue"],
        "global_clipnorm": args["global_clipnorm"],
        **hyperparams,
    }

    def inner(**h: Any) -> optax.GradientTransformation:
        parts = []
        if h["clipnorm"] is not None:
            parts.append(_clip_by_norm_per_leaf(h["clipnorm"]))
        if h["clipvalue"] is not None:
            parts.append(optax.clip(h["clipvalue"]))
        if h["global_clipnorm"] is not None:
            parts.append(optax.clip_by_global_norm(h["global_clipnorm"]))
        parts.append(rule(h))
        if h["weight_decay"] is not None:
            # Keras' decoupled decay: w -= learning_rate * weight_decay * w.
            parts.append(
                optax.add_decayed_weights(-h["learning_rate"] * h["weight_decay"])
            )
        return optax.chain(*parts)

    inner.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY) for k in injected]
    )
    tx: optax.GradientTransformation = optax.inject_hyperparams(
        inner, static_args=tuple(static), hyperparam_dtype=jnp.float32
    )(**injected)
    if args["gradient_accumulation_steps"] is not None:
        tx = optax.MultiSteps(
            tx, args["gradient_accumulation_steps"]
        ).gradient_transformation()

    def update(
        updates: PyTree, state: PyTree, params: PyTree = None, **extra_args: Any
    ) -> tuple[PyTree, PyTree]:
        updates, new_state = tx.update(updates, state, params, **extra_args)
        # Keep every state leaf in its `init` dtype, as Keras keeps optimizer
        # variables in their variable's dtype: otherwise the float32
        # hyperparameters promote bf16 moments to float32 at the first update,
        # and a jitted step compiles a second time.
        return updates, jax.tree.map(_keep_dtype, new_state, state)

    return Optimizer(tx.init, update, class_name=class_name, arguments=args)


def _keep_dtype(new: Any, old: Any) -> Any:
    dtype = getattr(old, "dtype", None)
    return new if dtype is None or new.dtype == dtype else new.astype(dtype)


def _common(
    args: dict[str, Any], name: str | None, default_name: str
) -> dict[str, Any]:
    args["name"] = default_name if name is None else name
    return args
