"""One typed plugin registry with lazy ``"module:object"`` targets.

Built-ins register by import path so that importing gemmawatch never imports
torch, lm-eval or an HTTP client; the object is imported on first lookup.
A miss names what is available, and a missing optional dependency becomes an
install hint instead of an ImportError.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from gemmawatch.errors import MissingDependencyError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry:
    target: str
    extra: str | None
    description: str


class Registry(Generic[T]):
    """Maps names to objects of one kind (backends, collectors, alert rules...).

    ``kind`` is the human name used in messages ("backend", "collector").
    Entries are either objects or lazy ``"package.module:attribute"`` strings.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, _Entry] = {}
        self._loaded: dict[str, T] = {}

    def register(self, name: str, target: str | T, *, extra: str | None = None, description: str = "") -> None:
        """Register ``target`` under ``name``.

        ``extra`` names the pip extra that provides the optional dependencies;
        it becomes part of the install hint if the import fails.
        Registering the same name twice replaces the earlier entry (plugins may
        override built-ins on purpose).
        """
        if isinstance(target, str):
            if ":" not in target:
                raise ValueError(f"lazy {self.kind} target must be 'module:object', got {target!r}")
            self._entries[name] = _Entry(target, extra, description)
            self._loaded.pop(name, None)
        else:
            self._entries[name] = _Entry(f"<object {name}>", extra, description)
            self._loaded[name] = target

    def get(self, name: str) -> T:
        """Return the object registered as ``name``, importing it on first use."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self._entries.get(name)
        if entry is None:
            available = ", ".join(sorted(self._entries)) or "none"
            raise UnknownNameError(f"Unknown {self.kind} '{name}'. Available: {available}")
        module_name, _, attr = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            missing = exc.name or module_name
            hint = f"pip install 'gemmawatch[{entry.extra}]'" if entry.extra else f"pip install {missing}"
            raise MissingDependencyError(
                f"The {self.kind} '{name}' needs the Python package '{missing}', which is not installed. Fix: {hint}"
            ) from exc
        obj: T = getattr(module, attr)
        self._loaded[name] = obj
        return obj

    def describe(self, name: str) -> str:
        """The one-line description given at registration."""
        return self._entries[name].description

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
