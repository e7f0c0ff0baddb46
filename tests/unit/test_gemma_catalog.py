"""The Gemma catalog's static data (every fact sourced, keys unique, the issue's numbers) and target matching."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from gemmawatch.dashboard import gemma_catalog
from gemmawatch.dashboard.gemma_catalog import CATALOG, Fact, match_variant


def test_every_fact_has_a_google_or_launch_source() -> None:
    assert len({v.key for v in CATALOG}) == len(CATALOG) == 7
    for variant in CATALOG:
        for field in dataclasses.fields(variant):
            value = getattr(variant, field.name)
            if isinstance(value, Fact):
                assert value.value and value.source in gemma_catalog.SOURCES, (variant.key, field.name)
        assert variant.guide and variant.patterns and variant.hf_id.startswith("google/")
    assert all(url.startswith("https://") for url in gemma_catalog.SOURCES)


def test_matrix_matches_the_documented_family() -> None:
    matrix = gemma_catalog.matrix_frame().set_index("variant")
    assert list(matrix.columns) == gemma_catalog.MATRIX_COLUMNS[1:]
    assert matrix.loc["Gemma 3 1B", "context"] == "32K tokens" and matrix.loc["Gemma 3 1B", "inputs"] == "text"
    for size in ("4B", "12B", "27B"):
        assert matrix.loc[f"Gemma 3 {size}", "context"] == "128K tokens"
        assert "image" in matrix.loc[f"Gemma 3 {size}", "inputs"]
    assert "2 GB" in matrix.loc["Gemma 3n E2B", "memory footprint"]
    assert "3 GB" in matrix.loc["Gemma 3n E4B", "memory footprint"]
    assert matrix.loc["Gemma 3 270M", "context"] == "32K tokens"
    assert all(matrix["sources"].str.contains("https://ai.google.dev/"))


@pytest.mark.parametrize(
    ("model_id", "name", "key"),
    [
        ("bundled:gemma-3-270m", "gemma-3-270m", "gemma-3-270m"),
        ("google/gemma-3-1b-it", None, "gemma-3-1b"),
        ("gemma3:4b", None, "gemma-3-4b"),  # Ollama
        ("/models/gemma-3-12b-it-Q4_K_M.gguf", None, "gemma-3-12b"),
        ("gemma-3-27b-it", None, "gemma-3-27b"),  # GenAI
        ("google/gemma-3n-E2B-it", None, "gemma-3n-e2b"),
        ("gemma3n:e4b", None, "gemma-3n-e4b"),
        ("my-finetune", "gemma-3-4b-lora", "gemma-3-4b"),  # the name when the model id says nothing
        ("google/functiongemma-270m-it", None, None),
        ("google/gemma-2-9b-it", None, None),
        ("gemma-3-270mx", None, None),
        (None, None, None),
    ],
)
def test_match_variant(model_id: str | None, name: str | None, key: str | None) -> None:
    found = match_variant(model_id, name)
    assert (found.key if found else None) == key


def test_measured_frame_rows_and_commands() -> None:
    targets = [{"name": "g270", "model_id": "bundled:gemma-3-270m", "backend": "transformers", "quantization": None},
               {"name": "other", "model_id": "llama-3", "backend": "openai", "quantization": None}]  # fmt: skip
    side = pd.DataFrame([{"target": "g270", "quality run": 3, "quality": 0.5, "safety run": None, "load run": None}])
    frame = gemma_catalog.measured_frame(targets, side, {"g270": 1500.0}).set_index("variant")
    row = frame.loc["Gemma 3 270M"]
    assert (row["target"], row["status"], row["quality run"], row["peak memory (MB)"]) == (
        "g270",
        "measured",
        3,
        1500.0,
    )
    assert row["command"] == "gemmawatch eval --target g270 --tasks smoke"
    unmeasured = frame.loc["Gemma 3n E2B"]
    assert unmeasured["status"] == gemma_catalog.NOT_MEASURED
    assert unmeasured["command"] == "gemmawatch eval --target transformers:google/gemma-3n-E2B-it --tasks smoke"
    assert "other" not in frame["target"].tolist() and list(frame.columns)[-1] == "command"
    empty = gemma_catalog.measured_frame([], pd.DataFrame(), {})
    assert len(empty) == len(CATALOG) and set(empty["status"]) == {gemma_catalog.NOT_MEASURED}
    assert "gemma-3-270m --tasks smoke" in empty.iloc[0]["command"]  # the built-in target
