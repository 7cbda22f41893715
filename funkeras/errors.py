"""The exception types funkeras raises beyond Python's own."""

from __future__ import annotations


class FunkerasError(Exception):
    """Base class of funkeras' own exception types."""


class GraphError(FunkerasError, ValueError):
    """A functional graph is malformed: disconnected, cyclic, or with unused inputs."""


class NotCompiledError(FunkerasError, RuntimeError):
    """A training method was called before `Model.compile`."""


class ModelLoadError(FunkerasError, ValueError):
    """A model file was refused. Every loader refusal is a subclass of this."""


class NotSerializableError(FunkerasError, TypeError):
    """An object cannot be saved: a Python callable or an unregistered class."""


class ArchiveError(ModelLoadError):
    """A file is not a well-formed funkeras archive.

    Raised for the zip structure (member names, links, compression, data before or
    after the archive, non-canonical headers), the manifest, the member list, sizes,
    CRCs and SHA-256 hashes.
    """


class FormatVersionError(ModelLoadError):
    """A file was written in a newer (or unknown) version of the format."""


class ConfigError(ModelLoadError):
    """A JSON member is malformed, or holds values a layer or model refuses."""


class UnsafeConfigError(ConfigError):
    """A config names a class that is not registered: code is never reached by name."""


class TensorFileError(ModelLoadError):
    """A safetensors member is malformed (header, offsets, dtypes, byte counts)."""


class WeightsMismatchError(ModelLoadError):
    """Stored tensors disagree with the model: missing, unexpected, shape or dtype."""


class BudgetExceededError(ModelLoadError):
    """Loading would exceed a caller-set bound (parameter count, file or JSON size)."""


class CheckpointMismatchError(ModelLoadError):
    """A checkpoint was written for a different model (config fingerprint differs)."""


class UnsafeExportError(ModelLoadError):
    """An exported program uses host callbacks, host I/O or unknown custom calls."""
