"""``gemmawatch demo`` and ``gemmawatch dashboard``."""

from __future__ import annotations

import typer

from gemmawatch.cli.options import ConfigOption, DbOption, progress
from gemmawatch.errors import UserError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _check_host(host: str) -> None:
    # The dashboard shows prompts, outputs and alerts: never expose it without authentication.
    if host in LOOPBACK or host.startswith("127."):
        return
    from gemmawatch.dashboard import auth

    try:
        how = auth.configured()
    except ValueError as exc:
        raise UserError(f"Refusing to bind the dashboard to {host}: {exc}. Fix: correct the TOML syntax") from exc
    if how is None:
        raise UserError(
            f"Refusing to bind the dashboard to {host} without authentication. Fix: set "
            "[gemmawatch] password_sha256 or an OIDC [auth] section in .streamlit/secrets.toml "
            "(see README: Dashboard security), or bind to 127.0.0.1"
        )
    if how == "oidc":
        import importlib.util

        if importlib.util.find_spec("authlib") is None:
            raise UserError(
                f"Refusing to bind the dashboard to {host}: OIDC login ([auth] in secrets.toml) needs Authlib. "
                "Fix: pip install 'gemmawatch[oidc]'"
            )


def dashboard(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to bind; beyond loopback it needs a login in .streamlit/secrets.toml."
    ),
    port: int = typer.Option(8501, "--port", min=1, max=65535),
    db: str | None = DbOption,
    open_browser: bool = typer.Option(False, "--open/--no-open", help="Open a browser tab."),
) -> None:
    """Serve the Streamlit dashboard in the foreground and print its URL."""
    from gemmawatch.dashboard.launch import serve
    from gemmawatch.storage.engine import get_engine, resolve_url

    _check_host(host)
    url = resolve_url(db)
    get_engine(url)  # fail here, with one line, on a bad URL; also creates/upgrades the schema
    raise typer.Exit(serve(host=host, port=port, db_url=url, open_browser=open_browser))


def demo(
    no_dashboard: bool = typer.Option(False, "--no-dashboard", help="Stop after storing the runs."),
    db: str | None = DbOption,
    config: str | None = ConfigOption,
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most N documents per smoke task."),
    port: int = typer.Option(8501, "--port", min=1, max=65535),
) -> None:
    """Evaluate the bundled Gemma 3 270M (fp32 and bf16) on the smoke suite, then open the dashboard."""
    from gemmawatch.cli.demo_summary import print_demo_summary
    from gemmawatch.config import load_config
    from gemmawatch.pipeline import EvalRequest, run_evaluations
    from gemmawatch.storage.engine import resolve_url

    cfg = load_config(config)
    url = resolve_url(db or cfg.database)
    progress(f"gemmawatch demo: database {url}")
    request = EvalRequest(
        targets=["gemma-3-270m", "gemma-3-270m-bf16"], tasks=["smoke"], limit=limit, kind="demo", label="demo"
    )
    outcomes = run_evaluations(request, db_url=url, config=cfg, progress=progress)
    print_demo_summary(url, [o.run_id for o in outcomes])
    if no_dashboard:
        return
    from gemmawatch.dashboard.launch import serve

    raise typer.Exit(serve(host="127.0.0.1", port=port, db_url=url, open_browser=True))
