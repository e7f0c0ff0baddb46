"""Dashboard authentication: which secrets configure what, the password check, the CLI's host check."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import assert_user_error, gw

from gemmawatch.cli.commands_serve import _check_host
from gemmawatch.dashboard import auth
from gemmawatch.errors import UserError


def test_password_hash_and_constant_time_match() -> None:
    digest = auth.hash_password("correct horse")
    assert len(digest) == 64
    assert auth.password_matches("correct horse", digest)
    assert auth.password_matches("correct horse", f"  {digest.upper()}\n")  # pasted with case/space
    assert not auth.password_matches("wrong", digest)
    assert not auth.password_matches("", digest)


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        ({}, None),
        ({"gemmawatch": {}}, None),
        ({"gemmawatch": {"password_sha256": "  "}}, None),
        ({"gemmawatch": {"password_sha256": "ab"}}, "password"),
        ({"auth": {"client_id": "x"}}, "oidc"),
        ({"auth": {"client_id": "x"}, "gemmawatch": {"password_sha256": "ab"}}, "oidc"),
        ({"auth": {}}, None),
    ],
)
def test_mode(secrets: dict[str, object], expected: str | None) -> None:
    assert auth.mode(secrets) == expected


@pytest.mark.parametrize(("host", "local"), [("127.0.0.1", True), ("127.0.1.1", True), ("::1", True),
                                             ("localhost", True), ("0.0.0.0", False), ("10.0.0.5", False)])  # fmt: skip
def test_is_loopback(host: str, local: bool) -> None:
    assert auth.is_loopback(host) is local


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HOME and working directory: no secrets.toml anywhere."""
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def _secrets(folder: Path, text: str) -> None:
    (folder / ".streamlit").mkdir(exist_ok=True)
    (folder / ".streamlit" / "secrets.toml").write_text(text)


def test_check_host_needs_auth_off_loopback(home: Path) -> None:
    _check_host("127.0.0.1")  # loopback needs nothing
    with pytest.raises(UserError, match=r"without authentication. Fix: set \[gemmawatch\] password_sha256"):
        _check_host("0.0.0.0")
    _secrets(home / "work", f'[gemmawatch]\npassword_sha256 = "{auth.hash_password("pw")}"\n')
    _check_host("0.0.0.0")
    assert auth.configured() == "password"


def test_check_host_reads_home_secrets_and_reports_broken_toml(home: Path) -> None:
    _secrets(home / "home", '[gemmawatch]\npassword_sha256 = "ab"\n')
    _check_host("10.1.2.3")
    _secrets(home / "work", "[gemmawatch\n")
    with pytest.raises(UserError, match="cannot read .*secrets.toml.*Fix: correct the TOML syntax"):
        _check_host("10.1.2.3")


def test_check_host_oidc_needs_authlib(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    _secrets(home / "work", '[auth]\nclient_id = "x"\n')
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "authlib" else real(name, *a))
    with pytest.raises(UserError, match=r"needs Authlib. Fix: pip install"):
        _check_host("0.0.0.0")


def test_cli_refuses_public_host_without_auth(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    proc = gw("dashboard", "--host", "0.0.0.0", "--db", f"sqlite:///{tmp_path / 'gw.db'}",
              env={"HOME": str(tmp_path / "home")}, cwd=tmp_path)  # fmt: skip
    line = assert_user_error(proc, "Refusing to bind the dashboard to 0.0.0.0", "secrets.toml")
    assert "127.0.0.1" in line
    assert not (tmp_path / "gw.db").exists()  # refused before touching the database
