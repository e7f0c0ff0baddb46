"""The ``bfcl`` dataset format: Berkeley Function Calling Leaderboard AST categories, Gemma-prompted.

``gemmawatch eval --dataset path/to/bfcl_simple`` (a folder) or ``--dataset
BFCL_v4_simple_python.jsonl --format bfcl`` (one question file). Layout, as published in
ShishirPatil/gorilla (``berkeley-function-call-leaderboard/bfcl_eval/data``): question
files ``BFCL_v<N>_<category>.json[l]`` (JSON Lines despite the ``.json`` name: ``id``,
``question`` = turns of chat messages, ``function`` = the function docs) and, for each,
the accepted answers ``possible_answer_<same name>`` next to it or in a
``possible_answer/`` folder (``id``, ``ground_truth``). Answers join questions by ``id``.

Items: ``prompt`` = the user's request (a system message, when the item has one, goes
first); ``context["functions"]`` = the function docs; ``reference`` = the JSON text of the
``ground_truth`` list; ``category`` = the file's category (``simple_python``), so tasks are
``bfcl`` and ``bfcl/simple_python``; ``doc_id`` = the position in its question file (stable
per category); ``meta["id"]`` = BFCL's id. Scored with ``function_call`` (BFCL's AST
checker, :mod:`gemmawatch.evals.function_calling`).

Only single-turn Python categories checked by BFCL's AST checker are read (``simple_python``,
``multiple``, ``parallel``, ``parallel_multiple`` and their ``live_`` versions); Java and
JavaScript (different value syntax), ``irrelevance`` (no answer file), multi-turn and
executable categories are refused with a ConfigError.

Prompt (:data:`BFCL_TEMPLATE`): Gemma 3 has no tool tokens; Google's guide "Function
calling with Gemma" (https://ai.google.dev/gemma/docs/capabilities/function-calling)
describes the functions in the prompt as JSON and asks for Python-style calls in a list,
``[func_name1(params_name1=params_value1, ...), func_name2(params)]``, with no other text.
The template is that guide's prompt, nearly word for word (BFCL's own prompt for models
without native tools asks for the same format), sent as one user turn through the chat
template (Gemma has no system role).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from gemmawatch.errors import ConfigError
from gemmawatch.evals.datasets.base import DatasetItem, LoadedDataset
from gemmawatch.evals.datasets.records import field_of, read_records

__all__ = ["BFCL_TEMPLATE", "load_bfcl"]

#: Google's Gemma function-calling prompt (Python-call output format); ``{functions}`` is the JSON docs.
BFCL_TEMPLATE = (
    "You have access to functions. If you decide to invoke any of the function(s),\n"
    "you MUST put it in the format of\n"
    "[func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]\n"
    "\n"
    "You SHOULD NOT include any other text in the response if you call a function\n"
    "{functions}\n"
    "{prompt}"
)

_QUESTION_FILE = re.compile(r"BFCL_v\d+_(?P<category>[A-Za-z0-9_]+)\.jsonl?")
_UNSUPPORTED = ("java", "javascript", "irrelevance", "multi_turn", "exec", "rest", "sql", "chatable", "memory", "web")


def load_bfcl(path: Path, *, name: str | None = None) -> LoadedDataset:
    """BFCL question file(s) with their accepted answers; see the module docstring.

    Raises:
        ConfigError: No question file, an unsupported category, a missing answer file or
            answer, a malformed line (the message names the file and line).
    """
    files = _question_files(path)
    items: list[DatasetItem] = []
    sources: dict[str, str] = {}
    for question_file, category in files:
        answer_file = _answer_file(question_file)
        questions = read_records(question_file, layout="jsonl")
        answers = read_records(answer_file, layout="jsonl")
        sources[str(question_file)] = questions.sha256
        sources[str(answer_file)] = answers.sha256
        accepted: dict[str, Any] = {}
        for line, row in answers.rows:
            where = f"{answers.shown} line {line}"
            accepted[str(field_of(row, "id", where, "a BFCL answer file"))] = field_of(
                row, "ground_truth", where, "a BFCL answer file"
            )
        for position, (line, row) in enumerate(questions.rows):
            items.append(_item(position, row, accepted, category, f"{questions.shown} line {line}", answer_file))
    if not items:
        raise ConfigError(
            f"BFCL dataset '{path}' has no questions. Fix: point --dataset at BFCL_v*_<category>.json files"
        )
    return LoadedDataset(
        name=name or "bfcl",
        items=items,
        sources=sources,
        prompt_template=BFCL_TEMPLATE,
        chat=True,
        scorers=[("function_call", {})],
        max_new_tokens=256,
    )


def _question_files(path: Path) -> list[tuple[Path, str]]:
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if _QUESTION_FILE.fullmatch(p.name))
        if not candidates:
            raise ConfigError(
                f"Folder '{path}' holds no BFCL question file (BFCL_v<N>_<category>.json or .jsonl). "
                "Fix: point --dataset at BFCL's data folder or at one question file"
            )
    elif path.is_file():
        candidates = [path]
    else:
        raise ConfigError(f"Dataset '{path}' does not exist. Fix: pass BFCL's data folder or one question file")
    files = []
    for file in candidates:
        match = _QUESTION_FILE.fullmatch(file.name)
        category = match.group("category") if match else file.stem
        if any(word in category for word in _UNSUPPORTED):
            raise ConfigError(
                f"BFCL category '{category}' ({file.name}) is not scored by gemmawatch: only single-turn Python "
                "AST categories are (simple_python, multiple, parallel, parallel_multiple, live_*). Fix: drop that file"
            )
        files.append((file, category))
    return files


def _answer_file(question_file: Path) -> Path:
    names = [question_file.name, question_file.with_suffix(".json").name, question_file.with_suffix(".jsonl").name]
    for folder, prefix in ((question_file.parent, "possible_answer_"), (question_file.parent / "possible_answer", "")):
        for file_name in dict.fromkeys(names):
            candidate = folder / f"{prefix}{file_name}"
            if candidate.is_file():
                return candidate
    raise ConfigError(
        f"No accepted answers for '{question_file}'. Fix: put possible_answer_{question_file.name} next to it "
        "(or possible_answer/ as in BFCL's repository)"
    )


def _item(
    position: int, row: dict[str, Any], accepted: dict[str, Any], category: str, where: str, answer_file: Path
) -> DatasetItem:
    item_id = str(field_of(row, "id", where, "a BFCL question file"))
    turns = field_of(row, "question", where, "a BFCL question file")
    functions = field_of(row, "function", where, "a BFCL question file")
    if isinstance(functions, dict):
        functions = [functions]
    if not (isinstance(turns, list) and len(turns) == 1 and isinstance(turns[0], list)):
        raise ConfigError(f"{where}: 'question' is not one turn of chat messages. Fix: use a single-turn category")
    if not (isinstance(functions, list) and all(isinstance(f, dict) and "name" in f for f in functions)):
        raise ConfigError(f"{where}: 'function' is not a list of function docs with a name. Fix: check the file")
    by_role: dict[str, list[str]] = {}
    for message in turns[0]:
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            by_role.setdefault(str(message.get("role")), []).append(message["content"])
    prompt = "\n\n".join(by_role.get("system", []) + by_role.get("user", []))
    if not prompt.strip():
        raise ConfigError(f"{where}: the question has no user message. Fix: check the file")
    if item_id not in accepted:
        raise ConfigError(f"{where}: id '{item_id}' has no answer in {answer_file}. Fix: use the matching answer file")
    return DatasetItem(
        doc_id=position,
        prompt=prompt,
        reference=json.dumps(accepted[item_id], ensure_ascii=False),
        category=category,
        context={"functions": functions},
        meta={"id": item_id},
    )
