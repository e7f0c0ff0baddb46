"""Run lm-eval tasks on an already-loaded backend and return gemmawatch rows.

The scores are lm-eval's own: we call ``lm_eval.simple_evaluate`` with lm-eval's
defaults (``num_fewshot`` from the task, default ``bootstrap_iters``, no chat
template, lm-eval's seeds) on the backend's HFLM, so a number here equals
``lm_eval --model hf ... --tasks X`` on the same model, tasks and limit. What we
add: name/YAML checks with one-line errors before anything runs, progress
messages, per-batch generation timings, ``n`` and confidence intervals, and rows
shaped for gemmawatch's storage.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gemmawatch.errors import BackendError, GemmawatchError, RunFailedError, one_line
from gemmawatch.evals.lm_eval_tasks import load_tasks, resolve_tasks, set_offline_env

if TYPE_CHECKING:
    from gemmawatch.collectors.backends.base import Backend

# resolve_tasks is re-exported for the pipeline's pre-flight check (errors before a model loads).
__all__ = ["EvalOutcome", "resolve_tasks", "run_lm_eval"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class EvalOutcome:
    """What one lm-eval run produced, ready for ``add_metrics``/``add_samples``."""

    #: MetricResult row dicts: one per (task or group, metric, filter), with n and CI.
    metrics: list[dict[str, Any]] = field(default_factory=list)
    #: Sample row dicts: one per evaluated document.
    samples: list[dict[str, Any]] = field(default_factory=list)
    #: lm_eval/transformers versions, task versions and hashes, n-shot, config, date.
    provenance: dict[str, Any] = field(default_factory=dict)
    #: The raw lm-eval results dict (samples included), for callers that want to save it.
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def _doc_count(task: Any, limit: int | float | None) -> int:
    from lm_eval.evaluator_utils import get_sample_size

    total = len(task.eval_docs)
    size = get_sample_size(task, limit)
    return total if size is None else min(total, size)


def _token_counter(lm: Any) -> Callable[[str], int] | None:
    encode = getattr(lm, "tok_encode", None)
    if not callable(encode):
        return None
    # Counts are for display: the prompt as lm-eval tokenizes a context (HFLM adds
    # <bos> for Gemma), the output as plain continuation text.
    return lambda text: len(encode(text))


def _backend_config(backend: Backend, batch_size: int, limit: int | float | None) -> dict[str, Any]:
    info = getattr(backend, "info", None)
    config: dict[str, Any] = {"batch_size": batch_size, "limit": limit}
    if info is not None:
        config["target"] = {
            "name": info.name,
            "backend": info.backend,
            "model_id": info.model_id,
            "revision": info.revision,
            "dtype": info.dtype,
            "quantization": info.quantization,
            "options": dict(info.options),
        }
    return config


def _quiet_git_hash() -> str | None:
    """lm-eval's git-hash provenance without its stray "fatal: not a git repository" on stderr."""
    try:
        out = subprocess.check_output(["git", "describe", "--always"], stderr=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.decode().strip() or None


@contextlib.contextmanager
def _quiet_lm_eval() -> Iterator[None]:
    import lm_eval.evaluator as evaluator

    original = evaluator.get_git_commit_hash
    evaluator.get_git_commit_hash = _quiet_git_hash
    try:
        yield
    finally:
        evaluator.get_git_commit_hash = original


def run_lm_eval(
    backend: Backend,
    tasks: list[str],
    *,
    include_path: list[Path] | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> EvalOutcome:
    """Evaluate ``tasks`` (names, groups, tags, globs or YAML paths) on ``backend``.

    ``include_path`` adds task folders to the bundled suites. ``limit`` caps the
    documents per task (lm-eval's ``--limit``). Raises :class:`UnknownNameError` /
    :class:`ConfigError` before evaluating, :class:`BackendError` when the model
    fails, and :class:`RunFailedError` for any other failure inside lm-eval.
    """
    say = progress or (lambda _msg: None)
    set_offline_env()
    import lm_eval

    from gemmawatch.evals import lm_eval_results as convert
    from gemmawatch.evals.timed_lm import TimedLM

    loaded = load_tasks(tasks, include_path=include_path, progress=say)
    for name, task in loaded.leaves.items():
        say(f"Running {name} ({_doc_count(task, limit)} docs)...")

    try:
        inner = backend.lm_eval_model(batch_size=batch_size)
    except GemmawatchError:
        raise
    except Exception as err:
        raise BackendError(
            one_line(f"Could not wrap the model for lm-eval: {type(err).__name__}: {err}. Fix: check the target loads.")
        ) from err
    lm = TimedLM(inner, batch_size=batch_size, progress=say)

    try:
        with _quiet_lm_eval():
            res = lm_eval.simple_evaluate(
                model=lm,
                tasks=loaded.objects,
                task_manager=loaded.manager,
                limit=limit,
                batch_size=batch_size,  # recorded in res["config"]; the HFLM already has it
                log_samples=True,
            )
    except GemmawatchError:
        raise
    except Exception as err:
        log.debug("lm-eval failed", exc_info=True)
        raise RunFailedError(
            one_line(
                f"lm-eval failed on {', '.join(tasks)}: {type(err).__name__}: {err}. "
                "Fix: run with --verbose for the traceback; check the task and model."
            )
        ) from err
    if res is None:  # only non-zero ranks get None; we run one process
        raise RunFailedError("lm-eval returned no results (not rank 0). Fix: run gemmawatch in a single process.")

    say("Scoring samples and computing confidence intervals...")
    version = str(res.get("lm_eval_version") or lm_eval.__version__)
    res.setdefault("task_hashes", convert.task_hashes(res))
    return EvalOutcome(
        metrics=convert.metric_rows(res, limit=limit, producer_version=version),
        samples=convert.sample_rows(res, timings=lm.timings, count_tokens=_token_counter(inner)),
        provenance=convert.provenance(res, extra_config=_backend_config(backend, batch_size, limit)),
        raw=res,
    )
