"""The Gemma family matrix and selection guide: static facts, each with its source, and target matching.

Every fact is a :class:`Fact` carrying the URL it was taken from (Google's model cards and
Gemma docs; one Hugging Face launch post for the per-size Gemma 3 table), so a reader can
check it and an update knows where to look. Nothing here is measured: the Gemma catalog
page puts these claims next to what gemmawatch measured for the targets that
:func:`match_variant` maps to each entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = [
    "CATALOG",
    "MATRIX_COLUMNS",
    "SOURCES",
    "Fact",
    "Variant",
    "match_variant",
    "matrix_frame",
    "measure_command",
    "measured_frame",
    "normalise",
]

#: Where the facts come from (checked when this table was written).
GEMMA3_CARD = "https://ai.google.dev/gemma/docs/core/model_card_3"
GEMMA3_LAUNCH = "https://huggingface.co/blog/gemma3"
GEMMA_MODELS = "https://ai.google.dev/gemma/docs/get_started"
FUNCTION_CALLING = "https://ai.google.dev/gemma/docs/capabilities/function-calling"
GEMMA3N_OVERVIEW = "https://ai.google.dev/gemma/docs/gemma-3n"
GEMMA3N_CARD = "https://ai.google.dev/gemma/docs/gemma-3n/model_card"
SOURCES = (GEMMA3_CARD, GEMMA3_LAUNCH, GEMMA_MODELS, FUNCTION_CALLING, GEMMA3N_OVERVIEW, GEMMA3N_CARD)


@dataclass(frozen=True)
class Fact:
    """A claim about a variant and the URL it comes from."""

    value: str
    source: str


@dataclass(frozen=True)
class Variant:
    """One catalog entry: what Google documents about a Gemma variant, and how to recognise its targets."""

    key: str
    name: str
    family: str
    parameters: Fact
    context: Fact
    inputs: Fact
    function_calling: Fact
    memory: Fact | None
    guide: str
    #: Regular expressions over :func:`normalise`\\ d model ids and target names.
    patterns: tuple[str, ...]
    #: Hugging Face id of the instruction-tuned checkpoint (the ``transformers:`` target to measure it).
    hf_id: str
    #: A built-in gemmawatch target for it, if there is one.
    builtin_target: str | None = None


_PROMPTED_FC = Fact("yes, prompted (no tool tokens)", FUNCTION_CALLING)
_NO_FC_CLAIM = Fact("not stated in the cited docs", GEMMA3N_CARD)
_TEXT = Fact("text", GEMMA3_CARD)
_TEXT_IMAGE = Fact("text, image", GEMMA3_CARD)
_CTX_32K = Fact("32K tokens", GEMMA3_CARD)
_CTX_128K = Fact("128K tokens", GEMMA3_CARD)
_3N_INPUTS = Fact("text, image, audio, video", GEMMA3N_CARD)
_3N_CTX = Fact("32K tokens", GEMMA3N_CARD)

#: The family matrix, smallest first.
CATALOG: tuple[Variant, ...] = (
    Variant(
        "gemma-3-270m", "Gemma 3 270M", "Gemma 3", Fact("270M", GEMMA_MODELS), _CTX_32K, _TEXT,
        Fact("via the FunctionGemma 270M fine-tune", FUNCTION_CALLING), None,
        "Tiny: task-specific fine-tuning, classification and extraction on phones or CPUs.",
        (r"gemma-?3-?270m",), "google/gemma-3-270m-it", builtin_target="gemma-3-270m",
    ),
    Variant(
        "gemma-3-1b", "Gemma 3 1B", "Gemma 3", Fact("1B", GEMMA3_CARD), _CTX_32K, _TEXT, _PROMPTED_FC, None,
        "Text-only on-device assistant; the cheapest general model.",
        (r"gemma-?3-?1b",), "google/gemma-3-1b-it",
    ),
    Variant(
        "gemma-3-4b", "Gemma 3 4B", "Gemma 3", Fact("4B", GEMMA3_CARD), _CTX_128K, _TEXT_IMAGE, _PROMPTED_FC, None,
        "Smallest multimodal, long-context model: a laptop or a single small GPU.",
        (r"gemma-?3-?4b",), "google/gemma-3-4b-it",
    ),
    Variant(
        "gemma-3-12b", "Gemma 3 12B", "Gemma 3", Fact("12B", GEMMA3_CARD), _CTX_128K, _TEXT_IMAGE,
        Fact("yes, prompted; Google's pick for balanced performance and latency", FUNCTION_CALLING), None,
        "Balanced quality and latency on one data-centre GPU; agents with function calls.",
        (r"gemma-?3-?12b",), "google/gemma-3-12b-it",
    ),
    Variant(
        "gemma-3-27b", "Gemma 3 27B", "Gemma 3", Fact("27B", GEMMA3_CARD), _CTX_128K, _TEXT_IMAGE,
        Fact("yes, prompted; Google's pick for best function-calling performance", FUNCTION_CALLING), None,
        "Highest quality of the family; one large GPU (or quantised on smaller ones).",
        (r"gemma-?3-?27b",), "google/gemma-3-27b-it",
    ),
    Variant(
        "gemma-3n-e2b", "Gemma 3n E2B", "Gemma 3n", Fact("2B effective", GEMMA3N_OVERVIEW), _3N_CTX,
        _3N_INPUTS, _NO_FC_CLAIM, Fact("~2 GB of accelerator memory", GEMMA3N_OVERVIEW),
        "Phones and edge devices: audio and vision input in about 2 GB.",
        (r"gemma-?3n-?e2b",), "google/gemma-3n-E2B-it",
    ),
    Variant(
        "gemma-3n-e4b", "Gemma 3n E4B", "Gemma 3n", Fact("4B effective", GEMMA3N_OVERVIEW), _3N_CTX,
        _3N_INPUTS, _NO_FC_CLAIM, Fact("~3 GB of accelerator memory", GEMMA3N_OVERVIEW),
        "Better on-device quality than E2B for about 3 GB.",
        (r"gemma-?3n-?e4b",), "google/gemma-3n-E4B-it",
    ),
)  # fmt: skip

#: Columns of :func:`matrix_frame`.
MATRIX_COLUMNS = ["variant", "family", "parameters", "context", "inputs", "function calling", "memory footprint",
                  "choose it for", "sources"]  # fmt: skip


def normalise(text: str) -> str:
    """Lower case, ``_ : / .`` and spaces as ``-``: ``gemma3:4b`` -> ``gemma3-4b``, ``Gemma_3n`` -> ``gemma-3n``."""
    return re.sub(r"[\s_:/.]+", "-", text.strip().lower())


def match_variant(model_id: str | None, name: str | None = None) -> Variant | None:
    """The catalog entry a target is a build of, by its model id first, then its name; None when none matches.

    ``bundled:gemma-3-270m``, ``google/gemma-3-4b-it``, ``gemma3:4b`` (Ollama), ``gemma-3-12b-it-Q4_K_M.gguf``
    and ``gemma-3n-E2B-it`` all match; ``functiongemma-270m`` and ``gemma-2-9b`` do not.
    """
    for text in (model_id, name):
        if not text:
            continue
        normal = normalise(text)
        for variant in CATALOG:
            if any(re.search(rf"(?<![a-z0-9]){p}(?![0-9a-z])", normal) for p in variant.patterns):
                return variant
    return None


def measure_command(variant: Variant) -> str:
    """The command that fills the measured columns for ``variant`` (quality and latency with the smoke suite)."""
    target = variant.builtin_target or f"transformers:{variant.hf_id}"
    return f"gemmawatch eval --target {target} --tasks smoke"


def _fact(fact: Fact | None) -> str:
    return fact.value if fact is not None else "not stated"


def matrix_frame(variants: Iterable[Variant] = CATALOG) -> pd.DataFrame:
    """The family matrix (:data:`MATRIX_COLUMNS`), one row per variant; ``sources`` lists the URLs used."""
    rows: list[Mapping[str, Any]] = []
    for v in variants:
        facts = [v.parameters, v.context, v.inputs, v.function_calling, v.memory]
        rows.append(
            {
                "variant": v.name,
                "family": v.family,
                "parameters": v.parameters.value,
                "context": v.context.value,
                "inputs": v.inputs.value,
                "function calling": v.function_calling.value,
                "memory footprint": _fact(v.memory),
                "choose it for": v.guide,
                "sources": " ".join(dict.fromkeys(f.source for f in facts if f is not None)),
            }
        )
    return pd.DataFrame(rows, columns=MATRIX_COLUMNS)


#: Columns of :func:`measured_frame` besides those copied from ``compare_tables.side_by_side``.
NOT_MEASURED = "not measured yet"


def measured_frame(
    targets: Iterable[Mapping[str, Any]], side: pd.DataFrame, memory: Mapping[str, float | None]
) -> pd.DataFrame:
    """Per catalog entry, one row per matching target with what was measured, or one ``not measured yet`` row.

    ``targets`` are stored targets (``name``, ``model_id``, ``backend``, ``quantization``); ``side`` is
    ``compare_tables.side_by_side`` output for them (one row per target name); ``memory`` the peak memory
    (MB) of each target's latest quality run. Every row carries the command that (re-)measures the entry.
    """
    by_variant: dict[str, list[Mapping[str, Any]]] = {v.key: [] for v in CATALOG}
    for target in targets:
        variant = match_variant(target.get("model_id"), target.get("name"))
        if variant is not None:
            by_variant[variant.key].append(target)
    measured = side.set_index("target") if not side.empty else side
    rows: list[dict[str, Any]] = []
    for v in CATALOG:
        command = measure_command(v)
        if not by_variant[v.key]:
            rows.append({"variant": v.name, "target": None, "status": NOT_MEASURED, "command": command})
            continue
        for target in sorted(by_variant[v.key], key=lambda t: str(t.get("name"))):
            name = str(target.get("name"))
            row: dict[str, Any] = {"variant": v.name, "target": name, "backend": target.get("backend"),
                                   "quantization": target.get("quantization"), "status": NOT_MEASURED,
                                   "command": f"gemmawatch eval --target {name} --tasks smoke"}  # fmt: skip
            if name in measured.index:
                found = {str(k): val for k, val in measured.loc[name].items()}
                runs = [found.get(k) for k in ("quality run", "safety run", "load run")]
                if any(r is not None and not pd.isna(r) for r in runs):
                    row["status"] = "measured"
                row.update(found)
                row["peak memory (MB)"] = memory.get(name)
            rows.append(row)
    frame = pd.DataFrame(rows)
    for column in ("quality run", "safety run", "load run", "quality n"):
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    first = ["variant", "target", "status"]
    return frame[first + [c for c in frame.columns if c not in (*first, "command")] + ["command"]]
