"""Toxicity: the offline alt-profanity-check classifier, and Detoxify only where its weights are local."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from gemmawatch.errors import ConfigError, MissingDependencyError, UserError
from gemmawatch.evals.safety import SafetyCheck, get_check
from gemmawatch.evals.safety.toxicity import DETOXIFY_CHECKPOINTS, DetoxifyCheck, ToxicityCheck, detoxify_checkpoint

pytest.importorskip("profanity_check", reason="alt-profanity-check is not installed (extra 'safety')")


@pytest.fixture(scope="module")
def tox() -> ToxicityCheck:
    return ToxicityCheck()


# --------------------------------------------------------------------------- #
# toxicity (alt-profanity-check)
# --------------------------------------------------------------------------- #


def test_registry_builds_it(tox: ToxicityCheck) -> None:
    check = get_check("toxicity", threshold=0.8)
    assert isinstance(check, ToxicityCheck) and isinstance(check, SafetyCheck)
    assert (check.name, check.applies_to, check.threshold) == ("toxicity", "both", 0.8)


@pytest.mark.parametrize(
    "text",
    [
        "You are a fucking idiot.",
        "This is a shitty product.",
        "Shut up, you stupid bitch.",
        "GO TO HELL",
        "ｆｕｃｋ you",  # full-width letters, folded
        "fu\u200bck you",  # zero-width space inside the word, removed
        "f\u00adu\u00adck off",  # soft hyphens
    ],
)
def test_profanity_is_flagged(tox: ToxicityCheck, text: str) -> None:
    result = tox.check(text)
    assert result.flagged and result.score is not None and result.score >= 0.9, result


@pytest.mark.parametrize(
    "text",
    [
        "Hello there, how can I help you today?",
        "The mitochondria is the powerhouse of the cell.",
        "I love this recipe; thank you!",
        "Le chat dort sur le canapé.",
        "How do I kill a Python process?",
        "The patient has a breast tumor.",
        "日本語のテキストです。",
        "🙂🙂🙂",
        "12345 67890",
    ],
)
def test_clean_text_is_not_flagged(tox: ToxicityCheck, text: str) -> None:
    result = tox.check(text)
    assert not result.flagged and result.score is not None and 0.0 <= result.score < 0.5, result


@pytest.mark.parametrize("text", ["", " ", "\n\t", "\u200b\u200b"])
def test_empty_text_scores_zero_without_the_model(tox: ToxicityCheck, text: str) -> None:
    assert tox.check(text).score == 0.0 and not tox.check(text).flagged


def test_threshold_decides_the_flag() -> None:
    text = "what the hell"
    score = ToxicityCheck().check(text).score
    assert score is not None and 0.5 < score < 1.0
    assert ToxicityCheck(threshold=min(1.0, score + 1e-6)).check(text).flagged is False
    assert ToxicityCheck(threshold=score).check(text).flagged is True


def test_known_limits(tox: ToxicityCheck) -> None:
    # Lexical: obfuscated spellings are missed, and English words inside other languages count.
    assert not tox.check("f u c k you").flagged
    assert not tox.check("sh1t").flagged
    assert tox.check("Die Katze schläft auf dem Sofa.").flagged  # German article "die"


def test_one_insult_in_a_long_polite_answer_is_found(tox: ToxicityCheck) -> None:
    polite = "The weather is pleasant today and the garden looks lovely. " * 2000
    text = polite + "Honestly, you are a stupid idiot. " + polite
    result = tox.check(text)
    assert result.flagged, result
    start, end = result.details["span"]
    assert "idiot" in text[start:end]
    assert result.details["windows"] > 100


def test_span_points_into_the_original_text(tox: ToxicityCheck) -> None:
    text = "ｎｉｃｅ ｗｏｒｄｓ " * 30 + "you fucking moron"
    start, end = tox.check(text).details["span"]
    assert "moron" in text[start:end]


@pytest.mark.parametrize("unit", ["a", "a ", "fuck ", "<", "🙂"])
def test_one_megabyte_is_linear(tox: ToxicityCheck, unit: str) -> None:
    text = unit * (1_000_000 // len(unit))
    start = time.perf_counter()
    result = tox.check(text)
    assert time.perf_counter() - start < 10.0
    assert result.score is not None and 0.0 <= result.score <= 1.0


def test_bad_arguments() -> None:
    for bad in (0, 1.5, -0.1, "0.5", True):
        with pytest.raises(ConfigError, match="toxicity: threshold must be a number in"):
            ToxicityCheck(threshold=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="window_words must be a positive integer"):
        ToxicityCheck(window_words=0)


def test_non_string_is_a_type_error(tox: ToxicityCheck) -> None:
    with pytest.raises(TypeError, match="text must be a str"):
        tox.check(None)  # type: ignore[arg-type]


def test_missing_package_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "profanity_check", None)  # import fails
    with pytest.raises(MissingDependencyError) as info:
        ToxicityCheck()
    msg = str(info.value)
    assert "alt-profanity-check" in msg and "pip install 'gemmawatch[safety]'" in msg and "\n" not in msg


# --------------------------------------------------------------------------- #
# detoxify: only with local weights, never downloaded
# --------------------------------------------------------------------------- #


def test_detoxify_not_installed_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "detoxify", None)
    with pytest.raises(MissingDependencyError) as info:
        get_check("detoxify")
    msg = str(info.value)
    assert "pip install detoxify" in msg and "\n" not in msg


def test_detoxify_weights_absent_say_where_to_put_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(UserError) as info:
        detoxify_checkpoint("original")
    msg = str(info.value)
    where = tmp_path / "torch" / "hub" / "checkpoints"
    assert "never downloads" in msg and str(where) in msg and "toxic_original-c1212f89.ckpt" in msg
    assert "checkpoint=PATH" in msg and "\n" not in msg
    with pytest.raises(UserError, match="does not exist"):
        detoxify_checkpoint("original", tmp_path / "missing.ckpt")
    with pytest.raises(ConfigError, match="unknown model 'huge'"):
        detoxify_checkpoint("huge")


def test_detoxify_checkpoint_found_in_the_hub_cache_or_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = tmp_path / "torch" / "hub" / "checkpoints" / DETOXIFY_CHECKPOINTS["unbiased"]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights")
    assert detoxify_checkpoint("unbiased") == cached
    own = tmp_path / "mine.ckpt"
    own.write_bytes(b"weights")
    assert detoxify_checkpoint("original", own) == own


class _FakeDetoxify:
    """Stands in for detoxify.Detoxify: records how it was built, scores 'toxic' words high."""

    built: dict[str, Any] = {}

    def __init__(self, **kwargs: Any) -> None:
        type(self).built = kwargs
        import huggingface_hub.constants

        type(self).built["offline"] = huggingface_hub.constants.HF_HUB_OFFLINE

    def predict(self, texts: list[str]) -> dict[str, list[float]]:
        tox = [0.97 if "toxic" in t else 0.01 for t in texts]
        return {"toxicity": tox, "insult": [t / 2 for t in tox]}


def test_detoxify_runs_on_local_weights_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants

    monkeypatch.setitem(sys.modules, "detoxify", types.SimpleNamespace(Detoxify=_FakeDetoxify))
    ckpt = tmp_path / "w.ckpt"
    ckpt.write_bytes(b"weights")
    before = huggingface_hub.constants.HF_HUB_OFFLINE
    check = get_check("detoxify", checkpoint=str(ckpt), threshold=0.9, window_words=5)
    assert isinstance(check, DetoxifyCheck)
    assert _FakeDetoxify.built["checkpoint"] == str(ckpt) and _FakeDetoxify.built["model_type"] == "original"
    assert _FakeDetoxify.built["offline"] is True and before == huggingface_hub.constants.HF_HUB_OFFLINE
    hit = check.check("a b c d e f g h this is toxic")
    assert hit.flagged and hit.score == 0.97 and hit.details["labels"] == {"toxicity": 0.97, "insult": 0.485}
    assert hit.details["windows"] == 4  # 11 words in windows of 5 starting every 2 words
    miss = check.check("kind words only")
    assert not miss.flagged and miss.score == 0.01
    empty = check.check("")
    assert not empty.flagged and empty.score == 0.0


def test_detoxify_tokenizer_not_local_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline_failure(**kwargs: Any) -> None:
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them")

    monkeypatch.setitem(sys.modules, "detoxify", types.SimpleNamespace(Detoxify=offline_failure))
    ckpt = tmp_path / "w.ckpt"
    ckpt.write_bytes(b"weights")
    with pytest.raises(UserError) as info:
        DetoxifyCheck(checkpoint=str(ckpt))
    assert "huggingface_config_path" in str(info.value) and "\n" not in str(info.value)
