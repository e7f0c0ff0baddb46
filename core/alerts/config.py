"""The ``alerts:`` and ``notifications:`` sections of ``gemmawatch.yaml``.

Example::

    notifications:                    # per severity, Apprise URLs
      critical: ["pagerduty://${PD_KEY}@${PD_ROUTING_KEY}"]
      warning: ["slack://${SLACK_TOKEN_A}/${SLACK_TOKEN_B}/${SLACK_TOKEN_C}"]

    alerts:
      - name: slow-p95                # threshold on a run's metric (after every run)
        task: latency
        metric: e2e_s_p95
        comparator: ">"
        threshold: 2.5
        target: "gemma-*"             # fnmatch glob over target names (optional)
      - name: gpu-hot                 # threshold on a run's telemetry aggregate
        metric: max(gpu.temperature_c)
        comparator: ">="
        threshold: 85
        severity: critical
      - name: slow-canary             # threshold on a telemetry window (every monitor tick)
        source: telemetry
        metric: probe.e2e_s
        labels: {probe: canary}
        aggregation: p95              # last, avg, min, max, p95, rate, error_ratio
        window: 5m
        for: 2m                       # pending until breached this long
        comparator: ">"
        threshold: 3
        notify: ["json://127.0.0.1:8080/hooks"]
      - name: refusals-dropped        # regression against a baseline run
        kind: regression
        task: safety_refusal
        metric: refusal_rate
        baseline: previous            # or run:42, label:release-1
        max_drop: 0.05
        alpha: 0.05
        severity: critical

Every problem becomes one :class:`~gemmawatch.errors.ConfigError` line naming
the rule (name and position), the field and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from gemmawatch.alerts.durations import DURATION_HINT
from gemmawatch.alerts.regression import BASELINE_HINT, RegressionRule
from gemmawatch.alerts.rules import ThresholdRule, shown_url
from gemmawatch.alerts.window import WindowRule
from gemmawatch.errors import ConfigError, one_line

#: Any rule the engine evaluates.
AnyRule = ThresholdRule | WindowRule | RegressionRule

SEVERITY_NAMES = ("info", "warning", "critical")
_URL_HINT = "write Apprise URLs such as slack://TokenA/TokenB/TokenC or json://host:port/path"

#: The fix proposed for a bad value of each field.
_FIX: dict[str, str] = {
    "comparator": "use one of <, <=, >, >=",
    "severity": "use info, warning or critical",
    "aggregation": "use one of last, avg, min, max, p95, rate, error_ratio",
    "for": DURATION_HINT,
    "window": DURATION_HINT,
    "baseline": BASELINE_HINT,
    "alpha": "use a significance level between 0 and 1, such as 0.05",
    "max_drop": "give the largest tolerated drop as a number >= 0, in the metric's unit",
    "notify": _URL_HINT,
    "threshold": "give a finite number",
    "labels": "write labels as a mapping, such as {probe: canary}",
    "group_by": "list label names (or host), such as [host, target]",
    "metric": "name the metric, such as e2e_s_p95 or max(process.rss_mb)",
}


def _as_mapping(item: Any) -> Mapping[str, Any] | None:
    if isinstance(item, Mapping):
        return item
    dump = getattr(item, "model_dump", None)  # another parsed config model
    if callable(dump):
        return {k: v for k, v in dump(by_alias=True).items() if v is not None or k == "task"}
    return None


def rule_class(raw: Mapping[str, Any]) -> type[ThresholdRule] | type[WindowRule] | type[RegressionRule]:
    """The model for a raw rule, from its ``kind`` and ``source``.

    Raises:
        ValueError: Unknown kind or source (the message names the field).
    """
    kind = raw.get("kind", "threshold")
    source = raw.get("source", "run")
    if kind == "regression":
        return RegressionRule
    if kind != "threshold":
        raise ValueError(f"kind: {kind!r} is not a rule kind. Fix: use kind: threshold or kind: regression")
    if source == "telemetry":
        return WindowRule
    if source != "run":
        raise ValueError(f"source: {source!r} is not a data source. Fix: use source: run or source: telemetry")
    return ThresholdRule


def validate_rule(raw: Mapping[str, Any], *, label: str = "alert rule", source: str = "gemmawatch.yaml") -> AnyRule:
    """Validate one raw rule into its model.

    Raises:
        ConfigError: One line: ``Invalid <label> in <source>: field 'x': <problem>. Fix: <fix>``.
    """
    try:
        cls = rule_class(raw)
    except ValueError as exc:
        field, _, rest = str(exc).partition(": ")
        raise ConfigError(one_line(f"Invalid {label} in {source}: field '{field}': {rest}")) from exc
    try:
        return cls.model_validate(dict(raw))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(rule)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        top = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(f.alias or n for n, f in cls.model_fields.items()))
            fix = f"remove '{field}' or correct its spelling (fields of this rule kind: {allowed})"
        elif err["type"] == "missing":
            fix = f"add '{field}'"
        else:
            fix = _FIX.get(top, "correct that field")
            msg = msg.removesuffix(f"; {fix}")
        raise ConfigError(one_line(f"Invalid {label} in {source}: field '{field}': {msg}. Fix: {fix}")) from exc


def parse_alert_rules(data: Iterable[Any] | None, *, source: str = "gemmawatch.yaml") -> list[AnyRule]:
    """Validate the ``alerts:`` list into rules.

    Args:
        data: The list under ``alerts:`` (mappings; see the module docstring),
            already parsed rules (passed through), or ``None``.
        source: Names the file in error messages.

    Raises:
        ConfigError: One line naming the rule (by name and position), the
            field and the fix, for the first problem found.
    """
    if data is None:
        return []
    if isinstance(data, str | bytes | Mapping):
        raise ConfigError(f"'alerts' in {source} must be a list of rules. Fix: write each rule as '- name: ...'")
    rules: list[AnyRule] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        where = f"alerts[{i}]"
        if isinstance(item, ThresholdRule | WindowRule | RegressionRule):
            rule: AnyRule = item
            label = f"alert rule {item.name!r} ({where})"
        else:
            raw = _as_mapping(item)
            if raw is None:
                raise ConfigError(
                    f"{where} in {source} is a {type(item).__name__}, not a rule. "
                    "Fix: give name, metric, comparator and threshold as a mapping"
                )
            name = raw.get("name")
            label = f"alert rule {name!r} ({where})" if isinstance(name, str) and name else f"alert rule {where}"
            rule = validate_rule(raw, label=label, source=source)
        if rule.name in seen:
            raise ConfigError(f"Duplicate {label} in {source}. Fix: give every alert rule a unique name")
        seen.add(rule.name)
        rules.append(rule)
    return rules


def parse_notifications(data: Any, *, source: str = "gemmawatch.yaml") -> dict[str, tuple[str, ...]]:
    """Validate the ``notifications:`` mapping (severity -> Apprise URLs).

    A single URL may be written without the list. Only the form is checked
    here (a ``SCHEME://`` prefix); whether Apprise can use a URL shows when it
    is sent (``gemmawatch alerts test-notify URL`` checks one now).

    Raises:
        ConfigError: One line naming the severity or URL and the fix.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"'notifications' in {source} must map severities to URLs. "
            "Fix: write e.g. notifications: {critical: [pagerduty://...], warning: [slack://...]}"
        )
    routes: dict[str, tuple[str, ...]] = {}
    for severity, urls in data.items():
        if severity not in SEVERITY_NAMES:
            raise ConfigError(
                f"notifications.{severity} in {source} is not a severity. Fix: use info, warning or critical"
            )
        items = [urls] if isinstance(urls, str) else urls
        if items is None:
            items = []
        if not isinstance(items, list | tuple):
            raise ConfigError(f"notifications.{severity} in {source} must be a list of URLs. Fix: {_URL_HINT}")
        for i, url in enumerate(items):
            if not isinstance(url, str) or "://" not in url:
                raise ConfigError(
                    f"notifications.{severity}[{i}] in {source} ({shown_url(url)}) is not a notification URL: "
                    f"it has no SCHEME:// prefix. Fix: {_URL_HINT}"
                )
        routes[str(severity)] = tuple(u.strip() for u in items)
    return routes
