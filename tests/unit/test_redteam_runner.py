"""garak's command line, config and environment; finding garak's interpreter; request checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from gemmawatch.errors import ConfigError, MissingDependencyError, UserError
from gemmawatch.evals.redteam import garak_runner as gr
from gemmawatch.redteam_pipeline import RedteamRequest, check_request


def _spec(tmp_path: Path, **kw: object) -> gr.GarakSpec:
    return gr.GarakSpec(probes=["encoding.InjectHex", "dan"], run_dir=tmp_path / "run-7", **kw)  # type: ignore[arg-type]


def test_config_puts_reports_in_the_run_folder(tmp_path: Path) -> None:
    spec = _spec(tmp_path, generations=3, seed=5, prompt_cap=4)
    config = yaml.safe_load(gr.write_config(spec).read_text())
    assert config["reporting"] == {"report_dir": str(spec.run_dir), "report_prefix": "gemmawatch"}
    assert config["run"] == {
        "generations": 3,
        "seed": 5,
        "eval_threshold": 0.5,
        "deprefix": True,
        "soft_probe_prompt_cap": 4,
    }
    assert config["system"]["parallel_attempts"] is False
    assert spec.report_path == spec.run_dir / "gemmawatch.report.jsonl"
    assert "soft_probe_prompt_cap" not in yaml.safe_load(gr.write_config(_spec(tmp_path)).read_text())["run"]


def test_command_drives_the_bridge(tmp_path: Path) -> None:
    spec = _spec(tmp_path, generations=2)
    install = gr.GarakInstall(Path("/venv/bin/python"), "0.17.1")
    command = gr.build_command(install, spec, spec.run_dir / "garak.yaml")
    assert command[:3] == ["/venv/bin/python", "-m", "garak"]
    flags = dict(zip(command[3::2], command[4::2], strict=False))
    assert flags["--target_type"] == "function.Multiple"
    assert flags["--target_name"] == "gemmawatch_garak_bridge#generate"
    assert flags["--probes"] == "encoding.InjectHex,dan" and flags["--generations"] == "2"


def test_environment_owns_every_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMMAWATCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    spec = _spec(tmp_path)
    env = gr.garak_environment(spec, {"GEMMAWATCH_RELAY_URL": "http://127.0.0.1:1/generate"})
    assert env["PYTHONPATH"] == str(spec.run_dir)
    assert env["XDG_DATA_HOME"].startswith(str(spec.run_dir)) and env["XDG_CONFIG_HOME"].startswith(str(spec.run_dir))
    assert env["XDG_CACHE_HOME"] == str(tmp_path / "cache" / "garak-cache")
    assert env["HF_HUB_OFFLINE"] == "1" and env["GEMMAWATCH_RELAY_URL"].endswith("/generate")


def test_find_garak_explicit_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="--garak-python .* does not exist"):
        gr.find_garak(str(tmp_path / "missing-python"))
    monkeypatch.setenv(gr.GARAK_PYTHON_ENV, str(tmp_path / "env-python"))
    with pytest.raises(UserError, match="GEMMAWATCH_GARAK_PYTHON"):
        gr.find_garak()
    monkeypatch.setattr(gr, "_version_of", lambda python: None)
    with pytest.raises(UserError, match="has no garak.*--install-garak"):
        gr.find_garak(sys.executable)
    monkeypatch.setattr(gr, "_version_of", lambda python: "0.17.1")
    assert gr.find_garak(sys.executable) == gr.GarakInstall(Path(sys.executable), "0.17.1")


def test_missing_garak_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gr.GARAK_PYTHON_ENV, raising=False)
    monkeypatch.setenv("GEMMAWATCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(gr, "_version_of", lambda python: None)
    with pytest.raises(MissingDependencyError, match="gemmawatch redteam --install-garak"):
        gr.find_garak()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"generations": 0}, "--generations must be 1..100"),
        ({"generations": 101}, "--generations must be 1..100"),
        ({"max_new_tokens": 0}, "--max-new-tokens"),
        ({"prompt_cap": 0}, "--prompt-cap"),
        ({"temperature": -1.0}, "--temperature"),
        ({"probes": []}, "No probes selected"),
        ({"probes": ["encoding.InjectHex; rm -rf /"]}, "is not MODULE or MODULE.Class"),
        ({"probes": ["dan", "dan"]}, "given twice"),
    ],
)
def test_request_checks(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_request(RedteamRequest(target="t", **changes))  # type: ignore[arg-type]


def test_default_probes() -> None:
    assert check_request(RedteamRequest(target="t")) == list(gr.DEFAULT_PROBES)
    assert check_request(RedteamRequest(target="t", probes=["lmrc", "dan.Dan_11_0"])) == ["lmrc", "dan.Dan_11_0"]
