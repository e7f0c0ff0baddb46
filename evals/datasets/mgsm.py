"""The ``mgsm`` dataset format: Multilingual Grade School Math, one category per language.

``gemmawatch eval --dataset path/to/mgsm`` (a folder of ``mgsm_<lang>.jsonl``) or
``--dataset mgsm_de.jsonl --format mgsm`` (one language). Each line is ``{"input":
problem, "target": final number}`` (google-research/url-nlp's ``mgsm_<lang>.tsv`` columns
as JSONL; 250 problems per language, the first 250 of GSM8K's test split translated).

Items: ``prompt`` = the problem; ``reference`` = the target number as text; ``category``
= the language code from the file name (tasks ``mgsm`` and ``mgsm/de``...);
``context["expected_language"]`` = that code (``numeric_match`` reads the locale's number
separators from it; ``language_match`` checks the answer's language); ``doc_id`` = the
line's position in its language file, so the same problem has the same ``doc_id`` in every
language and adding a language changes no other ids. Languages are read in file-name order.

Prompt (:data:`MGSM_TEMPLATE`): an English instruction to reason step by step and end with
"The answer is N", followed by the problem in its own language (MGSM's "English
chain-of-thought" setting, zero-shot; the paper's few-shot exemplars are not used).
``numeric_match`` finds "The answer is N" (and the native-language phrases MGSM's exemplars
use) before falling back to the last number. Default scorer: ``numeric_match``.
"""

from __future__ import annotations

import re
from pathlib import Path

from gemmawatch.errors import ConfigError
from gemmawatch.evals.datasets.base import DatasetItem, LoadedDataset
from gemmawatch.evals.datasets.records import field_of, read_records

__all__ = ["MGSM_TEMPLATE", "load_mgsm"]

#: Zero-shot English chain-of-thought instruction; ``{prompt}`` is the problem in its language.
MGSM_TEMPLATE = (
    'Solve this math problem. Think step by step, then end with "The answer is N", '
    "where N is the final number.\n\n{prompt}"
)

_LANGUAGE_FILE = re.compile(r"mgsm_(?P<lang>[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)?)\.jsonl")


def load_mgsm(path: Path, *, name: str | None = None) -> LoadedDataset:
    """MGSM language file(s); see the module docstring.

    Raises:
        ConfigError: No ``mgsm_<lang>.jsonl`` file, a file named otherwise, bad JSON, a
            missing or empty ``input``/``target`` (the message names the file and line).
    """
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if _LANGUAGE_FILE.fullmatch(p.name))
        if not files:
            raise ConfigError(
                f"Folder '{path}' holds no mgsm_<lang>.jsonl file. Fix: point --dataset at MGSM's folder or one file"
            )
    else:
        if path.is_file() and not _LANGUAGE_FILE.fullmatch(path.name):
            raise ConfigError(
                f"Cannot tell the language of '{path.name}'. Fix: name the file mgsm_<lang>.jsonl (mgsm_de.jsonl)"
            )
        files = [path]
    items: list[DatasetItem] = []
    sources: dict[str, str] = {}
    for file in files:
        match = _LANGUAGE_FILE.fullmatch(file.name)
        language = match.group("lang").lower() if match else file.stem
        records = read_records(file, layout="jsonl")
        sources[str(file)] = records.sha256
        for position, (line, row) in enumerate(records.rows):
            where = f"{records.shown} line {line}"
            target = field_of(row, "target", where, "an MGSM file")
            if isinstance(target, bool) or not isinstance(target, str | int | float) or not str(target).strip():
                raise ConfigError(f"{where}: 'target' is not a number. Fix: give every problem its final number")
            problem = field_of(row, "input", where, "an MGSM file")
            if not isinstance(problem, str) or not problem.strip():
                raise ConfigError(f"{where}: 'input' is not the problem text. Fix: give every line its problem")
            items.append(
                DatasetItem(
                    doc_id=position,
                    prompt=problem,
                    reference=str(target).strip(),
                    category=language,
                    context={"expected_language": language},
                )
            )
    if not items:
        raise ConfigError(f"MGSM dataset '{path}' has no problems. Fix: check the files")
    return LoadedDataset(
        name=name or "mgsm",
        items=items,
        sources=sources,
        prompt_template=MGSM_TEMPLATE,
        chat=True,
        scorers=[("numeric_match", {})],
        max_new_tokens=256,
    )
