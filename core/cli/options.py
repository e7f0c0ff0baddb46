"""Options shared by several commands, and output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import typer

DbOption = typer.Option(
    None,
    "--db",
    help="SQLAlchemy database URL (default: $GEMMAWATCH_DB, else a SQLite file in the user data dir).",
    show_default=False,
)
ConfigOption = typer.Option(
    None,
    "--config",
    help="Config file (default: $GEMMAWATCH_CONFIG, else ./gemmawatch.yaml when present).",
    show_default=False,
)
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON on stdout and nothing else.")
TelemetryIntervalOption = typer.Option(
    0.1, "--telemetry-interval", min=0.01, help="Seconds between telemetry samples (0.1 = 10 Hz)."
)
LabelOption = typer.Option(None, "--label", help="Free-text label stored with the run.")


def split_list(values: Sequence[str]) -> list[str]:
    """Values of a repeatable, comma-separated option (``--checks a,b --checks c``), trimmed, empty ones dropped."""
    return [v.strip() for raw in values for v in raw.split(",") if v.strip()]


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (datetimes as ISO 8601)."""
    sys.stdout.write(json.dumps(data, default=_default, indent=2) + "\n")
    sys.stdout.flush()


def progress(message: str) -> None:
    """Progress goes to stderr so stdout stays clean for --json."""
    typer.echo(message, err=True)


def fmt_time(value: datetime | None) -> str:
    """Short local rendering of a stored UTC time."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A plain aligned text table on stdout."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
