"""``gemmawatch bench load``: throughput and latency under load, by vLLM's definitions."""

from __future__ import annotations

from typing import Any

import typer

from gemmawatch.cli.options import (
    ConfigOption,
    DbOption,
    JsonOption,
    LabelOption,
    TelemetryIntervalOption,
    print_json,
    print_table,
    progress,
)

app = typer.Typer(help="Benchmarks: load and latency under concurrency.", no_args_is_help=True)

#: Default request budget when neither --max-requests nor --duration is given.
DEFAULT_MAX_REQUESTS = 100


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(steps: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The terminal summary: one row per step (times in ms)."""
    headers = [
        "step", "profile", "done", "fail", "req/s", "out tok/s",
        "TTFT p50", "TTFT p99", "TPOT p50", "ITL p50", "E2E p50", "E2E p99", "goodput/s",
    ]  # fmt: skip
    rows = [
        [
            str(s["step"]),
            str(s["profile"]),
            str(s.get("completed", 0)),
            str(s.get("failed", 0)),
            _num(s.get("request_throughput")),
            _num(s.get("output_throughput"), 1),
            _ms(s.get("ttft_p50_s")),
            _ms(s.get("ttft_p99_s")),
            _ms(s.get("tpot_p50_s")),
            _ms(s.get("itl_p50_s")),
            _ms(s.get("e2e_p50_s")),
            _ms(s.get("e2e_p99_s")),
            _num(s.get("goodput")),
        ]
        for s in steps
    ]
    return headers, rows


@app.command("load")
def load(
    target: str = typer.Option(..., "--target", "-t", help="Target name or spec (openai:MODEL@URL for a server)."),
    profile: str = typer.Option(
        "synchronous", "--profile", help="synchronous, concurrent, constant, poisson or sweep."
    ),
    concurrency: int | None = typer.Option(None, "--concurrency", help="Requests in flight (concurrent; sweep max)."),
    rate: float | None = typer.Option(None, "--rate", help="Requests per second (constant, poisson)."),
    burstiness: float = typer.Option(1.0, "--burstiness", help="Gamma shape of poisson gaps: 1 Poisson, <1 burstier."),
    steps: int | None = typer.Option(None, "--steps", help="Sweep steps: synchronous, max throughput, then rates."),
    max_requests: int | None = typer.Option(None, "--max-requests", help="Requests per step (budget)."),
    duration: float | None = typer.Option(None, "--duration", help="Seconds of sending per step (budget)."),
    warmup: float = typer.Option(0.0, "--warmup", help="Seconds at the start of each step left out of the figures."),
    cooldown: float = typer.Option(0.0, "--cooldown", help="Seconds at the end of each step left out of the figures."),
    dataset: str | None = typer.Option(
        None, "--dataset", help="JSONL of prompts, or suite:smoke (default: built-in synthetic prompts)."
    ),
    prompt_field: str = typer.Option("prompt", "--prompt-field", help="JSONL field holding the prompt."),
    output_tokens_field: str | None = typer.Option(
        None, "--output-tokens-field", help="JSONL field with each request's output cap."
    ),
    input_tokens: int = typer.Option(128, "--input-tokens", min=1, help="Built-in prompts: input length in tokens."),
    output_tokens: int = typer.Option(64, "--output-tokens", min=1, help="Output cap (max_tokens) per request."),
    seed: int = typer.Option(0, "--seed", help="Fixes prompt order and Poisson arrivals."),
    slo: str | None = typer.Option(None, "--slo", help="Goodput SLOs, e.g. ttft=500ms,tpot=50ms,e2e=5s."),
    ignore_eos: bool = typer.Option(False, "--ignore-eos", help="Ask the server to always generate the full cap."),
    max_inflight: int | None = typer.Option(None, "--max-inflight", help="Cap on open-loop requests in flight."),
    metrics_url: list[str] = typer.Option([], "--metrics-url", help="Prometheus endpoint to scrape (repeatable)."),
    metrics_allow: list[str] = typer.Option([], "--metrics-allow", help="Metric names/globs to keep from it."),
    telemetry_interval: float = TelemetryIntervalOption,
    label: str | None = LabelOption,
    db: str | None = DbOption,
    config: str | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Load-test one target; store every request's timings, the vLLM metrics and the telemetry."""
    from gemmawatch.collectors.load.metrics import parse_slo
    from gemmawatch.collectors.load.profiles import make_profile
    from gemmawatch.collectors.load.runner import Budget
    from gemmawatch.config import load_config
    from gemmawatch.load_pipeline import LoadTestRequest, run_load_test

    cfg = load_config(config)
    request = LoadTestRequest(
        target=target,
        profile=make_profile(
            profile, concurrency=concurrency, rate=rate, burstiness=burstiness, steps=steps, max_inflight=max_inflight
        ),
        budget=Budget(
            max_requests=max_requests if (max_requests or duration) else DEFAULT_MAX_REQUESTS,
            duration_s=duration,
            warmup_s=warmup,
            cooldown_s=cooldown,
        ),
        dataset=dataset,
        prompt_field=prompt_field,
        output_tokens_field=output_tokens_field,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        seed=seed,
        slo=parse_slo(slo) if slo else None,
        ignore_eos=ignore_eos,
        metrics_urls=metrics_url,
        metrics_allow=metrics_allow or None,
        telemetry_interval_s=telemetry_interval,
        label=label,
    )
    outcome = run_load_test(request, db_url=db or cfg.database, config=cfg, progress=progress)
    if json_out:
        print_json(outcome.as_json())
        return
    headers, rows = summary_table(outcome.steps)
    print_table(headers, rows)
    if outcome.saturation:
        typer.echo(f"Saturation: {outcome.saturation.get('reason')}")
    progress(f"Run {outcome.run_id} {outcome.status}. Details: gemmawatch runs show {outcome.run_id}")
