"""LLM-as-judge: any target grades an answer 1-5 with a versioned rubric prompt.

Rubrics are plain-text prompt templates shipped in this package as
``rubrics/<name>.v<version>.txt`` (``default``: overall quality; ``coherence``;
``factuality``: agreement with a reference answer). A template holds the placeholders
``{{question}}``, ``{{answer}}`` and optionally ``{{reference}}`` (a rubric with it
needs a reference). A rubric file of your own works too: pass its path as ``rubric``.
A published rubric file is never edited: a changed prompt is a new version, so scores
stay comparable within a version.

The judge is any gemmawatch target (a name from the config, a built-in, or a spec
such as ``llamacpp:bundled:gemma-3-270m``), asked through its chat template with
greedy decoding. Its reply is parsed for a score from 1 to 5 (:func:`parse_score`);
the value is that score, unscaled. Every result records, in ``details``: the judge
(target name, backend, model id, revision, quantization), the rubric name and
version, the SHA-256 of the rubric template and of the exact prompt sent, the raw
reply, and how the score was found; an unparseable reply gives value ``None`` with
the raw reply kept. A reply that begins by echoing the prompt (base models do) is
parsed only after the echo, so numbers in the echoed rubric never count as a verdict.

Known limits: a judge's scores are only as good as the judge. Small models (the bundled
270M base model especially) often ignore the format, echo the rubric or grade
everything alike; check a sample of raw replies before trusting an aggregate, and
compare scores only between runs with the same judge, rubric version and prompt hash.
Judges favour long answers and answers in their own style, and grade their own model
family leniently. Answers are cut at ``max_answer_chars`` to fit the judge's context.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gemmawatch.errors import ConfigError
from gemmawatch.evals.quality._text import require_str
from gemmawatch.evals.quality.base import Reference, ScoreResult, references_of

if TYPE_CHECKING:
    from gemmawatch.collectors.backends.base import Backend, TargetInfo

__all__ = ["JudgeScorer", "Rubric", "list_rubrics", "load_rubric", "parse_score", "strip_prompt_echo"]

_RUBRIC_FILE = re.compile(r"^(?P<name>[a-z0-9_]+)\.v(?P<version>\d+)\.txt$")
_MAX_REPLY_CHARS = 2000
#: A reply that starts with at least this many characters of the prompt is an echo (base models do this).
_ECHO_CHARS = 40

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_NUM = r"([1-5](?:\.\d+)?|one|two|three|four|five)(?!\.?\d)"
# "Score: 4", "**Rating**: 4/5", "score of 4", "Score = (4)", "Grade: four".
_LABELLED = re.compile(rf"\b(?:score|rating|grade)\b[*_\s]*(?:is|of|=|:)?[*_\s\"'(\[]*{_NUM}", re.IGNORECASE)
# "4/5", "4 out of 5".
_FRACTION = re.compile(r"(?<![\d.])([1-5](?:\.\d+)?)\s*(?:/|out of)\s*5(?!\d)", re.IGNORECASE)
# A reply that starts with the number, alone or before punctuation ("4", "4.", "**4** - good"; not "3 apples").
_LEADING = re.compile(r"^[\s*_\"'(\[]*([1-5])(?!\d|\.\d)[*_\"')\]]*(?=\s*(?:$|[.:,;!)\-\u2013\u2014]))")


def parse_score(reply: str) -> tuple[float | None, str]:
    """The 1-5 score in a judge's ``reply`` and how it was found.

    Tried in order: a labelled score (``Score: 4``, ``rating of 4/5``, ``Grade: four``);
    if labelled scores disagree (the judge echoed the rubric), the reply is ambiguous.
    Then a fraction (``4/5``, ``4 out of 5``), then a reply that starts with the number.
    Decimals in [1, 5] are kept (``4.5``); out-of-range numbers (``Score: 7``) are not
    scores. Returns ``(None, reason)`` when nothing fits.
    """
    labelled = [m.group(1).lower() for m in _LABELLED.finditer(reply)]
    if labelled:
        values = {float(_WORDS.get(v, v)) for v in labelled}
        if len(values) > 1:
            return None, "ambiguous"
        return values.pop(), "labelled"
    fraction = _FRACTION.search(reply)
    if fraction:
        return float(fraction.group(1)), "fraction"
    leading = _LEADING.search(reply)
    if leading:
        return float(leading.group(1)), "leading"
    return None, "unparseable"


def strip_prompt_echo(reply: str, prompt: str) -> tuple[str, bool]:
    """``reply`` without a leading copy of (the start of) ``prompt``, and whether one was cut.

    A reply counts as an echo when its first ``min(40, len(reply))`` characters or more
    repeat the prompt verbatim; the rubric text a base model echoes must not be parsed
    as the judge's verdict.
    """
    common = len(os.path.commonprefix([reply, prompt]))
    if common and common >= min(_ECHO_CHARS, len(reply)):
        return reply[common:], True
    return reply, False


@dataclass(frozen=True)
class Rubric:
    """A rubric prompt template with its name, version and SHA-256."""

    name: str
    version: str
    template: str

    @property
    def sha256(self) -> str:
        """SHA-256 of the template text (UTF-8)."""
        return hashlib.sha256(self.template.encode("utf-8")).hexdigest()

    @property
    def needs_reference(self) -> bool:
        """Whether the template shows a reference answer."""
        return "{{reference}}" in self.template

    def render(self, *, question: str, answer: str, reference: str = "") -> str:
        """The prompt for one sample (placeholders replaced in one pass, so answers may contain braces)."""
        values = {"question": question, "answer": answer, "reference": reference}
        return re.sub(r"\{\{(question|answer|reference)\}\}", lambda m: values[m.group(1)], self.template)


def _bundled() -> dict[str, dict[str, str]]:
    """Rubric name -> version -> file name, for the rubrics shipped in the package."""
    found: dict[str, dict[str, str]] = {}
    for entry in resources.files("gemmawatch.evals.quality").joinpath("rubrics").iterdir():
        match = _RUBRIC_FILE.match(entry.name)
        if match:
            found.setdefault(match["name"], {})[match["version"]] = entry.name
    return found


def list_rubrics() -> dict[str, list[str]]:
    """The bundled rubrics: name -> versions, oldest first."""
    return {name: sorted(versions, key=int) for name, versions in sorted(_bundled().items())}


def load_rubric(rubric: str = "default", version: str | int | None = None) -> Rubric:
    """A bundled rubric by name (its latest version unless ``version`` is given), or a rubric file by path.

    A file's version is ``version`` if given, else ``sha-`` and the first 12 hex digits
    of its SHA-256.

    Raises:
        ConfigError: No such rubric, version or file, or a template without ``{{answer}}``.
    """
    path = Path(rubric).expanduser()
    if path.suffix == ".txt" and ("/" in rubric or path.is_file()):
        if not path.is_file():
            raise ConfigError(f"Rubric file {rubric} not found. Fix: pass an existing .txt file or a rubric name")
        template = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(template.encode("utf-8")).hexdigest()
        loaded = Rubric(path.stem, str(version) if version is not None else f"sha-{digest[:12]}", template)
    else:
        bundled = _bundled()
        if rubric not in bundled:
            raise ConfigError(
                f"Unknown rubric '{rubric}'. Available: {', '.join(sorted(bundled))}. Fix: use one of those "
                "or pass the path of a .txt rubric"
            )
        versions = bundled[rubric]
        chosen = str(version).removeprefix("v") if version is not None else max(versions, key=int)
        if chosen not in versions:
            raise ConfigError(
                f"Rubric '{rubric}' has no version {version!r}. Available: {', '.join(sorted(versions, key=int))}"
            )
        text = resources.files("gemmawatch.evals.quality").joinpath("rubrics", versions[chosen]).read_text("utf-8")
        loaded = Rubric(rubric, chosen, text)
    if "{{answer}}" not in loaded.template:
        raise ConfigError(f"Rubric '{rubric}' has no {{{{answer}}}} placeholder. Fix: add one where the answer goes")
    return loaded


def _judge_identity(info: TargetInfo) -> dict[str, Any]:
    return {
        "target": info.name,
        "backend": info.backend,
        "model_id": info.model_id,
        "revision": info.revision,
        "quantization": info.quantization,
    }


class JudgeScorer:
    """A target grading answers 1-5 with a rubric; see the module docstring.

    Args:
        target: Target name or spec (resolved like ``--target``), or an already loaded
            :class:`~gemmawatch.collectors.backends.base.Backend` (not closed by this scorer).
        rubric: Bundled rubric name (``default``, ``coherence``, ``factuality``) or a ``.txt`` path.
        rubric_version: Rubric version (default: the latest bundled one).
        max_new_tokens: Reply length limit (the score comes first; 48 leaves room for a reason).
        max_answer_chars: Characters of the answer shown to the judge.
        chat: Send the prompt through the judge's chat template (default) or as raw text.
        batch_size: Requests per ``generate`` call in :meth:`score_many`.
        config_targets: Targets from the config file, for resolving ``target`` by name.

    The model is loaded on the first score; :meth:`close` releases it.
    """

    name = "judge"
    higher_is_better = True

    def __init__(
        self,
        target: str | Backend,
        rubric: str = "default",
        rubric_version: str | int | None = None,
        max_new_tokens: int = 48,
        max_answer_chars: int = 8000,
        chat: bool = True,
        batch_size: int = 8,
        config_targets: Mapping[str, TargetInfo] | None = None,
    ) -> None:
        for label, value in (
            ("max_new_tokens", max_new_tokens),
            ("max_answer_chars", max_answer_chars),
            ("batch_size", batch_size),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"judge {label} must be a positive integer, got {value!r}")
        self.rubric = load_rubric(rubric, rubric_version)
        self._backend: Backend | None = None
        self._owns_backend = isinstance(target, str)
        if isinstance(target, str):
            from gemmawatch.collectors.targets import resolve_target

            self._info = resolve_target(target, config_targets)
        else:
            self._backend = target
            self._info = target.info
        self.needs_reference = self.rubric.needs_reference
        self.version = f"1 (rubric {self.rubric.name}.v{self.rubric.version})"
        self.args: dict[str, Any] = {
            "target": self._info.name,
            "rubric": rubric,
            "rubric_version": self.rubric.version,
            "max_new_tokens": max_new_tokens,
            "max_answer_chars": max_answer_chars,
            "chat": chat,
            "batch_size": batch_size,
        }
        self._fixed: dict[str, Any] = {
            "judge": _judge_identity(self._info),
            "rubric": self.rubric.name,
            "rubric_version": self.rubric.version,
            "rubric_sha256": self.rubric.sha256,
        }

    def __repr__(self) -> str:
        return f"JudgeScorer(target={self._info.name!r}, rubric={self.rubric.name}.v{self.rubric.version})"

    def _model(self) -> Backend:
        if self._backend is None:
            from gemmawatch.collectors.targets import load_backend

            self._backend = load_backend(self._info)
        return self._backend

    def close(self) -> None:
        """Release the judge model if this scorer loaded it."""
        if self._owns_backend and self._backend is not None:
            self._backend.close()
            self._backend = None

    def _prompt(self, prediction: str, reference: Reference, prompt: str | None) -> tuple[str, bool] | ScoreResult:
        require_str(prediction, "prediction")
        refs = references_of(reference)
        if self.needs_reference and refs is None:
            return ScoreResult(None, {**self._fixed, "reason": "no reference"})
        if "{{question}}" in self.rubric.template and (prompt is None or not require_str(prompt, "prompt").strip()):
            return ScoreResult(None, {**self._fixed, "reason": "no prompt"})
        limit = self.args["max_answer_chars"]
        reference_text = "" if refs is None else refs[0] if len(refs) == 1 else "\n".join(f"- {r}" for r in refs)
        rendered = self.rubric.render(question=prompt or "", answer=prediction[:limit], reference=reference_text)
        return rendered, len(prediction) > limit

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """The judge's 1-5 score (``None`` when its reply has none); see the module docstring."""
        return self.score_many([prediction], [reference], prompts=[prompt])[0]

    def score_many(
        self,
        predictions: Sequence[str],
        references: Sequence[Reference] | None = None,
        *,
        prompts: Sequence[str | None] | None = None,
        contexts: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[ScoreResult]:
        """Batch path: one ``generate`` call over all scorable samples."""
        from gemmawatch.collectors.backends.base import GenerationRequest

        n = len(predictions)
        refs = references if references is not None else [None] * n
        asked = prompts if prompts is not None else [None] * n
        prepared = [self._prompt(p, r, q) for p, r, q in zip(predictions, refs, asked, strict=True)]
        todo = [(i, item) for i, item in enumerate(prepared) if isinstance(item, tuple)]
        results: list[ScoreResult | None] = [item if isinstance(item, ScoreResult) else None for item in prepared]
        if todo:
            requests = [
                GenerationRequest(
                    prompt=text, max_new_tokens=self.args["max_new_tokens"], temperature=0.0, chat=self.args["chat"]
                )
                for _, (text, _) in todo
            ]
            replies = self._model().generate(requests, batch_size=self.args["batch_size"])
            for (i, (text, truncated)), reply in zip(todo, replies, strict=True):
                details: dict[str, Any] = {
                    **self._fixed,
                    "prompt_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    "reply": reply.text[:_MAX_REPLY_CHARS],
                }
                if truncated:
                    details["answer_truncated"] = True
                if reply.error is not None:
                    details.update(reason="judge failed", error=reply.error)
                    results[i] = ScoreResult(None, details)
                    continue
                verdict, echoed = strip_prompt_echo(reply.text, text)
                value, how = parse_score(verdict)
                details["parse"] = how
                if echoed:
                    details["echo"] = True
                if value is None:
                    details["reason"] = (
                        "the judge only echoed the prompt"
                        if echoed and not verdict.strip()
                        else ("no score in the judge's reply")
                    )
                results[i] = ScoreResult(value, details)
        return [r if r is not None else ScoreResult(None) for r in results]
