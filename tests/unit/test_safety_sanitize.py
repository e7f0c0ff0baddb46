"""The input filter (script/iframe/object/embed and javascript: stripping, length limit) and the injection check."""

from __future__ import annotations

import time

import pytest

from gemmawatch.errors import ConfigError
from gemmawatch.evals.safety import SafetyCheck, get_check
from gemmawatch.evals.safety.sanitize import (
    DEFAULT_MAX_CHARS,
    MAX_PASSES,
    FilterResult,
    HTMLSanitizer,
    InjectionCheck,
    InputFilter,
    sanitize,
)


def clean(text: str) -> str:
    return sanitize(text, max_chars=None).text


def assert_safe(text: str) -> None:
    """Nothing the filter removes is left in its output (a second run changes nothing)."""
    again = sanitize(text, max_chars=None)
    assert not again.changed, (text[:200], again.removed[:5])


# --------------------------------------------------------------------------- #
# Interface
# --------------------------------------------------------------------------- #


def test_the_sanitizer_is_an_input_filter() -> None:
    f = HTMLSanitizer()
    assert isinstance(f, InputFilter)
    assert f.name == "html_sanitizer" and f.version
    assert f.max_chars == DEFAULT_MAX_CHARS
    result = f.apply("Hello <script>alert(1)</script>world")
    assert result == FilterResult(text="Hello world", changed=True, removed=["script"], truncated=False)


@pytest.mark.parametrize("text", ["", "Hello, world.", "2 < 3 and 5 > 4", "x" * 50, "ünïcödé ｆｕｌｌ 🙂"])
def test_clean_text_is_unchanged(text: str) -> None:
    result = sanitize(text)
    assert result == FilterResult(text=text, changed=False, removed=[], truncated=False)


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="text must be a str"):
        sanitize(b"<script>")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_bad_max_chars(bad: object) -> None:
    with pytest.raises(ConfigError, match="max_chars must be an integer >= 0 or None"):
        HTMLSanitizer(max_chars=bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- #
# Elements
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("text", "expected", "removed"),
    [
        ("a<script>alert(1)</script>b", "ab", ["script"]),
        ("a<SCRIPT>alert(1)</ScRiPt>b", "ab", ["script"]),
        ("a<script type='text/javascript' src=\"x.js\">x</script >b", "ab", ["script"]),
        ("a< script >x</ script>b", "ab", ["script"]),
        ("a<script/src=//evil>x</script>b", "ab", ["script"]),
        ("a<script\n  defer\n>x\ny</script\n>b", "ab", ["script"]),
        ("a<script x='>'>alert(1)</script>b", "ab", ["script"]),
        ("keep <script>unclosed to the end", "keep ", ["script"]),
        ("keep <script src=x", "keep ", ["script"]),
        ("a</script>b", "ab", ["script"]),
        ("a<iframe src='https://e.example'>fallback</iframe>b", "afallbackb", ["iframe", "iframe"]),
        ("a<IFRAME\tsrc=x/>b", "ab", ["iframe"]),
        ("a<object data='x.swf'><param name=a></object>b", "a<param name=a>b", ["object", "object"]),
        ("a<embed src=x.swf>b", "ab", ["embed"]),
        ("a<embed src=x.swf", "a", ["embed"]),
    ],
)
def test_elements_are_stripped(text: str, expected: str, removed: list[str]) -> None:
    result = sanitize(text)
    assert (result.text, result.removed) == (expected, removed)
    assert_safe(result.text)


@pytest.mark.parametrize(
    "text",
    [
        "<scripts>are not scripts</scripts>",
        "<script-x>a custom element</script-x>",
        "an <objection> is not an object",
        "<embedded> text",
        "for (let i = 0; i < script.length; i++) { run(i) }",
        "if (n < object_count && m > 0)",
        "I wrote a Java script: it prints hello",
    ],
)
def test_look_alikes_are_kept(text: str) -> None:
    assert clean(text) == text


def test_nested_scripts_end_at_the_first_close() -> None:
    # Like a browser: the inner </script> closes the element; the rest is text, cleaned again.
    result = sanitize("<script>a<script>b</script>c</script>d", max_chars=None)
    assert (result.text, result.removed) == ("cd", ["script", "script"])


@pytest.mark.parametrize(
    "text",
    [
        "<scr<script></script>ipt>alert(1)</scr<script></script>ipt>",
        "<ifr<iframe>ame src=x>",
        "<<script></script>script>alert(1)<</script>/script>",
        "<scr<script>x</script>ipt>y",
    ],
)
def test_markup_rebuilt_by_a_removal_is_removed_too(text: str) -> None:
    result = sanitize(text, max_chars=None)
    assert "<script" not in result.text.lower() and "<iframe" not in result.text.lower()
    assert_safe(result.text)


def test_deeply_rebuilt_markup_is_neutralised() -> None:
    nested = "<iframe>"
    for _ in range(MAX_PASSES + 2):
        nested = "<ifr" + nested + "ame>"
    result = sanitize(f"ok {nested} ok", max_chars=None)
    assert result.removed[-1] == "neutralised"
    assert "<" not in result.text and result.text.startswith("ok ")
    assert_safe(result.text)


# --------------------------------------------------------------------------- #
# javascript: URLs
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "j\ta\rv\na\tscript:alert(1)",
        "java\x00script:alert(1)",
        "java\u200bscript:alert(1)",
        "javascript\t:alert(1)",
        "&#106;avascript:alert(1)",
        "&#0000106;avascript:alert(1)",
        "&#x6A;avascript:alert(1)",
        "&#X6a&#X61vascript:alert(1)",
        "jav&#x61;script&#58;alert(1)",
        "javascript&colon;alert(1)",
        "javascript&#x3A;alert(1)",
        "java&Tab;script:alert(1)",
        "java&NewLine;script:alert(1)",
        "java&#9;script:alert(1)",
        "java&#x0A;script:alert(1)",
        "&#74;&#65;&#86;&#65;&#83;&#67;&#82;&#73;&#80;&#84;&#58;alert(1)",
    ],
)
def test_javascript_urls_lose_their_scheme(url: str) -> None:
    result = sanitize(f'<a href="{url}">x</a>')
    assert result.text == '<a href="alert(1)">x</a>'
    assert result.removed == ["javascript:"]


@pytest.mark.parametrize(
    "text",
    [
        "java script:alert(1)",  # a space is not skipped by browsers
        "javascripts:",
        "&#1060;avascript:",  # &#1060; is not j
        "javascript",
        "vbscript:msgbox(1)",  # out of scope (see the module docstring)
    ],
)
def test_not_a_javascript_scheme(text: str) -> None:
    assert clean(text) == text


def test_javascript_rebuilt_by_a_removal_is_removed_too() -> None:
    assert clean("javajavascript:script:alert(1)") == "alert(1)"
    nested = "javascript:"
    for _ in range(MAX_PASSES + 1):
        nested = "java" + nested + "script:"
    result = sanitize(nested + "alert(1)", max_chars=None)
    assert result.removed[-1] == "neutralised"
    assert ":" not in result.text and "&" not in result.text
    assert_safe(result.text)


def test_script_tag_rebuilt_by_removing_a_scheme() -> None:
    result = sanitize("<scrjavascript:ipt>alert(1)</script>", max_chars=None)
    # Pass 1 drops the stray </script> and the scheme; pass 2 the rebuilt <script> (unclosed: to the end).
    assert result.text == "" and result.removed == ["script", "javascript:", "script"]


# --------------------------------------------------------------------------- #
# Length
# --------------------------------------------------------------------------- #


def test_length_limit_truncates_with_a_flag() -> None:
    result = sanitize("a" * 25, max_chars=10)
    assert result == FilterResult(text="a" * 10, changed=True, removed=["truncated"], truncated=True)
    assert sanitize("a" * 10, max_chars=10).changed is False
    assert sanitize("abc", max_chars=0).text == ""
    assert sanitize("a" * 100_000, max_chars=None).text == "a" * 100_000


def test_truncation_comes_first_and_the_cut_is_cleaned() -> None:
    # The cut leaves an unclosed <script>: it is removed like any other.
    result = sanitize("hello <script>alert(1)</script> world", max_chars=15)
    assert result.text == "hello " and result.removed == ["truncated", "script"] and result.truncated


def test_default_limit() -> None:
    result = sanitize("x" * (DEFAULT_MAX_CHARS + 1))
    assert result.truncated and len(result.text) == DEFAULT_MAX_CHARS


# --------------------------------------------------------------------------- #
# Unicode and adversarial input
# --------------------------------------------------------------------------- #


def test_unicode_around_markup_is_preserved() -> None:
    assert clean("日本語<script>x</script>テキスト 🙂") == "日本語テキスト 🙂"
    assert clean("ｊａｖａｓｃｒｉｐｔ：alert(1)") == "ｊａｖａｓｃｒｉｐｔ：alert(1)"  # full-width is not a scheme


@pytest.mark.parametrize(
    "unit",
    ["<", "< ", "<script", "<script>", "</script>", "<iframe ", "j\t", "&#106;", "java", "<scr<script></script>ipt>"],
)
def test_one_megabyte_is_linear(unit: str) -> None:
    text = unit * (1_000_000 // len(unit))
    start = time.perf_counter()
    result = sanitize(text, max_chars=None)
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0, f"{unit!r}: {elapsed:.2f}s"
    assert_safe(result.text)


def test_megabyte_of_whitespace_after_a_bracket() -> None:
    start = time.perf_counter()
    result = sanitize("<" + " " * 1_000_000 + "/" + " " * 1000 + "x", max_chars=None)
    assert time.perf_counter() - start < 3.0
    assert not result.changed


# --------------------------------------------------------------------------- #
# The injection check
# --------------------------------------------------------------------------- #


def test_injection_check_flags_what_the_filter_would_change() -> None:
    check = get_check("injection")
    assert isinstance(check, InjectionCheck) and isinstance(check, SafetyCheck)
    assert check.applies_to == "prompt"
    hit = check.check('Summarise <script>steal()</script><a href="javascript:x()">this</a> <embed src=x>')
    assert hit.flagged and hit.score == 1.0
    assert hit.details == {"removed": {"script": 1, "javascript:": 1, "embed": 1}, "truncated": False}
    miss = check.check("Summarise this article about <b>bold</b> HTML.")
    assert not miss.flagged and miss.score == 0.0 and miss.details == {}


def test_injection_check_ignores_length_unless_asked() -> None:
    long = "word " * 10_000
    assert not get_check("injection").check(long).flagged
    hit = get_check("injection", max_chars=100).check(long)
    assert hit.flagged and hit.details == {"removed": {}, "truncated": True}


@pytest.mark.parametrize("text", ["", " ", "\u200b", "🙂" * 1000])
def test_injection_check_on_empty_and_unicode(text: str) -> None:
    result = InjectionCheck().check(text)
    assert not result.flagged and result.score == 0.0
