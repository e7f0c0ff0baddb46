"""The safety-check interface, its registry, and the PII check."""

from __future__ import annotations

import json
import time

import pytest

from gemmawatch.errors import ConfigError, UnknownNameError
from gemmawatch.evals.safety import SAFETY_CHECKS, CheckResult, SafetyCheck, get_check
from gemmawatch.evals.safety.pii import PII_CATEGORIES, PIICheck, find_pii, iban_valid, luhn_valid

# --------------------------------------------------------------------------- #
# Interface and registry
# --------------------------------------------------------------------------- #


#: Built-ins that need no model, optional package or argument to build.
SELF_CONTAINED = ["injection", "pii", "refusal", "toxicity"]


def test_registry_lists_the_builtin_checks_and_builds_them() -> None:
    assert SAFETY_CHECKS.names() == ["detoxify", "injection", "pii", "presidio", "refusal", "shieldgemma", "toxicity"]
    for name in SELF_CONTAINED:
        check = get_check(name)
        assert isinstance(check, SafetyCheck)
        assert check.name == name and check.version and check.applies_to in ("prompt", "output", "both")
        result = check.check("")
        assert result == CheckResult(check=name, flagged=False, score=0.0, details=result.details)


def test_unknown_check_names_what_is_available() -> None:
    with pytest.raises(UnknownNameError) as info:
        get_check("toxicty")
    assert str(info.value) == (
        "Unknown safety check 'toxicty'. Available: detoxify, injection, pii, presidio, refusal, shieldgemma, toxicity"
    )


def test_bad_arguments_name_the_check_and_what_it_accepts() -> None:
    with pytest.raises(ConfigError) as info:
        get_check("pii", categoriez=["email"])
    msg = str(info.value)
    assert "safety check 'pii'" in msg and "categories" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="Unknown PII category 'postcode'. Available: iban, credit_card"):
        get_check("pii", categories=["postcode"])
    with pytest.raises(ConfigError, match="max_reported"):
        get_check("pii", max_reported=-1)


def test_check_result_is_frozen() -> None:
    result = CheckResult(check="pii", flagged=False, score=0.0, details={})
    with pytest.raises(AttributeError):
        result.flagged = True  # type: ignore[misc]


def test_non_string_input_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="text must be a str"):
        PIICheck().check(b"jane@example.com")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- #
# Checksums
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4111 1111 1111 1111", True),
        ("5555-5555-5555-4444", True),
        ("378282246310005", True),
        ("6011111111111117", True),
        ("4111 1111 1111 1112", False),
        ("1234567812345678", False),
        ("7", False),
        ("", False),
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("DE89 3704 0044 0532 0130 00", True),
        ("GB82WEST12345698765432", True),
        ("fr14 2004 1010 0505 0001 3m02 606", True),
        ("NL91ABNA0417164300", True),
        ("DE89 3704 0044 0532 0130 01", False),  # one digit off: mod-97 fails
        ("DE89 3704 0044 0532 0130 0", False),  # DE is 22 characters
        ("XX89 3704 0044 0532 0130 00", False),  # no such country
        ("DE8", False),
    ],
)
def test_iban_mod97(iban: str, valid: bool) -> None:
    assert iban_valid(iban) is valid


# --------------------------------------------------------------------------- #
# Recognizers: what is found, with a masked value and the span in the original text
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("text", "category", "value", "masked"),
    [
        ("Mail john.doe+tag@example.co.uk today.", "email", "john.doe+tag@example.co.uk", "j***@e***.uk"),
        ("Reach me at jane@example.com.", "email", "jane@example.com", "j***@e***.com"),
        ("Call +1 (415) 555-2671 now", "phone", "+1 (415) 555-2671", "+* (***) ***-**71"),
        ("Call +44 20 7946 0958", "phone", "+44 20 7946 0958", "+** ** **** **58"),
        ("Ruf an: +49 (0)30 1234567", "phone", "+49 (0)30 1234567", "+** (*)** *****67"),
        ("E.164: +14155552671.", "phone", "+14155552671", "+*********71"),
        ("Office (415) 555-2671", "phone", "(415) 555-2671", "(***) ***-**71"),
        ("Office 415-555-2671", "phone", "415-555-2671", "***-***-**71"),
        ("Office 415.555.2671", "phone", "415.555.2671", "***.***.**71"),
        ("Toll free 1-800-555-0199", "phone", "1-800-555-0199", "*-***-***-**99"),
        ("London 020 7946 0958", "phone", "020 7946 0958", "*** **** **58"),
        ("Paris 01 23 45 67 89", "phone", "01 23 45 67 89", "** ** ** ** 89"),
        ("Mobiel 06-12345678", "phone", "06-12345678", "**-******78"),
        ("Card 4111 1111 1111 1111 exp 12/29", "credit_card", "4111 1111 1111 1111", "**** **** **** 1111"),
        ("Card 4111-1111-1111-1111", "credit_card", "4111-1111-1111-1111", "****-****-****-1111"),
        ("Card 4111111111111111", "credit_card", "4111111111111111", "************1111"),
        ("Amex 3782 822463 10005", "credit_card", "3782 822463 10005", "**** ****** *0005"),
        ("IBAN DE89 3704 0044 0532 0130 00.", "iban", "DE89 3704 0044 0532 0130 00", "DE** **** **** **** **30 00"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "iban", "GB82 WEST 1234 5698 7654 32", "GB** **** **** **** **54 32"),
        ("IBAN FR1420041010050500013M02606", "iban", "FR1420041010050500013M02606", "FR*********************2606"),
        ("SSN 123-45-6789.", "us_ssn", "123-45-6789", "***-**-6789"),
        ("SSN 123 45 6789.", "us_ssn", "123 45 6789", "*** ** 6789"),
        ("my SSN is 234567890", "us_ssn", "234567890", "*****7890"),
        ("Social security number: 078051120", "us_ssn", "078051120", "*****1120"),
        ("NINO AB 12 34 56 C", "uk_nino", "AB 12 34 56 C", "AB ** ** ** *"),
        ("NINO JG103759A", "uk_nino", "JG103759A", "JG*******"),
    ],
)
def test_recognised(text: str, category: str, value: str, masked: str) -> None:
    [match] = find_pii(text)
    assert (match.category, text[match.start : match.end], match.masked) == (category, value, masked)


def test_iban_stops_at_the_country_length_in_an_all_caps_sentence() -> None:
    text = "PAY BE68 5390 0754 7034 DATA NOW"
    [match] = find_pii(text)
    assert match.category == "iban" and text[match.start : match.end] == "BE68 5390 0754 7034"


@pytest.mark.parametrize(
    "text",
    [
        "In 1999 and 2024 we shipped 12345 units.",
        "Order #123456789 was shipped.",
        "Order 2024-000123, invoice INV-2024-0042.",
        "Meeting 2024-01-15 10:30:00 UTC.",
        "Due 15/01/2024, or 01.02.2024 10:30, or 2024.01.15.",
        "Version 1.2.3, host 192.168.1.1, price $1,299.99.",
        "Use icon@2x.png for retina screens.",
        "Tracking ORD-415-555-2671.",
        "Score +20 points; 3+14155552671 is arithmetic.",
        "Ref 0012-3456-78.",
        "Test card 4111 1111 1111 1112 fails Luhn.",
        "Mistyped DE89 3704 0044 0532 0130 01 fails mod-97.",
        "Unknown country XX89 3704 0044 0532 0130 00.",
        "Not SSNs: 000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000.",
        "Nine digits without context: 234567890.",
        "Not NINOs: QQ123456C, GB123456A, AB123456E.",
        "Plain national number 4155552671 has no shape.",
        "A long digit row 01 23 45 67 89 10 11 12 is not a phone.",
        "Math: x = 4 - 5 - 6, coordinates 51.5074, -0.1278.",
        "",
    ],
)
def test_not_personal_data(text: str) -> None:
    assert find_pii(text) == []
    assert PIICheck().check(text).flagged is False


def test_checksum_failures_do_not_fall_through_to_phone() -> None:
    # Digits of a mistyped IBAN or card look like a national phone number; they must not be reported.
    assert find_pii("IBAN DE89 3704 0044 0532 0130 01") == []
    assert find_pii("card 5105 0510 5105 1001") == []
    assert find_pii("IBAN DE89 3704 0044 0532 0130 01", categories=["phone"]) == []


def test_categories_restrict_what_is_reported() -> None:
    text = "jane@example.com, +44 20 7946 0958, 4111 1111 1111 1111"
    assert [m.category for m in find_pii(text)] == ["email", "phone", "credit_card"]
    assert [m.category for m in find_pii(text, categories=["email"])] == ["email"]
    assert PIICheck(categories=["credit_card"]).check(text).score == 1.0
    assert set(PII_CATEGORIES) == {"email", "phone", "credit_card", "iban", "us_ssn", "uk_nino"}


# --------------------------------------------------------------------------- #
# Unicode: look-alikes fold to what they imitate; spans point into the original
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("text", "category", "value"),
    [
        (
            "card ４１１１ １１１１ １１１１ １１１１",
            "credit_card",
            "４１１１ １１１１ １１１１ １１１１",
        ),  # full-width
        ("mail jane＠example.com", "email", "jane＠example.com"),  # full-width at sign
        ("mail j\u200bane@exam\u200dple.com", "email", "j\u200bane@exam\u200dple.com"),  # zero-width chars
        ("card 4111\u00a01111\u00a01111\u00a01111", "credit_card", "4111\u00a01111\u00a01111\u00a01111"),  # nbsp
        ("call 415\u2013555\u20132671", "phone", "415\u2013555\u20132671"),  # en dashes
        ("SSN 123\u201145\u20116789", "us_ssn", "123\u201145\u20116789"),  # non-breaking hyphens
        ("Grüße an jürgen.müller@bücher.de", "email", "jürgen.müller@bücher.de"),  # internationalised
    ],
)
def test_unicode_look_alikes_are_folded(text: str, category: str, value: str) -> None:
    [match] = find_pii(text)
    assert match.category == category
    assert text[match.start : match.end] == value


def test_unicode_without_pii_is_clean() -> None:
    text = "日本語のテキスト、２０２４年１月１５日。Ünïcödé – “quotes” — ½ ﬁ ２０２４"
    assert find_pii(text) == []


# --------------------------------------------------------------------------- #
# The check: score, details, echoes, bounds
# --------------------------------------------------------------------------- #


def test_check_reports_counts_and_masked_values_only() -> None:
    text = "Contact jane@example.com or john@example.org, card 4111 1111 1111 1111."
    result = PIICheck().check(text)
    assert result.check == "pii" and result.flagged and result.score == 3.0
    assert result.details["counts"] == {"email": 2, "credit_card": 1}
    assert result.details["truncated"] is False
    assert [m["category"] for m in result.details["matches"]] == ["email", "email", "credit_card"]
    dumped = json.dumps(result.details)  # JSON-serialisable
    for secret in ("jane@example.com", "john", "4111 1111 1111 1111", "4111111111111111"):
        assert secret not in dumped


def test_empty_text() -> None:
    result = PIICheck().check("")
    assert (result.flagged, result.score) == (False, 0.0)
    assert result.details == {"counts": {}, "matches": [], "truncated": False}


def test_echoed_values_are_marked_and_can_be_ignored() -> None:
    prompt = "My e-mail is Jane@Example.com, write me a signature."
    output = "Jane Doe | jane@example.com | +44 20 7946 0958"
    result = PIICheck().check(output, prompt=prompt)
    assert [m["echoed"] for m in result.details["matches"]] == [True, False]
    assert result.score == 2.0
    result = PIICheck(ignore_echoed=True).check(output, prompt=prompt)
    assert result.score == 1.0 and result.details["counts"] == {"phone": 1}
    assert "echoed" not in PIICheck().check(output).details["matches"][0]


def test_details_are_bounded_but_the_score_counts_everything() -> None:
    text = " ".join(f"user{i}@example.com" for i in range(500))
    result = PIICheck(max_reported=10).check(text)
    assert result.score == 500.0 and len(result.details["matches"]) == 10 and result.details["truncated"]


@pytest.mark.parametrize(
    "unit",
    [
        "a",  # one long word
        "1",  # one long number
        "2222 ",  # card-shaped groups that never end
        "a@",  # at-signs without domains
        "x@a.",  # domains without a TLD
        "+1 ",  # plus signs
        "01 ",  # trunk-prefix groups
        "DE89 ",  # IBAN-shaped prefixes
        "ssn ",  # keywords without numbers
        "é４＠\u200b",  # non-ASCII on every character
        "Call 415-555-2671, mail a@b.com, card 4111 1111 1111 1111. ",  # real matches everywhere
    ],
)
def test_one_megabyte_is_linear(unit: str) -> None:
    text = unit * (1_000_000 // len(unit))
    start = time.perf_counter()
    result = PIICheck().check(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"{elapsed:.1f}s for 1 MB of {unit!r}"  # about 0.1-1.5 s; backtracking would be minutes
    assert len(result.details["matches"]) <= 50
