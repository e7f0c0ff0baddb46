"""gemmawatch.yaml parsing and its one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gemmawatch.config import load_config, parse_config
from gemmawatch.errors import ConfigError


def test_full_config_parses() -> None:
    cfg = parse_config(
        """
database: sqlite:///x.db
targets:
  prod-gemma:
    backend: transformers
    model: google/gemma-3-1b-it
    dtype: bfloat16
    options: {device: cpu}
alerts:
  - {name: slow, metric: e2e_s_p95, task: latency, comparator: ">", threshold: 2.5, severity: critical}
""",
        "g.yaml",
    )
    assert cfg.database == "sqlite:///x.db"
    assert cfg.targets["prod-gemma"].model == "google/gemma-3-1b-it"
    assert cfg.alerts[0].threshold == 2.5 and cfg.alerts[0].comparator == ">"
    assert cfg.source == "g.yaml"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("targets: [unclosed\n", "Malformed YAML in g.yaml at line"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("targets:\n  a: {backend: transformers}\n", "targets.a.model: Field required"),
        (
            "alerts:\n  - {name: x, metric: m, comparator: '=>', threshold: 1}\n",
            "alert rule 'x' (alerts[0]) in g.yaml: field 'comparator'",
        ),
        ("colour: blue\n", "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_place(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "g.yaml")
    msg = str(info.value)
    assert expected in msg
    assert "\n" not in msg
    assert "Fix:" in msg


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_implicit_file_is_optional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GEMMAWATCH_CONFIG", raising=False)
    assert load_config().targets == {}
    (tmp_path / "gemmawatch.yaml").write_text("targets:\n  t: {backend: transformers, model: m}\n")
    assert list(load_config().targets) == ["t"]
