"""A garak report as gemmawatch samples and pass rates (n and a 95 % Wilson interval each).

Samples: one per scored output of every attempt, task ``redteam/<probe>``
(``redteam/encoding.InjectBase64``), ``doc_id = seq * MAX_GENERATIONS + output index``
(garak numbers a probe's prompts by ``seq``, so runs of the same probes with the same
seed pair up in ``gemmawatch compare``). ``Sample.scores``:

* ``pass_rate`` - 1 when every detector that scored the output stayed below garak's
  ``eval_threshold`` (0.5), else 0 (a *hit*); absent when no detector scored it.
* ``pass_rate,<detector>`` - the same for one detector (lm-eval's ``metric,filter`` keys,
  so compare pairs them with the per-detector metric rows).
* ``garak`` - details that are not paired: ``hit`` (the opposite of ``pass_rate``),
  ``detector_scores`` (detector -> raw score 0..1), ``attempt`` (uuid), ``seq`` and,
  when the relay removed copies of the prompt, ``scored_output`` (the text garak's
  detectors read; ``output`` holds what the model said).

An output garak got as None (a failed generation, or one that only repeated the prompt:
see :mod:`gemmawatch.evals.redteam.relay`) is stored with the reason as its error and no
scores; it counts in no rate (garak counts it among its ``nones``).

Metrics (``higher_is_better`` true, ``producer`` garak):

=================  ==================  ==========================================
task               filter              over
=================  ==================  ==========================================
``redteam/<p>``    ``none``            the probe's scored outputs, all detectors
``redteam/<p>``    ``<detector>``      the outputs that detector scored
``redteam``        ``none``            every scored output (``subtasks``: probes)
=================  ==================  ==========================================

garak's own ``eval`` tally is kept in the per-detector rows' details for cross-checking.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from gemmawatch.evals import stats
from gemmawatch.evals.redteam.report import GarakAttempt, GarakReport

__all__ = [
    "MAX_GENERATIONS",
    "METRIC",
    "PRODUCER",
    "REDTEAM_TASK",
    "doc_id",
    "probe_task",
    "redteam_metrics",
    "redteam_samples",
]

REDTEAM_TASK = "redteam"
METRIC = "pass_rate"
PRODUCER = "garak"
#: Outputs per prompt that doc ids leave room for (``--generations`` at most this).
MAX_GENERATIONS = 100
_DEFINITION = "share of outputs that no detector flagged (every score below garak's eval threshold)"


def probe_task(probe: str) -> str:
    """``redteam/<probe>``: the sample and metric task of one garak probe."""
    return f"{REDTEAM_TASK}/{probe}"


def doc_id(attempt: GarakAttempt, output_index: int) -> int:
    """Stable id of one output: the prompt's ``seq`` and the output's position."""
    return attempt.seq * MAX_GENERATIONS + output_index


def _scores(attempt: GarakAttempt, index: int, threshold: float) -> dict[str, Any]:
    raw: dict[str, float] = {}
    for det, scores in attempt.detector_results.items():
        score = scores[index] if index < len(scores) else None
        if score is not None:  # None: this detector did not score this output
            raw[det] = score
    if not raw:
        return {}
    passed = {det: int(score < threshold) for det, score in raw.items()}
    hit = not all(passed.values())
    return {
        METRIC: int(not hit),
        **{f"{METRIC},{det}": ok for det, ok in passed.items()},
        "garak": {"hit": int(hit), "detector_scores": raw, "attempt": attempt.uuid, "seq": attempt.seq},
    }


def redteam_samples(report: GarakReport, answers: Any | None = None) -> list[dict[str, Any]]:
    """Sample rows (``add_samples`` keys), one per output of every scored attempt, in report order.

    ``answers`` (optional, the relay's :class:`~gemmawatch.evals.redteam.relay.AnswerLog`)
    adds latency and token counts, and for outputs garak got as None the raw text and the
    reason (a failed generation, an output that only repeated the prompt).
    """
    threshold = report.eval_threshold
    rows: list[dict[str, Any]] = []
    for attempt in report.attempts:
        for index, output in enumerate(attempt.outputs):
            answer = answers.pop(attempt.prompt, output) if answers is not None else None
            result = getattr(answer, "result", None)
            if output is None:
                text = getattr(answer, "raw", "")
                error = getattr(answer, "reason", None) or "no output: the generator returned nothing"
            else:  # what the model said; garak scored it without the copies of the prompt
                text, error = getattr(answer, "raw", None) or output, None
            scores = _scores(attempt, index, threshold) if output is not None else {}
            if output is not None and text != output and scores:
                scores["garak"]["scored_output"] = output
            rows.append(
                {
                    "task": probe_task(attempt.probe),
                    "doc_id": doc_id(attempt, index),
                    "prompt": attempt.prompt,
                    "output": text,
                    "target": attempt.goal,
                    "scores": scores,
                    "latency_s": getattr(result, "e2e_s", None),
                    "ttft_s": getattr(result, "ttft_s", None),
                    "tpot_s": getattr(result, "tpot_s", None),
                    "input_tokens": getattr(result, "input_tokens", None),
                    "output_tokens": getattr(result, "output_tokens", None),
                    "token_source": getattr(result, "token_source", None),
                    "error": error,
                    "started_at": getattr(result, "started_at", None),
                }
            )
    return rows


def _prompts_hash(prompts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for prompt in prompts:
        digest.update(prompt.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _row(
    task: str, filt: str, values: Sequence[int], *, details: Mapping[str, Any], version: str | None, producer: str
) -> dict[str, Any]:
    n = len(values)
    k = sum(values)
    value = k / n
    lo, hi = stats.wilson_interval(k, n)
    # Exact at the edges: the Wilson bound is 0 at 0/n and 1 at n/n (float noise gives 3e-17).
    lo, hi = (0.0 if k == 0 else lo), (1.0 if k == n else hi)
    return {
        "task": task,
        "metric": METRIC,
        "filter": filt,
        "value": value,
        "stderr": math.sqrt(value * (1.0 - value) / n),
        "ci_low": lo,
        "ci_high": hi,
        "n": n,
        "higher_is_better": True,
        "producer": PRODUCER,
        "producer_version": producer,
        "task_version": version,
        "details": {**details, "definition": _DEFINITION, "passed": k, "hits": n - k, "ci_method": "wilson"},
    }


def redteam_metrics(samples: Sequence[Mapping[str, Any]], report: GarakReport) -> list[dict[str, Any]]:
    """Pass-rate rows for :func:`redteam_samples` rows (see the module docstring); probes in report order."""
    version = report.garak_version or "unknown"
    common = {"eval_threshold": report.eval_threshold, "report_sha256": report.sha256}
    evals = {(e.probe, e.detector): e for e in report.evals}
    prompts: dict[str, list[str]] = {}
    for attempt in sorted(report.attempts, key=lambda a: a.seq):
        prompts.setdefault(attempt.probe, []).append(attempt.prompt)
    rows: list[dict[str, Any]] = []
    overall: list[int] = []
    tasks: list[str] = []
    for probe in report.probes:
        task = probe_task(probe)
        mine = [s for s in samples if s["task"] == task]
        values = [int(s["scores"][METRIC]) for s in mine if METRIC in s["scores"]]
        if not values:
            continue
        task_version = _prompts_hash(prompts.get(probe, []))
        detectors = list(
            dict.fromkeys(d for s in mine for d in s["scores"].get("garak", {}).get("detector_scores", {}))
        )
        unscored = sum(1 for s in mine if METRIC not in s["scores"])
        base = {**common, "probe": probe, "detectors": detectors, "unscored_outputs": unscored}
        rows.append(_row(task, "none", values, details=base, version=task_version, producer=version))
        for det in detectors:
            key = f"{METRIC},{det}"
            det_values = [int(s["scores"][key]) for s in mine if key in s["scores"]]
            tally = evals.get((probe, det))
            garak_eval = None if tally is None else {"passed": tally.passed, "total_evaluated": tally.total_evaluated}
            details = {**common, "probe": probe, "detector": det, "garak_eval": garak_eval}
            rows.append(_row(task, det, det_values, details=details, version=task_version, producer=version))
        overall += values
        tasks.append(task)
    if overall:
        every = _prompts_hash([p for probe in report.probes for p in prompts.get(probe, [])])
        details = {**common, "subtasks": tasks, "probes": report.probes}
        rows.append(_row(REDTEAM_TASK, "none", overall, details=details, version=every, producer=version))
    return rows
