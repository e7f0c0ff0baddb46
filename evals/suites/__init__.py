"""Built-in, offline lm-eval suites shipped with gemmawatch.

The ``smoke`` suite lives in ``smoke/``: lm-eval task YAMLs, original JSONL items
and a ``utils.py`` of lm-eval hooks. Point lm-eval at :func:`suite_dir` with
``--include_path`` (or ``TaskManager(include_path=suite_dir())``) and ask for the
group ``smoke``. The data is found next to the YAMLs (``custom_dataset`` hooks
read it via ``__file__``), so the working directory does not matter.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from gemmawatch.errors import UserError

__all__ = [
    "GEN_PROMPT_TEMPLATE",
    "MC_SUBJECTS",
    "SMOKE_TASKS",
    "SUITES",
    "load_items",
    "smoke_prompts",
    "suite_dir",
]

#: Subjects of the multiple-choice tasks; each is the lm-eval task ``smoke_mc_<subject>``.
MC_SUBJECTS: tuple[str, ...] = ("arithmetic", "science", "geography", "vocabulary", "common_sense")

#: Leaf lm-eval tasks of the smoke suite (also reachable as the lm-eval groups ``smoke`` / ``smoke_mc``).
SMOKE_TASKS: tuple[str, ...] = (*(f"smoke_mc_{s}" for s in MC_SUBJECTS), "smoke_gen")

#: Built-in suite name -> its leaf lm-eval task names. Each key is also an lm-eval group name.
SUITES: dict[str, tuple[str, ...]] = {"smoke": SMOKE_TASKS}

#: Prompt of ``smoke_gen`` (must match ``doc_to_text`` in ``smoke/smoke_gen.yaml``).
GEN_PROMPT_TEMPLATE = "Question: {question}\nAnswer:"

_FILES = {"mc": "mc.jsonl", "gen": "gen.jsonl"}


def suite_dir() -> Path:
    """Folder holding the smoke suite's task YAMLs, for lm-eval's ``include_path``."""
    return Path(__file__).resolve().parent / "smoke"


def load_items(kind: Literal["mc", "gen"]) -> list[dict[str, Any]]:
    """The raw smoke items: ``"mc"`` (multiple choice) or ``"gen"`` (short-answer generation)."""
    if kind not in _FILES:
        raise UserError(f"unknown smoke item kind {kind!r}; use one of: {', '.join(_FILES)}")
    path = suite_dir() / _FILES[kind]
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def smoke_prompts(limit: int | None = None) -> list[str]:
    """The smoke generation prompts (the first ``limit`` of them), e.g. for a latency probe."""
    if limit is not None and limit < 0:
        raise UserError(f"prompt limit must be >= 0, got {limit}; pass a non-negative number or None")
    items = load_items("gen")
    if limit is not None:
        items = items[:limit]
    return [GEN_PROMPT_TEMPLATE.format(question=item["question"]) for item in items]
