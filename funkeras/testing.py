"""`check_layer`: the conformance checks every funkeras layer passes, for your own too.

A layer that passes `check_layer` keeps the protocol the models, the training
executors and the saving code rely on (see `funkeras.layers.base.Layer`):

- `compute_output_spec` (traced with a symbolic batch) predicts the real output's
  shape and dtype;
- `jax.jit` of `apply` gives what the eager `apply` gives;
- `training=False` returns `state` unchanged;
- the row `mask` works: the real rows of a masked batch (and the new state) do not
  depend on the padded rows; a per-row layer gives its unmasked output on the real
  rows; a deterministic layer gives what it gives on the real rows alone (so a layer
  with batch statistics, such as `BatchNormalization` in training, takes its
  moments over the real rows only);
- gradients with respect to the params and the (floating) inputs are finite;
- `get_config()` survives JSON, and `from_config` rebuilds a layer whose `init`
  gives the same arrays for the same key;
- each requested dtype (float32 and bfloat16 by default) runs, within its own
  tolerance;
- `apply` traces and exports with a symbolic batch dimension
  (`jax.export.symbolic_shape`).

Every check runs with `training=False` and `training=True` (with a key).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from funkeras.layers.base import Layer, layer_label
from funkeras.typing import InputSpec, PRNGKey

__all__ = ["check_layer", "LayerCheckReport", "DEFAULT_DTYPE_TOLERANCES"]

# (rtol, atol) per compute dtype. bfloat16 keeps 8 bits of mantissa (a relative
# step of 2**-7), and jit may fuse what eager rounds op by op.
DEFAULT_DTYPE_TOLERANCES: dict[str, tuple[float, float]] = {
    "float32": (1e-5, 1e-5),
    "bfloat16": (3e-2, 3e-2),
}

_BATCH = 4
_ROW_MASK = np.array([True, False, True, True])  # real rows need not be contiguous


@dataclass(frozen=True)
class LayerCheckReport:
    """What `check_layer` verified (it raises instead of returning on any failure).

    Attributes:
        layer: The checked layer, as error messages name it.
        output_spec: The layer's `compute_output_spec` for the given input spec.
        params: The shapes of the params `init` creates, as a pytree of specs.
        state: The shapes of the state `init` creates.
        checks: One entry per check passed: `"<dtype>/training=<bool>: <check>"`.
    """

    layer: str
    output_spec: Any
    params: Any
    state: Any
    checks: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.layer}: {len(self.checks)} checks passed"


def check_layer(
    layer: Layer,
    input_spec: InputSpec,
    *,
    dtype_tolerances: Mapping[str, tuple[float, float]] | None = None,
    key: PRNGKey | None = None,
) -> LayerCheckReport:
    """Check that `layer` keeps the layer protocol on inputs described by `input_spec`.

    The layer is checked as it is for its own `dtype` and, for every other dtype in
    `dtype_tolerances`, as rebuilt by `from_config` with that `dtype` (floating
    inputs are then given in that dtype too). Random inputs have a batch of 4 rows;
    integer inputs are drawn from {0, 1} (so an `Embedding` needs `input_dim >= 2`).

    Args:
        layer: The layer to check (any `funkeras.layers.Layer`, including your own).
        input_spec: A `jax.ShapeDtypeStruct` (or a list/dict of them) without the
            batch axis, as `init` takes it.
        dtype_tolerances: `{dtype_name: (rtol, atol)}`: the dtypes to run and how
            closely jit must match eager (and masked must match unmasked) in each.
            Defaults to `DEFAULT_DTYPE_TOLERANCES` (float32 and bfloat16).
        key: The PRNG key for `init`, the inputs and `apply(training=True)`.
            Defaults to `jax.random.key(0)`.

    Returns:
        A `LayerCheckReport` listing the checks passed.

    Raises:
        ValueError: If any check fails; the message lists every failure.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from funkeras.layers.core import Dense
        >>> from funkeras.testing import check_layer
        >>> report = check_layer(Dense(3), jax.ShapeDtypeStruct((2,), jnp.float32),
        ...                      dtype_tolerances={"float32": (1e-5, 1e-5)})
        >>> report.output_spec
        ShapeDtypeStruct(shape=(3,), dtype=float32)
        >>> "float32/training=True: masked_rows_match_real_rows" in report.checks
        True
    """
    if not isinstance(layer, Layer):
        raise TypeError(
            f"check_layer: expected a funkeras Layer, got {type(layer).__name__}."
        )
    tolerances = dict(DEFAULT_DTYPE_TOLERANCES if dtype_tolerances is None
                      else dtype_tolerances)
    if not tolerances:
        raise ValueError("check_layer: `dtype_tolerances` names no dtype to check.")
    for name, tol in tolerances.items():
        if not (isinstance(tol, tuple | list) and len(tol) == 2):
            raise TypeError(
                f"check_layer: `dtype_tolerances[{name!r}]` must be (rtol, atol), "
                f"got {tol!r}."
            )
    for leaf in jax.tree.leaves(input_spec):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            raise TypeError(
                "check_layer: `input_spec` must be a jax.ShapeDtypeStruct (or a "
                f"list/dict of them) without the batch axis, got a {type(leaf).__name__}."
            )
    key = jax.random.key(0) if key is None else key
    label = layer_label(layer)

    passed: list[str] = []
    failures: list[str] = []
    rebuilt = _check_config(layer, input_spec, key, passed, failures)

    own = jnp.dtype(layer.dtype).name
    output_spec = params_spec = state_spec = None
    for dtype_name, (rtol, atol) in tolerances.items():
        dtype_name = jnp.dtype(dtype_name).name
        if dtype_name == own:
            variant, spec = layer, input_spec
        else:
            if rebuilt is None:
                failures.append(
                    f"{dtype_name}: not run, the layer cannot be rebuilt from its "
                    "config with another dtype (see the config failure)."
                )
                continue
            try:
                variant = rebuilt(dtype_name)
            except Exception as e:  # noqa: BLE001 - reported, not swallowed
                failures.append(
                    f"{dtype_name}: from_config with dtype={dtype_name!r} failed: "
                    f"{type(e).__name__}: {e}"
                )
                continue
            spec = _cast_spec(input_spec, dtype_name)
        checker = _DtypeChecks(variant, spec, key, float(rtol), float(atol), dtype_name)
        checker.run()
        passed += checker.passed
        failures += checker.failures
        if dtype_name == own:
            output_spec = checker.output_spec
            params_spec, state_spec = checker.param_specs

    if failures:
        raise ValueError(
            f"check_layer({label}): {len(failures)} check(s) failed:\n- "
            + "\n- ".join(failures)
        )
    return LayerCheckReport(
        layer=label,
        output_spec=output_spec,
        params=params_spec,
        state=state_spec,
        checks=tuple(passed),
    )


# ----------------------------------------------------------------------------
# The config round trip.
# ----------------------------------------------------------------------------


def _check_config(
    layer: Layer,
    input_spec: InputSpec,
    key: PRNGKey,
    passed: list[str],
    failures: list[str],
) -> Callable[[str], Layer] | None:
    """JSON round trip of `get_config`; returns a builder of dtype variants."""
    cls = type(layer)
    try:
        config = layer.get_config()
        text = json.dumps(config)
    except Exception as e:  # noqa: BLE001
        failures.append(
            f"config: get_config() is not JSON-safe: {type(e).__name__}: {e}"
        )
        return None
    try:
        restored = cls.from_config(json.loads(text))
    except Exception as e:  # noqa: BLE001
        failures.append(
            f"config: from_config(json.loads(json.dumps(get_config()))) failed: "
            f"{type(e).__name__}: {e}"
        )
        return None
    try:
        again = json.loads(json.dumps(restored.get_config()))
    except Exception as e:  # noqa: BLE001
        failures.append(f"config: the rebuilt layer's get_config() failed: {e}")
        return None
    if again != json.loads(text):
        failures.append(
            f"config: the rebuilt layer's config differs: {again!r} != {config!r}."
        )
    try:
        want = layer.init(key, input_spec)
        got = restored.init(key, input_spec)
        problem = _tree_difference(want, got, 0.0, 0.0, exact=True)
        if problem:
            failures.append(
                f"config: init of the rebuilt layer differs for the same key: {problem}"
            )
        else:
            passed.append("config: json_round_trip_same_init")
    except Exception as e:  # noqa: BLE001
        failures.append(f"config: init failed: {type(e).__name__}: {e}")

    def build(dtype_name: str) -> Layer:
        return cls.from_config({**json.loads(text), "dtype": dtype_name})

    return build


# ----------------------------------------------------------------------------
# The checks that run in one dtype.
# ----------------------------------------------------------------------------


class _DtypeChecks:
    """Every check of one layer in one dtype, both training modes.

    Per mode, one jitted probe computes every variant the checks compare (so a
    layer costs one compile per mode), and one eager call is compared with it.
    """

    def __init__(
        self,
        layer: Layer,
        spec: InputSpec,
        key: PRNGKey,
        rtol: float,
        atol: float,
        dtype_name: str,
    ) -> None:
        self.layer, self.spec = layer, spec
        self.rtol, self.atol = rtol, atol
        self.dtype_name = dtype_name
        self.init_key = key
        self.data_key, self.apply_key = jax.random.split(jax.random.fold_in(key, 1))
        self.passed: list[str] = []
        self.failures: list[str] = []
        self.output_spec: Any = None
        self.param_specs: tuple[Any, Any] = (None, None)

    def _attempt(self, where: str, name: str, fn: Callable[[], str | None]) -> None:
        try:
            problem = fn()
        except Exception as e:  # noqa: BLE001 - every failure goes in the report
            problem = f"raised {type(e).__name__}: {e}"
        if problem:
            self.failures.append(f"{where}: {name}: {problem}")
        else:
            self.passed.append(f"{where}: {name}")

    def run(self) -> None:
        layer, where = self.layer, self.dtype_name
        try:
            self.params, self.state = layer.init(self.init_key, self.spec)
        except Exception as e:  # noqa: BLE001
            self.failures.append(f"{where}: init raised {type(e).__name__}: {e}")
            return
        self.param_specs = (_specs(self.params), _specs(self.state))
        self._attempt(where, "init_is_pure", self._check_init_pure)
        try:
            self.output_spec = layer.compute_output_spec(self.spec)
        except Exception as e:  # noqa: BLE001
            self.failures.append(
                f"{where}: compute_output_spec raised {type(e).__name__}: {e}"
            )
        self.x = _example_inputs(self.spec, _BATCH, self.data_key)
        self.x_other = _repad(self.x, jax.random.fold_in(self.data_key, 1))
        for training in (False, True):
            self._run_mode(training)

    def _check_init_pure(self) -> str | None:
        again = self.layer.init(self.init_key, self.spec)
        problem = _tree_difference((self.params, self.state), again, 0, 0, exact=True)
        return f"init is not deterministic for one key: {problem}" if problem else None

    def _probe(self, training: bool, key: Any) -> Callable[..., dict[str, Any]]:
        """The jitted function computing every variant the mode's checks need."""
        layer = self.layer
        mask = jnp.asarray(_ROW_MASK)
        cotangent_key = jax.random.fold_in(self.data_key, 2)

        def apply(params, state, x, key, mask=None):
            return layer.apply(params, state, x, training=training, key=key, mask=mask)

        def scalar(params_float, x_float, params, state, x, key):
            y, _ = apply(
                _merge_floating(params, params_float),
                state,
                _merge_floating(x, x_float),
                key,
            )
            total = jnp.zeros((), jnp.float32)
            for i, a in enumerate(jax.tree.leaves(y)):
                if jnp.issubdtype(a.dtype, jnp.floating):
                    weights = jax.random.normal(
                        jax.random.fold_in(cotangent_key, i), a.shape, jnp.float32
                    )
                    total = total + jnp.sum(a.astype(jnp.float32) * weights)
            return total

        def probe(params, state, x, x_other, key):
            out = {
                "full": apply(params, state, x, key),
                "full_other": apply(params, state, x_other, key),
                "masked": apply(params, state, x, key, mask),
                "masked_other": apply(params, state, x_other, key, mask),
                "real_only": apply(
                    params, state, jax.tree.map(lambda a: a[_ROW_MASK], x), key
                ),
                "grads": jax.grad(scalar, argnums=(0, 1))(
                    _floating_part(params), _floating_part(x), params, state, x, key
                ),
            }
            if key is not None:
                out["other_key"] = apply(params, state, x, jax.random.fold_in(key, 7))
            return out

        return jax.jit(probe)

    def _run_mode(self, training: bool) -> None:
        where = f"{self.dtype_name}/training={training}"
        key = self.apply_key if training else None
        try:
            eager = self.layer.apply(
                self.params, self.state, self.x, training=training, key=key
            )
        except Exception as e:  # noqa: BLE001
            self.failures.append(f"{where}: apply raised {type(e).__name__}: {e}")
            return
        try:
            out = self._probe(training, key)(
                self.params, self.state, self.x, self.x_other, key
            )
        except Exception as e:  # noqa: BLE001
            self.failures.append(
                f"{where}: jax.jit of apply (with and without a row mask, and its "
                f"gradient) raised {type(e).__name__}: {e}"
            )
            return
        y, new_state = eager

        self._attempt(
            where,
            "jit_matches_eager",
            lambda: self._diff(eager, out["full"], "jit vs eager (y, state)"),
        )
        self._attempt(where, "output_spec_matches", lambda: self._check_spec(y))
        if not training:
            self._attempt(
                where,
                "inference_keeps_state",
                lambda: _state_unchanged(self.state, new_state, out["full"]),
            )

        def masked_rows_ignore_padding() -> str | None:
            (y1, s1), (y2, s2) = out["masked"], out["masked_other"]
            return self._diff(
                (_rows(y1), s1),
                (_rows(y2), s2),
                "with a row mask, the real rows of y (and the new state) changed "
                "when only the padded rows of x changed",
            )

        def mask_per_row_layer() -> str | None:
            # Without a mask, a per-row layer's real rows ignore the other rows.
            (y1, s1), (y2, s2) = out["full"], out["full_other"]
            if _tree_difference((_rows(y1), s1), (_rows(y2), s2), self.rtol, self.atol):
                return None  # rows interact (batch statistics): not a per-row layer
            ym, sm = out["masked"]
            return self._diff(
                (_rows(y1), s1),
                (_rows(ym), sm),
                "a per-row layer's real rows (or state) changed when a row mask "
                "was given",
            )

        def masked_rows_match_real_rows() -> str | None:
            # A deterministic layer given a mask computes what the real rows alone
            # give; for batch statistics, "the moments of the real rows only".
            if "other_key" in out and _tree_difference(
                out["full"], out["other_key"], 0.0, 0.0, exact=True
            ):
                return None  # random (dropout): a smaller batch draws other bits
            ym, sm = out["masked"]
            return self._diff(
                (_rows(ym), sm),
                out["real_only"],
                "with a row mask, the real rows of y (and the new state) differ "
                "from what the real rows alone give",
            )

        def finite_gradients() -> str | None:
            bad = []
            for what, tree in zip(("params", "inputs"), out["grads"], strict=True):
                for path, g in jax.tree_util.tree_flatten_with_path(tree)[0]:
                    if not bool(jnp.all(jnp.isfinite(g))):
                        bad.append(f"d/d{what}{jax.tree_util.keystr(path)}")
            return f"non-finite gradients: {', '.join(bad)}" if bad else None

        self._attempt(where, "masked_rows_ignore_padding", masked_rows_ignore_padding)
        self._attempt(where, "mask_per_row_layer", mask_per_row_layer)
        self._attempt(where, "masked_rows_match_real_rows", masked_rows_match_real_rows)
        self._attempt(where, "finite_gradients", finite_gradients)
        self._attempt(
            where, "symbolic_batch_exports", lambda: self._check_symbolic(training, key)
        )

    def _diff(self, a: Any, b: Any, what: str) -> str | None:
        problem = _tree_difference(a, b, self.rtol, self.atol)
        return f"{what}: {problem}" if problem else None

    def _check_spec(self, y: Any) -> str | None:
        if self.output_spec is None:
            return "no output spec (compute_output_spec failed)"
        real = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(tuple(a.shape[1:]), a.dtype), y
        )
        if jax.tree.structure(real) != jax.tree.structure(self.output_spec):
            return f"compute_output_spec gives {self.output_spec}, the output is {real}"
        for want, got in zip(
            jax.tree.leaves(self.output_spec), jax.tree.leaves(real), strict=True
        ):
            if tuple(want.shape) != tuple(got.shape) or want.dtype != got.dtype:
                return (
                    f"compute_output_spec gives {_spec_str(want)}, the real output "
                    f"(batch axis dropped) is {_spec_str(got)}"
                )
        for leaf in jax.tree.leaves(y):
            if tuple(leaf.shape[:1]) != (_BATCH,):
                return f"an output of shape {tuple(leaf.shape)} lost the batch axis"
        return None

    def _check_symbolic(self, training: bool, key: Any) -> str | None:
        layer = self.layer
        (batch,) = jax.export.symbolic_shape("batch")
        x_spec = jax.tree.map(
            lambda s: jax.ShapeDtypeStruct((batch, *s.shape), s.dtype), self.spec
        )
        mask_spec = jax.ShapeDtypeStruct((batch,), jnp.bool_)

        def run(params, state, x, mask):
            return layer.apply(params, state, x, training=training, key=key, mask=mask)

        exported = jax.export.export(jax.jit(run))(
            _specs(self.params), _specs(self.state), x_spec, mask_spec
        )
        y_avals, _ = jax.tree.unflatten(exported.out_tree, exported.out_avals)
        for aval in jax.tree.leaves(y_avals):
            if not aval.shape or str(aval.shape[0]) != "batch":
                return f"an output of shape {aval.shape} lost the symbolic batch axis"
        return None


# ----------------------------------------------------------------------------
# Helpers.
# ----------------------------------------------------------------------------


def _specs(tree: Any) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), tree)


def _spec_str(spec: Any) -> str:
    return f"{tuple(spec.shape)} {jnp.dtype(spec.dtype).name}"


def _cast_spec(spec: InputSpec, dtype_name: str) -> InputSpec:
    """Floating leaves of `spec` in `dtype_name`; integer leaves unchanged."""
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, dtype_name)
        if jnp.issubdtype(s.dtype, jnp.floating)
        else s,
        spec,
    )


def _example_inputs(spec: InputSpec, batch: int, key: PRNGKey) -> Any:
    leaves, treedef = jax.tree.flatten(spec)
    out = []
    for i, s in enumerate(leaves):
        k = jax.random.fold_in(key, i)
        shape = (batch, *s.shape)
        if jnp.issubdtype(s.dtype, jnp.floating):
            out.append(jax.random.normal(k, shape, jnp.float32).astype(s.dtype))
        elif s.dtype == jnp.bool_:
            out.append(jax.random.bernoulli(k, 0.5, shape))
        else:
            out.append(jax.random.randint(k, shape, 0, 2).astype(s.dtype))
    return jax.tree.unflatten(treedef, out)


def _repad(x: Any, key: PRNGKey) -> Any:
    """`x` with every padded row (False in the row mask) replaced by other values."""
    pad = jnp.asarray(~_ROW_MASK)
    leaves, treedef = jax.tree.flatten(x)
    out = []
    for i, a in enumerate(leaves):
        rows = pad.reshape((-1,) + (1,) * (a.ndim - 1))
        if jnp.issubdtype(a.dtype, jnp.floating):
            noise = jax.random.normal(jax.random.fold_in(key, i), a.shape, jnp.float32)
            other = (5.0 * noise + 3.0).astype(a.dtype)
        elif a.dtype == jnp.bool_:
            other = ~a
        else:
            other = (1 - a).astype(a.dtype)
        out.append(jnp.where(rows, other, a))
    return jax.tree.unflatten(treedef, out)


def _rows(y: Any) -> Any:
    """The real rows (True in the row mask) of every leaf of `y`."""
    return jax.tree.map(lambda a: a[_ROW_MASK], y)


def _floating_part(x: Any) -> Any:
    return jax.tree.map(
        lambda a: a if jnp.issubdtype(a.dtype, jnp.floating) else None, x
    )


def _merge_floating(full: Any, floating: Any) -> Any:
    """`full` with its floating leaves taken from `floating` (None elsewhere)."""
    leaves, treedef = jax.tree.flatten(full)
    subs = treedef.flatten_up_to(floating)
    return jax.tree.unflatten(
        treedef, [a if s is None else s for a, s in zip(leaves, subs, strict=True)]
    )


def _state_unchanged(state: Any, eager_state: Any, jit_state: Any) -> str | None:
    problem = _tree_difference(state, eager_state, 0.0, 0.0, exact=True)
    if problem:
        return f"apply(training=False) changed the state: {problem}"
    if jit_state is not None:
        problem = _tree_difference(state, jit_state[1], 0.0, 0.0, exact=True)
        if problem:
            return f"jit(apply)(training=False) changed the state: {problem}"
    return None


def _tree_difference(
    a: Any, b: Any, rtol: float, atol: float, *, exact: bool = False
) -> str | None:
    """None if the pytrees match (structure, shapes, dtypes, values), else why not."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return f"structures differ: {jax.tree.structure(a)} vs {jax.tree.structure(b)}"
    for (path, x), y in zip(
        jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b), strict=True
    ):
        where = jax.tree_util.keystr(path) or "value"
        if tuple(np.shape(x)) != tuple(np.shape(y)):
            return f"{where}: shapes {np.shape(x)} vs {np.shape(y)}"
        dx, dy = jnp.asarray(x).dtype, jnp.asarray(y).dtype
        if dx != dy:
            return f"{where}: dtypes {dx} vs {dy}"
        if jnp.issubdtype(dx, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        if jnp.issubdtype(dx, jnp.inexact):
            # Low-precision floats widen exactly; compare (and show) them as such.
            wide = jnp.promote_types(dx, jnp.float32)
            xf, yf = np.asarray(jnp.asarray(x, wide)), np.asarray(jnp.asarray(y, wide))
            close = (
                np.array_equal(xf, yf, equal_nan=True)
                if exact
                else np.allclose(xf, yf, rtol=rtol, atol=atol, equal_nan=True)
            )
            if not close:
                err = np.abs(xf - yf)
                worst = float(np.nanmax(err)) if err.size else 0.0
                return (
                    f"{where}: values differ (max abs difference {worst:.3g}"
                    + (")" if exact else f", rtol={rtol}, atol={atol})")
                )
        elif not np.array_equal(np.asarray(x), np.asarray(y)):
            return f"{where}: values differ"
    return None
