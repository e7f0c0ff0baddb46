"""``gemmawatch db ...``: schema management and telemetry retention."""

from __future__ import annotations

from datetime import timedelta

import typer

from gemmawatch.cli.options import DbOption, JsonOption, print_json, progress

app = typer.Typer(help="Database schema management.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(db: str | None = DbOption) -> None:
    """Upgrade the database schema to the newest Alembic revision."""
    from gemmawatch.storage.engine import resolve_url
    from gemmawatch.storage.engine import upgrade as do_upgrade

    url = resolve_url(db)
    head = do_upgrade(url)
    progress(f"Database is at revision {head}")


@app.command("rollup")
def rollup(
    db: str | None = DbOption,
    raw_retention: str = typer.Option(
        "7d", "--raw-retention", help="Delete raw telemetry older than this, once rolled up (e.g. 36h, 7d)."
    ),
    minute_retention: str = typer.Option(
        "90d",
        "--minute-retention",
        help="Delete 1-minute rollups older than this; 1-hour and 1-day rollups are kept.",
    ),
    json_out: bool = JsonOption,
) -> None:
    """Roll raw telemetry into 1-minute/1-hour/1-day min/avg/max/count rollups and apply retention.

    Safe to run at any time and from several processes (e.g. hourly from cron);
    charts over long ranges read the rollups.
    """
    from gemmawatch.collectors.monitor.schedule import parse_duration
    from gemmawatch.errors import UserError
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries.telemetry import rollup_telemetry

    try:
        raw = timedelta(seconds=parse_duration(raw_retention))
        minute = timedelta(seconds=parse_duration(minute_retention))
    except ValueError as exc:
        raise UserError(f"Invalid retention: {exc}") from exc
    if minute < raw:
        raise UserError(
            f"--minute-retention {minute_retention} is shorter than --raw-retention {raw_retention}. "
            "Fix: keep 1-minute rollups at least as long as raw telemetry"
        )
    with session_scope(get_engine(db)) as s:
        counts = rollup_telemetry(s, raw_retention=raw, minute_retention=minute)
    if json_out:
        print_json(counts)
        return
    typer.echo(
        f"Rolled up {counts['raw_rolled']} raw readings ({counts['minute_rows']} 1-minute, "
        f"{counts['hour_rows']} 1-hour and {counts['day_rows']} 1-day rows written)."
    )
    typer.echo(
        f"Deleted {counts['raw_deleted']} raw readings older than {raw_retention} and "
        f"{counts['minute_deleted']} 1-minute rows older than {minute_retention}."
    )
