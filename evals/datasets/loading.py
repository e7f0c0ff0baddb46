"""Picking a dataset's format, loading it with the user's options, and trimming it per category."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gemmawatch.errors import ConfigError
from gemmawatch.evals.datasets import DATASET_FORMATS
from gemmawatch.evals.datasets.base import DatasetItem, LoadedDataset

__all__ = ["detect_format", "limit_per_category", "load_dataset"]

#: File suffix -> format, for ``--format`` left out.
SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv"}
#: Option name -> the CLI flag that sets it (for messages).
OPTION_FLAGS = {
    "prompt_field": "--prompt-field",
    "reference_field": "--reference-field",
    "category_field": "--category-field",
    "id_field": "--id-field",
    "name": "--name",
}


def detect_format(path: Path) -> str:
    """The format of ``path`` when ``--format`` is not given.

    Files by suffix (``.jsonl``/``.ndjson`` -> ``jsonl``, ``.csv``/``.tsv`` -> ``csv``);
    folders by what they hold: BFCL's ``BFCL_*.jsonl`` question files -> ``bfcl``,
    ``mgsm_<lang>.jsonl`` files -> ``mgsm``.

    Raises:
        ConfigError: The path does not exist, or nothing tells its format.
    """
    available = ", ".join(DATASET_FORMATS.names())
    if path.is_dir():
        if any(path.glob("BFCL_*.jsonl")):
            return "bfcl"
        if any(path.glob("mgsm_*.jsonl")):
            return "mgsm"
        raise ConfigError(f"Cannot tell the format of folder '{path}'. Fix: pass --format (one of {available})")
    if not path.exists():
        raise ConfigError(f"Dataset '{path}' does not exist. Fix: pass the path of a JSONL or CSV file to --dataset")
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"Cannot tell the format of '{path}' from its suffix '{path.suffix}'. "
            f"Fix: pass --format (one of {available})"
        )
    return fmt


def load_dataset(path: str | Path, fmt: str | None = None, options: Mapping[str, Any] | None = None) -> LoadedDataset:
    """Load ``path`` with format ``fmt`` (None: :func:`detect_format`) and the format's keyword ``options``.

    Options set to None are left out, so a format only sees what the user gave.

    Raises:
        UnknownNameError: ``fmt`` is not a registered format.
        ConfigError: An option the format does not take, or any problem the format finds.
    """
    p = Path(path).expanduser()
    name = fmt or detect_format(p)
    loader = DATASET_FORMATS.get(name)
    given = {k: v for k, v in (options or {}).items() if v is not None}
    try:
        inspect.signature(loader).bind(p, **given)
    except TypeError:
        accepted = {
            param.name
            for param in inspect.signature(loader).parameters.values()
            if param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD)
        }
        stray = [OPTION_FLAGS.get(k, k) for k in given if k not in accepted]
        raise ConfigError(
            f"{', '.join(stray) or 'These options'} do not apply to --format {name}. Fix: drop them"
        ) from None
    return loader(p, **given)


def limit_per_category(items: Sequence[DatasetItem], limit: int | None) -> list[DatasetItem]:
    """The first ``limit`` items of each category (items without one form one group), in dataset order.

    Raises:
        ConfigError: ``limit`` below 1.
    """
    if limit is None:
        return list(items)
    if limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}. Fix: pass a positive number")
    seen: dict[str | None, int] = {}
    kept = []
    for item in items:
        if seen.get(item.category, 0) < limit:
            seen[item.category] = seen.get(item.category, 0) + 1
            kept.append(item)
    return kept
