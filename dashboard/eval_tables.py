"""Table shaping of the Evaluations page: pure pandas, no Streamlit, no database.

* :func:`samples_frame`: a page of samples as plain-text cells (scores as JSON text);
* :func:`score_keys`: the numeric score names of a run's samples (the filter's choices);
* :func:`flips_frame`: the per-item diff of two runs. Items are paired by ``(task, doc_id)``
  as ``gemmawatch compare`` pairs them (first stored row of each key; a pair whose prompts
  differ is marked, since compare refuses to test such runs), and each pair is classified
  by one score: ``right → wrong`` / ``wrong → right`` for 0/1 scores, ``worse score`` /
  ``better score`` for other changes (by the score's direction), ``changed`` for a score
  without a direction (``refused``), ``unchanged``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from gemmawatch.compare import IGNORED_KEYS, KNOWN_HIGHER_IS_BETTER

__all__ = [
    "CHANGES",
    "FLIP_COLUMNS",
    "SAMPLE_COLUMNS",
    "correctness_key",
    "flip_counts",
    "flips_frame",
    "samples_frame",
    "score_keys",
]

#: Columns of the sample table, in display order.
SAMPLE_COLUMNS = ["task", "doc_id", "prompt", "output", "target", "scores", "latency_s", "ttft_s",
                  "output_tokens", "error", "id"]  # fmt: skip
#: Per-item changes between two runs, worst news first.
CHANGES = ("right → wrong", "worse score", "wrong → right", "better score", "changed", "unchanged", "no score")
FLIP_COLUMNS = ["change", "task", "doc_id", "score", "base", "candidate", "delta", "prompt", "target",
                "base_output", "cand_output", "base_latency_s", "cand_latency_s", "prompt_differs"]  # fmt: skip
#: Scores that say right or wrong, preferred in this order when both runs have them (a safety run's
#: unsafe_output last: 1 is the wrong outcome there).
CORRECTNESS_KEYS = ("acc", "exact_match", "acc_norm", "success", "correct", "unsafe_output")
#: Per-sample scores where 1 (or higher) is the bad outcome, beyond compare's KNOWN_HIGHER_IS_BETTER names.
#: ``refused`` has no direction of its own: right on a harmful prompt, wrong on a benign one.
LOWER_IS_BETTER = frozenset({"unsafe_output", "pii_leak"})
NO_DIRECTION = frozenset({"refused"})


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _json_text(value: object) -> object:
    # Dicts become compact JSON text: a dataframe cell shows text, never markup.
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else value


def samples_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Sample rows as the display frame (:data:`SAMPLE_COLUMNS` present in the rows), scores as JSON text."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    out = frame[[c for c in SAMPLE_COLUMNS if c in frame.columns]].copy()
    if "scores" in out.columns:
        out["scores"] = out["scores"].map(_json_text)
    return out


def score_keys(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Numeric score names found in the rows' ``scores`` (bookkeeping keys left out), correctness keys first."""
    keys: set[str] = set()
    for row in rows:
        scores = row.get("scores")
        if isinstance(scores, Mapping):
            keys.update(str(k) for k, v in scores.items() if _number(v) is not None and k not in IGNORED_KEYS)
    first = [k for k in CORRECTNESS_KEYS if k in keys]
    return first + sorted(keys - set(first))


def correctness_key(base: Mapping[str, Any], cand: Mapping[str, Any]) -> str | None:
    """The score both sides have that says right or wrong (``acc``, ``exact_match``..., then ``acc,<filter>``
    or ``exact_match,<filter>``), else the first numeric score both have, else None."""
    shared = {k for k in base.keys() & cand.keys() if k not in IGNORED_KEYS}
    for key in CORRECTNESS_KEYS:
        if key in shared:
            return key
    filtered = sorted(k for k in shared if k.startswith(("exact_match,", "acc,")))
    if filtered:
        return filtered[0]
    numeric = sorted(k for k in shared if _number(base[k]) is not None and _number(cand[k]) is not None)
    return numeric[0] if numeric else None


def _scores(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _change(key: str, before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "no score"
    if abs(after - before) <= 1e-12:
        return "unchanged"
    higher = _higher_is_better(key)
    if higher is None:
        return "changed"
    better = (after > before) == higher
    if {before, after} == {0.0, 1.0}:
        return "wrong → right" if better else "right → wrong"
    return "better score" if better else "worse score"


def _higher_is_better(key: str) -> bool | None:
    name = key.split(",", 1)[0]
    if name in LOWER_IS_BETTER:
        return False
    if name in NO_DIRECTION:
        return None
    # Unknown scores are read as higher-is-better, like the quality scorers (BLEU, ROUGE, F1...).
    return KNOWN_HIGHER_IS_BETTER.get(name, True) is not False


def flips_frame(pairs: Sequence[Mapping[str, Any]], *, key: str | None = None) -> pd.DataFrame:
    """One row per paired item (:data:`FLIP_COLUMNS`), sorted by :data:`CHANGES` order, then task, doc_id.

    ``pairs`` are ``storage.queries.sample_browse.paired_samples`` dicts; the first pair of each
    ``(task, doc_id)`` is kept. ``key`` names the score compared; None picks
    :func:`correctness_key` per item. ``base``/``candidate`` are that score's values, ``delta``
    their difference; ``prompt_differs`` marks items whose prompts are not the same text.
    """
    rows = []
    seen: set[tuple[str, int]] = set()
    for pair in pairs:
        item = (str(pair["task"]), int(pair["doc_id"]))
        if item in seen:
            continue
        seen.add(item)
        b, c = _scores(pair.get("base_scores")), _scores(pair.get("cand_scores"))
        name = key if key is not None else correctness_key(b, c)
        before = _number(b.get(name)) if name else None
        after = _number(c.get(name)) if name else None
        rows.append(
            {
                "change": _change(name or "", before, after),
                "task": item[0],
                "doc_id": item[1],
                "score": name,
                "base": before,
                "candidate": after,
                "delta": None if before is None or after is None else after - before,
                "prompt": pair.get("base_prompt"),
                "target": pair.get("target"),
                "base_output": pair.get("base_output"),
                "cand_output": pair.get("cand_output"),
                "base_latency_s": _number(pair.get("base_latency_s")),
                "cand_latency_s": _number(pair.get("cand_latency_s")),
                "prompt_differs": pair.get("base_prompt") != pair.get("cand_prompt"),
            }
        )
    frame = pd.DataFrame(rows, columns=FLIP_COLUMNS)
    if frame.empty:
        return frame
    order = {c: i for i, c in enumerate(CHANGES)}
    frame = frame.assign(_o=frame["change"].map(order)).sort_values(["_o", "task", "doc_id"]).drop(columns="_o")
    for column in ("base", "candidate", "delta", "base_latency_s", "cand_latency_s"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame.reset_index(drop=True)


def flip_counts(flips: pd.DataFrame) -> dict[str, int]:
    """How many items made each change, in :data:`CHANGES` order (changes nobody made are left out)."""
    if flips.empty:
        return {}
    counts = flips["change"].value_counts().to_dict()
    return {c: int(counts[c]) for c in CHANGES if c in counts}
