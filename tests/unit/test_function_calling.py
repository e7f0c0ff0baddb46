"""function_call: the call parser, BFCL's AST check, the scorer; the real BFCL answers round-trip."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from gemmawatch.evals.function_calling import check_calls, standardize_string
from gemmawatch.evals.function_calling_parse import FunctionCall, parse_calls
from gemmawatch.evals.quality import get_scorer
from gemmawatch.evals.quality.function_call import parse_answers

BFCL_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bfcl_simple"

AREA = [
    {
        "name": "calculate_triangle_area",
        "parameters": {
            "type": "dict",
            "properties": {"base": {"type": "integer"}, "height": {"type": "integer"}, "unit": {"type": "string"}},
            "required": ["base", "height"],
        },
    }
]
AREA_ANSWER = json.dumps([{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}}])


def score(
    output: str, reference: Any = AREA_ANSWER, functions: Any = AREA, **kw: Any
) -> tuple[float | None, dict[str, Any]]:
    result = get_scorer("function_call", **kw).score(output, reference, functions=functions)
    json.dumps(result.details)
    return result.value, result.details


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "text",
    [
        "[calculate_triangle_area(base=10, height=5)]",
        "calculate_triangle_area(base=10, height=5)",
        "  calculate_triangle_area( base = 10 , height = 5 )\n",
        "```python\ncalculate_triangle_area(base=10, height=5)\n```",
        "```\n[calculate_triangle_area(base=10, height=5)]\n```",
        "Sure! Here is the call:\ncalculate_triangle_area(base=10, height=5)\nIt returns the area.",
        "I will (probably) call calculate_triangle_area(base=10, height=5).",
        '{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}',
        '{"name": "calculate_triangle_area", "parameters": {"base": 10, "height": 5}}',
        '[{"name": "calculate_triangle_area", "arguments": "{\\"base\\": 10, \\"height\\": 5}"}]',
        '{"tool_calls": [{"function": {"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}}]}',
        'Answer: ```json\n{"calculate_triangle_area": {"base": 10, "height": 5}}\n```',  # BFCL's own JSON shape
        'The call is {"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}} as asked.',
        "print(calculate_triangle_area(base=10, height=5))",  # an unknown wrapper: the known call inside
    ],
)
def test_a_correct_call_is_found_in_many_shapes(text: str) -> None:
    assert score(text)[0] == 1.0


def test_parse_values_as_bfcl() -> None:
    calls, how = parse_calls(
        "f(a=-3, b=2.5, c=[1, (2, 3)], d={'k': 'v'}, e=True, g=None, h=x, i=2*3.5, j=math.pi, k=g(1), l=...)"
    )
    assert how == "python"
    assert calls == [
        FunctionCall(
            "f",
            {
                "a": -3,
                "b": 2.5,
                "c": [1, [2, 3]],
                "d": {"k": "v"},
                "e": True,
                "g": None,
                "h": "x",  # a bare name is its identifier (BFCL's "variable")
                "i": 7.0,  # + - * / on numbers is evaluated
                "j": "math.pi",  # anything else is its source text, never executed
                "k": "g(1)",
                "l": "...",
            },
        )
    ]
    assert parse_calls("math.factorial(number=5)")[0] == [FunctionCall("math.factorial", {"number": 5})]
    assert parse_calls("f(1, 2, b=3, **kw)")[0] == [FunctionCall("f", {"b": 3}, positional=3)]
    assert parse_calls("[f(a=1), g(b=2)]")[0] == [FunctionCall("f", {"a": 1}), FunctionCall("g", {"b": 2})]


def test_nothing_executes() -> None:
    calls, _ = parse_calls("f(a=__import__('os').system('echo pwned'), b=9**9**9, c=1/0)")
    assert calls[0].arguments == {"a": "__import__('os').system('echo pwned')", "b": "9 ** 9 ** 9", "c": "1 / 0"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "no call here",
        "f(",
        "f(a=1",
        "(a=1)",
        "[1, 2, 3]",
        '{"x": 1}',
        "🙂" * 100,
        "a\x00b",
        "{" * 5000,
        "(" * 5000,
    ],
)
def test_no_call_found(text: str) -> None:
    value, details = score(text)
    assert value == 0.0 and details == {"reason": "no call found", "error_type": "no_call"}


def test_an_echoed_prompt_is_not_a_call() -> None:
    from gemmawatch.evals.datasets.bfcl import BFCL_TEMPLATE

    echo = BFCL_TEMPLATE.replace("{functions}", json.dumps(AREA)).replace("{prompt}", "Area for base 10, height 5?")
    assert score(echo) == (0.0, {"reason": "no call found", "error_type": "no_call"})
    assert score("Use the function(s) you have (in metres).")[0] == 0.0
    value, details = score("Sure: area(base=10, height=5)")  # keyword arguments: a call, of the wrong function
    assert value == 0.0 and details["error_type"] == "wrong_function"
    assert score("area(10, 5)")[1]["error_type"] == "wrong_function"  # the whole output is a call


def test_strict_wants_nothing_but_the_call() -> None:
    assert score("calculate_triangle_area(base=10, height=5)", strict=True)[0] == 1.0
    assert score("```python\n[calculate_triangle_area(base=10, height=5)]\n```", strict=True)[0] == 1.0
    assert score("Sure: calculate_triangle_area(base=10, height=5)", strict=True)[0] == 0.0


def test_very_long_output_is_fast() -> None:
    noise = "The quick brown fox (jumps) over f(x, the lazy {dog}. " * 2000  # ~110k characters
    start = time.perf_counter()
    assert score(noise + "calculate_triangle_area(base=10, height=5)")[0] in (0.0, 1.0)
    assert score(noise)[0] == 0.0
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------- matching


@pytest.mark.parametrize(
    ("text", "error_type", "reason"),
    [
        ("area(base=10, height=5)", "wrong_function", "wrong function: called area, expected calculate_triangle_area"),
        ("calculate_triangle_area(base=10)", "missing_param", "missing param: height"),
        ("calculate_triangle_area(10, 5)", "missing_param", "missing param: base (2 positional"),
        ("calculate_triangle_area(base=10, height=5, color='red')", "unexpected_param", "unexpected param: color"),
        ("calculate_triangle_area(base=10, height=6)", "wrong_value", "wrong value for height: 6 (accepted: 5)"),
        (
            "calculate_triangle_area(base=10.0, height=5)",
            "wrong_type",
            "wrong type for base: expected integer, got float",
        ),
        ("calculate_triangle_area(base=True, height=5)", "wrong_type", "expected integer, got bool"),
        ("calculate_triangle_area(base='10', height=5)", "wrong_type", "expected integer, got str"),
        ("calculate_triangle_area(base=10, height=5, unit='cm')", "wrong_value", "wrong value for unit: 'cm'"),
        (
            "[calculate_triangle_area(base=10, height=5), calculate_triangle_area(base=10, height=5)]",
            "wrong_count",
            "wrong number of calls: got 2, expected 1",
        ),
    ],
)
def test_wrong_calls_say_why(text: str, error_type: str, reason: str) -> None:
    value, details = score(text)
    assert value == 0.0
    assert details["error_type"] == error_type and reason in details["reason"]
    assert details["calls"] and details["format"] == "python"


def test_strings_are_standardised_as_bfcl() -> None:
    assert standardize_string("New York, NY") == standardize_string("new york ny") == "newyorkny"
    assert standardize_string("It's") == 'it"s'
    assert score("calculate_triangle_area(base=10, height=5, unit='UNITS')")[0] == 1.0
    assert score("calculate_triangle_area(base=10, height=5, unit='u-n-i-t-s.')")[0] == 1.0
    assert score("calculate_triangle_area(base=10, height=5, unit='ünits')")[0] == 0.0


def test_types_follow_bfcl() -> None:
    docs = [
        {
            "name": "f",
            "parameters": {
                "properties": {
                    "x": {"type": "float"},
                    "xs": {"type": "array", "items": {"type": "integer"}},
                    "d": {"type": "dict"},
                    "t": {"type": "tuple", "items": {"type": "string"}},
                },
                "required": ["x"],
            },
        }
    ]

    def check(call: str, answer: dict[str, list[Any]]) -> bool:
        return check_calls(parse_calls(call)[0], [{"f": answer}], docs).valid

    assert check("f(x=3)", {"x": [3.0]})  # int -> float for a float parameter
    assert check("f(x=3.0)", {"x": [3.0]}) and not check("f(x=3.5)", {"x": [3.0]})
    assert check("f(x=1.0, xs=[1, 2])", {"x": [1.0], "xs": [[1, 2]]})
    assert not check("f(x=1.0, xs=[2, 1])", {"x": [1.0], "xs": [[1, 2]]})  # lists keep their order
    assert not check("f(x=1.0, xs=[1.0, 2])", {"x": [1.0], "xs": [[1, 2]]})  # element types checked
    assert check("f(x=1.0, t=('A b', 'c'))", {"x": [1.0], "t": [["ab", "C"]]})  # tuple -> list, strings standardised
    assert check("f(x=1.0, d={'k': 'New York'})", {"x": [1.0], "d": [{"k": ["new york"]}]})
    assert not check("f(x=1.0, d={'k': 'Boston'})", {"x": [1.0], "d": [{"k": ["new york"]}]})
    assert not check("f(x=1.0, d={'k': 'a', 'z': 1})", {"x": [1.0], "d": [{"k": ["a"]}]})  # unexpected key
    assert check("f(x=1.0, d={})", {"x": [1.0], "d": [{"k": ["a", ""]}]})  # optional dict key
    assert check("f(x=size)", {"x": ["size"]})  # the "variable" case: the answer is a name


def test_optional_and_omittable() -> None:
    assert score("calculate_triangle_area(base=10, height=5, unit='units')")[0] == 1.0
    answer = json.dumps([{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units"]}}])
    value, details = score("calculate_triangle_area(base=10, height=5)", answer)
    assert value == 0.0 and details["reason"] == "missing param: unit (the answer does not let it be omitted)"


def test_parallel_calls_match_in_any_order() -> None:
    answers = [{"f": {"a": [1]}}, {"f": {"a": [2]}}]
    assert check_calls(parse_calls("[f(a=2), f(a=1)]")[0], answers).valid
    result = check_calls(parse_calls("[f(a=2), f(a=2)]")[0], answers)
    assert not result.valid and result.error_type == "wrong_value"


def test_without_function_docs_types_come_from_the_answer() -> None:
    assert score("calculate_triangle_area(base=10, height=5)", functions=None)[0] == 1.0
    value, details = score("calculate_triangle_area(base=10.0, height=5)", functions=None)
    assert value == 0.0 and details["error_type"] == "wrong_type"
    assert score("calculate_triangle_area(base=10, height=5)", functions=json.dumps(AREA))[0] == 1.0


def test_references() -> None:
    assert score("x", None) == (None, {"reason": "no reference"})
    assert score("x", "not json")[1]["reason"].startswith("reference is not a BFCL answer")
    assert score("x", "[1, 2]")[0] is None
    row = json.dumps({"id": "simple_0", "ground_truth": json.loads(AREA_ANSWER)})
    assert score("calculate_triangle_area(base=10, height=5)", row)[0] == 1.0  # a whole answer-file row
    single = json.dumps({"calculate_triangle_area": {"base": [10], "height": [5]}})
    assert score("calculate_triangle_area(base=10, height=5)", ["[]", single])[0] == 1.0  # best of several
    assert parse_answers("{}") is None and parse_answers('[{"f": {"a": 1}}]') is None


def test_malformed_docs_never_raise() -> None:
    for docs in ([{"name": "calculate_triangle_area", "parameters": "oops"}], [1, "x"], {"no": "name"}, "[[["):
        value, _ = score("calculate_triangle_area(base=10, height=5)", functions=docs)
        assert value in (0.0, 1.0)


# ---------------------------------------------------------------- the real data


def _first(values: list[Any]) -> Any:
    value = next((v for v in values if v != ""), "")
    if isinstance(value, dict):
        return {k: _first(v) for k, v in value.items()}
    if isinstance(value, list):
        return [{k: _first(v) for k, v in x.items()} if isinstance(x, dict) else x for x in value]
    return value


@pytest.mark.skipif(not BFCL_DIR.is_dir(), reason=f"BFCL data not found at {BFCL_DIR}")
def test_every_bfcl_answer_matches_itself_written_as_python_and_json() -> None:
    questions = [json.loads(line) for line in (BFCL_DIR / "BFCL_v4_simple_python.jsonl").open()]
    answers = [json.loads(line) for line in (BFCL_DIR / "possible_answer_BFCL_v4_simple_python.jsonl").open()]
    scorer = get_scorer("function_call")
    for question, answer in zip(questions, answers, strict=True):
        ((name, params),) = answer["ground_truth"][0].items()
        args = {k: _first(v) for k, v in params.items() if any(x != "" for x in v)}
        python = f"{name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
        as_json = json.dumps({"name": name, "arguments": args})
        reference = json.dumps(answer["ground_truth"])
        for output in (f"[{python}]", f"Here:\n```json\n{as_json}\n```"):
            result = scorer.score(output, reference, functions=question["function"])
            assert result.value == 1.0, (question["id"], output, result.details)
        wrong = scorer.score(f"{name}_v2()", reference, functions=question["function"])
        assert wrong.value == 0.0 and wrong.details["error_type"] == "wrong_function"
