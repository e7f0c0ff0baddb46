"""What a dataset format produces: items to generate for, and the defaults to score them with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["DatasetFormat", "DatasetItem", "LoadedDataset"]


@dataclass(frozen=True)
class DatasetItem:
    """One prompt of a generation dataset.

    Attributes:
        doc_id: Stable position of the item in its source (the pairing key of ``gemmawatch compare``:
            the same file gives the same ids whatever ``--limit`` or the order of loading).
        prompt: The user's text, before any template or chat formatting.
        reference: The accepted answer(s), or ``None`` for reference-free data.
        category: Breakdown key (a language, a subject...), ``None`` when there is none.
        context: Per-item facts scorers read (``expected_language``, ``functions``...), JSON-serialisable.
        meta: Stored with the sample for drill-down (the source id, the raw fields worth keeping).
    """

    doc_id: int
    prompt: str
    reference: str | list[str] | None = None
    category: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadedDataset:
    """A loaded dataset plus what its format suggests for generating and scoring it.

    ``name`` becomes the stored task name (``<name>`` and ``<name>/<category>``); ``sources``
    maps every file read to its sha256 (recorded in the run's config); ``prompt_template``
    uses ``{prompt}``; ``scorers`` are registry names with args; ``chat`` says whether the
    prompt goes through the model's chat template.
    """

    name: str
    items: list[DatasetItem]
    sources: dict[str, str]
    prompt_template: str = "{prompt}"
    chat: bool = True
    scorers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    max_new_tokens: int = 256
    stop: list[str] = field(default_factory=list)


class DatasetFormat(Protocol):
    """Reads a dataset from ``path`` (a file or a directory, as the format documents).

    Raises :class:`gemmawatch.errors.ConfigError` (one line naming the file, the line or
    field, and the fix) for a missing file, malformed JSON/CSV or a missing field; never
    returns a partial dataset. ``options`` are the format's own keyword options
    (``prompt_field``...); unknown ones are a ConfigError too.
    """

    def __call__(self, path: Path, **options: Any) -> LoadedDataset: ...
