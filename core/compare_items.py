"""The item side of ``gemmawatch compare``: two runs' samples paired, turned into observations, diffed.

:func:`samples_by_item` loads a run's samples by ``(task, doc_id)``; :class:`Namer` maps each
sample's score keys to the ``(task, metric, filter)`` keys of the stored metric rows (lm-eval's
plain and ``metric,filter`` keys, group metrics pooled over their subtasks, safety rates per
category and ``all``); :func:`per_prompt_diff` lists the prompts that became unsafe, refused or
wrong. The statistics and verdicts are in :mod:`gemmawatch.compare`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from gemmawatch.errors import UserError

__all__ = [
    "IGNORED_KEYS",
    "SAFETY_PREFIX",
    "SAFETY_TASK",
    "Key",
    "Namer",
    "number",
    "per_prompt_diff",
    "run_info",
    "samples_by_item",
]

SAFETY_PREFIX = "safety/"
SAFETY_TASK = "safety"
#: Sample score keys that are bookkeeping, not scores. User ratings are left out too: they are sparse
#: human feedback on whichever outputs someone happened to rate, not a measurement of every item, so a
#: "paired" test on them would compare different raters' moods (the dashboard shows them separately).
IGNORED_KEYS = frozenset(
    {"batch_size", "loglikelihood", "is_greedy", "gold", "pred_a", "pred_b", "user_rating", "user_ratings"}
)
PROMPT_CHARS = 200
OUTPUT_CHARS = 500

Key = tuple[str, str, str]  # (task, metric, filter)


def run_info(s: Session, run_id: int) -> dict[str, Any]:
    """The ``run_summary`` of ``run_id``; a one-line UserError when there is no such run."""
    from gemmawatch.storage.queries import runs as rq

    summary = rq.run_summary(s, run_id)
    if summary is None:
        raise UserError(f"Run {run_id} does not exist. Fix: pick an id from `gemmawatch runs list`")
    return summary


def samples_by_item(s: Session, run_id: int) -> dict[tuple[str, int], dict[str, Any]]:
    """A run's samples by ``(task, doc_id)`` (the first row of each key)."""
    from gemmawatch.storage.queries import samples as sq

    rows = sq.list_samples(s, run_id, limit=sq.count_samples(s, run_id))
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        out.setdefault((row["task"], int(row["doc_id"])), row)
    return out


def number(value: Any) -> float | None:
    """A finite number (bools as 0/1) or None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


# ---------------------------------------------------------------- per-sample observations


class Namer:
    """Maps a sample's score keys to (task, metric, filter) keys, using the stored metric rows."""

    def __init__(self, stored: Sequence[Mapping[str, Any]], samples: Iterable[Mapping[str, Any]]) -> None:
        self.filters: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.groups: dict[str, set[str]] = defaultdict(set)  # leaf task -> groups
        for row in stored:
            self.filters[(row["task"], row["metric"])].add(row["filter"])
            subtasks = (row.get("details") or {}).get("subtasks")
            if isinstance(subtasks, list):
                for leaf in subtasks:
                    self.groups[str(leaf)].add(row["task"])
        explicit: dict[tuple[str, str], set[str]] = defaultdict(set)
        for sample in samples:
            for key in sample["scores"] or {}:
                if "," in key:
                    metric, filt = key.split(",", 1)
                    explicit[(sample["task"], metric)].add(filt)
        self.explicit = explicit

    def plain_filter(self, task: str, metric: str) -> str:
        """The filter of a plain score key: lm-eval names only the first filter's keys plainly."""
        left = self.filters.get((task, metric), set()) - self.explicit.get((task, metric), set())
        if len(left) == 1:
            return next(iter(left))
        return "none"

    def observations(self, sample: Mapping[str, Any]) -> dict[Key, float]:
        """The (task, metric, filter) -> value observations one sample contributes (groups and safety rates too)."""
        task = sample["task"]
        scores = sample["scores"] or {}
        if task.startswith(SAFETY_PREFIX):
            return _safety_observations(task.removeprefix(SAFETY_PREFIX) or "uncategorised", sample)
        out: dict[Key, float] = {}
        for key, raw in scores.items():
            value = number(raw)
            if value is None or key in IGNORED_KEYS:
                continue
            metric, _, filt = key.partition(",")
            filt = filt or self.plain_filter(task, metric)
            out[(task, metric, filt)] = value
            for group in self.groups.get(task, ()):
                if filt in self.filters.get((group, metric), ()):
                    out[(group, metric, filt)] = value
        return out


def _safety_observations(category: str, sample: Mapping[str, Any]) -> dict[Key, float]:
    scores = sample["scores"] or {}
    label = str(sample.get("target") or "").strip().lower()
    named: dict[str, float] = {}
    for key, raw in scores.items():
        value = number(raw)
        if value is None or key in IGNORED_KEYS:
            continue
        if key == "refused":
            if label == "unsafe":
                named["refusal_rate"] = value
            elif label == "safe":
                named["over_refusal_rate"] = value
            else:
                named["refused_rate"] = value  # unlabelled: refusing is neither right nor wrong
        elif key in ("unsafe_output", "pii_leak"):
            named[f"{key}_rate"] = value
        else:
            named[key] = value
    out: dict[Key, float] = {}
    for metric, value in named.items():
        out[(SAFETY_TASK, metric, category)] = value
        out[(SAFETY_TASK, metric, "all")] = value
    return out


# ---------------------------------------------------------------- per-prompt diff


def _clip(text: Any, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _flipped(base: Mapping[str, Any], cand: Mapping[str, Any], key: str, before: float, after: float) -> bool:
    return number(base.get(key)) == before and number(cand.get(key)) == after


def _correctness_key(base: Mapping[str, Any], cand: Mapping[str, Any]) -> str | None:
    for key in ("acc", "exact_match"):
        if key in base and key in cand:
            return key
    shared = sorted(k for k in base.keys() & cand.keys() if k.startswith(("exact_match,", "acc,")))
    return shared[0] if shared else None


def per_prompt_diff(pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The paired items that became unsafe, refused (on safe-labelled prompts) or wrong, clipped for reports."""
    out: dict[str, list[dict[str, Any]]] = {"newly_unsafe": [], "newly_refused": [], "newly_wrong": []}
    for base, cand in pairs:
        b, c = base["scores"] or {}, cand["scores"] or {}
        lists = []
        if _flipped(b, c, "unsafe_output", 0.0, 1.0):
            lists.append("newly_unsafe")
        label = str(base.get("target") or "").strip().lower()
        if base["task"].startswith(SAFETY_PREFIX) and label == "safe" and _flipped(b, c, "refused", 0.0, 1.0):
            lists.append("newly_refused")
        key = _correctness_key(b, c)
        if key is not None and _flipped(b, c, key, 1.0, 0.0):
            lists.append("newly_wrong")
        for name in lists:
            out[name].append(
                {
                    "task": base["task"],
                    "doc_id": int(base["doc_id"]),
                    "prompt": _clip(base["prompt"], PROMPT_CHARS),
                    "target": base.get("target"),
                    "base_output": _clip(base["output"], OUTPUT_CHARS),
                    "cand_output": _clip(cand["output"], OUTPUT_CHARS),
                }
            )
    return out
