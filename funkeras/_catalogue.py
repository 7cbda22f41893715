"""The one registry behind every name lookup of funkeras' catalogues.

Activations, initializers, regularizers, losses, metrics, optimizers and
learning-rate schedules each keep a `Catalogue`: their names, how a name is
matched (exactly, or after folding case), the error for an unknown name (with
`did_you_mean`'s suggestion), and the `{'class_name', 'config'}` dict form.
A module's `get`/`serialize`/`deserialize` are thin wrappers around it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from funkeras._validation import did_you_mean

__all__ = ["Catalogue", "module_dir"]

# The keys of a `{'class_name', 'config'}` dict (Keras adds the last two).
DICT_KEYS = frozenset({"class_name", "config", "module", "registered_name"})


def _from_config(cls: Any, config: dict[str, Any]) -> Any:
    return cls.from_config(config)


class Catalogue:
    """Named entries of one kind, looked up with Keras' rules and clear errors.

    Args:
        kind: What an entry is, for messages (`"activation"`, `"loss"`).
        entries: Name -> object. The first name listed for an object is its
            canonical name (`name_of`).
        fold: Optional normalisation (`str.lower`) applied to a name that does
            not match exactly, and to the entries' names, for a second try.
        tail: The end of the unknown-name error: what may be passed instead;
            `{names}` in it stands for the sorted list of names.
        suggest_from: Extra names offered by the "Did you mean" hint.
        cutoff: `did_you_mean`'s similarity cutoff.
        example: A valid dict, for the error on a malformed one.

    Example:
        >>> from funkeras._catalogue import Catalogue
        >>> colours = Catalogue("colour", {"red": 1, "green": 2}, fold=str.lower,
        ...                     tail="Valid names: {names}.")
        >>> colours.get("RED")
        1
        >>> colours.get("gren")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Unknown colour 'gren'. Did you mean 'green'? Valid names: [...].
    """

    def __init__(
        self,
        kind: str,
        entries: Mapping[str, Any],
        *,
        fold: Callable[[str], str] | None = None,
        tail: str = "",
        suggest_from: Iterable[str] = (),
        cutoff: float = 0.6,
        example: str = "{'class_name': ..., 'config': {...}}",
    ) -> None:
        self.kind = kind
        self.entries: dict[str, Any] = {}
        self.tail = tail
        self.example = example
        self._fold = fold
        self._folded: dict[str, Any] = {}
        self._canonical: dict[int, str] = {}
        self._suggest_from: list[str] = []
        self._cutoff = cutoff
        for name, obj in entries.items():
            self.register(obj, name)
        self._suggest_from.extend(suggest_from)

    def register(self, obj: Any, *names: str) -> Any:
        """Add `obj` under `names` (the first one it ever gets is its canonical name).

        The registration hook of catalogues whose entries are defined in several
        modules (losses, metrics). Returns `obj`.
        """
        for name in names:
            self.entries[name] = obj
            self._suggest_from.append(name)
            if self._fold is not None:
                self._folded.setdefault(self._fold(name), obj)
            self._canonical.setdefault(id(obj), name)
        return obj

    def names(self) -> list[str]:
        """Every name of the catalogue, in registration order."""
        return list(self.entries)

    def find(self, name: str) -> Any:
        """The entry called `name` (exactly, else after folding), or `None`."""
        if name in self.entries:
            return self.entries[name]
        if self._fold is not None:
            return self._folded.get(self._fold(name))
        return None

    def unknown(self, name: Any) -> ValueError:
        """The error for an unknown name, with the closest names and the tail."""
        hint = did_you_mean(name, self._suggest_from, cutoff=self._cutoff)
        names = str(sorted(self.entries))
        tail = f" {self.tail.replace('{names}', names)}" if self.tail else ""
        return ValueError(f"Unknown {self.kind} {name!r}.{hint}{tail}")

    def get(self, name: str, custom_objects: Mapping[str, Any] | None = None) -> Any:
        """The entry called `name` (`custom_objects` first); `unknown` if none."""
        if custom_objects and name in custom_objects:
            return custom_objects[name]
        found = self.find(name)
        if found is None:
            raise self.unknown(name)
        return found

    def name_of(self, obj: Any) -> str | None:
        """The canonical name of a registered object, or `None`."""
        name = self._canonical.get(id(obj))
        return name if name is not None and self.entries[name] is obj else None

    def serialize(self, obj: Any) -> dict[str, Any]:
        """`{'class_name': type name, 'config': obj.get_config()}`."""
        return {"class_name": type(obj).__name__, "config": obj.get_config()}

    def deserialize(
        self,
        identifier: Any,
        *,
        custom_objects: Mapping[str, Any] | None = None,
        base: type | None = None,
        build: Callable[[Any, dict[str, Any]], Any] = _from_config,
    ) -> Any:
        """Rebuild an object from `{'class_name': ..., 'config': {...}}`.

        Args:
            identifier: The dict (Keras' `module`/`registered_name` keys allowed).
            custom_objects: Extra names, looked up first.
            base: When given, the class named must be a subclass of it.
            build: `(entry, config) -> object`; by default `entry.from_config`.

        Raises:
            ValueError: A malformed dict, an unknown name, or a class outside
                `base`.
            TypeError: A config the class does not accept.
        """
        if (
            not isinstance(identifier, Mapping)
            or not isinstance(identifier.get("class_name"), str)
            or set(identifier) - DICT_KEYS
        ):
            raise ValueError(
                f"A {self.kind} dict must look like {self.example}, got {identifier!r}."
            )
        class_name = identifier["class_name"]
        entry = self.get(class_name, custom_objects)
        if base is not None and not (
            isinstance(entry, type) and issubclass(entry, base)
        ):
            raise ValueError(
                f"Could not deserialize {self.kind} {dict(identifier)!r}: "
                f"{class_name!r} is not a {base.__name__} class."
            )
        config = identifier.get("config") or {}
        label = getattr(entry, "__name__", class_name)
        if not isinstance(config, Mapping):
            raise TypeError(
                f"{label}: `config` must be a dict of constructor arguments, got "
                f"{config!r}."
            )
        try:
            return build(entry, dict(config))
        except TypeError as e:
            raise TypeError(
                f"{label}: bad config {dict(config)!r} ({e}). Expected the keys of "
                f"{label}().get_config()."
            ) from e


def module_dir(namespace: Mapping[str, Any]) -> Callable[[], list[str]]:
    """A module-level `__dir__` showing the module's `__all__` (and dunders) only.

    Example:
        >>> from funkeras._catalogue import module_dir
        >>> module_dir({"__all__": ["get"], "get": 1, "jnp": 2, "__doc__": ""})()
        ['__all__', '__doc__', 'get']
    """

    def __dir__() -> list[str]:
        dunders = (n for n in namespace if n.startswith("__") and n.endswith("__"))
        return sorted({*namespace["__all__"], *dunders})

    return __dir__
