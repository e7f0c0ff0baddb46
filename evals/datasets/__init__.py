"""Generation datasets for ``gemmawatch eval --dataset``: items, formats and their registry.

A *format* turns files into :class:`~gemmawatch.evals.datasets.base.DatasetItem` s
(prompt, reference, category, scorer context) plus the defaults that make sense for
them (prompt template, scorers, generation length). ``jsonl``/``csv`` read any user
file by field names; ``bfcl`` and ``mgsm`` read those benchmarks' published layouts.

Formats register on :data:`DATASET_FORMATS` (lazy ``"module:object"`` targets, each a
:class:`~gemmawatch.evals.datasets.base.DatasetFormat` factory).
"""

from __future__ import annotations

from gemmawatch.evals.datasets.base import DatasetFormat, DatasetItem, LoadedDataset
from gemmawatch.registry import Registry

__all__ = ["DATASET_FORMATS", "DatasetFormat", "DatasetItem", "LoadedDataset"]

#: Dataset formats by name (``--format``).
DATASET_FORMATS: Registry[DatasetFormat] = Registry("dataset format")

# Built-in formats, one block (lazy: loading a format imports only its own module).
DATASET_FORMATS.register(
    "jsonl", "gemmawatch.evals.datasets.generic:load_jsonl", description="Any JSONL file, read by field names"
)
DATASET_FORMATS.register(
    "csv", "gemmawatch.evals.datasets.generic:load_csv", description="Any CSV (or .tsv) file, read by column names"
)
DATASET_FORMATS.register(
    "bfcl", "gemmawatch.evals.datasets.bfcl:load_bfcl", description="Berkeley Function Calling Leaderboard (AST)"
)
DATASET_FORMATS.register(
    "mgsm", "gemmawatch.evals.datasets.mgsm:load_mgsm", description="Multilingual Grade School Math, per language"
)
