"""Export a model's `predict` as a compiled-program artefact that runs without its code.

`export_model` traces `predict(params, x)` with `jax.export`, with a symbolic
batch dimension, for the platforms asked for, and writes one archive holding the
serialized program (`program.jaxexport`), its parameters beside it
(`params.safetensors`: weights are not baked in as constants, which would hit
serialization size limits and slow compilation) and a small description
(`export.json`). Serializing needs the `flatbuffers` package (the `export` extra).

`load_exported` turns the file into an `ExportedModel`: a callable that runs the
program under `jax.jit` on the loading machine with no funkeras model code.

What the loader trusts, and what it refuses. A StableHLO module is compiled code
by nature: it computes whatever its author wrote, so a hostile artefact can give
wrong outputs. The loader makes sure it can do nothing else:

- the archive passes the same checks as a model file (canonical zip, manifest,
  sizes and hashes), and the params pass the same safetensors checks, against
  the shapes and dtypes the program declares;
- the program is parsed into an MLIR context that knows only the `builtin`,
  `func`, `stablehlo`, `chlo` and `sdy` dialects (anything else fails to parse),
  and every operation is inspected: host communication (`stablehlo.send`,
  `recv`, `infeed`, `outfeed`) is refused, and every `stablehlo.custom_call`
  must name a target on a fixed allow-list of XLA built-ins and linear-algebra
  kernels shipped with jaxlib (LAPACK, cuSOLVER, hipSOLVER), the shape-assertion
  and sharding markers. Host callbacks (`xla_python_*_callback`,
  `xla_ffi_python_*`), Pallas/Mosaic/Triton kernels and TensorFlow calls are
  not on it;
- a program with effects, a serialized VJP, disabled safety checks, more than
  one device or an unknown platform is refused.

It trusts jaxlib: the flatbuffers and MLIR bytecode readers that parse the
program, and XLA, which compiles it.

A server would export once, at release time, and load at start-up::

    signature = jax.ShapeDtypeStruct((None, 784), jnp.float32)  # None: any batch
    fk.saving.export_model(model, "m.fkx", signature, platforms=("cpu", "cuda"))
    ...
    predict = fk.saving.load_exported("m.fkx")  # no model code needed
    predict.platforms                            # ('cpu', 'cuda')
    y = predict(batch)                           # compiled once per batch shape
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from funkeras._validation import short_message
from funkeras._version import __version__
from funkeras.errors import (
    ConfigError,
    FormatVersionError,
    UnsafeExportError,
    WeightsMismatchError,
)
from funkeras.saving import archive
from funkeras.saving.safetensors_io import (
    MAX_HEADER_BYTES,
    flatten_dict,
    tensors_from_bytes,
    tensors_to_bytes,
    unflatten_like,
)

__all__ = ["export_model", "load_exported", "ExportedModel", "ALLOWED_CUSTOM_CALLS"]

KIND = "export"
INFO = "export.json"
PROGRAM = "program.jaxexport"
PARAMS = "params.safetensors"
MAX_INFO_BYTES = 1024 * 1024
DEFAULT_MAX_BYTES = 2**36

PLATFORMS = frozenset({"cpu", "cuda", "rocm", "tpu"})

# Custom-call targets a loaded program may use: XLA's own markers and the
# linear-algebra and RNG kernels jaxlib registers (a subset of jax.export's list
# of targets with a stable serialization). No host callback, Pallas/Mosaic/Triton
# kernel or TensorFlow call is on it.
ALLOWED_CUSTOM_CALLS = frozenset(
    {
        "shape_assertion",
        "Sharding",
        "SPMDFullToShardShape",
        "SPMDShardToFullShape",
        "annotate_device_placement",
        "AllocateBuffer",
        "ApproxTopK",
        "Eigh",
        "LuDecomposition",
        "ProductOfElementaryHouseholderReflectors",
        "Qr",
        "stablehlo.dynamic_approx_top_k",
        "stablehlo.dynamic_reduce_window",
        "stablehlo.dynamic_rng_bit_generator",
        "stablehlo.dynamic_top_k",
        "cu_lu_pivots_to_permutation",
        "cu_threefry2x32_ffi",
        "hip_lu_pivots_to_permutation",
        "hip_threefry2x32_ffi",
        "cusparse_gtsv2_ffi",
        *(
            f"{lib}_{op}_ffi"
            for lib in ("cusolver", "hipsolver")
            for op in (
                "geqrf",
                "gesvd",
                "gesvdj",
                "getrf",
                "orgqr",
                "potrf",
                "syevd",
                "sytrd",
                "gesdd",
            )
        ),
        *(
            f"lapack_{t}{op}_ffi"
            for t in "sdcz"
            for op in (
                "gees",
                "geev",
                "gehrd",
                "geqrf",
                "gesdd",
                "getrf",
                "gtsv",
                "potrf",
                "trsm",
            )
        ),
        *(f"lapack_{t}{op}_ffi" for t in "sd" for op in ("orgqr", "syevd", "sytrd")),
        *(f"lapack_{t}{op}_ffi" for t in "cz" for op in ("ungqr", "heevd", "hetrd")),
    }
)
_ALLOWED_DIALECTS = ("builtin.", "func.", "stablehlo.", "chlo.", "sdy.")
_HOST_IO_OPS = frozenset(
    {"stablehlo.send", "stablehlo.recv", "stablehlo.infeed", "stablehlo.outfeed"}
)


# ----------------------------------------------------------------------------
# Export.
# ----------------------------------------------------------------------------


def _signature(input_signature: Any) -> Any:
    """ShapeDtypeStructs with `None` axes turned into symbolic dimensions."""
    leaves, treedef = jax.tree.flatten(input_signature)
    names: list[str] = []
    shapes: list[tuple[Any, ...]] = []
    for leaf in leaves:
        if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
            raise TypeError(
                "export_model: `input_signature` must be a jax.ShapeDtypeStruct (or a "
                f"pytree of them) with the batch axis, got {type(leaf).__name__}."
            )
        shape = []
        for axis, dim in enumerate(leaf.shape):
            if dim is None:
                name = "batch" if axis == 0 else f"d{len(names)}"
                if name not in names:
                    names.append(name)
                shape.append(name)
            else:
                shape.append(dim)
        shapes.append(tuple(shape))
    symbols = (
        dict(zip(names, jax.export.symbolic_shape(", ".join(names)), strict=True))
        if names
        else {}
    )
    specs = [
        jax.ShapeDtypeStruct(
            tuple(symbols[d] if isinstance(d, str) else d for d in shape), leaf.dtype
        )
        for shape, leaf in zip(shapes, leaves, strict=True)
    ]
    return jax.tree.unflatten(treedef, specs)


def _no_source_locations() -> contextlib.AbstractContextManager[Any]:
    # Keep the exporting machine's file paths out of the artefact's debug locations.
    from jax._src import config as jax_config

    limit = getattr(jax_config, "traceback_in_locations_limit", None)
    return limit(0) if limit is not None else contextlib.nullcontext()


def export_model(
    model_or_apply: Any,
    path: str | os.PathLike[str],
    input_signature: Any,
    *,
    params: Any = None,
    platforms: Sequence[str] = ("cpu",),
) -> None:
    """Export `predict(params, x)` as a serialized `jax.export` program, atomically.

    Args:
        model_or_apply: A funkeras model (its `apply` in inference mode, with its
            current params and state), or a function `apply(params, x) -> y`.
        path: The file to write (conventionally `*.fkx`).
        input_signature: A `jax.ShapeDtypeStruct` (or a pytree of them) for `x`,
            batch axis included; `None` axes become symbolic (the first axis is
            named `batch`), so one artefact serves every batch size.
        params: The parameters for a plain `apply` function (a nested dict of
            arrays); models use their own.
        platforms: Platforms to compile for: any of "cpu", "cuda", "rocm", "tpu".

    Raises:
        ValueError: an unknown platform, or `params` given with a model.
        TypeError: a bad signature, or params that are not a dict of arrays.
        ModuleNotFoundError: `flatbuffers` is missing (install the `export` extra).

    Example:
        >>> import tempfile, os, jax, jax.numpy as jnp, numpy as np
        >>> from funkeras.saving.export import export_model, load_exported
        >>> def apply(params, x):
        ...     return jnp.tanh(x @ params["w"])
        >>> params = {"w": jnp.ones((3, 2))}
        >>> path = os.path.join(tempfile.mkdtemp(), "m.fkx")
        >>> signature = jax.ShapeDtypeStruct((None, 3), jnp.float32)
        >>> export_model(apply, path, signature, params=params)
        >>> served = load_exported(path)
        >>> served.platforms
        ('cpu',)
        >>> served(np.zeros((4, 3), np.float32)).shape
        (4, 2)
    """
    platforms = tuple(platforms)
    bad = [p for p in platforms if p not in PLATFORMS]
    if not platforms or bad:
        raise ValueError(
            f"export_model: `platforms` must name some of {sorted(PLATFORMS)}, got "
            f"{list(platforms)}."
        )
    if hasattr(model_or_apply, "apply") and hasattr(model_or_apply, "params"):
        if params is not None:
            raise ValueError(
                "export_model: `params` is only for plain apply functions."
            )
        model = model_or_apply
        shipped = {"params": model.params, "state": model.state}

        def predict(p: Any, x: Any) -> Any:
            return model.apply(p["params"], p["state"], x, training=False)[0]
    elif callable(model_or_apply):
        if params is None:
            raise TypeError("export_model: pass `params=` with an apply function.")
        shipped, predict = params, model_or_apply
    else:
        raise TypeError(
            "export_model: expected a funkeras model or a function apply(params, x), "
            f"got {type(model_or_apply).__name__}."
        )
    flat = flatten_dict(shipped, what="export params")
    params_spec = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype), shipped
    )
    x_spec = _signature(input_signature)
    with _no_source_locations():
        exported = jax.export.export(jax.jit(predict), platforms=platforms)(
            params_spec, x_spec
        )
    program = bytes(exported.serialize())
    info = {
        "format_version": archive.FORMAT_VERSION,
        "funkeras_version": __version__,
        "jax_version": jax.__version__,
        "platforms": list(platforms),
        "input_signature": str(exported.in_avals[len(flat) :]),
        "output_signature": str(exported.out_avals),
    }
    archive.write_archive(
        path,
        KIND,
        [
            (INFO, archive.dump_json(info)),
            (PROGRAM, program),
            (PARAMS, tensors_to_bytes(flat)),
        ],
    )


# ----------------------------------------------------------------------------
# Load.
# ----------------------------------------------------------------------------


def _check_module(exported: Any, what: str) -> None:
    """Parse the program in a restricted MLIR context and inspect every operation."""
    import jax.extend.mlir as jex_mlir
    from jaxlib.mlir import ir
    from jaxlib.mlir.dialects import chlo, stablehlo

    context = ir.Context()
    stablehlo.register_dialect(context)
    chlo.register_dialect(context)
    with contextlib.suppress(ImportError):
        from jaxlib.mlir.dialects import sdy

        sdy.register_dialect(context)
    try:
        module = jex_mlir.deserialize_portable_artifact(
            exported.mlir_module_serialized, context
        )
    except Exception as e:
        raise UnsafeExportError(
            f"{what}: the program does not parse as StableHLO with the allowed "
            f"dialects ({short_message(e)})."
        ) from None
    refusals: list[str] = []

    def visit(op: Any) -> Any:
        name = op.name
        if not name.startswith(_ALLOWED_DIALECTS):
            refusals.append(f"operation {name!r} is outside the allowed dialects")
        elif name in _HOST_IO_OPS:
            refusals.append(f"operation {name!r} talks to the host")
        elif name == "stablehlo.custom_call":
            attr = op.attributes["call_target_name"]
            target = attr.value if isinstance(attr, ir.StringAttr) else str(attr)
            if target not in ALLOWED_CUSTOM_CALLS:
                kind = (
                    "a host callback"
                    if "callback" in target
                    else "not on the allow-list"
                )
                refusals.append(f"custom call {target[:100]!r} is {kind}")
        return ir.WalkResult.ADVANCE

    with context:
        module.operation.walk(visit)
    if refusals:
        unique = list(dict.fromkeys(refusals))
        raise UnsafeExportError(
            f"{what}: the program is refused: {'; '.join(unique[:10])}. A loaded "
            "program may use only StableHLO computation and the custom calls in "
            "funkeras.saving.export.ALLOWED_CUSTOM_CALLS."
        )


class ExportedModel:
    """A loaded exported program with its params: call it on a batch.

    Attributes:
        platforms: The platforms the program was compiled for.
        input_signature: The `jax.ShapeDtypeStruct`s of the inputs (symbolic batch).
        output_signature: Those of the outputs.
        params: The parameters shipped in the archive.

    Example:
        >>> import tempfile, os, jax, jax.numpy as jnp
        >>> path = os.path.join(tempfile.mkdtemp(), "m.fkx")
        >>> signature = jax.ShapeDtypeStruct((None, 2), jnp.float32)
        >>> params = {"s": jnp.ones(2)}
        >>> export_model(lambda p, x: x * p["s"], path, signature, params=params)
        >>> served = load_exported(path)
        >>> served.input_signature
        ShapeDtypeStruct(shape=(batch, 2), dtype=float32)
        >>> jax.jit(served)(jnp.ones((3, 2))).shape
        (3, 2)
    """

    def __init__(self, exported: Any, params: Any, x_tree: Any) -> None:
        self._exported = exported
        self.params = params
        n = len(jax.tree.leaves(params))
        self.input_signature = jax.tree.unflatten(
            x_tree,
            [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in exported.in_avals[n:]],
        )
        self.output_signature = jax.tree.unflatten(
            exported.out_tree,
            [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in exported.out_avals],
        )
        self.platforms: tuple[str, ...] = tuple(exported.platforms)
        self._call: Callable[..., Any] = jax.jit(exported.call)

    def __call__(self, x: Any) -> Any:
        """Run the program on `x` (the pytree of the input signature)."""
        return self._call(self.params, x)

    def __repr__(self) -> str:
        return (
            f"ExportedModel(platforms={self.platforms}, "
            f"input_signature={self.input_signature})"
        )


def load_exported(
    path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> ExportedModel:
    """Load an artefact from `export_model` as a callable (see the module docstring).

    Args:
        path: The `.fkx` file.
        max_bytes: Refuse files larger than this.

    Returns:
        An `ExportedModel`; call it on a batch. It runs under `jax.jit` and
        reports `.platforms`.

    Raises:
        ModelLoadError: (a subclass) the archive or params are malformed
            (`ArchiveError`, `TensorFileError`, `WeightsMismatchError`, ...), or
            the program is refused (`UnsafeExportError`).

    Example:
        >>> import tempfile, os, jax, jax.numpy as jnp, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "m.fkx")
        >>> signature = jax.ShapeDtypeStruct((None, 2), jnp.float32)
        >>> export_model(lambda p, x: x + p["b"], path, signature,
        ...              params={"b": jnp.ones(2)}, platforms=("cpu", "cuda"))
        >>> served = load_exported(path)
        >>> served.platforms
        ('cpu', 'cuda')
        >>> served(np.zeros((1, 2), np.float32)).tolist()
        [[1.0, 1.0]]
    """
    what = os.fspath(path)
    data = archive.read_file(path, max_bytes=max_bytes, what=what)
    members = archive.read_archive(
        data, kind=KIND, required={INFO, PROGRAM, PARAMS}, what=what
    )
    info = archive.parse_json(
        members[INFO], what=f"{what}: {INFO}", max_bytes=MAX_INFO_BYTES
    )
    if not isinstance(info, dict) or not isinstance(info.get("format_version"), int):
        raise ConfigError(
            f"{what}: {INFO} must be an object with an int `format_version`."
        )
    if info["format_version"] > archive.FORMAT_VERSION or info["format_version"] < 1:
        raise FormatVersionError(
            f"{what}: export format version {info['format_version']} is not supported."
        )
    try:
        exported = jax.export.deserialize(bytearray(members[PROGRAM]))
    except Exception as e:
        raise UnsafeExportError(
            f"{what}: {PROGRAM} is not a serialized jax.export program "
            f"({short_message(e)})."
        ) from None
    checks = [
        (
            not exported.ordered_effects and not exported.unordered_effects,
            "has effects",
        ),
        (not exported.has_vjp(), "carries a serialized VJP"),
        (
            not exported.disabled_safety_checks,
            "was exported with safety checks disabled",
        ),
        (exported.nr_devices == 1, f"needs {exported.nr_devices} devices"),
        (set(exported.platforms) <= PLATFORMS, f"names platforms {exported.platforms}"),
    ]
    for ok, problem in checks:
        if not ok:
            raise UnsafeExportError(f"{what}: the program {problem}; refused.")
    _check_module(exported, what)

    # The program's inputs are ((params, x), {}): params are what we ship.
    try:
        args_tree, kwargs_tree = exported.in_tree.children()
        params_tree, x_tree = args_tree.children()
        if kwargs_tree.num_leaves:
            raise ValueError("keyword inputs")
        n = params_tree.num_leaves
        avals = exported.in_avals[:n]
        params_like = jax.tree.unflatten(
            params_tree, [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in avals]
        )
        expected = flatten_dict(params_like, what="program params")
    except (ValueError, TypeError, IndexError) as e:
        raise UnsafeExportError(
            f"{what}: the program's inputs are not (params dict, x) "
            f"({short_message(e)})."
        ) from None
    if any(
        not all(isinstance(d, int) for d in spec.shape) for spec in expected.values()
    ):
        raise WeightsMismatchError(
            f"{what}: the program declares params of symbolic shape."
        )
    arrays = tensors_from_bytes(
        members[PARAMS],
        what=f"{what}: {PARAMS}",
        expected=expected,
        max_header_bytes=MAX_HEADER_BYTES,
    )
    params = unflatten_like(
        {k: jax.numpy.asarray(v) for k, v in arrays.items()}, params_like
    )
    return ExportedModel(exported, params, x_tree)
