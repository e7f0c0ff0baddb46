"""Prompts for a load test: a built-in synthetic set, a user JSONL, or an eval suite.

Whatever the source, the order is fixed by the seed, so two variants (or a
rerun) receive the same requests in the same order: request ``seq`` k always
carries prompt ``schedule[k % len(schedule)]``.

The built-in set controls lengths: each prompt is ``input_tokens`` words drawn
from a vocabulary of common English words that are one token each in Gemma's
tokenizer (checked by a test against the bundled tokenizer), so the prompt is
``input_tokens`` tokens plus the BOS the server adds. Each prompt starts
differently so a server's prefix cache cannot serve one request from another.
Output length is capped by ``max_tokens``; a model may stop earlier at EOS
unless the server is told to ignore it (``--ignore-eos``), and the stored
token counts are what the server actually did.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gemmawatch.errors import ConfigError

#: Common English words; each is a single Gemma token with its leading space.
VOCABULARY: tuple[str, ...] = tuple(
    [
        "time",
        "year",
        "people",
        "way",
        "day",
        "man",
        "thing",
        "woman",
        "life",
        "child",
        "world",
        "school",
        "state",
        "family",
        "student",
        "group",
        "country",
        "problem",
        "hand",
        "part",
        "place",
        "case",
        "week",
        "company",
        "system",
        "program",
        "question",
        "work",
        "government",
        "number",
        "night",
        "point",
        "home",
        "water",
        "room",
        "mother",
        "area",
        "money",
        "story",
        "fact",
        "month",
        "lot",
        "right",
        "study",
        "book",
        "eye",
        "job",
        "word",
        "business",
        "issue",
        "side",
        "kind",
        "head",
        "house",
        "service",
        "friend",
        "father",
        "power",
        "hour",
        "game",
        "line",
        "end",
        "member",
        "law",
        "car",
        "city",
        "community",
        "name",
        "president",
        "team",
        "minute",
        "idea",
        "kid",
        "body",
        "information",
        "back",
        "parent",
        "face",
        "others",
        "level",
        "office",
        "door",
        "health",
        "person",
        "art",
        "war",
        "history",
        "party",
        "result",
        "change",
        "morning",
        "reason",
        "research",
        "girl",
        "guy",
        "moment",
        "air",
        "teacher",
        "force",
        "education",
        "foot",
        "boy",
        "age",
        "policy",
        "music",
        "market",
        "sense",
        "nation",
        "plan",
        "college",
        "interest",
        "death",
        "experience",
        "effect",
        "use",
        "class",
        "control",
        "care",
        "field",
        "development",
        "role",
        "effort",
        "rate",
        "heart",
        "drug",
        "show",
        "leader",
        "light",
        "voice",
        "wife",
        "police",
        "mind",
        "price",
        "report",
        "decision",
        "son",
        "view",
        "relationship",
        "town",
        "road",
        "arm",
        "difference",
        "value",
        "building",
        "action",
        "model",
        "season",
        "society",
        "tax",
        "director",
        "position",
        "player",
        "record",
        "paper",
        "space",
        "ground",
        "form",
        "event",
        "official",
        "matter",
        "center",
        "couple",
        "site",
        "project",
        "activity",
        "star",
        "table",
        "need",
        "court",
        "oil",
        "situation",
        "cost",
        "industry",
        "figure",
        "street",
        "image",
        "phone",
        "data",
        "picture",
        "practice",
        "piece",
        "land",
        "product",
        "doctor",
        "wall",
        "patient",
        "worker",
        "news",
        "test",
        "movie",
        "north",
        "love",
        "support",
        "technology",
        "step",
        "baby",
        "computer",
        "type",
        "attention",
        "film",
        "tree",
        "source",
        "organization",
        "hair",
        "window",
        "evidence",
        "population",
        "truth",
        "song",
        "river",
    ]
)


@dataclass(frozen=True)
class LoadPrompt:
    """One request's prompt and output cap; ``input_tokens`` when known before sending."""

    text: str
    max_tokens: int
    input_tokens: int | None = None


def builtin_prompts(n: int, *, input_tokens: int, output_tokens: int, seed: int) -> list[LoadPrompt]:
    """``n`` distinct synthetic prompts of ``input_tokens`` words (see the module docstring)."""
    if input_tokens < 1 or output_tokens < 1:
        raise ConfigError("--input-tokens and --output-tokens must be >= 1")
    rng = random.Random(seed)
    prompts = []
    for _ in range(max(1, n)):
        words = [rng.choice(VOCABULARY) for _ in range(input_tokens)]
        prompts.append(LoadPrompt(" ".join(words), output_tokens, input_tokens))
    return prompts


def dataset_prompts(
    path: str | Path,
    *,
    prompt_field: str = "prompt",
    output_tokens: int,
    output_tokens_field: str | None = None,
) -> list[LoadPrompt]:
    """Prompts from a JSONL file (one JSON object per line; blank lines skipped).

    ``output_tokens_field``, when given, sets each request's own output cap
    (rows without it use ``output_tokens``).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"Dataset '{file}' does not exist. Fix: pass a JSONL file with a '{prompt_field}' field")
    prompts: list[LoadPrompt] = []
    with file.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"Dataset '{file}' line {lineno} is not valid JSON ({exc.args[0]})") from exc
            if not isinstance(row, dict) or not isinstance(row.get(prompt_field), str) or not row[prompt_field]:
                raise ConfigError(
                    f"Dataset '{file}' line {lineno} has no text field '{prompt_field}'. "
                    "Fix: pass --prompt-field with the name of the prompt column"
                )
            cap = output_tokens
            if output_tokens_field and row.get(output_tokens_field) is not None:
                cap = _positive_int(row[output_tokens_field], file, lineno, output_tokens_field)
            prompts.append(LoadPrompt(row[prompt_field], cap))
    if not prompts:
        raise ConfigError(f"Dataset '{file}' has no prompts. Fix: add JSON lines with a '{prompt_field}' field")
    return prompts


def _positive_int(value: object, file: Path, lineno: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) < 1:
        raise ConfigError(f"Dataset '{file}' line {lineno}: '{field}' must be a positive integer, got {value!r}")
    return int(value)


def suite_prompts(name: str, *, output_tokens: int) -> list[LoadPrompt]:
    """The prompts of a built-in eval suite (``smoke``)."""
    from gemmawatch.evals.suites import smoke_prompts

    if name != "smoke":
        raise ConfigError(f"Unknown suite '{name}'. Available: smoke")
    return [LoadPrompt(p, output_tokens) for p in smoke_prompts()]


def resolve_prompts(
    dataset: str | None,
    *,
    count: int,
    input_tokens: int,
    output_tokens: int,
    prompt_field: str,
    output_tokens_field: str | None,
    seed: int,
) -> list[LoadPrompt]:
    """The prompt pool for ``--dataset``: None = built-in, ``suite:NAME``, or a JSONL path."""
    if dataset is None:
        return builtin_prompts(count, input_tokens=input_tokens, output_tokens=output_tokens, seed=seed)
    if dataset.startswith("suite:"):
        return suite_prompts(dataset.removeprefix("suite:"), output_tokens=output_tokens)
    return dataset_prompts(
        dataset, prompt_field=prompt_field, output_tokens=output_tokens, output_tokens_field=output_tokens_field
    )


def schedule(prompts: Sequence[LoadPrompt], seed: int) -> list[LoadPrompt]:
    """The pool in the seed's order; request ``seq`` k takes ``schedule[k % len]``."""
    order = list(prompts)
    random.Random(seed).shuffle(order)
    return order
