"""``function_call``: 1 when the output's function call matches a BFCL accepted answer, else 0.

The reference is BFCL's ``ground_truth`` as JSON text: a list of ``{function: {param:
[accepted values]}}`` (one entry per expected call; a single such object or a whole
possible-answer row ``{"id", "ground_truth"}`` is read too). Several references: the best
counts. The per-sample context key ``functions`` (the function docs shown to the model,
a list of ``{"name", "parameters": {"properties", "required"}}``) gives the parameter types
and the required parameters; without it they are inferred from the answer.

The output is parsed with :func:`gemmawatch.evals.function_calling_parse.parse_calls`
(Python call syntax or JSON, code fences and surrounding prose tolerated; ``strict=True``
wants nothing but the call, as BFCL) and matched with
:func:`gemmawatch.evals.function_calling.check_calls` (BFCL's AST checker semantics; the
differences are listed there).

``details``: ``reason`` and ``error_type`` when 0 (``no call found`` / ``no_call``, ``wrong
function: ...``, ``missing param: X``, ``unexpected param: X``, ``wrong type for X: ...``,
``wrong value for X: ...``, ``wrong number of calls: ...``), ``calls`` (what was parsed, as
short ``name(a=1)`` strings) and ``format`` (``python`` or ``json``). Value ``None`` only
when there is no usable reference.

Limits: one level of element-type checking in lists, as BFCL; values are compared, never
executed, so a semantically equal expression (``10/2`` for 5.0 is evaluated, ``math.pi`` is
not) can still fail; irrelevance ("no function fits") is not scored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gemmawatch.evals.function_calling import check_calls, describe_calls
from gemmawatch.evals.function_calling_parse import parse_calls
from gemmawatch.evals.quality._text import require_str
from gemmawatch.evals.quality.base import Reference, ScoreResult, references_of

__all__ = ["FunctionCallScorer", "parse_answers"]

NO_REFERENCE = ScoreResult(None, {"reason": "no reference"})
BAD_REFERENCE = ScoreResult(
    None, {"reason": "reference is not a BFCL answer (JSON list of {function: {param: [values]}})"}
)


def parse_answers(reference: str) -> list[dict[str, Any]] | None:
    """BFCL answers from a reference string, or None when it is not one (see the module docstring)."""
    try:
        value = json.loads(reference)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and "ground_truth" in value:
        value = value["ground_truth"]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        return None
    for answer in value:
        if not (isinstance(answer, dict) and len(answer) == 1):
            return None
        (params,) = answer.values()
        if not isinstance(params, dict) or not all(isinstance(v, list) for v in params.values()):
            return None
    return value


def _functions(value: Any) -> list[Mapping[str, Any]] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        return None
    return [doc for doc in value if isinstance(doc, Mapping)]


class FunctionCallScorer:
    """BFCL AST match of the output's function call against the accepted answers (0/1).

    Args:
        strict: Accept only an output that is nothing but the call (list), after trimming
            whitespace and one code fence, as BFCL's decoder requires. Default: find the
            call inside prose and fences.
    """

    name = "function_call"
    version = "1"
    needs_reference = True
    higher_is_better = True

    def __init__(self, strict: bool = False) -> None:
        self.strict = bool(strict)
        self.args: dict[str, Any] = {"strict": self.strict}

    def __repr__(self) -> str:
        return f"FunctionCallScorer(strict={self.strict})"

    def score(
        self, prediction: str, reference: Reference = None, *, prompt: str | None = None, **context: Any
    ) -> ScoreResult:
        """1.0 / 0.0 with the reason (see the module docstring); ``None`` without a usable reference."""
        require_str(prediction, "prediction")
        refs = references_of(reference)
        if refs is None:
            return NO_REFERENCE
        answer_sets = [answers for answers in map(parse_answers, refs) if answers is not None]
        if not answer_sets:
            return BAD_REFERENCE
        functions = _functions(context.get("functions"))
        known = {doc["name"] for doc in functions or () if isinstance(doc.get("name"), str)}
        known |= {name for answers in answer_sets for answer in answers for name in answer}
        calls, how = parse_calls(prediction, known=known, strict=self.strict)
        if not calls:
            return ScoreResult(0.0, {"reason": "no call found", "error_type": "no_call"})
        found = {"calls": describe_calls(calls), "format": how}
        failure = None
        for answers in answer_sets:
            result = check_calls(calls, answers, functions)
            if result.valid:
                return ScoreResult(1.0, found)
            failure = failure or result
        assert failure is not None
        return ScoreResult(0.0, {"reason": failure.reason, "error_type": failure.error_type, **found})
