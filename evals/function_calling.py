"""BFCL's AST check: does a parsed function call match one of the accepted answers?

Follows the Berkeley Function Calling Leaderboard's ``ast_checker`` for Python
(``berkeley-function-call-leaderboard/bfcl_eval/eval_checker/ast_eval/ast_checker.py`` in
ShishirPatil/gorilla: ``simple_function_checker``, ``type_checker``, ``string_checker``,
``list_checker``, ``dict_checker``, ``list_dict_checker``, ``parallel_function_checker_no_order``).

An answer is BFCL's ``ground_truth`` entry ``{function_name: {param: [accepted values...]}}``;
``""`` among the accepted values means "may be omitted". A call matches when

1. the function name is the expected one (exactly; dotted names are kept);
2. every parameter the function doc lists as ``required`` is given;
3. every given parameter is in the doc's ``properties`` and in the answer ("unexpected param");
4. each value has the doc's type (``integer`` -> int, ``float`` -> float, where an int is
   accepted and converted, ``boolean`` -> bool, ``string``/``any`` -> str, ``array``/``tuple``
   -> list with one level of element types, ``dict`` -> dict), compared with ``type(v) is t``
   as BFCL does, so ``True`` is not an integer and ``5.0`` is not an integer; a value of the
   accepted answers' own type is also taken (BFCL's "variable" case: the answer is a name);
5. the value is among the accepted ones: strings (also inside lists and dicts) compared after
   BFCL's ``standardize_string`` (spaces and ``,./-_*^`` removed, lower-cased, ``'`` -> ``"``),
   dicts key by key, lists element-wise and in order, everything else with ``==``;
6. every answer parameter that may not be omitted is given.

Several answers (BFCL's parallel categories) need as many calls, matched in any order.
Without function docs (``functions=None``) the required parameters are those the answer does
not let you omit, and types come from the accepted values.

Where this differs from BFCL: the function doc's ``"."`` -> ``"_"`` renaming is not applied
(BFCL applies it only for APIs that forbid dots in names; Gemma is prompted with the names
as they are); an unknown type name in a doc skips the type check instead of failing; bad
docs or answers give a failed match with a reason instead of an exception; the parser's
differences are listed in :mod:`gemmawatch.evals.function_calling_parse`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gemmawatch.evals.function_calling_parse import FunctionCall, format_call

__all__ = ["PYTHON_TYPES", "MatchResult", "check_calls", "describe_calls", "standardize_string"]

#: BFCL's ``PYTHON_TYPE_MAPPING``: JSON-schema-ish type name in a function doc -> Python type.
PYTHON_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
_NESTED = ("array", "tuple")
_STANDARDIZE = re.compile(r"[ ,./\-_*^]")


@dataclass(frozen=True)
class MatchResult:
    """The verdict on a model's calls.

    Attributes:
        valid: Whether the calls match the answers.
        reason: Why not, in words (``"missing param: base"``); ``""`` when valid.
        error_type: A stable key for counting failures (``"wrong_function"``, ``"missing_param"``,
            ``"unexpected_param"``, ``"wrong_type"``, ``"wrong_value"``, ``"wrong_count"``, ``"bad_answer"``).
    """

    valid: bool
    reason: str = ""
    error_type: str = ""


_OK = MatchResult(True)


def standardize_string(text: str) -> str:
    """BFCL's ``standardize_string``: drop spaces and ``,./-_*^``, lower-case, ``'`` -> ``"``."""
    return _STANDARDIZE.sub("", text).lower().replace("'", '"')


def check_calls(
    calls: Sequence[FunctionCall],
    answers: Sequence[Mapping[str, Any]],
    functions: Sequence[Mapping[str, Any]] | None = None,
) -> MatchResult:
    """Whether ``calls`` match ``answers`` (one call per answer, any order), BFCL-style."""
    if not answers:
        return MatchResult(False, "no accepted answer", "bad_answer")
    if len(calls) != len(answers):
        return MatchResult(False, f"wrong number of calls: got {len(calls)}, expected {len(answers)}", "wrong_count")
    if len(answers) == 1:
        return _check_one(calls[0], answers[0], functions)
    unmatched = list(range(len(calls)))
    for answer in answers:
        first_failure: MatchResult | None = None
        for index in unmatched:
            result = _check_one(calls[index], answer, functions)
            if result.valid:
                unmatched.remove(index)
                break
            first_failure = first_failure or result
        else:
            return first_failure or MatchResult(False, "no call left to match", "wrong_count")
    return _OK


def _find_doc(functions: Sequence[Mapping[str, Any]] | None, name: str) -> Mapping[str, Any] | None:
    for doc in functions or ():
        if isinstance(doc, Mapping) and doc.get("name") == name:
            return doc
    return None


def _check_one(
    call: FunctionCall, answer: Mapping[str, Any], functions: Sequence[Mapping[str, Any]] | None
) -> MatchResult:
    if not isinstance(answer, Mapping) or len(answer) != 1:
        return MatchResult(False, "answer is not {function: {param: [values]}}", "bad_answer")
    ((expected, accepted),) = answer.items()
    if not isinstance(accepted, Mapping) or not all(isinstance(v, list) for v in accepted.values()):
        return MatchResult(False, f"answer for {expected} is not {{param: [values]}}", "bad_answer")
    if call.name != expected:
        return MatchResult(False, f"wrong function: called {call.name}, expected {expected}", "wrong_function")
    doc = _find_doc(functions, expected)
    params = doc.get("parameters") if doc is not None else None
    properties: Mapping[str, Any] | None = None
    if isinstance(params, Mapping) and isinstance(params.get("properties"), Mapping):
        properties = params["properties"]
        required = [p for p in params.get("required") or [] if isinstance(p, str)]
    else:
        required = [p for p, values in accepted.items() if "" not in values]
    for param in required:
        if param not in call.arguments:
            hint = (
                f" ({call.positional} positional argument(s) not matched: write name=value)" if call.positional else ""
            )
            return MatchResult(False, f"missing param: {param}{hint}", "missing_param")
    for param, value in call.arguments.items():
        if (properties is not None and param not in properties) or param not in accepted:
            return MatchResult(False, f"unexpected param: {param}", "unexpected_param")
        spec = properties.get(param) if properties is not None else None
        result = _check_value(param, value, accepted[param], spec if isinstance(spec, Mapping) else None)
        if not result.valid:
            return result
    for param, values in accepted.items():
        if param not in call.arguments and "" not in values:
            return MatchResult(
                False, f"missing param: {param} (the answer does not let it be omitted)", "missing_param"
            )
    return _OK


def _answer_type(accepted: Sequence[Any]) -> type | None:
    """BFCL's ``get_possible_answer_type``: the type of the first accepted value that is not ``""``."""
    return next((type(v) for v in accepted if v != ""), None)


def _check_value(param: str, value: Any, accepted: list[Any], spec: Mapping[str, Any] | None) -> MatchResult:
    type_name = spec.get("type") if spec is not None else None
    expected = PYTHON_TYPES.get(type_name) if isinstance(type_name, str) else None
    if expected is None:  # no doc (or an unknown type): the accepted values' type, if any
        expected = _answer_type(accepted)
        type_name = expected.__name__ if expected is not None else None
    nested: type | None = None
    if type_name in _NESTED and spec is not None:
        items = spec.get("items")
        nested = PYTHON_TYPES.get(str(items.get("type"))) if isinstance(items, Mapping) else None
    if type_name == "float" and type(value) is int:
        value = float(value)  # BFCL: Python's int -> float promotion for float parameters
    answer_type = _answer_type(accepted)
    is_variable = answer_type is not None and expected is not None and answer_type is not expected
    if expected is not None:
        if type(value) is expected:
            if nested is not None and isinstance(value, list) and not _nested_ok(value, accepted, nested):
                return MatchResult(
                    False, f"wrong type for {param}: expected {type_name} of {nested.__name__}", "wrong_type"
                )
        elif answer_type is not None and type(value) is answer_type:
            is_variable = True
        else:
            return MatchResult(
                False, f"wrong type for {param}: expected {type_name}, got {type(value).__name__}", "wrong_type"
            )
    if not is_variable:
        if expected is dict:
            ok = _dict_ok(value, accepted)
        elif expected is list and nested is dict:
            ok = _list_of_dicts_ok(value, accepted)
        elif expected is str:
            ok = standardize_string(value) in {standardize_string(v) for v in accepted if isinstance(v, str)}
        elif expected is list:
            ok = _standardized(value) in [_standardized(v) for v in accepted if isinstance(v, list)]
        else:
            ok = value in [v for v in accepted if v != ""]
    else:
        ok = value in [v for v in accepted if v != ""]
    if ok:
        return _OK
    shown = ", ".join(repr(v) for v in accepted)
    shown = shown if len(shown) <= 120 else shown[:117] + "..."  # details stay small enough to be stored
    return MatchResult(False, f"wrong value for {param}: {_short(value)} (accepted: {shown})", "wrong_value")


def _nested_ok(value: list[Any], accepted: list[Any], nested: type) -> bool:
    """BFCL's one-level element type check: elements of the nested type (or of the accepted list's own type)."""
    candidates = [a for a in accepted if isinstance(a, list)] or [[]]
    for answer in candidates:
        answer_type = _answer_type(answer)
        if all(type(item) is nested or (answer_type is not None and type(item) is answer_type) for item in value):
            return True
    return False


def _standardized(values: list[Any]) -> list[Any]:
    return [standardize_string(v) if isinstance(v, str) else v for v in values]


def _dict_ok(value: Any, accepted: list[Any]) -> bool:
    """BFCL's ``dict_checker``: some accepted dict has every given key with an accepted value, and no key is missing."""
    if not isinstance(value, dict):
        return False
    for answer in accepted:
        if not isinstance(answer, dict):
            continue
        if all(
            key in answer and isinstance(answer[key], list) and _in_standardized(item, answer[key])
            for key, item in value.items()
        ) and all(key in value or (isinstance(vals, list) and "" in vals) for key, vals in answer.items()):
            return True
    return False


def _in_standardized(item: Any, accepted: list[Any]) -> bool:
    if isinstance(item, str):
        return standardize_string(item) in {standardize_string(v) for v in accepted if isinstance(v, str)}
    return item in [v for v in accepted if v != ""]


def _list_of_dicts_ok(value: Any, accepted: list[Any]) -> bool:
    """BFCL's ``list_dict_checker``: same length as an accepted list, each dict matching in order."""
    if not isinstance(value, list):
        return False
    for answer in accepted:
        if (
            isinstance(answer, list)
            and len(answer) == len(value)
            and all(_dict_ok(item, [expected]) for item, expected in zip(value, answer, strict=True))
        ):
            return True
    return False


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_calls(calls: Sequence[FunctionCall]) -> list[str]:
    """The first two calls as short ``name(a=1)`` strings, for a sample's details."""
    return [format_call(call, limit=150) for call in calls[:2]]
