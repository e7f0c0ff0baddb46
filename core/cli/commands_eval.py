"""``gemmawatch eval``: run lm-eval tasks, or a generation dataset, against one or more targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
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
from gemmawatch.errors import UserError

#: Options that only mean something with --dataset (flag -> what the user passed).
_DATASET_ONLY = (
    "--format",
    "--prompt-field",
    "--reference-field",
    "--category-field",
    "--id-field",
    "--name",
    "--prompt-template",
    "--chat/--no-chat",
    "--max-new-tokens",
    "--stop",
)


def _cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "-"
    lo, hi = row.get("ci_low"), row.get("ci_high")
    ci = f" [{lo:.3g}, {hi:.3g}]" if lo is not None and hi is not None else ""
    return f"{row['value']:.3g}{ci} n={row['n']}"


def score_table(metrics: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """One row per task (categories first, the overall task last), one column per scorer: mean [95% CI] n."""
    by_key = {(m["task"], m["metric"]): m for m in metrics}
    scorers = list(dict.fromkeys(m["metric"] for m in metrics))
    tasks = list(dict.fromkeys(m["task"] for m in metrics))
    return ["task", *scorers], [[task, *(_cell(by_key.get((task, s))) for s in scorers)] for task in tasks]


def eval_command(
    target: list[str] = typer.Option(..., "--target", "-t", help="Target name or spec; repeat for several."),
    tasks: list[str] = typer.Option(
        [], "--tasks", help="lm-eval task or group names, comma-separated (e.g. smoke). Or use --dataset."
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", help="A generation dataset: a JSONL/CSV file, or a BFCL/MGSM folder. Or use --tasks."
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="Dataset format: jsonl, csv, bfcl, mgsm (default: from the path)."
    ),
    prompt_field: str | None = typer.Option(None, "--prompt-field", help="Field/column holding the prompt."),
    reference_field: str | None = typer.Option(
        None, "--reference-field", help="Field/column holding the reference answer (JSONL: or a list of them)."
    ),
    category_field: str | None = typer.Option(
        None, "--category-field", help="Field/column holding the category (metrics per category)."
    ),
    id_field: str | None = typer.Option(None, "--id-field", help="Field/column holding the item's own id."),
    name: str | None = typer.Option(None, "--name", help="Stored task name (default: the file name without suffix)."),
    prompt_template: str | None = typer.Option(
        None, "--prompt-template", help="Template with {prompt} (and {context keys}); default: the format's."
    ),
    chat: bool | None = typer.Option(
        None, "--chat/--no-chat", help="Send prompts through the model's chat template (default: the format's)."
    ),
    scorers: list[str] = typer.Option(
        [], "--scorers", help="Quality scorers, comma-separated (default for --dataset: the format's; lm-eval: none)."
    ),
    scorer_option: list[str] = typer.Option(
        [], "--scorer-option", help="Argument of a scorer as SCORER.KEY=VALUE (e.g. rouge_l.use_stemmer=true)."
    ),
    max_new_tokens: int | None = typer.Option(
        None, "--max-new-tokens", min=1, help="Output tokens per item (default: the format's, 256 for jsonl/csv)."
    ),
    stop: list[str] = typer.Option([], "--stop", help="Stop string for --dataset generations; repeatable."),
    include_path: list[Path] = typer.Option([], "--include-path", help="Folder of extra lm-eval task YAMLs."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="At most N documents per task (--dataset: per category)."
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    latency_prompts: int = typer.Option(
        8, "--latency-prompts", min=0, help="Streamed prompts for TTFT/TPOT/E2E (lm-eval tasks only)."
    ),
    telemetry_interval: float = TelemetryIntervalOption,
    label: str | None = LabelOption,
    db: str | None = DbOption,
    config: str | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Evaluate targets on lm-eval tasks or a dataset; store metrics with CIs, samples, latency and telemetry."""
    from gemmawatch.config import load_config
    from gemmawatch.evals.dataset_scoring import parse_scorer_options

    task_names = split_list(tasks)
    if bool(task_names) == (dataset is not None):
        what = "--tasks and --dataset both given" if task_names else "Neither --tasks nor --dataset given"
        raise UserError(f"{what}. Fix: pass --tasks (lm-eval tasks) or --dataset PATH (a generation dataset)")
    given = (fmt, prompt_field, reference_field, category_field, id_field, name, prompt_template, chat)
    dataset_only = [
        flag
        for flag, value in zip(_DATASET_ONLY, (*given, max_new_tokens, stop or None), strict=True)
        if value is not None
    ]
    if task_names and dataset_only:
        raise UserError(f"{', '.join(dataset_only)} only apply to --dataset. Fix: drop them or pass --dataset PATH")
    if dataset is not None and include_path:
        raise UserError("--include-path only applies to --tasks. Fix: drop it")
    cfg = load_config(config)
    scorer_names = split_list(scorers) if scorers else None
    options = parse_scorer_options(scorer_option)
    if dataset is not None:
        from gemmawatch.dataset_pipeline import DatasetRequest, run_dataset_evals

        request = DatasetRequest(
            targets=split_list(target),
            dataset=dataset,
            format=fmt,
            format_options={
                "prompt_field": prompt_field,
                "reference_field": reference_field,
                "category_field": category_field,
                "id_field": id_field,
                "name": name,
            },
            prompt_template=prompt_template,
            chat=chat,
            scorers=scorer_names,
            scorer_options=options,
            max_new_tokens=max_new_tokens,
            stop=stop or None,
            limit=limit,
            batch_size=batch_size,
            telemetry_interval_s=telemetry_interval,
            label=label,
        )
        outcomes = run_dataset_evals(request, db_url=db or cfg.database, config=cfg, progress=progress)
    else:
        from gemmawatch.pipeline import EvalRequest, run_evaluations

        if scorer_names is None and options:
            raise UserError("--scorer-option needs --scorers on lm-eval tasks. Fix: name the scorers with --scorers")
        eval_request = EvalRequest(
            targets=split_list(target),
            tasks=task_names,
            include_path=[p.expanduser().resolve() for p in include_path],
            limit=limit,
            batch_size=batch_size,
            latency_prompts=latency_prompts,
            telemetry_interval_s=telemetry_interval,
            label=label,
            scorers=scorer_names or (),
            scorer_options=options,
        )
        outcomes = run_evaluations(eval_request, db_url=db or cfg.database, config=cfg, progress=progress)
    ids = [o.run_id for o in outcomes]
    if json_out:
        print_json({"run_id": ids[0] if len(ids) == 1 else ids})
    else:
        for o in outcomes:
            if o.metrics:
                print_table(*score_table(o.metrics))
            progress(f"Run {o.run_id} ({o.target}) {o.status}. Details: gemmawatch runs show {o.run_id}")
