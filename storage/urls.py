"""Database URLs: which one to use, how to print it, and the one-line errors naming it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs
from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from gemmawatch.errors import DatabaseError, one_line

#: Environment variable holding the database URL.
ENV_VAR = "GEMMAWATCH_DB"
#: Where to set the URL, for the "Fix:" half of error messages.
WHERE = "--db / GEMMAWATCH_DB"
#: Drivers SQLAlchemy should use when a URL names only the database kind.
_DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


def default_url() -> str:
    """The SQLite file used when neither an argument nor ``GEMMAWATCH_DB`` gives a URL."""
    path = Path(platformdirs.user_data_dir("gemmawatch")) / "gemmawatch.db"
    return f"sqlite:///{path}"


def resolve_url(url: str | None = None) -> str:
    """Pick the database URL: explicit ``url`` > ``$GEMMAWATCH_DB`` > :func:`default_url`.

    A plain file path (``runs.db``) becomes a SQLite URL, ``~`` is expanded in
    SQLite paths, and ``postgresql://`` gets the installed psycopg 3 driver.
    The string is not validated here; :func:`get_engine` does that.
    """
    chosen = (url or "").strip() or os.environ.get(ENV_VAR, "").strip() or default_url()
    if "://" not in chosen and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:", chosen):
        return f"sqlite:///{Path(chosen).expanduser()}"
    scheme, sep, rest = chosen.partition("://")
    scheme = _DEFAULT_DRIVERS.get(scheme, scheme)
    if scheme == "sqlite" and rest.startswith("/~"):
        rest = "/" + str(Path(rest[1:]).expanduser())
    return f"{scheme}{sep}{rest}"


def mask_url(url: str | URL) -> str:
    """``url`` with its password replaced by ``***``, safe to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", str(url))


def database_error(masked: str, exc: DBAPIError, *, doing: str = "connect to") -> DatabaseError:
    """A one-line DatabaseError for a driver error: the URL, the reason, and a fix that fits it."""
    reason = one_line(str(exc.orig) if exc.orig is not None else str(exc)).rstrip(".")
    lowered = reason.lower()
    if "does not exist" in lowered and "database" in lowered:
        fix = f"create it (createdb NAME) or pass a different {WHERE}"
    elif "password" in lowered or "authentication" in lowered:
        fix = f"check the user and password in the URL ({WHERE})"
    elif "database is locked" in lowered:
        fix = "another process is writing to it for too long; retry when it is done"
    elif "unable to open database file" in lowered or "readonly" in lowered:
        fix = f"pass a writable file path ({WHERE})"
    else:
        fix = f"start the server or pass a different {WHERE}"
    end = "" if reason.endswith(("?", "!")) else "."
    return DatabaseError(f"Cannot {doing} the database {masked}: {reason}{end} Fix: {fix}")
