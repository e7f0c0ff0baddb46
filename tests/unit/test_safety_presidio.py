"""Presidio: used only when presidio-analyzer and a spaCy model are installed; otherwise a one-line install hint."""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass
from typing import Any

import pytest

from gemmawatch.errors import ConfigError, MissingDependencyError
from gemmawatch.evals.safety import get_check
from gemmawatch.evals.safety.presidio import PresidioCheck

HINT = "Fix: pip install presidio-analyzer && python -m spacy download en_core_web_lg"


def test_missing_presidio_gives_both_install_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)
    with pytest.raises(MissingDependencyError) as info:
        get_check("presidio")
    msg = str(info.value)
    assert msg.endswith(HINT) and "presidio-analyzer is not installed" in msg and "\n" not in msg


@dataclass
class _Result:
    entity_type: str
    start: int
    end: int
    score: float


class _FakeAnalyzer:
    """Stands in for AnalyzerEngine: finds the word 'Alice' as a PERSON."""

    calls: list[dict[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def analyze(self, **kwargs: Any) -> list[_Result]:
        type(self).calls.append(kwargs)
        text: str = kwargs["text"]
        out, pos = [], text.find("Alice")
        while pos >= 0:
            out.append(_Result("PERSON", pos, pos + 5, 0.85))
            pos = text.find("Alice", pos + 1)
        return out


class _FakeProvider:
    def __init__(self, nlp_configuration: dict[str, Any]) -> None:
        self.configuration = nlp_configuration

    def create_engine(self) -> dict[str, Any]:
        return self.configuration


def _fake_presidio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "presidio_analyzer", types.SimpleNamespace(AnalyzerEngine=_FakeAnalyzer))
    monkeypatch.setitem(
        sys.modules, "presidio_analyzer.nlp_engine", types.SimpleNamespace(NlpEngineProvider=_FakeProvider)
    )


def test_missing_spacy_model_gives_the_download_command(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("en_core_web_lg") or importlib.util.find_spec("en_core_web_sm"):
        pytest.skip("a spaCy English model is installed here")
    _fake_presidio(monkeypatch)
    with pytest.raises(MissingDependencyError) as info:
        PresidioCheck()
    msg = str(info.value)
    assert msg.endswith(HINT) and "the spaCy model is not installed" in msg
    with pytest.raises(MissingDependencyError, match="python -m spacy download en_core_web_sm"):
        PresidioCheck(spacy_model="en_core_web_sm")


def test_wiring_with_an_installed_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    _fake_presidio(monkeypatch)
    model_dir = tmp_path / "my_model"
    model_dir.mkdir()
    check = get_check("presidio", spacy_model=str(model_dir), entities=["PERSON"], chunk_chars=40)
    assert isinstance(check, PresidioCheck)
    engine = check._analyzer.kwargs
    assert engine["supported_languages"] == ["en"]
    assert engine["nlp_engine"]["models"] == [{"lang_code": "en", "model_name": str(model_dir)}]
    text = "Ｈｉ ｔｈｅｒｅ, " + "word " * 20 + "Alice met Alice again."
    _FakeAnalyzer.calls.clear()
    result = check.check(text)
    assert result.flagged and result.score == 2.0 and result.details["counts"] == {"PERSON": 2}
    first = result.details["matches"][0]
    assert text[first["start"] : first["end"]] == "Alice" and first["masked"] == "*****"
    assert len(_FakeAnalyzer.calls) > 1 and all(len(c["text"]) <= 40 for c in _FakeAnalyzer.calls)
    assert _FakeAnalyzer.calls[0]["entities"] == ["PERSON"]
    assert check.check("").score == 0.0 and not check.check("   ").flagged


def test_bad_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="score_threshold"):
        PresidioCheck(score_threshold=2)
    with pytest.raises(ConfigError, match="chunk_chars"):
        PresidioCheck(chunk_chars=0)
