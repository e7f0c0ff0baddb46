"""The parity panel of the Run page: agreement and score difference of two targets, and where they differ.

Shown for runs of kind ``parity`` (``gemmawatch parity A B``). Item texts are model
inputs and answers, so they are shown only as dataframe cells (plain text).
"""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from gemmawatch.dashboard import data

__all__ = ["render"]


def _interval(row: dict[str, Any] | None, fmt: str) -> str:
    if row is None or row.get("ci_low") is None or row.get("ci_high") is None:
        return "no interval"
    return f"95% CI [{format(row['ci_low'], fmt)}, {format(row['ci_high'], fmt)}]"


def _value(row: dict[str, Any] | None, fmt: str) -> str:
    value = None if row is None else row.get("value")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def _target_name(config: dict[str, Any], key: str) -> str:
    target = config.get(key) or {}
    return str(target.get("name") or "-") if isinstance(target, dict) else "-"


def render(summary: dict[str, Any]) -> None:
    """Draw the parity panel of one run summary (``data.run_summary``)."""
    st.subheader("Parity")
    config = summary.get("config") or {}
    rows = {m["metric"]: m for m in summary.get("metrics") or [] if m.get("task") == "parity"}
    st.caption(
        f"A = {_target_name(config, 'target_a')} · B = {_target_name(config, 'target_b')} · "
        "answers of the smoke suite's multiple-choice items, compared item by item"
    )
    if not rows:
        st.info("This parity run stored no comparison (it may have failed or still be running).")
        return
    agreement, diff, p = rows.get("agreement"), rows.get("acc_diff"), rows.get("mcnemar_p")
    n = (agreement or {}).get("n")
    cols = st.columns(4)
    cols[0].metric("Agreement", _value(agreement, ".1%"), help=_interval(agreement, ".3f") + " (Wilson)")
    cols[1].metric("Items (n)", "-" if n is None else str(n))
    cols[2].metric("Accuracy B − A", _value(diff, "+.3f"), help=_interval(diff, "+.3f") + " (paired bootstrap)")
    cols[3].metric("McNemar p", _value(p, ".3g"), help="Exact test on the items only one of the two got right")
    st.caption(
        f"Agreement {_interval(agreement, '.3f')} · accuracy A {_value(rows.get('acc_a'), '.3f')}, "
        f"B {_value(rows.get('acc_b'), '.3f')} · B − A {_interval(diff, '+.3f')}"
    )
    frame = data.parity_disagreements(int(summary["id"]))
    if frame.empty:
        st.success("Both targets chose the same answer on every item.")
        return
    st.markdown(f"**Items where the answers differ ({len(frame)})**")
    st.dataframe(
        frame,
        hide_index=True,
        column_config={"prompt": st.column_config.TextColumn("prompt", width="large")},
        key=f"parity_disagreements_{summary['id']}",
    )
