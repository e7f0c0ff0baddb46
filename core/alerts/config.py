"""Alert rules declared in ``gemmawatch.yaml`` (the ``alerts:`` list).

Example::

    alerts:
      - name: slow-p50
        task: latency
        metric: e2e_s_p50
        comparator: ">"
        threshold: 2.5
        severity: warning
      - name: gpu-hot
        metric: max(gpu.temperature_c)
        comparator: ">="
        threshold: 85
        severity: critical
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from gemmawatch.alerts.rules import ThresholdRule
from gemmawatch.errors import ConfigError, one_line


def _as_mapping(item: Any) -> Mapping[str, Any] | None:
    if isinstance(item, Mapping):
        return item
    dump = getattr(item, "model_dump", None)  # an already-parsed config model (gemmawatch.config)
    if callable(dump):
        return {k: v for k, v in dump().items() if v is not None or k == "task"}
    return None


def parse_alert_rules(data: Iterable[Any] | None, *, source: str = "gemmawatch.yaml") -> list[ThresholdRule]:
    """Validate the ``alerts:`` list into rules.

    Args:
        data: The list under ``alerts:`` (mappings with name, metric, comparator,
            threshold and optionally task, severity, description), or ``None``.
        source: Names the file in error messages.

    Raises:
        ConfigError: One line naming the rule (by name and position), the
            field and the fix, for the first problem found.
    """
    if data is None:
        return []
    if isinstance(data, str | bytes | Mapping):
        raise ConfigError(f"'alerts' in {source} must be a list of rules. Fix: write each rule as '- name: ...'")
    rules: list[ThresholdRule] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        raw = _as_mapping(item)
        where = f"alerts[{i}]"
        if raw is None:
            raise ConfigError(
                f"{where} in {source} is a {type(item).__name__}, not a rule. "
                "Fix: give name, metric, comparator and threshold as a mapping"
            )
        name = raw.get("name")
        label = f"alert rule {name!r} ({where})" if isinstance(name, str) and name else f"alert rule {where}"
        try:
            rule = ThresholdRule.model_validate(dict(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "(rule)"
            raise ConfigError(
                one_line(f"Invalid {label} in {source}: field '{field}': {err['msg']}. Fix: correct that field")
            ) from exc
        if rule.name in seen:
            raise ConfigError(f"Duplicate {label} in {source}. Fix: give every alert rule a unique name")
        seen.add(rule.name)
        rules.append(rule)
    return rules
