"""The error hierarchy.

Library code raises these; only the CLI and the dashboard turn them into user
messages. Every message is one line that names the problem *and* the fix.
"""

from __future__ import annotations


class GemmawatchError(Exception):
    """Base class of every error gemmawatch raises on purpose."""

    #: Process exit status when this error reaches the CLI boundary.
    exit_code: int = 2


class UserError(GemmawatchError):
    """Bad input from the user: config, target, task, URL, dataset."""


class ConfigError(UserError):
    """A malformed or invalid configuration file or option."""


class UnknownNameError(UserError):
    """A name (target, task, backend, plugin) that no registry knows."""


class MissingDependencyError(UserError):
    """An optional dependency is not installed; the message carries the install hint."""


class DatabaseError(UserError):
    """The database URL is invalid or the server cannot be reached."""


class BackendError(GemmawatchError):
    """A model backend failed to load or to answer."""

    exit_code = 2


class RunFailedError(GemmawatchError):
    """A run was started and failed; it is stored with status ``failed``."""

    exit_code = 2


class CheckFailedError(GemmawatchError):
    """A check or gate evaluated and did not pass (exit status 1)."""

    exit_code = 1


def one_line(message: str) -> str:
    """Collapse a message onto one line, as the CLI promises."""
    return " ".join(str(message).split())
