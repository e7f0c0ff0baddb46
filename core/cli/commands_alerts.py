"""``gemmawatch alerts ...``: list, acknowledge and silence alerts; list rules; test a receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import typer

from gemmawatch.cli import commands_notify
from gemmawatch.cli.options import ConfigOption, DbOption, JsonOption, fmt_time, print_json, print_table
from gemmawatch.errors import UserError

app = typer.Typer(help="Alerts: list, acknowledge, silence; the rules; test a notification receiver.",
                  no_args_is_help=True)  # fmt: skip

#: Keys of every alert in ``alerts list --json`` (in this order).
ALERT_KEYS = (
    "id",
    "rule",
    "state",
    "severity",
    "value",
    "target",
    "series",
    "message",
    "started_at",
    "fired_at",
    "resolved_at",
    "acknowledged_at",
    "silenced_until",
    "run_id",
)
STATES = ("pending", "firing", "resolved")


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@app.command("list")
def list_alerts(
    state: str | None = typer.Option(None, "--state", help="Only pending, firing or resolved alerts."),
    limit: int = typer.Option(100, "--limit", min=1, help="Newest N alerts."),
    db: str | None = DbOption,
    json_out: bool = JsonOption,
) -> None:
    """List alerts, newest first."""
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import alerts as aq

    if state is not None and state not in STATES:
        raise UserError(f"Unknown alert state '{state}'. Fix: use --state pending, firing or resolved")
    with session_scope(get_engine(db)) as s:
        rows = [{k: r[k] for k in ALERT_KEYS} for r in aq.list_alerts(s, state=state, limit=limit)]
    if json_out:
        print_json(rows)
        return
    if not rows:
        typer.echo("No alerts." if state is None else f"No {state} alerts.")
        return
    now = datetime.now(UTC)
    print_table(
        ["id", "state", "severity", "rule", "target", "value", "since", "notes", "message"],
        [
            [
                str(r["id"]),
                r["state"],
                r["severity"],
                r["rule"],
                r["target"] or r["series"] or "-",
                _value(r["value"]),
                fmt_time(r["fired_at"] or r["started_at"]),
                " ".join(
                    (["acked"] if r["acknowledged_at"] else [])
                    + (["silenced"] if r["silenced_until"] and r["silenced_until"] > now else [])
                )
                or "-",
                r["message"],
            ]
            for r in rows
        ],
    )


@app.command("ack")
def acknowledge(
    alert_id: int = typer.Argument(..., help="Alert id (see `gemmawatch alerts list`)."),
    db: str | None = DbOption,
) -> None:
    """Acknowledge an alert: it sends no more firing notifications (its resolution is still sent)."""
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import alerts as aq

    with session_scope(get_engine(db)) as s:
        first = aq.acknowledge_alert(s, alert_id)
    typer.echo(f"Alert {alert_id} acknowledged." if first else f"Alert {alert_id} was already acknowledged.")


def _until(for_: str | None, until: str | None) -> datetime:
    from gemmawatch.alerts.durations import DURATION_HINT, parse_duration

    if (for_ is None) == (until is None):
        raise UserError("Give how long to silence. Fix: pass either --for DURATION (e.g. 2h) or --until TIME")
    if for_ is not None:
        try:
            return datetime.now(UTC) + timedelta(seconds=parse_duration(for_))
        except ValueError as exc:
            raise UserError(f"--for {for_!r} is not a positive duration. Fix: {DURATION_HINT}") from exc
    assert until is not None
    try:
        when = datetime.fromisoformat(until)
    except ValueError as exc:
        raise UserError(
            f"--until {until!r} is not an ISO 8601 time. "
            "Fix: write e.g. 2026-12-24T18:00 (UTC) or 2026-12-24T18:00+01:00"
        ) from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@app.command("silence")
def silence(
    alert_id: int = typer.Argument(..., help="Alert id (see `gemmawatch alerts list`)."),
    for_: str | None = typer.Option(None, "--for", help="How long: 30m, 2h, 1d, 1h30m."),
    until: str | None = typer.Option(None, "--until", help="Until an ISO 8601 time (no zone = UTC)."),
    db: str | None = DbOption,
) -> None:
    """Silence an alert: no notifications until then, also if it resolves and fires again meanwhile."""
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import alerts as aq

    when = _until(for_, until)
    with session_scope(get_engine(db)) as s:
        aq.silence_alert(s, alert_id, when)
    typer.echo(f"Alert {alert_id} silenced until {when.strftime('%Y-%m-%d %H:%M:%S')} UTC.")


def _rule_row(row: dict[str, Any]) -> dict[str, Any]:
    from gemmawatch.alerts.catalog import rule_from_row
    from gemmawatch.alerts.durations import format_duration
    from gemmawatch.alerts.notify import redact_url

    try:
        condition = rule_from_row(row).condition
    except ValueError as exc:
        condition = f"invalid: {exc}"
    out = {k: v for k, v in row.items() if k != "source"}
    out["origin"] = row["source"]
    out["condition"] = " ".join(condition.split())
    out["for"] = format_duration(float(row.get("for_s") or 0.0))
    out["window"] = format_duration(float(row["window_s"])) if row.get("window_s") else None
    out["notify"] = [redact_url(u) for u in row.get("notify") or []]
    return out


@app.command("rules")
def list_rules(
    db: str | None = DbOption,
    config: str | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """List the alert rules (built-in defaults and gemmawatch.yaml rules are stored first)."""
    from gemmawatch.alerts.catalog import seed_default_rules, sync_config_rules
    from gemmawatch.config import load_config
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import alert_rules as rq

    cfg = load_config(config)
    with session_scope(get_engine(db or cfg.database)) as s:
        seed_default_rules(s)
        sync_config_rules(s, cfg.alerts)
        rows = [_rule_row(r) for r in rq.list_rules(s)]
    if json_out:
        print_json(rows)
        return
    print_table(
        ["name", "kind", "on", "condition", "for", "severity", "enabled", "origin"],
        [
            [
                r["name"],
                r["kind"],
                r["data_source"],
                r["condition"],
                r["for"],
                r["severity"],
                "yes" if r["enabled"] else "no",
                r["origin"],
            ]
            for r in rows
        ],
    )


app.command("test-notify")(commands_notify.test_notify)
