"""``gemmawatch monitor``: the long-running production monitor (canary probes, scrapes, telemetry, alerts)."""

from __future__ import annotations

import typer

from gemmawatch.cli.options import DbOption, JsonOption, print_json, progress


def monitor(
    config: str = typer.Option(..., "--config", help="The monitor's YAML file (see the README's monitor.yaml)."),
    once: bool = typer.Option(
        False, "--once", help="Run every probe, scrape and telemetry job once, then exit (for cron)."
    ),
    duration: float | None = typer.Option(
        None, "--duration", min=0.001, help="Stop after this many seconds (default: until SIGTERM/Ctrl-C)."
    ),
    db: str | None = DbOption,
    json_out: bool = JsonOption,
) -> None:
    """Probe production targets on a schedule, scrape their metrics, store everything, evaluate alerts.

    Stops cleanly on SIGTERM or Ctrl-C (exit 0, the monitor run marked completed).
    """
    from gemmawatch.collectors.monitor import load_monitor_config, run_monitor
    from gemmawatch.errors import UserError

    if once and duration is not None:
        raise UserError("--once and --duration exclude each other. Fix: pass only one of them")
    cfg = load_monitor_config(config)
    summary = run_monitor(cfg, db_url=db, once=once, duration_s=duration, progress=progress)
    if json_out:
        print_json(summary.as_json())
