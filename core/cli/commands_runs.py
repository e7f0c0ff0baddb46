"""``gemmawatch runs ...``: list and inspect stored runs."""

from __future__ import annotations

import typer

from gemmawatch.cli.options import DbOption, JsonOption, fmt_time, print_json, print_table
from gemmawatch.errors import UserError

app = typer.Typer(help="List and inspect stored runs.", no_args_is_help=True)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


@app.command("list")
def list_runs(
    db: str | None = DbOption,
    json_out: bool = JsonOption,
    limit: int = typer.Option(100, "--limit", min=1, help="Newest N runs."),
) -> None:
    """List runs, newest first."""
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import runs as rq

    with session_scope(get_engine(db)) as s:
        rows = rq.list_runs(s, limit=limit)
    if json_out:
        print_json(rows)
        return
    if not rows:
        typer.echo("No runs yet. Try: gemmawatch demo --no-dashboard")
        return
    print_table(
        ["id", "kind", "target", "status", "started", "finished"],
        [
            [
                str(r["id"]),
                r["kind"],
                r["target"] or "-",
                r["status"],
                fmt_time(r["started_at"]),
                fmt_time(r["finished_at"]),
            ]
            for r in rows
        ],
    )


@app.command("show")
def show_run(
    run_id: int = typer.Argument(..., help="Run id (see `gemmawatch runs list`)."),
    db: str | None = DbOption,
    json_out: bool = JsonOption,
) -> None:
    """Show one run: target, status, metrics with n and 95% CI, sample and telemetry counts."""
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import runs as rq

    with session_scope(get_engine(db)) as s:
        summary = rq.run_summary(s, run_id)
    if summary is None:
        raise UserError(f"Run {run_id} does not exist. Fix: pick an id from `gemmawatch runs list`")
    if json_out:
        print_json(summary)
        return
    typer.echo(f"Run {summary['id']}  {summary['kind']}  {summary['status']}")
    typer.echo(f"target    {summary['target']}  {summary.get('target_info') or ''}")
    typer.echo(f"started   {fmt_time(summary['started_at'])}   finished {fmt_time(summary['finished_at'])}")
    typer.echo(f"host      {summary['host']}")
    if summary.get("error"):
        typer.echo(f"error     {summary['error']}")
    typer.echo(f"samples   {summary['samples_count']}   telemetry rows {summary['telemetry_count']}")
    metrics = summary["metrics"]
    if metrics:
        typer.echo("")
        print_table(
            ["task", "metric", "value", "stderr", "95% CI", "n"],
            [
                [
                    m["task"],
                    # lm-eval's filter (strict-match / flexible-extract...) or the category; "none" is the plain metric.
                    m["metric"] if m.get("filter") in (None, "", "none") else f"{m['metric']} [{m['filter']}]",
                    _fmt(m["value"]),
                    _fmt(m["stderr"]),
                    f"[{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]",
                    str(m["n"]),
                ]
                for m in metrics
            ],
        )
