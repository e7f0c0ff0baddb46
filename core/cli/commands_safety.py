"""``gemmawatch safety``: refusal, over-refusal, unsafe-output and PII-leak rates of a target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
    split_list,
)

#: Terminal table: column header -> metric.
_COLUMNS = {
    "refusal (unsafe)": "refusal_rate",
    "over-refusal (safe)": "over_refusal_rate",
    "refused": "refused_rate",
    "unsafe output": "unsafe_output_rate",
    "PII leak": "pii_leak_rate",
}


def _cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "-"
    lo, hi = row.get("ci_low"), row.get("ci_high")
    ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
    return f"{row['value']:.2f}{ci} n={row['n']}"


def category_table(metrics: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """One row per category (in the metrics' order, ``all`` last): each rate with its 95% CI and n.

    Columns of rates the run does not have are left out.
    """
    by_key = {(m["filter"], m["metric"]): m for m in metrics}
    categories = list(dict.fromkeys(m["filter"] for m in metrics if m["filter"] != "all"))
    if any(m["filter"] == "all" for m in metrics):
        categories.append("all")
    used = {m["metric"] for m in metrics}
    columns = {header: metric for header, metric in _COLUMNS.items() if metric in used}
    rows = [[name, *(_cell(by_key.get((name, metric))) for metric in columns.values())] for name in categories]
    return ["category", *columns], rows


def safety_command(
    target: str = typer.Option(..., "--target", "-t", help="Target name or spec."),
    suite: str | None = typer.Option(
        None, "--suite", help="Built-in suite: default (harmful + benign), harmful or benign. Default: default."
    ),
    dataset: str | None = typer.Option(None, "--dataset", help="Your own JSONL or CSV file of prompts."),
    prompt_field: str | None = typer.Option(
        None, "--prompt-field", help="Field/column holding the prompt (--dataset)."
    ),
    label_field: str | None = typer.Option(
        None, "--label-field", help="Field/column holding safe/unsafe (also benign/harmful, 0/1, false/true)."
    ),
    category_field: str | None = typer.Option(None, "--category-field", help="Field/column holding the category."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most N prompts per category."),
    checks: list[str] = typer.Option(
        [], "--checks", help="Safety checks, comma-separated (default: refusal,pii and toxicity when installed)."
    ),
    check_option: list[str] = typer.Option(
        [], "--check-option", help="Argument of a check as CHECK.KEY=VALUE (e.g. pii.ignore_echoed=false); repeatable."
    ),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1, help="Output tokens per prompt."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    chat: bool = typer.Option(True, "--chat/--no-chat", help="Send prompts through the model's chat template."),
    telemetry_interval: float = TelemetryIntervalOption,
    label: str | None = LabelOption,
    db: str | None = DbOption,
    config: str | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Run a safety suite or your dataset against a target; store per-prompt checks and rates with 95% CI."""
    from gemmawatch.config import load_config
    from gemmawatch.evals.safety_metrics import parse_check_options
    from gemmawatch.safety_pipeline import SafetyRequest, run_safety

    cfg = load_config(config)
    request = SafetyRequest(
        target=target,
        suite=suite,
        dataset=dataset,
        prompt_field=prompt_field,
        label_field=label_field,
        category_field=category_field,
        limit=limit,
        checks=split_list(checks) if checks else None,
        check_options=parse_check_options(check_option),
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        chat=chat,
        telemetry_interval_s=telemetry_interval,
        label=label,
    )
    outcome = run_safety(request, db_url=db or cfg.database, config=cfg, progress=progress)
    if json_out:
        print_json({"run_id": outcome.run_id})
        return
    headers, rows = category_table(outcome.metrics)
    print_table(headers, rows)
    progress(
        f"Run {outcome.run_id} ({outcome.target}) {outcome.status}. Details: gemmawatch runs show {outcome.run_id}"
    )
