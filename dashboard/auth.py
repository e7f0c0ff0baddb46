"""Who may see the dashboard: loopback only, or a password / OIDC login configured through Streamlit secrets.

Two ways to authenticate, both read from ``.streamlit/secrets.toml`` (the
files Streamlit reads: ``~/.streamlit/secrets.toml`` and
``<working directory>/.streamlit/secrets.toml``):

* OIDC through Streamlit's ``st.login``: an ``[auth]`` section
  (``redirect_uri``, ``cookie_secret``, ``client_id``, ``client_secret``,
  ``server_metadata_url``, or named providers ``[auth.<name>]``). Optional
  ``[gemmawatch] allowed_emails = [...]`` limits who may log in (otherwise
  anyone the identity provider accepts);
* a shared password: ``[gemmawatch] password_sha256 = "<hex sha256 of the password>"``,
  asked on every new browser session and compared in constant time.

When both are set, OIDC wins. :func:`gate` runs before any page draws;
:func:`configured` is what ``gemmawatch dashboard`` checks before binding a
non-loopback interface.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import streamlit as st

__all__ = [
    "LOOPBACK",
    "SECRETS_SECTION",
    "authorized",
    "configured",
    "gate",
    "hash_password",
    "is_loopback",
    "mode",
    "password_matches",
    "read_secrets",
    "secrets_paths",
]

#: Interfaces that only this machine can reach.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: The gemmawatch section of secrets.toml.
SECRETS_SECTION = "gemmawatch"
#: Session key set once the password was accepted in this browser session.
_SESSION_KEY = "gemmawatch_authenticated"
#: Seconds a wrong password waits before the form comes back (slows guessing).
WRONG_PASSWORD_DELAY_S = 0.5

Mode = Literal["oidc", "password"]


def is_loopback(host: str | None) -> bool:
    """True for an interface only this machine reaches (``None``: Streamlit's own default, see :func:`gate`)."""
    return host is None or host in LOOPBACK or host.startswith("127.")


def hash_password(password: str) -> str:
    """The ``password_sha256`` value for ``password`` (hex)."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def password_matches(password: str, expected_sha256: str) -> bool:
    """Constant-time comparison of ``password``'s SHA-256 with the configured hex digest."""
    return hmac.compare_digest(hash_password(password), expected_sha256.strip().lower())


def mode(secrets: Mapping[str, Any]) -> Mode | None:
    """Which authentication ``secrets`` configure: ``"oidc"`` (an ``[auth]`` section), ``"password"``, or None."""
    auth = secrets.get("auth")
    if isinstance(auth, Mapping) and auth:
        return "oidc"
    section = secrets.get(SECRETS_SECTION)
    if isinstance(section, Mapping) and str(section.get("password_sha256") or "").strip():
        return "password"
    return None


def secrets_paths(cwd: Path | None = None) -> list[Path]:
    """The secrets files a Streamlit server started in ``cwd`` reads (later ones override earlier)."""
    return [Path.home() / ".streamlit" / "secrets.toml", (cwd or Path.cwd()) / ".streamlit" / "secrets.toml"]


def read_secrets(paths: Iterable[Path]) -> dict[str, Any]:
    """Merge the top-level sections of the TOML files that exist (a broken file raises ``ValueError``)."""
    merged: dict[str, Any] = {}
    for path in paths:
        if not path.is_file():
            continue
        try:
            merged.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from exc
    return merged


def configured(cwd: Path | None = None) -> Mode | None:
    """The authentication the dashboard server started in ``cwd`` will enforce, or None."""
    return mode(read_secrets(secrets_paths(cwd)))


def _secrets() -> Mapping[str, Any]:
    try:
        return {key: st.secrets[key] for key in st.secrets}
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return {}


def authorized() -> bool:
    """True when this browser session may see the pages now (draws nothing; :func:`gate` asks)."""
    secrets = _secrets()
    how = mode(secrets)
    if how == "oidc":
        return bool(st.user.is_logged_in) and _email_allowed(secrets)
    if how == "password":
        return bool(st.session_state.get(_SESSION_KEY))
    return is_loopback(st.get_option("server.address"))


def _email_allowed(secrets: Mapping[str, Any]) -> bool:
    section = secrets.get(SECRETS_SECTION)
    allowed = section.get("allowed_emails") if isinstance(section, Mapping) else None
    return not allowed or str(st.user.get("email", "")).lower() in {str(e).lower() for e in allowed}


def gate() -> None:
    """Stop the script unless this browser session may see the dashboard; call before anything renders.

    Without configured authentication the dashboard renders only when the
    server is bound to loopback (``gemmawatch dashboard`` refuses anything
    else; this also covers a server started by hand with ``--server.address``).
    """
    secrets = _secrets()
    how = mode(secrets)
    if how == "oidc":
        _oidc(secrets)
    elif how == "password":
        _password(str(secrets[SECRETS_SECTION]["password_sha256"]))
    elif not is_loopback(st.get_option("server.address")):
        st.error(
            "This dashboard is bound to a non-loopback address without authentication. "
            "Fix: set [gemmawatch] password_sha256 or an [auth] section in .streamlit/secrets.toml"
        )
        st.stop()


def _oidc(secrets: Mapping[str, Any]) -> None:
    if not st.user.is_logged_in:
        st.title("gemmawatch")
        st.button("Log in", on_click=st.login, type="primary")
        st.stop()
    if not _email_allowed(secrets):
        st.error("This account may not see the dashboard. Fix: ask an administrator to add it to allowed_emails")
        st.button("Log out", on_click=st.logout)
        st.stop()
    st.sidebar.button("Log out", on_click=st.logout)


def _password(expected_sha256: str) -> None:
    if st.session_state.get(_SESSION_KEY):
        return
    st.title("gemmawatch")
    with st.form("gemmawatch_login"):
        password = st.text_input("Password", type="password", key="gemmawatch_password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted:
        if password_matches(password, expected_sha256):
            st.session_state[_SESSION_KEY] = True
            st.rerun()
        time.sleep(WRONG_PASSWORD_DELAY_S)
        st.error("Wrong password.")
    st.stop()
