"""The short table ``gemmawatch demo`` prints after its runs."""

from __future__ import annotations

from gemmawatch.cli.options import print_table


def _metric(metrics: list[dict], task: str, metric: str) -> dict | None:
    return next((m for m in metrics if m["task"] == task and m["metric"] == metric), None)


def _fmt(m: dict | None, unit: str = "") -> str:
    if m is None or m["value"] is None:
        return "-"
    ci = ""
    if m.get("ci_low") is not None and m.get("ci_high") is not None:
        ci = f" [{m['ci_low']:.3g}, {m['ci_high']:.3g}]"
    return f"{m['value']:.3g}{unit}{ci} n={m['n']}"


def print_demo_summary(db_url: str, run_ids: list[int]) -> None:
    """Print smoke accuracy, latency and alert state per run."""
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import alerts as aq
    from gemmawatch.storage.queries import runs as rq

    with session_scope(get_engine(db_url)) as s:
        summaries = [rq.run_summary(s, rid) for rid in run_ids]
        firing = aq.list_alerts(s, state="firing")
    rows = []
    for summ in summaries:
        if summ is None:
            continue
        ms = summ["metrics"]
        rows.append(
            [
                str(summ["id"]),
                summ["target"] or "-",
                _fmt(_metric(ms, "smoke_mc", "acc") or _metric(ms, "smoke", "acc")),
                _fmt(_metric(ms, "smoke_gen", "exact_match")),
                _fmt(_metric(ms, "latency", "e2e_s_p50"), " s"),
                _fmt(_metric(ms, "latency", "output_tokens_per_s_mean")),
                str(summ["telemetry_count"]),
            ]
        )
    print_table(["run", "target", "smoke MC acc", "smoke gen exact", "E2E p50", "tok/s", "telemetry"], rows)
    if firing:
        print_table(
            ["firing alert", "severity", "value", "message"],
            [[a["rule"], a["severity"], f"{a['value']:.4g}", a["message"]] for a in firing],
        )
    last = f" Details: gemmawatch runs show {run_ids[-1]}" if run_ids else ""
    print(f"{len(firing)} alert(s) firing.{last}")
