"""Cross-backend parity: do two targets that claim the same weights give the same answers?

Both targets run the smoke suite's multiple-choice items through the same lm-eval tasks
(``smoke_mc``, scored by loglikelihood exactly as ``gemmawatch eval`` does), and the
answers are compared item by item. An item's *prediction* is the choice with the highest
loglikelihood (lm-eval's ``acc`` choice; ties go to the first choice, like ``np.argmax``).

Reported, each with ``n`` and a 95 % interval:

* ``agreement``: share of items where both chose the same answer (Wilson interval);
* ``acc_a`` / ``acc_b``: each target's accuracy (Wilson);
* ``acc_diff = acc_b - acc_a`` (negative: B scores lower) with a **paired** bootstrap
  interval: items are resampled jointly, so both answers to an item stay together and the
  interval reflects only disagreements, not the spread of item difficulty;
* ``mcnemar_p``: exact McNemar test on the discordant pairs (A right and B wrong vs the
  reverse); 1.0 when there are none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gemmawatch
from gemmawatch.errors import RunFailedError
from gemmawatch.evals import stats
from gemmawatch.evals.paired import mcnemar_exact_p  # re-exported: parity's own test, kept importable here

if TYPE_CHECKING:
    from gemmawatch.collectors.backends.base import Backend

__all__ = [
    "PARITY_TASKS",
    "PRODUCER",
    "ItemPrediction",
    "ParityOutcome",
    "ParityStats",
    "compare",
    "mcnemar_exact_p",
    "parity_stats",
    "predictions",
    "run_parity",
]

#: The lm-eval group both targets run.
PARITY_TASKS = ["smoke_mc"]
PRODUCER = "gemmawatch.parity"
#: Metric rows are stored under this task name.
METRIC_TASK = "parity"


@dataclass(frozen=True)
class ItemPrediction:
    """One target's answer to one multiple-choice item."""

    task: str
    doc_id: int
    item_id: str
    prompt: str
    choices: tuple[str, ...]
    gold: int
    pred: int
    loglikelihoods: tuple[float, ...]

    @property
    def correct(self) -> bool:
        """True when the prediction is the gold answer."""
        return self.pred == self.gold


@dataclass(frozen=True)
class ParityStats:
    """Paired comparison of two targets' predictions on the same ``n`` items."""

    n: int
    agreement: float
    agreement_ci: tuple[float, float]
    acc_a: float
    acc_a_ci: tuple[float, float]
    acc_b: float
    acc_b_ci: tuple[float, float]
    acc_diff: float
    acc_diff_ci: tuple[float, float]
    #: Items A got right and B got wrong, and the reverse (McNemar's discordant pairs).
    a_only: int
    b_only: int
    mcnemar_p: float


def _nan_pair() -> tuple[float, float]:
    return math.nan, math.nan


def parity_stats(
    pred_a: Sequence[int], pred_b: Sequence[int], gold: Sequence[int], *, n_resamples: int = 2000, seed: int = 0
) -> ParityStats:
    """Agreement, accuracies, paired difference and McNemar for aligned per-item predictions."""
    n = len(gold)
    if not len(pred_a) == len(pred_b) == n:
        raise ValueError(f"need aligned predictions, got {len(pred_a)}, {len(pred_b)} and {n} gold labels")
    agree = [int(a == b) for a, b in zip(pred_a, pred_b, strict=True)]
    right_a = [int(p == g) for p, g in zip(pred_a, gold, strict=True)]
    right_b = [int(p == g) for p, g in zip(pred_b, gold, strict=True)]
    diffs = [b - a for a, b in zip(right_a, right_b, strict=True)]
    a_only = sum(1 for d in diffs if d < 0)
    b_only = sum(1 for d in diffs if d > 0)

    def mean(values: Sequence[int]) -> float:
        return sum(values) / n if n else math.nan

    return ParityStats(
        n=n,
        agreement=mean(agree),
        agreement_ci=stats.wilson_interval(sum(agree), n) if n else _nan_pair(),
        acc_a=mean(right_a),
        acc_a_ci=stats.wilson_interval(sum(right_a), n) if n else _nan_pair(),
        acc_b=mean(right_b),
        acc_b_ci=stats.wilson_interval(sum(right_b), n) if n else _nan_pair(),
        acc_diff=mean(diffs),
        acc_diff_ci=stats.bootstrap_mean_ci(diffs, n_resamples=n_resamples, seed=seed),
        a_only=a_only,
        b_only=b_only,
        mcnemar_p=mcnemar_exact_p(a_only, b_only),
    )


# ---------------------------------------------------------------- running the items


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)  # first maximum, like np.argmax


def predictions(
    backend: Backend, *, limit: int | None = None, batch_size: int = 8, progress: Callable[[str], None] | None = None
) -> tuple[list[ItemPrediction], dict[str, Any]]:
    """Run ``smoke_mc`` on ``backend``; return its per-item predictions and lm-eval's provenance."""
    from gemmawatch.evals.runner import run_lm_eval
    from gemmawatch.evals.suites import load_items

    outcome = run_lm_eval(backend, PARITY_TASKS, limit=limit, batch_size=batch_size, progress=progress)
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for item in load_items("mc"):
        by_subject.setdefault(item["subject"], []).append(item)
    out = []
    for row in outcome.samples:
        subject = row["task"].removeprefix("smoke_mc_")
        items = by_subject.get(subject, [])
        lls = [float(x) for x in row["scores"].get("loglikelihoods", [])]
        if row["doc_id"] >= len(items) or not lls:
            raise RunFailedError(f"Parity: unexpected sample {row['task']}#{row['doc_id']}. Fix: reinstall gemmawatch")
        item = items[row["doc_id"]]
        pred = _argmax(lls)
        # The docs come from the same JSONL in the same order; lm-eval's own acc must agree.
        lm_eval_acc = float(row["scores"].get("acc", -1))
        if item["question"] not in row["prompt"] or lm_eval_acc != float(pred == item["answer"]):
            raise RunFailedError(
                f"Parity: item {item['id']} does not match lm-eval's sample. Fix: reinstall gemmawatch (suite changed)"
            )
        out.append(
            ItemPrediction(
                task=row["task"],
                doc_id=int(row["doc_id"]),
                item_id=str(item["id"]),
                prompt=str(row["prompt"]),
                choices=tuple(item["choices"]),
                gold=int(item["answer"]),
                pred=pred,
                loglikelihoods=tuple(lls),
            )
        )
    return out, outcome.provenance


@dataclass
class ParityOutcome:
    """The paired items and their statistics, ready to print and to store."""

    stats: ParityStats
    pairs: list[tuple[ItemPrediction, ItemPrediction]]
    provenance: dict[str, Any] = field(default_factory=dict)

    def disagreements(self) -> list[dict[str, Any]]:
        """The items where A and B chose differently (plain dicts)."""
        return [
            {
                "task": a.task,
                "doc_id": a.doc_id,
                "item_id": a.item_id,
                "question": a.prompt,
                "gold": a.choices[a.gold],
                "answer_a": a.choices[a.pred],
                "answer_b": b.choices[b.pred],
                "correct_a": a.correct,
                "correct_b": b.correct,
            }
            for a, b in self.pairs
            if a.pred != b.pred
        ]

    def loglikelihood_gap(self) -> dict[str, float | None]:
        """Mean and max absolute difference of the per-choice loglikelihoods (nats)."""
        gaps = [abs(x - y) for a, b in self.pairs for x, y in zip(a.loglikelihoods, b.loglikelihoods, strict=False)]
        if not gaps:
            return {"mean_abs_ll_diff": None, "max_abs_ll_diff": None}
        return {"mean_abs_ll_diff": sum(gaps) / len(gaps), "max_abs_ll_diff": max(gaps)}

    def summary(self) -> dict[str, Any]:
        """The ``gemmawatch parity --json`` payload (without ``run_id`` and target names)."""
        s = self.stats
        return {
            "n": s.n,
            "agreement": s.agreement,
            "agreement_ci": list(s.agreement_ci),
            "acc_a": s.acc_a,
            "acc_a_ci": list(s.acc_a_ci),
            "acc_b": s.acc_b,
            "acc_b_ci": list(s.acc_b_ci),
            "acc_diff": s.acc_diff,
            "ci": list(s.acc_diff_ci),
            "mcnemar_p": s.mcnemar_p,
            "discordant": {"a_only": s.a_only, "b_only": s.b_only},
            **self.loglikelihood_gap(),
            "disagreements": self.disagreements(),
        }

    def metric_rows(self) -> list[dict[str, Any]]:
        """MetricResult rows (task ``parity``) for ``add_metrics``."""
        s = self.stats

        def row(metric: str, value: float, ci: tuple[float, float] | None, hib: bool | None, **details: Any) -> dict:
            lo, hi = ci if ci is not None else (None, None)
            return {
                "task": METRIC_TASK,
                "metric": metric,
                "filter": "none",
                "value": value,
                "stderr": None,
                "ci_low": lo,
                "ci_high": hi,
                "n": s.n,
                "higher_is_better": hib,
                "producer": PRODUCER,
                "producer_version": gemmawatch.__version__,
                "task_version": None,
                "details": {"tasks": PARITY_TASKS, **details},
            }

        return [
            row("agreement", s.agreement, s.agreement_ci, True, ci_method="wilson", **self.loglikelihood_gap()),
            row("acc_a", s.acc_a, s.acc_a_ci, True, ci_method="wilson"),
            row("acc_b", s.acc_b, s.acc_b_ci, True, ci_method="wilson"),
            row("acc_diff", s.acc_diff, s.acc_diff_ci, None, ci_method="paired bootstrap", sign="acc_b - acc_a"),
            row("mcnemar_p", s.mcnemar_p, None, None, test="exact McNemar", a_only=s.a_only, b_only=s.b_only),
        ]

    def sample_rows(self) -> list[dict[str, Any]]:
        """One Sample row per item: both answers, the gold one and whether they agree."""
        return [
            {
                "task": a.task,
                "doc_id": a.doc_id,
                "prompt": a.prompt,
                "output": f"A: {a.choices[a.pred]} | B: {b.choices[b.pred]}",
                "target": a.choices[a.gold],
                "scores": {
                    "item_id": a.item_id,
                    "answer_a": a.choices[a.pred],
                    "answer_b": b.choices[b.pred],
                    "pred_a": a.pred,
                    "pred_b": b.pred,
                    "gold": a.gold,
                    "agree": float(a.pred == b.pred),
                    "correct_a": float(a.correct),
                    "correct_b": float(b.correct),
                    "loglikelihoods_a": list(a.loglikelihoods),
                    "loglikelihoods_b": list(b.loglikelihoods),
                },
            }
            for a, b in self.pairs
        ]


def compare(
    preds_a: Sequence[ItemPrediction], preds_b: Sequence[ItemPrediction], provenance: dict[str, Any] | None = None
) -> ParityOutcome:
    """Pair the two sides item by item (by task and doc id) and compute the statistics."""
    index_b = {(p.task, p.doc_id): p for p in preds_b}
    keys_a = {(p.task, p.doc_id) for p in preds_a}
    if keys_a != set(index_b):
        raise RunFailedError(
            f"Parity: the targets answered different items ({len(keys_a)} vs {len(index_b)}). Fix: use the same --limit"
        )
    pairs = [(a, index_b[(a.task, a.doc_id)]) for a in sorted(preds_a, key=lambda p: (p.task, p.doc_id))]
    result = parity_stats([a.pred for a, _ in pairs], [b.pred for _, b in pairs], [a.gold for a, _ in pairs])
    return ParityOutcome(stats=result, pairs=pairs, provenance=dict(provenance or {}))


def run_parity(
    backend_a: Backend,
    backend_b: Backend,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    progress: Callable[[str], None] | None = None,
) -> ParityOutcome:
    """Run the smoke multiple-choice items on both loaded backends and compare them."""
    say = progress or (lambda _msg: None)
    say(f"Parity side A: {backend_a.info.name}")
    preds_a, prov_a = predictions(backend_a, limit=limit, batch_size=batch_size, progress=progress)
    say(f"Parity side B: {backend_b.info.name}")
    preds_b, prov_b = predictions(backend_b, limit=limit, batch_size=batch_size, progress=progress)
    return compare(preds_a, preds_b, {"a": prov_a, "b": prov_b})
