"""Pure pandas for the Overview page: target health from the last probes, daily activity without gaps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

__all__ = ["HEALTH_COLUMNS", "STALE_AFTER_INTERVALS", "STALE_MIN_S", "age_text", "daily_frame", "health_frame"]

HEALTH_COLUMNS = ["target", "status", "last probe", "age", "uptime", "probes", "last E2E (s)", "error"]
#: A last probe older than this many probe intervals (and at least STALE_MIN_S) says nothing about now.
STALE_AFTER_INTERVALS = 3
STALE_MIN_S = 120.0
_ORDER = {"down": 0, "unknown": 1, "up": 2}


def age_text(seconds: float | None) -> str:
    """``"42 s ago"``, ``"5 min ago"``, ``"3.2 h ago"``, ``"2.0 d ago"``; ``"never"`` for None."""
    if seconds is None:
        return "never"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} d ago"


def _status(probe: Mapping[str, Any] | None, now: datetime) -> tuple[str, float | None]:
    if probe is None:
        return "unknown", None
    age = (now - probe["last_ts"]).total_seconds()
    if age > max(STALE_MIN_S, STALE_AFTER_INTERVALS * float(probe.get("interval_s") or 0.0)):
        return "unknown", age  # the monitor stopped probing it: its last answer is no news of now
    return ("up" if probe["up"] >= 1 else "down"), age


def health_frame(probes: Iterable[Mapping[str, Any]], targets: Iterable[str], now: datetime) -> pd.DataFrame:
    """One row per target (probed ones plus ``targets`` never probed): status up/down/unknown with its age.

    ``probes`` are ``storage.queries.overview.target_probes`` rows. Down first, then unknown, then up.
    """
    by_target = {p["target"]: p for p in probes}
    rows = []
    for name in sorted(set(by_target) | set(targets)):
        probe = by_target.get(name)
        status, age = _status(probe, now)
        rows.append(
            {
                "target": name,
                "status": status,
                "last probe": probe["last_ts"] if probe else None,
                "age": age_text(age),
                "uptime": probe["uptime"] if probe else None,
                "probes": probe["n"] if probe else 0,
                "last E2E (s)": probe["e2e_s"] if probe else None,
                "error": (probe or {}).get("error_class") if status == "down" else None,
            }
        )
    frame = pd.DataFrame(rows, columns=HEALTH_COLUMNS)
    if frame.empty:
        return frame
    order = frame["status"].map(_ORDER)
    return frame.assign(_o=order).sort_values(["_o", "target"], kind="stable").drop(columns="_o").reset_index(drop=True)


def daily_frame(activity: Iterable[Mapping[str, Any]], end: datetime, days: int) -> pd.DataFrame:
    """``daily_activity`` rows over the ``days`` UTC days up to ``end``, zero-filled: day, runs, failed, alerts."""
    last = pd.Timestamp(end).tz_convert("UTC").floor("D")
    index = pd.date_range(end=last, periods=days, freq="D", name="day")
    frame = pd.DataFrame(list(activity), columns=["day", "runs", "failed", "alerts"])
    frame["day"] = pd.to_datetime(frame["day"], utc=True)
    counts = frame.groupby("day").sum().reindex(index, fill_value=0)
    return counts.astype({"runs": int, "failed": int, "alerts": int}).reset_index()
