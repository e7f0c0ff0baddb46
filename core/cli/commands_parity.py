"""``gemmawatch parity A B``: do two targets that claim the same weights answer the same?"""

from __future__ import annotations

import math

import typer

from gemmawatch.cli.options import (
    ConfigOption,
    DbOption,
    JsonOption,
    LabelOption,
    TelemetryIntervalOption,
    print_json,
    print_table,
    progress,
)
from gemmawatch.errors import CheckFailedError


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _ci(ci: list[float]) -> str:
    return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"


def parity(
    target_a: str = typer.Argument(..., help="Reference target (name or spec), e.g. gemma-3-270m."),
    target_b: str = typer.Argument(..., help="Target compared with it, e.g. llamacpp:bundled:gemma-3-270m."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most N items per smoke_mc subtask."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    telemetry_interval: float = TelemetryIntervalOption,
    label: str | None = LabelOption,
    min_agreement: float | None = typer.Option(
        None, "--min-agreement", min=0.0, max=1.0, help="Exit 1 when the agreement is below this share."
    ),
    db: str | None = DbOption,
    config: str | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Run the smoke suite's multiple-choice items on two targets; report agreement and score difference."""
    from gemmawatch.config import load_config
    from gemmawatch.parity_pipeline import ParityRequest, run_parity_targets

    cfg = load_config(config)
    request = ParityRequest(
        target_a=target_a,
        target_b=target_b,
        limit=limit,
        batch_size=batch_size,
        telemetry_interval_s=telemetry_interval,
        label=label,
    )
    run_id, outcome = run_parity_targets(request, db_url=db or cfg.database, config=cfg, progress=progress)
    payload = {"run_id": run_id, "target_a": target_a, "target_b": target_b, **outcome.summary()}
    if json_out:
        print_json(payload)
    else:
        n = str(payload["n"])
        print_table(
            ["metric", "value", "95% CI", "n"],
            [
                ["agreement", _fmt(payload["agreement"]), _ci(payload["agreement_ci"]), n],
                ["acc A", _fmt(payload["acc_a"]), _ci(payload["acc_a_ci"]), n],
                ["acc B", _fmt(payload["acc_b"]), _ci(payload["acc_b_ci"]), n],
                ["acc B - A", _fmt(payload["acc_diff"], signed=True), _ci(payload["ci"]), n],
                ["McNemar p", _fmt(payload["mcnemar_p"]), "-", str(sum(payload["discordant"].values()))],
            ],
        )
        for d in payload["disagreements"]:
            typer.echo(f"differs: {d['item_id']}: A={d['answer_a']!r} B={d['answer_b']!r} (gold {d['gold']!r})")
        progress(f"Run {run_id} stored. Details: gemmawatch runs show {run_id}")
    if min_agreement is not None and payload["agreement"] < min_agreement:
        raise CheckFailedError(
            f"Agreement {payload['agreement']:.3f} is below --min-agreement {min_agreement:g} (run {run_id}). "
            "Fix: inspect the disagreeing items with `gemmawatch runs show`"
        )
