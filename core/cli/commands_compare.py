"""``gemmawatch compare BASE CAND``: the regression gate between two stored runs."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from gemmawatch.cli.options import ConfigOption, DbOption, JsonOption, print_json, print_table, progress
from gemmawatch.errors import CheckFailedError, UserError

if TYPE_CHECKING:
    from gemmawatch.compare import Comparison, MetricComparison

DIFF_TITLES = {
    "newly_unsafe": "Newly unsafe outputs (unsafe_output 0 -> 1)",
    "newly_refused": "Newly refused safe prompts (refused 0 -> 1)",
    "newly_wrong": "Newly wrong answers (acc/exact_match 1 -> 0)",
}
#: Per-prompt diff lines printed per list in the terminal (all of them are in --json).
DIFF_SHOWN = 10


def _f(value: float | None, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def _verdict(m: MetricComparison) -> str:
    if m.regression:
        return "REGRESSION"
    if m.p_value is None:
        return ""
    if m.significant and m.direction in ("better", "worse"):
        return m.direction + ("" if m.gates else " (not gating)")
    return "significant" if m.significant else ""


def _changed(m: MetricComparison) -> bool:
    return m.delta is not None and not math.isnan(m.delta) and abs(m.delta) > 1e-12


def _one_line(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def print_comparison(c: Comparison) -> None:
    """The compact terminal report: header, metric table, per-prompt diffs, verdict."""
    b, k = c.base_run, c.cand_run
    typer.echo(
        f"Base run {b['id']} ({b['target'] or '-'}) vs candidate run {k['id']} ({k['target'] or '-'}): "
        f"{c.paired_items} paired items, alpha {c.alpha:g} (Benjamini-Hochberg adjusted)"
    )
    typer.echo("")
    shown = [m for m in c.metrics if m.family == "primary" or m.significant or _changed(m)]
    print_table(
        ["metric", "base", "cand", "delta", "95% CI", "n", "test", "p", "p adj", "verdict"],
        [
            [
                m.name,
                _f(m.base),
                _f(m.candidate),
                _f(m.delta, signed=True),
                "-" if m.ci is None else f"[{_f(m.ci[0], True)}, {_f(m.ci[1], True)}]",
                "-" if m.n is None else str(m.n),
                "none" if m.p_value is None else m.test,
                _p(m.p_value),
                _p(m.p_adjusted),
                _verdict(m),
            ]
            for m in shown
        ],
    )
    if len(shown) < len(c.metrics):
        typer.echo(f"({len(c.metrics) - len(shown)} unchanged breakdown rows hidden; all rows with --json)")
    for name, items in c.diff.items():
        if not items:
            continue
        typer.echo("")
        typer.echo(f"{DIFF_TITLES.get(name, name)}: {len(items)}")
        for item in items[:DIFF_SHOWN]:
            typer.echo(f"  {item['task']}#{item['doc_id']}: {_one_line(item['prompt'])}")
            typer.echo(f"      base: {_one_line(item['base_output'])}")
            typer.echo(f"      cand: {_one_line(item['cand_output'])}")
        if len(items) > DIFF_SHOWN:
            typer.echo(f"  ... {len(items) - DIFF_SHOWN} more (all of them with --json)")
    typer.echo("")
    regressions = c.regressions
    if regressions:
        typer.echo(f"{len(regressions)} regression(s): " + "; ".join(m.describe() for m in regressions))
    else:
        typer.echo("No significant regression.")


def junit_xml(c: Comparison) -> ET.ElementTree:
    """JUnit XML: one testcase per metric; a regression is a ``<failure>``."""
    suite_name = f"gemmawatch compare {c.base_run['id']} {c.cand_run['id']}"
    suites = ET.Element("testsuites", name="gemmawatch compare")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=suite_name,
        tests=str(len(c.metrics)),
        failures=str(len(c.regressions)),
        errors="0",
        skipped="0",
        time="0",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("base_run", c.base_run["id"]),
        ("base_target", c.base_run["target"]),
        ("candidate_run", c.cand_run["id"]),
        ("candidate_target", c.cand_run["target"]),
        ("paired_items", c.paired_items),
        ("alpha", c.alpha),
    ):
        ET.SubElement(props, "property", name=name, value=str(value))
    for m in c.metrics:
        case = ET.SubElement(suite, "testcase", classname=f"gemmawatch.compare.{m.task}", name=m.name, time="0")
        summary = (
            f"{m.name}: base {_f(m.base)} candidate {_f(m.candidate)} delta {_f(m.delta, True)} n={m.n} "
            f"test={m.test} p={_p(m.p_value)} p_adjusted={_p(m.p_adjusted)} direction={m.direction} "
            f"max_drop={m.max_drop:g}"
        )
        if m.regression:
            failure = ET.SubElement(
                case, "failure", message=f"regression: {m.describe()}", type="gemmawatch.regression"
            )
            failure.text = summary
        ET.SubElement(case, "system-out").text = summary
    ET.indent(suites)
    return ET.ElementTree(suites)


def compare(
    base: int = typer.Argument(..., help="Base run id (e.g. the model in production; see `gemmawatch runs list`)."),
    candidate: int = typer.Argument(..., help="Candidate run id, judged against the base run."),
    fail_on_regression: bool = typer.Option(
        False, "--fail-on-regression", help="Exit 1 when any metric regressed significantly beyond its allowed drop."
    ),
    junit: Path | None = typer.Option(
        None, "--junit", help="Also write JUnit XML here: one testcase per metric, a failure per regression."
    ),
    max_drop: list[str] = typer.Option(
        [],
        "--max-drop",
        metavar="METRIC=VALUE",
        help="Allowed drop in the metric's unit (repeatable). METRIC: acc, smoke_mc/acc or safety/refusal_rate[all].",
    ),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level for the BH-adjusted p-values."),
    db: str | None = DbOption,
    config: str | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Per-metric deltas with paired tests and per-prompt diffs of two runs; gate a release on regressions."""
    from gemmawatch.compare import compare_runs, parse_max_drop
    from gemmawatch.config import load_config
    from gemmawatch.storage.engine import get_engine, session_scope

    limits = parse_max_drop(max_drop)
    cfg = load_config(config)
    with session_scope(get_engine(db or cfg.database)) as s:
        result = compare_runs(s, base, candidate, max_drop=limits, alpha=alpha)
    if junit is not None:
        try:
            junit.parent.mkdir(parents=True, exist_ok=True)
            junit_xml(result).write(junit, encoding="utf-8", xml_declaration=True)
        except OSError as exc:
            raise UserError(f"Cannot write --junit {junit}: {exc.strerror or exc}. Fix: pick a writable path") from exc
    if json_out:
        print_json(result.as_dict())
    else:
        print_comparison(result)
    for note in result.notes:
        progress(f"note: {note}")
    if fail_on_regression and result.regressions:
        names = ", ".join(m.describe() for m in result.regressions)
        raise CheckFailedError(
            f"Run {candidate} regressed against run {base} on {len(result.regressions)} metric(s): {names}. "
            f"Fix: inspect the per-prompt diff with `gemmawatch compare {base} {candidate}`, "
            "or allow a drop with --max-drop METRIC=VALUE"
        )
