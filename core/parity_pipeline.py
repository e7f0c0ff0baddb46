"""A parity run, end to end: two targets -> smoke MC items on each -> comparison -> SQL.

Mirrors :mod:`gemmawatch.pipeline`: the run row (kind ``parity``, target A) is created
first so telemetry can point at it; the targets are loaded one after the other (never
both in memory); metrics, samples and the final status are written in one transaction;
a failure marks the run ``failed`` with its one-line error and re-raises.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from gemmawatch.config import GemmawatchConfig
from gemmawatch.pipeline import DEFAULT_TELEMETRY_INTERVAL_S, Progress, resolve_targets
from gemmawatch.provenance import hostname, package_versions
from gemmawatch.run_lifecycle import close_collectors, mark_failed

__all__ = ["ParityRequest", "run_parity_targets"]


@dataclass
class ParityRequest:
    """What to compare and how."""

    target_a: str
    target_b: str
    limit: int | None = None
    batch_size: int = 8
    telemetry_interval_s: float = DEFAULT_TELEMETRY_INTERVAL_S
    label: str | None = None


def _target_dict(info: Any) -> dict[str, Any]:
    data = asdict(info)
    data["options"] = dict(info.options)
    return data


def _record_loaded(engine: Any, run_id: int, side: str, loaded: Any) -> None:
    """Snapshot what the backend reported once loaded (real dtype, quantization label, adapter path).

    Side A is the run's target, so its target row is updated too, as ``gemmawatch eval`` does.
    """
    from gemmawatch.storage.engine import session_scope
    from gemmawatch.storage.queries import runs as rq
    from gemmawatch.storage.queries import targets as tq

    fields = _target_dict(loaded)
    with session_scope(engine) as s:
        if side == "A":
            tq.upsert_target(s, **fields)
        rq.merge_run_config(s, run_id, {f"target_{side.lower()}": fields})


def run_parity_targets(
    request: ParityRequest,
    *,
    db_url: str | None,
    config: GemmawatchConfig,
    progress: Progress = lambda _msg: None,
) -> tuple[int, Any]:
    """Compare two targets on the smoke MC items and store a ``parity`` run; returns (run id, ParityOutcome).

    Unknown targets and a bad database URL are raised before any run is created.
    """
    from gemmawatch.collectors.targets import load_backend
    from gemmawatch.collectors.telemetry import TelemetrySampler, default_collectors, storage_sink
    from gemmawatch.evals.parity import PARITY_TASKS, compare, predictions
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import metrics as mq
    from gemmawatch.storage.queries import runs as rq
    from gemmawatch.storage.queries import samples as sq
    from gemmawatch.storage.queries import targets as tq

    info_a, info_b = resolve_targets([request.target_a, request.target_b], config)
    engine = get_engine(db_url)
    run_config = {
        "tasks": PARITY_TASKS,
        "limit": request.limit,
        "batch_size": request.batch_size,
        "telemetry_interval_s": request.telemetry_interval_s,
        "target_a": _target_dict(info_a),
        "target_b": _target_dict(info_b),
    }
    with session_scope(engine) as s:
        target_id = tq.upsert_target(s, **_target_dict(info_a))
        run_id = rq.create_run(
            s,
            kind="parity",
            target_id=target_id,
            config=run_config,
            host=hostname(),
            versions=package_versions(),
            label=request.label or f"{info_a.name} vs {info_b.name}",
        )
    progress(f"Run {run_id}: parity {info_a.name} vs {info_b.name}")
    collectors = default_collectors()
    sampler = TelemetrySampler(
        collectors, interval_s=request.telemetry_interval_s, sink=storage_sink(engine), run_id=run_id, host=hostname()
    )
    sides: list[tuple[list[Any], dict[str, Any]]] = []
    try:
        with sampler:
            for side, info in (("A", info_a), ("B", info_b)):
                progress(f"Loading {side}: {info.name}...")
                backend = load_backend(info)
                _record_loaded(engine, run_id, side, backend.info)
                try:
                    preds, prov = predictions(
                        backend, limit=request.limit, batch_size=request.batch_size, progress=progress
                    )
                    sides.append((preds, prov))
                finally:
                    backend.close()  # one model in memory at a time
        (preds_a, prov_a), (preds_b, prov_b) = sides
        outcome = compare(preds_a, preds_b, {"a": prov_a, "b": prov_b})
        with session_scope(engine) as s:
            mq.add_metrics(s, run_id, outcome.metric_rows())
            sq.add_samples(s, run_id, outcome.sample_rows())
            rq.finish_run(s, run_id, status="completed")
    except BaseException as exc:
        mark_failed(engine, run_id, exc, progress)
        raise
    finally:
        close_collectors(collectors)
    return run_id, outcome
