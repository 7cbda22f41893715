"""The `Model` facade: a mutable object around an immutable graph.

The graph (layers and call nodes) never changes once built. The facade owns what
does change: the current `params` and `state`, the compile configuration, the
optimizer state, `stop_training` and the training `progress`; it is the
`funkeras.training.TrainHost` that the loop trains (`publish` is the loop's way
in). Its `init`/`apply` are the graph's pure functions, so a model nests inside
another model as a layer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras import saving
from funkeras._validation import to_snake_case
from funkeras.graph import Graph, build_graph, is_symbolic
from funkeras.inspect import summary_text
from funkeras.layers import subclassing as sc
from funkeras.layers.base import Layer, layer_label
from funkeras.models import functional as fn
from funkeras.models.serialization import functional_config, functional_from_config
from funkeras.models.trainer import Trainer
from funkeras.random import next_seed
from funkeras.saving.registry import register_builtin
from funkeras.typing import Array, InputSpec, Params, PRNGKey, State

__all__ = ["Model", "SubclassedCall", "KERAS_WEIGHT_ORDER"]

# Keras creates a layer's variables in this order; `get_weights` follows it.
KERAS_WEIGHT_ORDER = sc.KERAS_WEIGHT_ORDER


def _ordered(d: dict[str, Any]) -> list[str]:
    rank = {n: i for i, n in enumerate(KERAS_WEIGHT_ORDER)}
    return sorted(d, key=lambda k: (rank.get(k, len(rank)), k))


class SubclassedCall(Layer):
    """The one layer of a subclassed model's graph: the model's `call`.

    A `Model` subclass that defines `call` (Keras' subclassing API) is built into
    a one-node graph, `Input -> SubclassedCall(model)`, whose `init`/`apply` are
    the Keras-style adapter run on the model (`funkeras.layers.subclassing`):
    sublayers are tracked from the model's attributes, and its params sit under
    this layer's name (the model's name): `params["my_model"]["dense"]["kernel"]`.
    """

    def __init__(self, model: Model, name: str) -> None:
        super().__init__(name=name, trainable=model.trainable, dtype=model.dtype)
        self.__dict__["_fk_model"] = model

    @property
    def model(self) -> Model:
        """The subclassed model whose `call` this layer runs."""
        return self.__dict__["_fk_model"]

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        return sc.keras_init(self.model, key, input_spec)

    consumes_sequence_mask = True

    def apply(
        self,
        params,
        state,
        x,
        *,
        training=False,
        key=None,
        mask=None,
        sequence_mask=None,
    ):
        return sc.keras_apply(
            self.model,
            params,
            state,
            x,
            training=training,
            key=key,
            mask=mask,
            sequence_mask=sequence_mask,
        )

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The subclassed model's own `compute_mask`."""
        return self.model.compute_mask(inputs, mask)

    def penalty(self, params: Params) -> Array:
        return sc.keras_penalty(self.model, params)

    def has_penalty(self) -> bool:
        return sc.keras_has_penalty(self.model)

    def compute_output_spec(self, input_spec: InputSpec, **options: Any) -> InputSpec:
        """As `Layer.compute_output_spec`; a `call` that builds shapes from the
        batch size (`random.normal(shape=(ops.shape(x)[0], d))`, Keras' VAE)
        cannot run on a symbolic batch, and is traced on a batch of 2 instead."""
        try:
            return super().compute_output_spec(input_spec, **options)
        except ValueError as e:
            if not isinstance(e.__cause__, jax.errors.InconclusiveDimensionOperation):
                raise
            try:
                params, state = jax.eval_shape(
                    lambda k: self.init(k, input_spec), jax.random.key(0)
                )
                x = jax.tree.map(
                    lambda s: jax.ShapeDtypeStruct((2, *s.shape), s.dtype), input_spec
                )
                y, _ = jax.eval_shape(
                    lambda p, s, x: self.apply(p, s, x, training=False, **options),
                    params, state, x,
                )
            except Exception:
                raise e from None
            return jax.tree.map(
                lambda a: jax.ShapeDtypeStruct(tuple(a.shape[1:]), a.dtype), y
            )


@register_builtin("Functional", model=True)
class Model(Trainer, Layer):
    """A model: layers composed into one pure `apply`, with Keras' training surface.

    `Model(inputs, outputs)` builds a functional model from symbolic tensors made
    by `funkeras.Input` and layer calls (branches, merges, several inputs and
    outputs, shared layers, nested models). The graph is fixed at construction;
    weights are created on first use from `jax.random.key(seed)`.

    Args:
        inputs: A symbolic tensor, or a list/dict of them, from `funkeras.Input`.
        outputs: A symbolic tensor, or a list/dict of them.
        name: The model's name (its key when nested in another model).
        seed: The seed of the initial weights; None draws one from the
            process-wide stream (`fk.utils.set_random_seed` restarts it).
        trainable: `False` freezes every layer of the model.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import funkeras as fk
        >>> inp = fk.Input(shape=(3,))
        >>> out = fk.layers.Dense(2)(fk.layers.Dense(4, activation="relu")(inp))
        >>> model = fk.Model(inp, out)
        >>> params, state = model.init(jax.random.key(0), jax.ShapeDtypeStruct((3,), jnp.float32))
        >>> sorted(params)
        ['dense', 'dense_1']
        >>> y, state = model.apply(params, state, jnp.ones((5, 3)))
        >>> y.shape
        (5, 2)
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A subclass's own Keras-style `build(input_shape)` creates its weights;
        # `model.build(shape)` must still build the graph (which runs it once).
        super().__init_subclass__(**kwargs)
        build = cls.__dict__.get("build")
        if build is not None and not getattr(build, "funkeras_framework_build", False):
            cls.keras_build = build
            cls.build = Model.build

    def __init__(
        self,
        inputs: Any = None,
        outputs: Any = None,
        *,
        name: str | None = None,
        seed: int | None = None,
        trainable: bool = True,
        dtype: Any = "float32",
    ) -> None:
        self.name = name
        self._trainable = trainable
        self.dtype = dtype
        Layer.__post_init__(self)
        self.seed = next_seed() if seed is None else int(seed)
        self._graph: Graph | None = None
        self._params: Params | None = None
        self._state: State | None = None
        self.opt_state: Any = None
        self.stop_training = False
        Trainer.__init__(self)
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise TypeError(
                    f"{type(self).__name__}: pass both `inputs` and `outputs` "
                    "(symbolic tensors from `funkeras.Input` and layer calls)."
                )
            self._set_graph(build_graph(inputs, outputs, owner=self._owner()))

    # -- identity and structure ---------------------------------------------------

    def _owner(self) -> str:
        return layer_label(self)

    def _set_graph(self, graph: Graph) -> None:
        self._graph = graph
        if not self._trainable:
            for layer in graph.layers:
                layer.trainable = False

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(
                f"{self._owner()}: `trainable` must be a bool, got {value!r}."
            )
        self._trainable = value
        if self._graph is not None:
            for layer in self._graph.layers:
                layer.trainable = value

    @property
    def graph(self) -> Graph | None:
        """The graph description (nodes in topological order), once built."""
        return self._graph

    @property
    def built(self) -> bool:
        return self._graph is not None

    @built.setter
    def built(self, value: bool) -> None:
        # Keras-style `build` methods end with `self.built = True`; for a model,
        # being built means having a graph, which `build` makes.
        del value

    def require_graph(self, what: str) -> Graph:
        """The graph description; a clear error naming `what` needs it when unbuilt."""
        if self._graph is None:
            raise ValueError(
                f"{self._owner()}: `{what}` needs a built model. Build it with "
                "`model.build(input_shape)`, give the first layer an "
                "`fk.Input(shape=...)`, or call `fit`/`predict` on data first."
            )
        return self._graph

    @property
    def inputs(self) -> Any:
        return self.require_graph("inputs").inputs

    @property
    def outputs(self) -> Any:
        return self.require_graph("outputs").outputs

    @property
    def input(self) -> Any:
        """The model's Input tensor(s) (Keras' `model.input`), once the graph is built.

        For a model, not the tensors of a call of it inside another graph: the
        `base_model.output` of transfer learning.
        """
        return self.require_graph("input").inputs

    @property
    def output(self) -> Any:
        """The model's output tensor(s) (Keras' `model.output`), once built."""
        return self.require_graph("output").outputs

    @property
    def input_spec(self) -> InputSpec:
        """Spec(s) of one example per input (no batch axis)."""
        return self.require_graph("input_spec").input_spec

    @property
    def output_spec(self) -> InputSpec:
        return self.require_graph("output_spec").output_spec

    @property
    def output_names(self) -> list[str]:
        """One name per output: the producing layer's name (Keras' convention)."""
        graph = self.require_graph("output_names")
        if isinstance(graph.outputs, dict):
            return sorted(graph.outputs)
        return [
            t.node.layer.name
            for t in jax.tree.leaves(graph.outputs, is_leaf=is_symbolic)
        ]

    @property
    def layers(self) -> list[Layer]:
        """The model's layers in graph order (functional models list their Inputs first)."""
        if self._keras_style():
            return list(sc.tracked_layers(self).values())
        graph = self.require_graph("layers")
        return [*graph.input_layers, *graph.layers]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called `name` (or at `index` in `layers`)."""
        if name is not None and index is not None:
            raise ValueError(
                f"{self._owner()}: provide only a layer name or only an index to "
                f"`get_layer`, not both (got {name!r} and {index})."
            )
        if name is None and index is None:
            raise ValueError(f"{self._owner()}: `get_layer` needs a name or an index.")
        layers = self.layers
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"{self._owner()}: index {index} is out of range for "
                    f"{len(layers)} layers."
                )
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"{self._owner()}: no layer named {name!r}. Layers: "
            f"{[layer.name for layer in layers]}."
        )

    # -- the functional core ----------------------------------------------------------

    @sc.framework_build
    def build(self, input_shape: Any = None) -> None:
        """Build the graph (if needed) and create the weights from `self.seed`.

        Args:
            input_shape: Needed only by models without an Input: the shape of
                the data, with or without a leading `None` batch axis, or a spec.
        """
        if self._graph is None:
            if input_shape is None:
                raise ValueError(f"{self._owner()}: `build` needs `input_shape`.")
            self._build_from_spec(_as_spec(input_shape))
        self._ensure_weights()

    def _build_from_spec(self, input_spec: InputSpec) -> None:
        if self._keras_style():
            # Keras' subclassing API: the graph is the model's `call`, one node.
            inp = jax.tree.map(
                lambda s: fn.Input(shape=tuple(s.shape), dtype=s.dtype), input_spec
            )
            body = SubclassedCall(
                self, self.name or to_snake_case(type(self).__name__)
            )
            self.__dict__["_fk_body"] = body
            self._set_graph(build_graph(inp, body(inp), owner=self._owner()))
            return
        raise ValueError(
            f"{self._owner()}: a functional model is built at construction; it cannot "
            "be rebuilt for another input."
        )

    def init(self, key: PRNGKey, input_spec: InputSpec) -> tuple[Params, State]:
        """Create fresh `(params, state)` for inputs described by `input_spec`. Pure."""
        if self._graph is None:
            self._build_from_spec(input_spec)
        graph = self.require_graph("init")
        fn.check_input_spec(graph, input_spec, self._owner())
        return fn.graph_init(graph, key)

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
        """Run the model on a batch; return `(outputs, new_state)`. Pure."""
        graph = self.require_graph("apply")
        return fn.graph_apply(
            graph,
            params,
            state,
            x,
            training=training,
            key=key,
            mask=mask,
            owner=self._owner(),
        )

    def apply_masked(
        self,
        params: Params,
        state: State,
        x: Any,
        *,
        training: bool = False,
        key: PRNGKey | None = None,
        mask: Array | None = None,
        sequence_mask: Any = None,
    ) -> tuple[Any, State, Any]:
        """`apply` with sequence masks in and out: `(outputs, state, output_masks)`.

        `sequence_mask` mirrors `x` (a `(batch, time)` bool array or None per
        input, or None); `output_masks` mirrors the outputs (None as a whole
        when no output carries a mask). What a containing model and the train
        and test steps call; `apply` is this without the masks. A subclass that
        overrides `apply` gets its own `apply` here, with no masks out.
        """
        if type(self).apply is not Model.apply:
            y, state = self.apply(
                params, state, x, training=training, key=key, mask=mask
            )
            return y, state, None
        return fn.graph_apply_masked(
            self.require_graph("apply"),
            params,
            state,
            x,
            training=training,
            key=key,
            mask=mask,
            sequence_mask=sequence_mask,
            owner=self._owner(),
        )

    def penalty(self, params: Params) -> Array:
        """The sum of the layers' regularization penalties."""
        return fn.graph_penalty(self.require_graph("penalty"), params)

    @property  # type: ignore[override]
    def uses_key(self) -> bool:
        """Whether `apply` draws random numbers: some layer does (Dropout, ...).

        A subclass that overrides `apply` is assumed to; so is a model not yet
        built. Training derives no step key when this is False.
        """
        if type(self).apply is not Model.apply or self._graph is None:
            return True
        return fn.graph_uses_key(self._graph)

    def has_penalty(self) -> bool:
        """Whether `penalty` can be non-zero: some layer has a regularizer.

        Training leaves the penalty out of the step when this is False. A
        subclass that overrides `penalty` is assumed to have one.
        """
        if type(self).penalty is not Model.penalty:
            return True
        return fn.graph_has_penalty(self.require_graph("penalty"))

    def compute_output_spec(self, input_spec: InputSpec) -> InputSpec:
        if self._graph is None:
            self._build_from_spec(input_spec)
        fn.check_input_spec(self._graph, input_spec, self._owner())
        return self._graph.output_spec

    def trainable_mask(self) -> Any:
        """A pytree of bools shaped like `params`: True where a weight is trained."""
        graph = self.require_graph("trainable_mask")
        shapes = self.param_shapes()[0]
        body = self.__dict__.get("_fk_body")
        if body is not None:  # a subclassed model: sublayers' own flags count
            return {
                body.name: sc.trainable_mask(
                    self, shapes[body.name], Layer.call, self.trainable
                )
            }
        return fn.graph_trainable_mask(graph, shapes, self.trainable)

    # -- weights on the facade ----------------------------------------------------------

    def param_shapes(self) -> tuple[Params, State]:
        """`(params, state)` as `jax.ShapeDtypeStruct` trees (nothing is allocated)."""
        graph = self.require_graph("weights")
        return jax.eval_shape(lambda k: fn.graph_init(graph, k), jax.random.key(0))

    def _ensure_weights(self) -> None:
        """Create whichever of params and state is missing, from `self.seed`."""
        if self._params is not None and self._state is not None:
            return
        graph = self.require_graph("weights")
        dist = self._distribution()
        if dist is None:
            # Layer by layer, eagerly: each initializer's draw is a small compiled
            # program cached by shape, so a deep model initialises in a fraction
            # of a second (one program for the whole model took minutes to
            # compile at a few hundred layers); the numbers are the same as
            # under `jax.jit`.
            params, state = fn.graph_init(graph, jax.random.key(self.seed))
        else:
            # Under a distribution every weight is made directly in its layout.
            init = jax.jit(
                lambda k: fn.graph_init(graph, k),
                out_shardings=dist.weight_shardings(*self.param_shapes()),
            )
            params, state = init(jax.random.key(self.seed))
        # A nested model that already holds weights (trained, loaded) keeps
        # them: transfer learning. The pure `init` always starts fresh.
        for layer in graph.layers:
            if isinstance(layer, Model) and layer._params is not None:
                params[layer.name] = jax.tree.map(jnp.copy, layer.params)
                state[layer.name] = jax.tree.map(jnp.copy, layer.state)
        if self._params is None:
            self._params = params
        if self._state is None:
            self._state = state

    @property
    def params(self) -> Params:
        """The current trainable-and-frozen weights: `params[layer][variable]`."""
        self._ensure_weights()
        return self._params

    @params.setter
    def params(self, value: Params) -> None:
        self._check_tree("params", value, self.param_shapes()[0])
        self._params = value

    @property
    def state(self) -> State:
        """The current non-trainable state (BatchNorm's moving statistics)."""
        self._ensure_weights()
        return self._state

    @state.setter
    def state(self, value: State) -> None:
        self._check_tree("state", value, self.param_shapes()[1])
        self._state = value

    def publish(self, params: Params, state: State, opt_state: Any) -> None:
        """Take `params`, `state` and `opt_state` as they are: no copy, no check.

        The training loop's way in (`funkeras.training.TrainHost`): the arrays
        come from its own train state, already checked, and it calls this
        between steps, where a check would cost time. Everyone else sets
        `params` and `state`, whose setters check names and shapes.
        """
        self._params, self._state, self.opt_state = params, state, opt_state

    def _check_tree(self, what: str, value: Any, like: Any) -> None:
        got = dict(jax.tree_util.tree_flatten_with_path(value)[0])
        want = dict(jax.tree_util.tree_flatten_with_path(like)[0])
        if got.keys() != want.keys():
            missing = sorted(jax.tree_util.keystr(k) for k in want.keys() - got.keys())
            extra = sorted(jax.tree_util.keystr(k) for k in got.keys() - want.keys())
            raise ValueError(
                f"{self._owner()}: the new `{what}` does not match the model: "
                f"missing {missing}, unexpected {extra}."
            )
        for path, w in want.items():
            g = got[path]
            if tuple(np.shape(g)) != tuple(w.shape):
                raise ValueError(
                    f"{self._owner()}: `{what}{jax.tree_util.keystr(path)}` must have "
                    f"shape {tuple(w.shape)}, got {tuple(np.shape(g))}."
                )

    def _weight_entries(self) -> list[tuple[tuple[str, ...], bool, bool]]:
        """(path, is_param, trainable) for every weight, in Keras order."""
        graph = self.require_graph("weights")
        params, state = self.param_shapes()
        out: list[tuple[tuple[str, ...], bool, bool]] = []

        def walk(
            g: Graph, p: Params, s: State, prefix: tuple[str, ...], on: bool
        ) -> None:
            for layer in g.layers:
                sub = getattr(layer, "graph", None)
                lp, ls = p[layer.name], s[layer.name]
                active = on and layer.trainable
                if sub is not None:
                    walk(sub, lp, ls, (*prefix, layer.name), active)
                    continue
                # Keras-style layers list weights in creation order (as Keras).
                owner = layer.model if isinstance(layer, SubclassedCall) else layer
                for n in _leaf_paths(owner, lp):
                    out.append(((*prefix, layer.name, *n), True, active))
                for n in _leaf_paths(owner, ls):
                    out.append(((*prefix, layer.name, *n), False, False))

        walk(graph, params, state, (), self.trainable)
        return out

    def has_activity_losses(self) -> bool:
        """Whether a Keras-style layer's `call` adds a loss that depends on its
        inputs (Keras' activity terms, `add_loss(rate * mean(inputs))`)."""
        self._ensure_weights()  # `init` tells which layers add such losses

        def walk(g: Graph) -> bool:
            for layer in g.layers:
                sub = getattr(layer, "graph", None)
                if sub is not None and walk(sub):
                    return True
                owner = layer.model if isinstance(layer, SubclassedCall) else layer
                if sc.keras_activity(owner):
                    return True
            return False

        return walk(self.require_graph("losses"))

    def weight_constraints(self) -> dict[tuple[str, ...], Callable[[Any], Any]]:
        """The constraint of every constrained weight, by its path in `params`
        (`add_weight(constraint=...)` of Keras-style layers)."""
        graph = self.require_graph("weights")
        params = self.param_shapes()[0]
        out: dict[tuple[str, ...], Callable[[Any], Any]] = {}

        def walk(g: Graph, p: Params, prefix: tuple[str, ...]) -> None:
            for layer in g.layers:
                sub = getattr(layer, "graph", None)
                lp = p[layer.name]
                if sub is not None:
                    walk(sub, lp, (*prefix, layer.name))
                    continue
                owner = layer.model if isinstance(layer, SubclassedCall) else layer
                for n in _leaf_paths(owner, lp):
                    found = _constraint_of(owner, n)
                    if found is not None:
                        out[(*prefix, layer.name, *n)] = found

        walk(graph, params, ())
        return out

    @staticmethod
    def _get_path(tree: Any, path: tuple[str, ...]) -> Any:
        for k in path:
            tree = tree[k]
        return tree

    def get_weights(self) -> list[np.ndarray]:
        """Every weight as a NumPy array, in Keras' order (layer by layer)."""
        params, state = self.params, self.state
        return [
            np.array(self._get_path(params if is_param else state, path), copy=True)
            for path, is_param, _ in self._weight_entries()
        ]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set every weight from a list in `get_weights` order (shapes are checked)."""
        entries = self._weight_entries()
        if len(weights) != len(entries):
            raise ValueError(
                f"{self._owner()}: `set_weights` expects {len(entries)} arrays, "
                f"got {len(weights)}."
            )
        params = jax.tree.map(lambda a: a, self.params)
        state = jax.tree.map(lambda a: a, self.state)
        for (path, is_param, _), w in zip(entries, weights, strict=True):
            tree = params if is_param else state
            old = self._get_path(tree, path)
            if tuple(np.shape(w)) != tuple(old.shape):
                raise ValueError(
                    f"{self._owner()}: weight {'/'.join(path)} has shape "
                    f"{tuple(old.shape)}, got {tuple(np.shape(w))}."
                )
            # A private copy: the caller's array must not alias the model's weights.
            fresh = np.array(w, dtype=np.dtype(old.dtype), copy=True)
            self._get_path(tree, path[:-1])[path[-1]] = jax.device_put(fresh)
        self._params, self._state = params, state

    @property
    def weights(self) -> list[Array]:
        params, state = self.params, self.state
        return [
            self._get_path(params if p else state, path)
            for path, p, _ in self._weight_entries()
        ]

    @property
    def trainable_weights(self) -> list[Array]:
        params = self.params
        return [
            self._get_path(params, path) for path, p, t in self._weight_entries() if t
        ]

    @property
    def non_trainable_weights(self) -> list[Array]:
        params, state = self.params, self.state
        return [
            self._get_path(params if p else state, path)
            for path, p, t in self._weight_entries()
            if not t
        ]

    def count_params(self) -> int:
        """The number of scalars in all weights (params and state), as Keras counts."""
        params, state = self.param_shapes()
        return int(sum(np.prod(a.shape) for a in jax.tree.leaves((params, state))))

    # -- calls on arrays -------------------------------------------------------------

    def concrete_weights(self) -> tuple[Params, State] | None:
        """The weights a subclassed model's own `add_weight` variables read
        outside `call` (its `call` layer's part of `params`/`state`)."""
        body = self.__dict__.get("_fk_body")
        if body is None or self._params is None:
            return None
        return self._params[body.name], self._state[body.name]

    def _eager_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """`model(x)` on arrays: build on first data, run `apply` on the current
        weights (`training=False` unless passed; `training=True` keeps the new
        state, as Keras updates BatchNorm statistics)."""
        kwargs = dict(kwargs)
        training = bool(kwargs.pop("training", False) or False)
        mask = kwargs.pop("mask", None)
        if kwargs:
            raise TypeError(
                f"{self._owner()}: calling a model takes the inputs (and `training`, "
                f"`mask`), got extra arguments {sorted(kwargs)}."
            )
        x = args[0] if len(args) == 1 else list(args)
        x = jax.tree.map(jnp.asarray, x)
        if self._graph is None:
            self._build_from_spec(
                jax.tree.map(
                    lambda a: jax.ShapeDtypeStruct(tuple(a.shape[1:]), a.dtype), x
                )
            )
        key = None
        if training:
            self.__dict__["_fk_ncalls"] = self.__dict__.get("_fk_ncalls", 0) + 1
            key = jax.random.fold_in(
                jax.random.key(self.seed), self.__dict__["_fk_ncalls"]
            )
        with sc.collect_losses() as added:
            y, state = self.apply(
                self.params, self.state, x, training=training, key=key, mask=mask
            )
        # Keras' `model.losses` after a call: the call's activity terms, then
        # the weight penalties.
        penalty = [self.penalty(self.params)] if self.has_penalty() else []
        self.__dict__["_fk_losses"] = [*added, *penalty]
        if training:
            self._state = state
        return y

    # -- files ----------------------------------------------------------------------

    def save(self, filepath: Any, *, include_optimizer: bool = True) -> None:
        """Save architecture, weights, state (and compile settings and optimizer
        state) to one `.fkz` file, atomically. See `funkeras.saving.save_model`."""
        saving.save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath: Any) -> None:
        """Save the weights as safetensors with `"layer/variable"` keys, atomically."""
        saving.save_weights(self, filepath)

    def load_weights(self, filepath: Any, skip_mismatch: bool = False) -> None:
        """Load weights saved by `save_weights` (or Keras 3's `.weights.h5` or
        `.keras`); every name, shape and dtype is checked (`skip_mismatch=True`
        skips the ones that disagree, as Keras does)."""
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as a JSON string, for `fk.models.model_from_json`.

        Keras' `model.to_json`, but the JSON is funkeras' config
        (`fk.layers.serialize(model)`, as inside a `.fkz` file), not Keras'.
        `kwargs` go to `json.dumps` (`indent=2`)."""
        return json.dumps(saving.serialize(self), **kwargs)

    def export(self, filepath: Any, input_signature: Any = None, *,
               platforms: Sequence[str] = ("cpu",)) -> None:
        """Export `predict` as a `jax.export` artefact with its params (needs the
        `export` extra). `input_signature` defaults to the model's input specs with
        a symbolic batch axis. See `funkeras.saving.export_model`."""
        if input_signature is None:
            input_signature = jax.tree.map(
                lambda s: jax.ShapeDtypeStruct((None, *s.shape), s.dtype), self.input_spec
            )
        saving.export_model(self, filepath, input_signature, platforms=tuple(platforms))

    # -- description ---------------------------------------------------------------

    def summary(
        self,
        line_length: int | None = None,
        print_fn: Callable[[str], Any] | None = None,
        show_cost: bool = False,
    ) -> None:
        """Print a table of layers, output shapes and parameter counts (as Keras).

        `show_cost=True` adds each layer's FLOPs and bytes from XLA's cost analysis.
        """
        text = summary_text(self, line_length=line_length, show_cost=show_cost)
        (print_fn or print)(text)

    def get_config(self) -> dict[str, Any]:
        """The architecture as JSON-safe data (layers by registry key, and the nodes).

        A subclassed model (one with `call`) follows Keras' rule instead: the
        base config is `name`/`trainable`/`dtype`, and a model whose `__init__`
        takes more arguments overrides `get_config` to return them.
        """
        if self._keras_style():
            config = Layer.get_config(self)
            spec = None if self._graph is None else self._graph.input_spec
            if isinstance(spec, jax.ShapeDtypeStruct):
                # Keras' build config: lets `load_model` build before loading.
                config["build_input_shape"] = {
                    "shape": list(spec.shape), "dtype": str(spec.dtype)
                }
            return config
        return functional_config(self)

    @classmethod
    def from_config(
        cls, config: dict[str, Any], resolve: Callable[[str], type] | None = None,
        custom_objects: dict[str, Any] | None = None,
    ) -> Model:
        """Rebuild a model from `get_config()` (weights are created fresh).

        `custom_objects` (Keras' argument) names classes the config uses that
        are not registered: `{"CustomDense": CustomDense}`.
        """
        if custom_objects:
            with saving.custom_object_scope(custom_objects):
                return cls.from_config(config, resolve)
        if cls.call is not Layer.call:
            config = dict(config)
            build = config.pop("build_input_shape", None)
            model = cls(**config)
            if isinstance(build, dict):
                model.build(
                    jax.ShapeDtypeStruct(tuple(build["shape"]), jnp.dtype(build["dtype"]))
                )
            return model
        return functional_from_config(cls, config, resolve)

    def __repr__(self) -> str:
        return layer_label(self)


def _leaf_paths(layer: Any, tree: dict[str, Any]) -> list[tuple[str, ...]]:
    """Paths to the arrays of `layer`'s params: its own (Keras order; creation
    order for a Keras-style layer), then its sublayers' (attribute order)."""
    keras_style = sc.is_keras_style(layer, Layer.call)
    names = sc.ordered_names(layer, tree) if keras_style else _ordered(tree)
    first = [n for n in getattr(layer, "weight_order", ()) if n in tree]
    names = first + [n for n in names if n not in first]
    out = [(n,) for n in names if not isinstance(tree[n], dict)]
    for n in names:
        if isinstance(tree[n], dict):
            sub = sc.sublayer(layer, n) if keras_style else None
            out += [(n, *p) for p in _leaf_paths(sub, tree[n])]
    return out


def _constraint_of(owner: Any, path: tuple[str, ...]) -> Any:
    """The constraint of the `add_weight` variable at `path` under `owner`."""
    for k in path[:-1]:
        owner = sc.sublayer(owner, k) if sc.is_keras_style(owner, Layer.call) else None
        if owner is None:
            return None
    if not sc.is_keras_style(owner, Layer.call):
        return None
    var = sc.variables_of(owner).get(path[-1])
    return None if var is None else var.constraint


def _as_spec(shape: Any) -> InputSpec:
    """An input shape (with or without a leading None) or spec, as a spec tree."""
    if isinstance(shape, jax.ShapeDtypeStruct):
        return shape
    if isinstance(shape, dict):
        return {k: _as_spec(v) for k, v in shape.items()}
    if isinstance(shape, list) and shape and isinstance(shape[0], tuple | list):
        return [_as_spec(s) for s in shape]
    shape = tuple(shape)
    if shape and shape[0] is None:
        shape = shape[1:]
    return jax.ShapeDtypeStruct(shape, jnp.float32)
