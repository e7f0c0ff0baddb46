"""Safety checks on probe outputs, built by name through ``gemmawatch.evals.safety.get_check``.

A probe lists checks as names (``checks: [pii, refusal]``) or as a name with
arguments (``{name: pii, categories: [email, phone]}``). They are built once at
start (a mistake is a ConfigError naming the probe's field) and run on every
answered probe with the prompt for context.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gemmawatch.errors import ConfigError, GemmawatchError, one_line

if TYPE_CHECKING:
    from gemmawatch.evals.safety import SafetyCheck

log = logging.getLogger(__name__)

__all__ = ["CheckOutcome", "NamedCheck", "resolve_checks", "run_checks"]

#: How a probe names a check: ``"pii"`` or ``{"name": "pii", **arguments}``.
CheckSpec = str | Mapping[str, Any]


@dataclass(frozen=True)
class NamedCheck:
    """A built check and the name the config used for it."""

    name: str
    check: SafetyCheck


@dataclass(frozen=True)
class CheckOutcome:
    """One check's verdict on one output (``error`` set when the check itself failed)."""

    name: str
    flagged: bool
    score: float | None = None
    details: Any = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict for the sample's ``scores``."""
        out: dict[str, Any] = {"flagged": self.flagged, "score": self.score}
        if self.details:
            out["details"] = _jsonable(self.details)
        if self.error is not None:
            out["error"] = self.error
        return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


def _split(spec: CheckSpec, where: str) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    args = dict(spec)
    name = args.pop("name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: a check written as a mapping needs a name. Fix: write {{name: pii, ...}}")
    return name, args


def resolve_checks(specs: Sequence[CheckSpec], *, where: str = "checks") -> list[NamedCheck]:
    """Build every check of ``specs``; a ConfigError naming ``where`` for an unknown name or bad arguments."""
    if not specs:
        return []
    from gemmawatch.evals.safety import get_check

    out = []
    for i, spec in enumerate(specs):
        name, args = _split(spec, f"{where}.{i}")
        try:
            out.append(NamedCheck(name, get_check(name, **args)))
        except GemmawatchError as exc:
            raise ConfigError(f"{where}.{i}: {one_line(str(exc))}. Fix: use a listed check and its arguments") from exc
    return out


def run_checks(checks: Sequence[NamedCheck], text: str, *, prompt: str | None = None) -> list[CheckOutcome]:
    """Every check's verdict on ``text``; a check that raises is reported, never propagated."""
    outcomes = []
    for named in checks:
        try:
            result = named.check.check(text, prompt=prompt)
            score = None if result.score is None else float(result.score)
            outcomes.append(CheckOutcome(named.name, bool(result.flagged), score, result.details))
        except Exception as exc:  # one broken check must not lose the probe
            log.warning("safety check %s failed: %s", named.name, exc)
            outcomes.append(CheckOutcome(named.name, False, error=one_line(f"{type(exc).__name__}: {exc}")[:300]))
    return outcomes
