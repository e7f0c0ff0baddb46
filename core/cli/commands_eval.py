"""``gemmawatch eval``: run lm-eval tasks against one or more targets."""

from __future__ import annotations

from pathlib import Path

import typer

from gemmawatch.cli.options import ConfigOption, DbOption, JsonOption, print_json, progress


def _split(values: list[str]) -> list[str]:
    return [v.strip() for raw in values for v in raw.split(",") if v.strip()]


def eval_command(
    target: list[str] = typer.Option(..., "--target", "-t", help="Target name or spec; repeat for several."),
    tasks: list[str] = typer.Option(..., "--tasks", help="lm-eval task or group names, comma-separated (e.g. smoke)."),
    include_path: list[Path] = typer.Option([], "--include-path", help="Folder of extra lm-eval task YAMLs."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most N documents per task."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    latency_prompts: int = typer.Option(8, "--latency-prompts", min=0, help="Streamed prompts for TTFT/TPOT/E2E."),
    telemetry_interval: float = typer.Option(
        0.1, "--telemetry-interval", min=0.01, help="Seconds between telemetry samples (0.1 = 10 Hz)."
    ),
    label: str | None = typer.Option(None, "--label", help="Free-text label stored with the run."),
    db: str | None = DbOption,
    config: str | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Evaluate targets on lm-eval tasks; store metrics, samples, latency and telemetry."""
    from gemmawatch.config import load_config
    from gemmawatch.pipeline import EvalRequest, run_evaluations

    cfg = load_config(config)
    request = EvalRequest(
        targets=_split(target),
        tasks=_split(tasks),
        include_path=[p.expanduser().resolve() for p in include_path],
        limit=limit,
        batch_size=batch_size,
        latency_prompts=latency_prompts,
        telemetry_interval_s=telemetry_interval,
        label=label,
    )
    outcomes = run_evaluations(request, db_url=db or cfg.database, config=cfg, progress=progress)
    ids = [o.run_id for o in outcomes]
    if json_out:
        print_json({"run_id": ids[0] if len(ids) == 1 else ids})
    else:
        for o in outcomes:
            progress(f"Run {o.run_id} ({o.target}) {o.status}. Details: gemmawatch runs show {o.run_id}")
