"""``gemmawatch redteam``: garak probes against any target, stored as a run with per-probe pass rates."""

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
from gemmawatch.evals.redteam.garak_runner import DEFAULT_PROBES, DEFAULT_PROMPT_CAP


def _cell(row: Mapping[str, Any]) -> str:
    lo, hi = row.get("ci_low"), row.get("ci_high")
    ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
    return f"{row['value']:.2f}{ci}"


def probe_table(metrics: Sequence[Mapping[str, Any]], probes: Sequence[str] = ()) -> tuple[list[str], list[list[str]]]:
    """One row per probe (all detectors together), then ``all``: pass rate with 95% CI, n and hits.

    Probes in ``probes`` without a pass rate (no output was scored) get a row of dashes.
    """
    by_task = {m["task"]: m for m in metrics if m["filter"] == "none"}
    names = list(dict.fromkeys([*probes, *(t.partition("/")[2] for t in by_task if "/" in t)]))
    rows = []
    for name in [*names, "all"]:
        m = by_task.get(f"redteam/{name}" if name != "all" else "redteam")
        if m is None:
            if name != "all":
                rows.append([name, "- (nothing scored)", "0", "-"])
            continue
        hits = m.get("details", {}).get("hits", m["n"] - round(m["value"] * m["n"]))
        rows.append([name, _cell(m), str(m["n"]), str(hits)])
    return ["probe", "pass rate [95% CI]", "n", "hits"], rows


def redteam_command(
    target: str | None = typer.Option(
        None, "--target", "-t", help="Target name or spec (not needed with --install-garak alone)."
    ),
    probes: list[str] = typer.Option(
        [],
        "--probes",
        "-p",
        help=f"garak probes, comma-separated (MODULE.Class or MODULE). Default: {','.join(DEFAULT_PROBES)}.",
    ),
    generations: int = typer.Option(1, "--generations", "-g", min=1, help="Outputs per prompt (1..100)."),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens", min=1, help="Output tokens per prompt."),
    prompt_cap: int = typer.Option(
        DEFAULT_PROMPT_CAP,
        "--prompt-cap",
        min=1,
        help="At most N prompts per probe (garak's soft cap; some probes ignore it, e.g. grandma.*).",
    ),
    seed: int = typer.Option(0, "--seed", help="garak's seed (which prompts a capped probe keeps)."),
    temperature: float | None = typer.Option(
        None, "--temperature", min=0.0, help="Sampling temperature (default: greedy for 1 generation, else 0.7)."
    ),
    chat: bool = typer.Option(True, "--chat/--no-chat", help="Send prompts through the model's chat template."),
    import_report: str | None = typer.Option(
        None, "--import", help="Import this garak .report.jsonl instead of running garak."
    ),
    report_dir: str | None = typer.Option(
        None, "--report-dir", help="Folder for garak's run folders (default: the gemmawatch data dir, redteam/)."
    ),
    garak_python: str | None = typer.Option(
        None,
        "--garak-python",
        help="Python of an environment with garak (default: $GEMMAWATCH_GARAK_PYTHON, then --install-garak's venv).",
    ),
    install_garak: bool = typer.Option(
        False, "--install-garak", help="Create the garak venv in the gemmawatch cache (garak 0.17.1) if missing."
    ),
    timeout: float | None = typer.Option(None, "--timeout", min=1.0, help="Stop garak after this many seconds."),
    telemetry_interval: float = TelemetryIntervalOption,
    label: str | None = LabelOption,
    db: str | None = DbOption,
    config: str | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Red-team a target with garak probes; store every scored output and pass rates per probe with 95% CI.

    garak runs in its own environment (`--install-garak` creates it) and reaches the
    target through gemmawatch, so every backend works and the model loads once. A
    report without garak's completion entry is stored as a failed run.
    """
    from gemmawatch.config import load_config
    from gemmawatch.errors import UserError
    from gemmawatch.redteam_pipeline import RedteamRequest, run_redteam

    if install_garak:
        from gemmawatch.evals.redteam.garak_runner import install_garak as install

        installed = install(progress=progress)
        if target is None:
            if json_out:
                print_json({"garak_python": str(installed.python), "garak_version": installed.version})
            return
    if target is None:
        raise UserError("--target is required. Fix: pass --target NAME (see `gemmawatch targets list`)")
    cfg = load_config(config)
    request = RedteamRequest(
        target=target,
        probes=split_list(probes) if probes else None,
        generations=generations,
        max_new_tokens=max_new_tokens,
        prompt_cap=prompt_cap,
        seed=seed,
        temperature=temperature,
        chat=chat,
        import_report=import_report,
        report_dir=report_dir,
        garak_python=garak_python,
        timeout_s=timeout,
        telemetry_interval_s=telemetry_interval,
        label=label,
    )
    outcome = run_redteam(request, db_url=db or cfg.database, config=cfg, progress=progress)
    if json_out:
        print_json({"run_id": outcome.run_id})
        return
    headers, rows = probe_table(outcome.metrics, outcome.probes)
    print_table(headers, rows)
    progress(
        f"Run {outcome.run_id} ({outcome.target}) {outcome.status}; garak report {outcome.report}. "
        f"Details: gemmawatch runs show {outcome.run_id}"
    )
