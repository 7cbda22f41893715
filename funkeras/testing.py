"""`check_layer`: the conformance checks every funkeras layer passes, for your own too.

A layer that passes `check_layer` keeps the protocol that models, the training
executors and saving rely on (see `funkeras.layers.base.Layer`):

- `init` is pure, and `compute_output_spec` (traced with a symbolic batch)
  predicts the real output's shape and dtype;
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

Every `apply` check runs with `training=False` and with `training=True` (and a
key). The jitted variants of one dtype are compiled as one program, so checking
a small layer costs about one compile per dtype.
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
_MODES = (False, True)  # training


@dataclass(frozen=True)
class LayerCheckReport:
    """What `check_layer` verified (it raises instead of returning on any failure).

    Attributes:
        layer: The checked layer, as error messages name it.
        output_spec: The layer's `compute_output_spec` for the given input spec
            (`None` when the layer's own dtype was not among those checked).
        params: The specs of the params `init` creates (same caveat).
        state: The specs of the state `init` creates (same caveat).
        checks: One entry per check passed, e.g.
            `"float32/training=True: jit_matches_eager"`.
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

    The layer is checked as it is in its own `dtype` and, for every other dtype in
    `dtype_tolerances`, as rebuilt by `from_config` with that `dtype` (floating
    inputs are then given in that dtype too). The inputs are random, with a batch
    of 4 rows; integer inputs are drawn from {0, 1} (so an `Embedding` needs
    `input_dim >= 2`).

    Args:
        layer: The layer to check (any `funkeras.layers.Layer`, including your own).
        input_spec: A `jax.ShapeDtypeStruct` (or a list/dict of them) without the
            batch axis, as `init` takes it.
        dtype_tolerances: `{dtype_name: (rtol, atol)}`: the dtypes to run, and how
            closely jit must match eager (and masked must match unmasked) in each.
            Defaults to `DEFAULT_DTYPE_TOLERANCES` (float32 and bfloat16).
        key: The PRNG key for `init`, the inputs and `apply(training=True)`.
            Defaults to `jax.random.key(0)`.

    Returns:
        A `LayerCheckReport` listing the checks passed.

    Raises:
        ValueError: If any check fails; the message lists every failure.
        TypeError: If the arguments are not a layer and input specs.

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
    tolerances = dict(
        DEFAULT_DTYPE_TOLERANCES if dtype_tolerances is None else dtype_tolerances
    )
    if not tolerances:
        raise ValueError("check_layer: `dtype_tolerances` names no dtype to check.")
    for name, tol in tolerances.items():
        if not (isinstance(tol, tuple | list) and len(tol) == 2):
            raise TypeError(
                f"check_layer: `dtype_tolerances[{name!r}]` must be (rtol, atol), "
                f"got {tol!r}."
            )
    leaves = jax.tree.leaves(input_spec)
    if not leaves or not all(isinstance(s, jax.ShapeDtypeStruct) for s in leaves):
        raise TypeError(
            "check_layer: `input_spec` must be a jax.ShapeDtypeStruct (or a "
            f"list/dict of them) without the batch axis, got {input_spec!r}."
        )
    key = jax.random.key(0) if key is None else key
    label = layer_label(layer)

    passed: list[str] = []
    failures: list[str] = []
    rebuild = _check_config(layer, passed, failures)

    own = jnp.dtype(layer.dtype).name
    report: dict[str, Any] = {}
    for dtype_name, (rtol, atol) in tolerances.items():
        dtype_name = jnp.dtype(dtype_name).name
        variant, spec = layer, input_spec
        twin = None
        if rebuild is not None:
            try:
                twin = rebuild(dtype_name)
                if dtype_name != own:
                    variant = rebuild(dtype_name)
            except Exception as e:  # noqa: BLE001 - every failure goes in the report
                failures.append(
                    f"{dtype_name}: from_config with dtype={dtype_name!r} raised "
                    f"{type(e).__name__}: {e}"
                )
                continue
        elif dtype_name != own:
            failures.append(
                f"{dtype_name}: not run: the layer cannot be rebuilt from its config "
                "with another dtype (see the config failure)."
            )
            continue
        if dtype_name != own:
            spec = _cast_spec(input_spec, dtype_name)
        checks = _DtypeChecks(
            variant, twin, spec, key, float(rtol), float(atol), dtype_name
        )
        checks.run()
        passed += checks.passed
        failures += checks.failures
        if dtype_name == own:
            report = {
                "output_spec": checks.output_spec,
                "params": checks.param_specs[0],
                "state": checks.param_specs[1],
            }

    if failures:
        raise ValueError(
            f"check_layer({label}): {len(failures)} check(s) failed:\n- "
            + "\n- ".join(failures)
        )
    return LayerCheckReport(
        layer=label,
        output_spec=report.get("output_spec"),
        params=report.get("params"),
        state=report.get("state"),
        checks=tuple(passed),
    )


# ----------------------------------------------------------------------------
# The config round trip.
# ----------------------------------------------------------------------------


def _check_config(
    layer: Layer, passed: list[str], failures: list[str]
) -> Callable[[str], Layer] | None:
    """Check the JSON round trip of `get_config`; return a builder of dtype twins."""
    cls = type(layer)
    try:
        text = json.dumps(layer.get_config())
    except Exception as e:  # noqa: BLE001
        failures.append(
            f"config: get_config() is not JSON-safe: {type(e).__name__}: {e}"
        )
        return None
    config = json.loads(text)
    try:
        again = json.loads(json.dumps(cls.from_config(json.loads(text)).get_config()))
    except Exception as e:  # noqa: BLE001
        failures.append(
            "config: from_config(json.loads(json.dumps(get_config()))) (or its "
            f"get_config) raised {type(e).__name__}: {e}"
        )
        return None
    if again != config:
        failures.append(
            f"config: the rebuilt layer's config differs: {again!r} != {config!r}."
        )
    else:
        passed.append("config: json_round_trip")

    def rebuild(dtype_name: str) -> Layer:
        return cls.from_config({**json.loads(text), "dtype": dtype_name})

    return rebuild


# ----------------------------------------------------------------------------
# The checks that run in one dtype.
# ----------------------------------------------------------------------------


class _DtypeChecks:
    """Every check of one layer in one dtype, in both training modes.

    One jitted probe computes the init (twice, and the config twin's) and every
    apply variant the checks compare; the eager `apply` is then compared with it.
    """

    def __init__(
        self,
        layer: Layer,
        twin: Layer | None,
        spec: InputSpec,
        key: PRNGKey,
        rtol: float,
        atol: float,
        dtype_name: str,
    ) -> None:
        self.layer, self.twin, self.spec = layer, twin, spec
        self.rtol, self.atol = rtol, atol
        self.where = dtype_name
        self.init_key = key
        self.apply_key = jax.random.fold_in(key, 1)
        seed = np.asarray(jax.random.key_data(key)).astype(np.uint64).sum()
        rng = np.random.default_rng(int(seed))
        self.x = _example_inputs(spec, rng)
        self.x_other = _repad(self.x, rng)
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

    def _fail(self, what: str, e: Exception) -> None:
        self.failures.append(f"{self.where}: {what} raised {type(e).__name__}: {e}")

    def run(self) -> None:
        try:
            self.output_spec = self.layer.compute_output_spec(self.spec)
        except Exception as e:  # noqa: BLE001
            self._fail("compute_output_spec", e)
        try:
            raw = self._probe()(self.init_key, self.apply_key, self.x, self.x_other)
            out = jax.device_get(raw)
        except Exception as e:  # noqa: BLE001
            self._fail(
                "jax.jit of init and apply (with and without a row mask, and the "
                "gradients)",
                e,
            )
            return
        self.params, self.state = raw["init"]  # device arrays, for the eager apply
        self.param_specs = (_specs(self.params), _specs(self.state))
        self._attempt(
            self.where,
            "init_is_pure",
            lambda: _prefixed(
                "init gave other arrays for the same key",
                _tree_difference(out["init"], out["init_again"], exact=True),
            ),
        )
        if "twin_init" in out:
            self._attempt(
                self.where,
                "from_config_same_init",
                lambda: _prefixed(
                    "the layer rebuilt from its JSON config inits differently",
                    _tree_difference(out["init"], out["twin_init"], exact=True),
                ),
            )
        for training in _MODES:
            self._check_mode(training, out[f"training={training}"])

    def _probe(self) -> Callable[..., dict[str, Any]]:
        """The one jitted function computing everything the checks compare."""
        layer, twin, spec = self.layer, self.twin, self.spec
        mask = _ROW_MASK

        def apply(params, state, x, training, key, mask=None):
            return layer.apply(params, state, x, training=training, key=key, mask=mask)

        def scalar(params_float, x_float, params, state, x, training, key):
            y, _ = apply(
                _merge_floating(params, params_float),
                state,
                _merge_floating(x, x_float),
                training,
                key,
            )
            total = jnp.zeros((), jnp.float32)
            for i, a in enumerate(jax.tree.leaves(y)):
                if jnp.issubdtype(a.dtype, jnp.floating):
                    # Fixed pseudo-random cotangents: every output entry counts.
                    weights = jnp.cos(jnp.arange(a.size, dtype=jnp.float32) * 0.7 + i)
                    total = total + jnp.sum(a.astype(jnp.float32).ravel() * weights)
            return total

        def probe(init_key, apply_key, x, x_other):
            params, state = layer.init(init_key, spec)
            out: dict[str, Any] = {
                "init": (params, state),
                "init_again": layer.init(init_key, spec),
            }
            if twin is not None:
                out["twin_init"] = twin.init(init_key, spec)
            real = jax.tree.map(lambda a: a[mask], x)
            for training in _MODES:
                # Variants of one shape run in a `lax.map`, so the layer's ops are
                # compiled once per shape rather than once per variant.
                inputs = [x, x_other]
                keys = None
                if training:
                    inputs.append(x)
                    other_key = jax.random.fold_in(apply_key, 7)
                    keys = _stack([apply_key, apply_key, other_key])

                def run(args, mask=None, training=training):
                    xi, ki = args
                    return apply(params, state, xi, training, ki, mask)

                unmasked = jax.lax.map(run, (_stack(inputs), keys))
                masked = jax.lax.map(
                    lambda args: run(args, mask),
                    (_stack(inputs[:2]), None if keys is None else keys[:2]),
                )
                key = apply_key if training else None
                mode = {
                    "full": _unstack(unmasked, 0),
                    "full_other": _unstack(unmasked, 1),
                    "masked": _unstack(masked, 0),
                    "masked_other": _unstack(masked, 1),
                    "real_only": apply(params, state, real, training, key),
                    "grads": jax.grad(scalar, argnums=(0, 1))(
                        _floating_part(params),
                        _floating_part(x),
                        params,
                        state,
                        x,
                        training,
                        key,
                    ),
                }
                if training:
                    mode["other_key"] = _unstack(unmasked, 2)
                out[f"training={training}"] = mode
            return out

        # The probe is about values, not speed: skipping the backend's (LLVM's)
        # optimizations halves its compile time and leaves the numbers as they are.
        options = {"xla_backend_optimization_level": 0}
        return jax.jit(probe, compiler_options=options)

    def _check_mode(self, training: bool, out: dict[str, Any]) -> None:
        where = f"{self.where}/training={training}"
        key = self.apply_key if training else None
        try:
            eager = jax.device_get(
                self.layer.apply(
                    self.params, self.state, self.x, training=training, key=key
                )
            )
        except Exception as e:  # noqa: BLE001
            self.failures.append(f"{where}: apply raised {type(e).__name__}: {e}")
            return
        y, new_state = eager
        check = self._attempt

        check(
            where,
            "jit_matches_eager",
            lambda: self._diff(eager, out["full"], "jit vs eager (y, state)"),
        )
        check(where, "output_spec_matches", lambda: self._check_spec(y))
        if not training:
            check(
                where,
                "inference_keeps_state",
                lambda: _prefixed(
                    "apply(training=False) changed the state (eager or jit)",
                    _tree_difference(
                        (self.state, self.state),
                        (new_state, out["full"][1]),
                        exact=True,
                    ),
                ),
            )

        def masked_rows_ignore_padding() -> str | None:
            (y1, s1), (y2, s2) = out["masked"], out["masked_other"]
            return self._diff(
                (_rows(y1), s1),
                (_rows(y2), s2),
                "with a row mask, the real rows of y (or the new state) changed "
                "when only the padded rows of x changed",
            )

        def mask_per_row_layer() -> str | None:
            # Without a mask, a per-row layer's real rows ignore the other rows.
            (y1, s1), (y2, s2) = out["full"], out["full_other"]
            if _tree_difference(
                (_rows(y1), s1), (_rows(y2), s2), rtol=self.rtol, atol=self.atol
            ):
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
            # give; with batch statistics, that is "moments of the real rows only".
            if "other_key" in out and _tree_difference(
                out["full"], out["other_key"], exact=True
            ):
                return None  # random (dropout): a smaller batch draws other bits
            ym, sm = out["masked"]
            return self._diff(
                (_rows(ym), sm),
                out["real_only"],
                "with a row mask, the real rows of y (or the new state) differ "
                "from what the real rows alone give",
            )

        def finite_gradients() -> str | None:
            bad = []
            for what, tree in zip(("params", "inputs"), out["grads"], strict=True):
                for path, g in jax.tree_util.tree_flatten_with_path(tree)[0]:
                    if not np.all(np.isfinite(np.asarray(g, np.float32))):
                        bad.append(f"d/d{what}{jax.tree_util.keystr(path)}")
            return f"non-finite gradients: {', '.join(bad)}" if bad else None

        check(where, "masked_rows_ignore_padding", masked_rows_ignore_padding)
        check(where, "mask_per_row_layer", mask_per_row_layer)
        check(where, "masked_rows_match_real_rows", masked_rows_match_real_rows)
        check(where, "finite_gradients", finite_gradients)
        check(where, "symbolic_batch_exports", lambda: self._check_symbolic(training))

    def _diff(self, a: Any, b: Any, what: str) -> str | None:
        return _prefixed(what, _tree_difference(a, b, rtol=self.rtol, atol=self.atol))

    def _check_spec(self, y: Any) -> str | None:
        if self.output_spec is None:
            return "no output spec to compare (compute_output_spec failed)"
        real = jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(tuple(np.shape(a))[1:], a.dtype), y
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
            if tuple(np.shape(leaf))[:1] != (_BATCH,):
                return f"an output of shape {np.shape(leaf)} lost the batch axis"
        return None

    def _check_symbolic(self, training: bool) -> str | None:
        layer = self.layer
        key = self.apply_key if training else None
        (batch,) = jax.export.symbolic_shape("batch")
        x_spec = jax.tree.map(
            lambda s: jax.ShapeDtypeStruct((batch, *s.shape), s.dtype), self.spec
        )
        mask_spec = jax.ShapeDtypeStruct((batch,), jnp.bool_)

        def run(params, state, x, mask):
            return layer.apply(params, state, x, training=training, key=key, mask=mask)

        exported = jax.export.export(jax.jit(run))(
            self.param_specs[0], self.param_specs[1], x_spec, mask_spec
        )
        y_avals, _ = jax.tree.unflatten(exported.out_tree, exported.out_avals)
        for aval in jax.tree.leaves(y_avals):
            if not aval.shape or str(aval.shape[0]) != "batch":
                return f"an output of shape {aval.shape} lost the symbolic batch axis"
        return None


# ----------------------------------------------------------------------------
# Helpers (host-side NumPy, so the checks themselves compile nothing).
# ----------------------------------------------------------------------------


def _specs(tree: Any) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), tree)


def _spec_str(spec: Any) -> str:
    return f"{tuple(spec.shape)} {np.dtype(spec.dtype).name}"


def _cast_spec(spec: InputSpec, dtype_name: str) -> InputSpec:
    """Floating leaves of `spec` in `dtype_name`; other leaves unchanged."""
    return jax.tree.map(
        lambda s: (
            jax.ShapeDtypeStruct(s.shape, dtype_name)
            if jnp.issubdtype(s.dtype, jnp.floating)
            else s
        ),
        spec,
    )


def _example_inputs(spec: InputSpec, rng: np.random.Generator) -> Any:
    def draw(s: jax.ShapeDtypeStruct) -> jax.Array:
        shape = (_BATCH, *s.shape)
        if jnp.issubdtype(s.dtype, jnp.floating):
            value = rng.standard_normal(shape)
        else:
            value = rng.integers(0, 2, shape)
        return jax.device_put(np.asarray(value).astype(s.dtype))

    return jax.tree.map(draw, spec)


def _repad(x: Any, rng: np.random.Generator) -> Any:
    """`x` with every padded row (False in the row mask) replaced by other values."""

    def repad(a: jax.Array) -> jax.Array:
        a = np.asarray(a)
        if np.issubdtype(a.dtype, np.bool_):
            other = ~a
        elif jnp.issubdtype(a.dtype, jnp.floating):
            other = (5.0 * rng.standard_normal(a.shape) + 3.0).astype(a.dtype)
        else:
            other = (1 - a).astype(a.dtype)
        rows = (~_ROW_MASK).reshape((-1,) + (1,) * (a.ndim - 1))
        return jax.device_put(np.where(rows, other, a))

    return jax.tree.map(repad, x)


def _rows(y: Any) -> Any:
    """The real rows (True in the row mask) of every leaf of `y`."""
    return jax.tree.map(lambda a: np.asarray(a)[_ROW_MASK], y)


def _stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def _unstack(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda a: a[i], tree)


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


def _prefixed(what: str, problem: str | None) -> str | None:
    return f"{what}: {problem}" if problem else None


def _tree_difference(
    a: Any, b: Any, *, rtol: float = 0.0, atol: float = 0.0, exact: bool = False
) -> str | None:
    """None if the pytrees match (structure, shapes, dtypes, values), else why not."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return f"structures differ: {jax.tree.structure(a)} vs {jax.tree.structure(b)}"
    for (path, x), y in zip(
        jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b), strict=True
    ):
        where = jax.tree_util.keystr(path) or "value"
        dtype = getattr(x, "dtype", None)
        if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape:
            return f"{where}: shapes {x.shape} vs {y.shape}"
        if x.dtype != y.dtype:
            return f"{where}: dtypes {x.dtype} vs {y.dtype}"
        if jnp.issubdtype(x.dtype, jnp.inexact):
            # Low-precision floats widen exactly; compare (and show) them widened.
            wide = jnp.promote_types(x.dtype, np.float32)
            xw, yw = x.astype(wide), y.astype(wide)
            if exact:
                close = np.array_equal(xw, yw, equal_nan=True)
            else:
                close = np.allclose(xw, yw, rtol=rtol, atol=atol, equal_nan=True)
            if not close:
                worst = float(np.nanmax(np.abs(xw - yw))) if xw.size else 0.0
                tol = "" if exact else f", rtol={rtol}, atol={atol}"
                return f"{where}: values differ (max abs difference {worst:.3g}{tol})"
        elif not np.array_equal(x, y):
            return f"{where}: values differ"
    return None
