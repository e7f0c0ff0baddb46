"""The life of one stored run, shared by every pipeline (eval, dataset, safety, red-team, load, parity).

A run row is created first (status ``running``) so that telemetry can point at it;
the target is loaded under the telemetry sampler; the results and the final status
are written in one transaction; any failure, Ctrl-C included, marks the run
``failed`` with a one-line error and is re-raised for the CLI to report. The pieces:

* :func:`open_run` - the target row and the ``running`` run row.
* :func:`failure_marks_run` - the ``failed`` status on any exception.
* :func:`measured_backend` - telemetry sampling plus the loaded backend (what it
  really loaded is recorded on the run), both released on exit.
* :func:`check_generations` - a run whose every generation failed is a failed run.
* :func:`store_results` - samples, metrics and ``completed`` in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from gemmawatch.errors import BackendError, GemmawatchError, one_line
from gemmawatch.provenance import hostname, package_versions

__all__ = [
    "check_generations",
    "close_collectors",
    "failure_marks_run",
    "mark_failed",
    "measured_backend",
    "open_run",
    "record_loaded_target",
    "store_results",
    "target_fields",
]

Progress = Callable[[str], None]


def target_fields(info: Any) -> dict[str, Any]:
    """The target row's fields from a ``TargetInfo`` (as configured, or as the backend reported once loaded)."""
    return {
        "name": info.name,
        "backend": info.backend,
        "model_id": info.model_id,
        "revision": info.revision,
        "dtype": info.dtype,
        "quantization": info.quantization,
        "options": dict(info.options),
    }


def open_run(engine: Any, info: Any, *, kind: str, config: Mapping[str, Any], label: str | None) -> int:
    """Upsert the target and create its run (status ``running``) with ``config``; returns the run id."""
    from gemmawatch.storage.engine import session_scope
    from gemmawatch.storage.queries import runs as rq
    from gemmawatch.storage.queries import targets as tq

    with session_scope(engine) as s:
        target_id = tq.upsert_target(s, **target_fields(info))
        return rq.create_run(
            s,
            kind=kind,
            target_id=target_id,
            config=dict(config),
            host=hostname(),
            versions=package_versions(),
            label=label,
        )


def mark_failed(engine: Any, run_id: int, exc: BaseException, progress: Progress) -> str:
    """Store run ``run_id`` as failed with a one-line account of ``exc``; returns that line."""
    from gemmawatch.storage.engine import session_scope
    from gemmawatch.storage.queries import runs as rq

    if isinstance(exc, KeyboardInterrupt):
        message = "interrupted by the user"
    elif isinstance(exc, GemmawatchError):
        message = one_line(str(exc))
    else:
        message = one_line(f"{type(exc).__name__}: {exc}")
    with session_scope(engine) as s:
        rq.finish_run(s, run_id, status="failed", error=message)
    progress(f"Run {run_id} failed: {message}")
    return message


@contextmanager
def failure_marks_run(engine: Any, run_id: int, progress: Progress) -> Iterator[None]:
    """Mark the run ``failed`` when the block raises anything (KeyboardInterrupt too), then re-raise."""
    try:
        yield
    except BaseException as exc:
        mark_failed(engine, run_id, exc, progress)
        raise


def record_loaded_target(engine: Any, run_id: int, loaded: Any) -> None:
    """Store what the backend reported once loaded (real dtype, revision, quantization).

    The run's config keeps a snapshot, so later changes to the target row never
    rewrite what produced this run's numbers.
    """
    from gemmawatch.storage.engine import session_scope
    from gemmawatch.storage.queries import runs as rq
    from gemmawatch.storage.queries import targets as tq

    fields = target_fields(loaded)
    with session_scope(engine) as s:
        tq.upsert_target(s, **fields)
        rq.merge_run_config(s, run_id, {"target": fields})


def close_collectors(collectors: Sequence[Any]) -> None:
    """Release telemetry collectors that hold resources (NVML keeps a reference count per init)."""
    for collector in collectors:
        close = getattr(collector, "close", None)
        if close is not None:
            close()


@contextmanager
def measured_backend(
    engine: Any, run_id: int, info: Any, *, telemetry_interval_s: float, progress: Progress
) -> Iterator[Any]:
    """Sample telemetry for run ``run_id`` and yield ``info``'s loaded backend; close both on exit.

    Loading happens under the sampler, so the model's load shows in the run's telemetry.
    """
    from gemmawatch.collectors.targets import load_backend
    from gemmawatch.collectors.telemetry import TelemetrySampler, default_collectors, storage_sink

    collectors = default_collectors()
    sampler = TelemetrySampler(
        collectors, interval_s=telemetry_interval_s, sink=storage_sink(engine), run_id=run_id, host=hostname()
    )
    backend = None
    try:
        with sampler:
            progress(f"Loading {info.name}...")
            backend = load_backend(info)
            record_loaded_target(engine, run_id, backend.info)
            yield backend
    finally:
        if backend is not None:
            backend.close()
        close_collectors(collectors)


def check_generations(results: Sequence[Any], info: Any, *, unit: str = "prompts") -> int:
    """The number of failed generations; raises :class:`BackendError` when every one failed."""
    failed = sum(r.error is not None for r in results)
    if results and failed == len(results):
        first = next(r for r in results if r.error is not None)
        raise BackendError(
            f"every generation failed ({len(results)} {unit}); first: {first.error_class or 'Error'}: "
            f"{first.error}. Fix: check that the target answers `gemmawatch targets check {info.name}`"
        )
    return failed


def store_results(
    engine: Any,
    run_id: int,
    samples: Sequence[Mapping[str, Any]],
    metrics: Sequence[Mapping[str, Any]],
    *,
    text_policy: Any = None,
) -> None:
    """Samples, metrics and the ``completed`` status in one transaction (``text_policy``: how text is stored)."""
    from gemmawatch.storage.engine import session_scope
    from gemmawatch.storage.queries import metrics as mq
    from gemmawatch.storage.queries import runs as rq
    from gemmawatch.storage.queries import samples as sq

    with session_scope(engine) as s:
        sq.add_samples(s, run_id, samples, text_policy=text_policy)
        mq.add_metrics(s, run_id, metrics)
        rq.finish_run(s, run_id, status="completed")
