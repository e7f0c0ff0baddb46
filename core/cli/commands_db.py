"""``gemmawatch db ...``: schema management."""

from __future__ import annotations

import typer

from gemmawatch.cli.options import DbOption, progress

app = typer.Typer(help="Database schema management.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(db: str | None = DbOption) -> None:
    """Upgrade the database schema to the newest Alembic revision."""
    from gemmawatch.storage.engine import resolve_url
    from gemmawatch.storage.engine import upgrade as do_upgrade

    url = resolve_url(db)
    head = do_upgrade(url)
    progress(f"Database is at revision {head}")
