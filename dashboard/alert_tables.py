"""Table shaping and rule forms of the Alerts page: pure functions, no Streamlit, no database.

Rules are shown and built with the alert engine's own functions
(:func:`gemmawatch.alerts.catalog.rule_from_row` for the condition in words,
:func:`gemmawatch.alerts.notify.redact_url` for receiver URLs, which may hold
tokens), so the page says what ``gemmawatch alerts rules`` says. A form becomes
the raw mapping of one ``alerts:`` entry of ``gemmawatch.yaml``; the write path
(:func:`gemmawatch.dashboard.alert_data.save_rule`) validates it with the same
:func:`gemmawatch.alerts.config.validate_rule` the config file goes through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from gemmawatch.alerts.catalog import rule_from_row
from gemmawatch.alerts.durations import format_duration
from gemmawatch.alerts.notify import redact_url
from gemmawatch.errors import ConfigError

__all__ = [
    "ALERT_COLUMNS",
    "HIGHER_IS_BETTER",
    "RULE_COLUMNS",
    "RULE_KINDS",
    "alerts_frame",
    "events_frame",
    "form_values",
    "notifications_frame",
    "parse_labels",
    "rule_kind_of",
    "rule_raw",
    "rules_frame",
]

ALERT_COLUMNS = ["id", "state", "severity", "rule", "target", "value", "since", "acked", "silenced until", "message"]
RULE_COLUMNS = ["name", "enabled", "kind", "on", "condition", "for", "severity", "target", "notify", "origin"]

#: Rule kinds offered by the form -> (``kind``, ``source``) of the rule mapping.
RULE_KINDS: dict[str, tuple[str, str]] = {
    "Threshold on a run's metric": ("threshold", "run"),
    "Threshold on a telemetry window": ("threshold", "telemetry"),
    "Regression against a baseline run": ("regression", "run"),
}
#: ``higher_is_better`` choices of a regression rule.
HIGHER_IS_BETTER: dict[str, bool | None] = {"from the stored metric": None, "higher": True, "lower": False}


def _time(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def alerts_frame(rows: Iterable[Mapping[str, Any]], *, now: datetime) -> pd.DataFrame:
    """Alerts (``list_alerts`` dicts) for display, newest first: ``since`` is when it fired (else
    first breached), ``acked`` a flag, ``silenced until`` only while the silence runs."""
    out = []
    for r in rows:
        silenced = _time(r.get("silenced_until"))
        out.append(
            {
                "id": int(r["id"]),
                "state": r["state"],
                "severity": r.get("severity"),
                "rule": r.get("rule"),
                "target": r.get("target") or r.get("series") or "-",
                "value": r.get("value"),
                "since": _time(r.get("fired_at") or r.get("started_at")),
                "acked": r.get("acknowledged_at") is not None,
                "silenced until": silenced if silenced is not None and silenced > pd.Timestamp(now) else None,
                "message": r.get("message"),
            }
        )
    frame = pd.DataFrame(out, columns=ALERT_COLUMNS)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    for column in ("since", "silenced until"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def events_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """An alert's history (``alert_events`` dicts), oldest first: when, the change, value, message."""
    out = [
        {
            "at": _time(r.get("at")),
            "change": f"{r.get('from_state') or 'new'} → {r.get('to_state')}",
            "state": r.get("to_state"),
            "value": r.get("value"),
            "message": r.get("message"),
        }
        for r in rows
    ]
    frame = pd.DataFrame(out, columns=["at", "change", "state", "value", "message"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    return frame


def notifications_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Deliveries of an alert's notifications (URLs were redacted before they were stored)."""
    columns = ["sent_at", "transition", "url", "ok", "attempts", "error"]
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    frame["sent_at"] = pd.to_datetime(frame["sent_at"], utc=True)
    frame["url"] = [redact_url(str(u)) if u is not None and "***" not in str(u) else u for u in frame["url"]]
    return frame


def rule_kind_of(row: Mapping[str, Any]) -> str:
    """The form's kind name (a key of :data:`RULE_KINDS`) of a stored rule row."""
    if row.get("kind") == "regression":
        return "Regression against a baseline run"
    return "Threshold on a telemetry window" if row.get("data_source") == "telemetry" else "Threshold on a run's metric"


def _condition(row: Mapping[str, Any]) -> str:
    try:
        return " ".join(rule_from_row(row).condition.split())
    except ValueError as exc:  # a row edited by hand, or written by a newer version
        return f"invalid: {' '.join(str(exc).split())[:200]}"


def rules_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Stored rules (``list_rules`` dicts) for display, ordered by name; receiver URLs redacted."""
    out = [
        {
            "name": r["name"],
            "enabled": bool(r.get("enabled")),
            "kind": r.get("kind"),
            "on": r.get("data_source") or "run",
            "condition": _condition(r),
            "for": format_duration(float(r.get("for_s") or 0.0)),
            "severity": r.get("severity"),
            "target": r.get("target") or "any",
            "notify": ", ".join(redact_url(u) for u in r.get("notify") or []),
            "origin": r.get("source"),
        }
        for r in rows
    ]
    return pd.DataFrame(out, columns=RULE_COLUMNS)


def parse_labels(text: str) -> dict[str, str]:
    """``probe=canary, region=eu`` as a mapping (blank: none).

    Raises:
        ConfigError: A part without ``=`` or with an empty name.
    """
    labels: dict[str, str] = {}
    for part in (p.strip() for p in text.replace("\n", ",").split(",")):
        if not part:
            continue
        name, eq, value = part.partition("=")
        if not eq or not name.strip():
            raise ConfigError(f"Labels: {part!r} is not name=value. Fix: write labels as probe=canary, region=eu")
        labels[name.strip()] = value.strip()
    return labels


def _lines(text: str) -> list[str]:
    return [u.strip() for u in text.replace(",", "\n").splitlines() if u.strip()]


def _number(value: Any) -> Any:
    # Number inputs give floats; text stays text so the validator names the field that is wrong.
    return value if value is None or isinstance(value, int | float) else str(value).strip()


def rule_raw(form: Mapping[str, Any], *, stored_notify: Sequence[str] = ()) -> dict[str, Any]:
    """One ``alerts:`` entry (as written in ``gemmawatch.yaml``) from the rule form's values.

    ``form`` keys: ``kind`` (a key of :data:`RULE_KINDS`), ``name``, ``severity``,
    ``description``, ``target``, ``for``, ``notify`` (URLs, one per line), ``enabled``;
    per kind ``metric``, ``task``, ``comparator``, ``threshold``; ``aggregation``,
    ``window``, ``labels`` (``name=value, ...``), ``group_by`` (comma-separated);
    ``baseline``, ``max_drop``, ``alpha``, ``higher_is_better`` (a key of
    :data:`HIGHER_IS_BETTER`). Stored receiver URLs are never put back into a form
    (they may hold tokens): a blank ``notify`` keeps ``stored_notify`` unless
    ``clear_notify`` is set.

    Raises:
        ConfigError: Unparsable labels.
    """
    kind, source = RULE_KINDS[str(form["kind"])]
    notify = _lines(str(form.get("notify") or ""))
    if not notify and not form.get("clear_notify"):
        notify = list(stored_notify)
    raw: dict[str, Any] = {
        "name": str(form.get("name") or "").strip(),
        "kind": kind,
        "severity": form.get("severity") or "warning",
        "description": str(form.get("description") or "").strip(),
        "for": str(form.get("for") or "0s").strip() or "0s",
        "notify": notify,
        "enabled": bool(form.get("enabled", True)),
        "metric": str(form.get("metric") or "").strip(),
    }
    if str(form.get("target") or "").strip():
        raw["target"] = str(form["target"]).strip()
    if kind == "regression":
        raw["task"] = str(form.get("task") or "").strip()
        raw["baseline"] = str(form.get("baseline") or "previous").strip()
        raw["max_drop"] = _number(form.get("max_drop"))
        raw["alpha"] = _number(form.get("alpha"))
        hib = HIGHER_IS_BETTER.get(str(form.get("higher_is_better")))
        if hib is not None:
            raw["higher_is_better"] = hib
        return raw
    raw["comparator"] = form.get("comparator")
    raw["threshold"] = _number(form.get("threshold"))
    if source == "telemetry":
        raw["source"] = "telemetry"
        raw["aggregation"] = form.get("aggregation") or "avg"
        raw["window"] = str(form.get("window") or "5m").strip()
        raw["labels"] = parse_labels(str(form.get("labels") or ""))
        group_by = [g.strip() for g in str(form.get("group_by") or "").split(",") if g.strip()]
        if group_by:
            raw["group_by"] = group_by
    elif str(form.get("task") or "").strip():
        raw["task"] = str(form["task"]).strip()
    return raw


def form_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """The rule form's starting values for a stored rule (the inverse of :func:`rule_raw`).

    ``notify`` starts blank: stored URLs may hold tokens and are shown redacted instead.
    """
    hib = row.get("higher_is_better")
    hib_choice = next((k for k, v in HIGHER_IS_BETTER.items() if v is not None and v == hib), "from the stored metric")
    return {
        "kind": rule_kind_of(row),
        "name": row["name"],
        "severity": row.get("severity") or "warning",
        "description": row.get("description") or "",
        "target": row.get("target") or "",
        "for": format_duration(float(row.get("for_s") or 0.0)),
        "notify": "",
        "enabled": bool(row.get("enabled", True)),
        "metric": row.get("metric") or "",
        "task": row.get("task") or "",
        "comparator": row.get("comparator") or ">",
        "threshold": float(row["threshold"]) if row.get("threshold") is not None else 0.0,
        "aggregation": row.get("aggregation") or "avg",
        "window": format_duration(float(row.get("window_s") or 300.0)),
        "labels": ", ".join(f"{k}={v}" for k, v in (row.get("labels") or {}).items()),
        "group_by": ", ".join(row.get("group_by") or []),
        "baseline": row.get("baseline") or "previous",
        "max_drop": float(row["threshold"]) if row.get("threshold") is not None else 0.0,
        "alpha": float(row.get("alpha") or 0.05),
        "higher_is_better": hib_choice,
    }
