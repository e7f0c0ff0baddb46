"""Evaluations: lm-eval tasks on a loaded backend, the latency probe, and their statistics.

* :func:`run_lm_eval` (``gemmawatch.evals.runner``) - lm-eval scores as MetricResult/Sample rows.
* :func:`run_latency_probe` (``gemmawatch.evals.latency``) - streamed TTFT/TPOT/ITL/E2E.
* :mod:`gemmawatch.evals.stats` - Wilson and bootstrap intervals, percentiles.
* :mod:`gemmawatch.evals.suites` - the bundled offline ``smoke`` suite.

Names are imported lazily: importing this package must not import lm-eval or
torch (the CLI and the dashboard import ``gemmawatch.evals.suites`` on start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gemmawatch.evals.latency import run_latency_probe
    from gemmawatch.evals.runner import EvalOutcome, resolve_tasks, run_lm_eval

__all__ = ["EvalOutcome", "resolve_tasks", "run_latency_probe", "run_lm_eval"]

_LAZY = {
    "EvalOutcome": "gemmawatch.evals.runner",
    "resolve_tasks": "gemmawatch.evals.runner",
    "run_lm_eval": "gemmawatch.evals.runner",
    "run_latency_probe": "gemmawatch.evals.latency",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gemmawatch.evals' has no attribute {name!r}")
