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
