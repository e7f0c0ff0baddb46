"""The ``gemmawatch`` command line: a thin layer over library functions.

This is the one place (with the dashboard) where errors become user messages:
a :class:`~gemmawatch.errors.GemmawatchError` prints one line on stderr and
exits with its code (2 for user errors, 1 for a failed check); anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys

import typer

from gemmawatch.cli import (
    commands_alerts,
    commands_bench,
    commands_compare,
    commands_db,
    commands_eval,
    commands_monitor,
    commands_parity,
    commands_redteam,
    commands_report,
    commands_runs,
    commands_safety,
    commands_serve,
    commands_targets,
)
from gemmawatch.errors import GemmawatchError, one_line

app = typer.Typer(
    name="gemmawatch",
    help="Benchmark, safety and monitoring dashboard for Google's Gemma models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _configure(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show library warnings and debug logging."),
) -> None:
    """Benchmark, safety and monitoring dashboard for Google's Gemma models."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not verbose:
        # lm-eval warns on every run of a custom_dataset task and on groups whose
        # subtasks report different metrics; both are expected for the smoke suite.
        logging.getLogger("lm_eval").setLevel(logging.ERROR)


app.command("demo")(commands_serve.demo)
app.command("eval")(commands_eval.eval_command)
app.command("dashboard")(commands_serve.dashboard)
app.command("parity")(commands_parity.parity)
app.command("compare")(commands_compare.compare)
app.command("monitor")(commands_monitor.monitor)
app.command("safety")(commands_safety.safety_command)
app.command("redteam")(commands_redteam.redteam_command)
app.command("report")(commands_report.report_command)
app.add_typer(commands_targets.app, name="targets")
app.add_typer(commands_runs.app, name="runs")
app.add_typer(commands_db.app, name="db")
app.add_typer(commands_bench.app, name="bench")
app.add_typer(commands_alerts.app, name="alerts")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status.

    Typer runs in standalone mode, so usage errors print click's usage text and
    exit 2 through SystemExit; our own errors are caught here.
    """
    try:
        app(args=argv, prog_name="gemmawatch")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except GemmawatchError as exc:
        typer.echo(f"gemmawatch: error: {one_line(str(exc))}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("gemmawatch: interrupted", err=True)
        return 130
    return 0


def run() -> None:
    """Console-script wrapper: exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    run()
