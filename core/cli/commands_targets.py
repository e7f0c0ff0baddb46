"""``gemmawatch targets ...``: what can be evaluated."""

from __future__ import annotations

import typer

from gemmawatch.cli.options import ConfigOption, JsonOption, print_json, print_table

app = typer.Typer(help="Built-in and configured targets.", no_args_is_help=True)


@app.command("list")
def list_targets(config: str | None = ConfigOption, json_out: bool = JsonOption) -> None:
    """List built-in targets and those declared in gemmawatch.yaml."""
    from gemmawatch.collectors.targets import list_targets as all_targets
    from gemmawatch.config import load_config
    from gemmawatch.pipeline import config_targets

    cfg = load_config(config)
    rows = [
        {
            "name": info.name,
            "origin": origin,
            "backend": info.backend,
            "model": info.model_id,
            "dtype": info.dtype,
            "quantization": info.quantization,
            "revision": info.revision,
        }
        for info, origin in all_targets(config_targets(cfg))
    ]
    if json_out:
        print_json(rows)
        return
    print_table(
        ["name", "origin", "backend", "model", "dtype", "quantization"],
        [[str(r[k] or "-") for k in ("name", "origin", "backend", "model", "dtype", "quantization")] for r in rows],
    )


@app.command("check")
def check(
    target: str = typer.Argument(..., help="Target name or spec (BACKEND:MODEL[@BASE_URL][?k=v])."),
    degraded_after: float = typer.Option(
        10.0, "--degraded-after", min=0.0, help="Seconds of latency above which the target is degraded."
    ),
    timeout: float = typer.Option(120.0, "--timeout", min=0.1, help="Seconds the whole check may take."),
    prompt: str = typer.Option("The capital of France is", "--prompt", help="Prompt of the tiny generation."),
    max_new_tokens: int = typer.Option(8, "--max-new-tokens", min=1),
    config: str | None = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Health check: load or connect, one tiny streamed generation. Exit 0 healthy, 1 degraded/unhealthy."""
    from gemmawatch.collectors.health import check_target
    from gemmawatch.config import load_config
    from gemmawatch.pipeline import resolve_targets

    (info,) = resolve_targets([target], load_config(config))  # unknown target: user error, exit 2
    report = check_target(
        info, prompt=prompt, max_new_tokens=max_new_tokens, timeout_s=timeout, degraded_after_s=degraded_after
    )
    if json_out:
        print_json(report.to_dict())
    else:
        print_table(
            ["target", "status", "latency_s", "ttft_s", "tokens", "memory_mb"],
            [
                [
                    report.target,
                    report.status,
                    _num(report.latency_s),
                    _num(report.ttft_s),
                    _num(report.output_tokens),
                    _num(report.memory_mb, ".0f"),
                ]
            ],
        )
        for reason in report.details.get("reasons", []):
            typer.echo(f"degraded: {reason}")
        if report.error:
            typer.echo(f"error: {report.error}")
    if not report.healthy:
        raise typer.Exit(1)


def _num(value: float | None, fmt: str = ".3g") -> str:
    return "-" if value is None else format(value, fmt)
