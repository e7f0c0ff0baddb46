"""Find the function call(s) in a model's text: Python call syntax or JSON, inside code fences or prose.

:func:`parse_calls` turns generated text into :class:`FunctionCall` s. It reads

* **Python call syntax**, as BFCL's prompting models are asked to write it and as Google's
  Gemma function-calling guide shows it: ``[get_weather(city="Paris", days=3)]`` or
  ``get_weather(city="Paris")``; dotted names (``math.factorial``) are one name;
* **JSON**: ``{"name": ..., "arguments": {...}}`` (also ``"parameters"``/``"args"``, arguments
  given as a JSON string, the OpenAI ``{"function": {...}}`` / ``{"tool_calls": [...]}`` wrappers),
  a list of those, and BFCL's own ``{"func_name": {"param": value}}`` when ``func_name`` is a
  known function.

It tolerates what small models put around a call: code fences, a leading sentence, trailing
explanation. Candidates are tried in order (fenced blocks first, then the whole text, then
calls embedded in prose); the first candidate whose functions are all ``known`` wins, else
the first candidate found, so a call of the wrong function is still reported as such.
Inside prose, an unknown name followed by brackets without keyword arguments ("the
function(s)") is taken for words, not a call; a JSON object whose arguments are a JSON
schema (``{"type": ..., "properties": ...}``) is a function doc (an echoed prompt), not a call.
``strict=True`` accepts only a text that *is* the call list (after trimming whitespace and
one code fence), which is what BFCL's decoder requires.

Values are converted as BFCL's ``resolve_ast_by_type`` does (literals, negative numbers,
lists, dicts; a bare name is the string of its identifier, the "variable" case), with
these differences, all on the safe side: tuples and sets become lists; arithmetic
(``2*3.5``) is evaluated only for + - * / on numbers (BFCL ``eval`` s any binary
operation); nested calls, attributes (``math.pi``), f-strings and other expressions become
their source text (BFCL keeps no-keyword calls as text and rejects the rest); positional
arguments are counted, not matched (BFCL drops them silently). Nothing is ever executed.

Cost: linear in the text for the scan; at most :data:`MAX_CANDIDATES` embedded candidates
of at most :data:`MAX_CALL_CHARS` characters are parsed, so a 100k-character output
is parsed in milliseconds.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_CALL_CHARS", "MAX_CANDIDATES", "FunctionCall", "format_call", "parse_calls"]

#: Embedded candidates (call starts or JSON objects in prose) tried per text.
MAX_CANDIDATES = 64
#: Longest candidate call parsed, in characters.
MAX_CALL_CHARS = 8_000

_FENCE = re.compile(r"```[^\n`]*\n?(.*?)```", re.DOTALL)
_CALL_START = re.compile(r"(?<![\w.])[A-Za-z_][\w.]*\s*\(")
_JSON_START = re.compile(r"[\[{]")
_ARG_KEYS = ("arguments", "parameters", "args")
_PARSE_ERRORS = (SyntaxError, ValueError, TypeError, RecursionError, MemoryError, OverflowError)


@dataclass(frozen=True)
class FunctionCall:
    """One parsed call.

    Attributes:
        name: The function name as written (dotted names kept: ``math.factorial``).
        arguments: Keyword arguments, values as Python objects (str, int, float, bool,
            None, list, dict).
        positional: How many positional arguments the call had (not matched; BFCL reads
            keyword arguments only).
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    positional: int = 0


def format_call(call: FunctionCall, limit: int = 300) -> str:
    """``name(a=1, b='x')``, cut to ``limit`` characters (for details and logs)."""
    args = ", ".join(f"{key}={value!r}" for key, value in call.arguments.items())
    if call.positional:
        args = ", ".join(filter(None, [f"<{call.positional} positional>", args]))
    text = f"{call.name}({args})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_calls(text: str, *, known: Collection[str] = (), strict: bool = False) -> tuple[list[FunctionCall], str]:
    """The call(s) in ``text`` and how they were written (``"python"``, ``"json"``; ``""`` when none).

    ``known`` are the offered function names (preferred when several candidates parse).
    Returns ``([], "")`` when no call is found; never raises on a ``str``.
    """
    if strict:
        body = text.strip()
        fenced = _FENCE.fullmatch(body)
        return _parse_block((fenced.group(1) if fenced else body).strip()) or ([], "")
    first: tuple[list[FunctionCall], str] | None = None
    for calls, how in _candidates(text, known):
        if not known or all(call.name in known for call in calls):
            return calls, how
        first = first or (calls, how)
    return first or ([], "")


def _candidates(text: str, known: Collection[str]) -> Iterator[tuple[list[FunctionCall], str]]:
    blocks = [m.group(1).strip() for m in _FENCE.finditer(text)]
    for block in [*blocks, text.strip()]:
        found = _parse_block(block, known)
        if found:
            yield found
    yield from _embedded(text, known)


def _parse_block(block: str, known: Collection[str] = ()) -> tuple[list[FunctionCall], str] | None:
    """The whole ``block`` as a Python call list or a JSON call (list)."""
    if not block or len(block) > MAX_CALL_CHARS * 4:
        return None
    calls = _python_calls(block)
    if calls:
        return calls, "python"
    if block[0] in "[{":
        try:
            calls = _json_calls(json.loads(block), known)
        except _PARSE_ERRORS:
            calls = None
        if calls:
            return calls, "json"
    return None


def _embedded(text: str, known: Collection[str]) -> Iterator[tuple[list[FunctionCall], str]]:
    """Calls written inside prose: ``Sure: f(a=1).`` or ``... {"name": "f", ...} ...``, in text order."""
    tried = 0
    decoder = json.JSONDecoder()
    starts = sorted(
        [(m.start(), "python") for m in _CALL_START.finditer(text, 0, len(text))][:MAX_CANDIDATES]
        + [(m.start(), "json") for m in _JSON_START.finditer(text)][:MAX_CANDIDATES]
    )
    for start, kind in starts:
        if tried >= MAX_CANDIDATES:
            return
        tried += 1
        if kind == "python":
            end = _closing(text, text.index("(", start))
            if end is None:
                continue
            # A call right after "[" may be the first of a list: try the list first.
            bracket = start - 1
            while bracket >= 0 and text[bracket].isspace():
                bracket -= 1
            if bracket >= 0 and text[bracket] == "[":
                close = _closing(text, bracket)
                listed = _python_calls(text[bracket : close + 1]) if close is not None else None
                if listed and not _prose(listed, known):
                    yield listed, "python"
                    continue
            calls = _python_calls(text[start : end + 1])
            if calls and not _prose(calls, known):
                yield calls, "python"
        else:
            try:
                value, _ = decoder.raw_decode(text[start : start + MAX_CALL_CHARS])
            except _PARSE_ERRORS:
                continue
            calls = _json_calls(value, known)
            if calls:
                yield calls, "json"


def _prose(calls: list[FunctionCall], known: Collection[str]) -> bool:
    """Whether calls found inside prose are more likely words: "the function(s)", "the value (in m)"."""
    return all(not call.arguments and call.name not in known for call in calls)


def _closing(text: str, open_at: int) -> int | None:
    """Index of the bracket closing ``text[open_at]`` (quotes respected), or None within the length cap."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    quote = ""
    i = open_at
    stop = min(len(text), open_at + MAX_CALL_CHARS)
    while i < stop:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in pairs:
            stack.append(pairs[ch])
        elif ch in ")]}":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return i
        i += 1
    return None


def _python_calls(source: str) -> list[FunctionCall] | None:
    """``source`` as one call or a list/tuple of calls, else None."""
    try:
        tree = ast.parse(source.strip(), mode="eval").body
        nodes = tree.elts if isinstance(tree, ast.List | ast.Tuple) else [tree]
        if not nodes or not all(isinstance(node, ast.Call) for node in nodes):
            return None
        calls = [_call(node) for node in nodes if isinstance(node, ast.Call)]
    except _PARSE_ERRORS:
        return None
    parsed = [call for call in calls if call is not None]
    return parsed if len(parsed) == len(nodes) else None


def _call(node: ast.Call) -> FunctionCall | None:
    name = _dotted(node.func)
    if name is None:
        return None
    arguments = {kw.arg: _value(kw.value) for kw in node.keywords if kw.arg is not None}
    unmatched = len(node.args) + sum(1 for kw in node.keywords if kw.arg is None)
    return FunctionCall(name, arguments, unmatched)


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _value(node: ast.expr) -> Any:
    """A Python value for an argument expression (see the module docstring); never evaluates code."""
    if isinstance(node, ast.Constant):
        value = node.value
        if value is Ellipsis:
            return "..."
        return value if isinstance(value, str | int | float | bool) or value is None else ast.unparse(node)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _value(node.operand)
        if _is_number(operand):
            return -operand if isinstance(node.op, ast.USub) else operand
    elif isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [_value(elt) for elt in node.elts]
    elif isinstance(node, ast.Dict):
        return {
            _key(_value(k)) if k is not None else "**": _value(v) for k, v in zip(node.keys, node.values, strict=True)
        }
    elif isinstance(node, ast.Name):
        return node.id
    elif isinstance(node, ast.BinOp):
        result = _arithmetic(node.op, _value(node.left), _value(node.right))
        if result is not None:
            return result
    return ast.unparse(node)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _key(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else repr(value)


def _arithmetic(op: ast.operator, left: Any, right: Any) -> int | float | None:
    if not (_is_number(left) and _is_number(right)):
        return None
    try:
        if isinstance(op, ast.Add):
            result = left + right
        elif isinstance(op, ast.Sub):
            result = left - right
        elif isinstance(op, ast.Mult):
            result = left * right
        elif isinstance(op, ast.Div):
            result = left / right
        else:
            return None
    except (ZeroDivisionError, OverflowError):
        return None
    if isinstance(result, float) and not math.isfinite(result):
        return None
    return result if not isinstance(result, int) or abs(result) < 10**100 else None


def _json_calls(value: Any, known: Collection[str]) -> list[FunctionCall] | None:
    """JSON call objects (one, a list, or wrapped) as calls; None when ``value`` is not that."""
    if isinstance(value, list):
        calls = [_json_calls(item, known) for item in value]
        if not calls or any(c is None or len(c) != 1 for c in calls):
            return None
        return [c[0] for c in calls if c]
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("tool_calls"), list):
        return _json_calls(value["tool_calls"], known)
    for wrapper in ("function", "function_call"):
        if isinstance(value.get(wrapper), dict):
            return _json_calls(value[wrapper], known)
    name = value.get("name")
    if isinstance(name, str) and name:
        raw: Any = next((value[key] for key in _ARG_KEYS if key in value), {})
        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip() else {}
            except _PARSE_ERRORS:
                return None
        if isinstance(raw, dict) and isinstance(raw.get("properties"), dict) and "type" in raw:
            return None  # a function doc (JSON schema parameters), e.g. the prompt echoed back
        return [FunctionCall(name, dict(raw))] if isinstance(raw, dict) else None
    if len(value) == 1:  # BFCL's own {"func": {"param": value}}, only for an offered function
        ((key, args),) = value.items()
        if key in known and isinstance(args, dict):
            return [FunctionCall(key, dict(args))]
    return None
