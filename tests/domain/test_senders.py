from __future__ import annotations

import pytest

from domain.senders import SenderOutcome, check_sender, parse_allowed_senders


def test_parse_allowed_senders_strips_lowercases_and_dedupes_in_order() -> None:
    entries = ["  Ann@Example.com ", "@Customer.EXAMPLE", "ann@example.com", "bob@x.example"]
    assert parse_allowed_senders(entries) == [
        "ann@example.com",
        "@customer.example",
        "bob@x.example",
    ]


def test_parse_allowed_senders_accepts_an_empty_list() -> None:
    assert parse_allowed_senders([]) == []


@pytest.mark.parametrize(
    ("entry", "hint"),
    [
        ("", "empty entry"),
        ("   ", "empty entry"),
        ("example.com", "write '@example.com'"),
        ("*@example.com", "write '@example.com'"),
        ("Ann <ann@example.com>", "'Ann <ann@example.com>'"),
        ("ann@", "'ann@'"),
        ("@", "'@'"),
        ("@localhost", "'@localhost'"),
        ("ann@@example.com", "'ann@@example.com'"),
        ("ann smith@example.com", "'ann smith@example.com'"),
        ("ann@example.com, bob@example.com", "'ann@example.com, bob@example.com'"),
    ],
)
def test_parse_allowed_senders_names_the_bad_entry(entry: str, hint: str) -> None:
    with pytest.raises(ValueError, match="not an email address") as raised:
        parse_allowed_senders(["ok@example.com", entry])
    assert hint in str(raised.value)


@pytest.mark.parametrize(
    ("sender", "allowed", "matched"),
    [
        ("ann@example.com", ["ann@example.com"], "ann@example.com"),
        ("ANN@Example.COM", ["ann@example.com"], "ann@example.com"),
        ("  ann@example.com  ", ["ann@example.com"], "ann@example.com"),
        ("ann@example.com", ["  ANN@EXAMPLE.COM "], "ann@example.com"),
        ("bob@example.com", ["@example.com"], "@example.com"),
        ("Bob@EXAMPLE.com", ["@Example.Com"], "@example.com"),
        ("bob@example.com", ["x@y.example", "@example.com"], "@example.com"),
    ],
)
def test_check_sender_allows_listed_addresses_and_domains(
    sender: str, allowed: list[str], matched: str
) -> None:
    verdict = check_sender(sender, allowed)
    assert verdict.outcome is SenderOutcome.ALLOWED
    assert verdict.allowed
    assert verdict.matched_entry == matched


@pytest.mark.parametrize(
    ("sender", "allowed"),
    [
        ("x@sub.example.com", ["@example.com"]),
        ("x@badexample.com", ["@example.com"]),
        ("x@example.com.evil.example", ["@example.com"]),
        ("ann@example.com", ["bob@example.com"]),
        ("ann@example.org", ["ann@example.com"]),
        ("mailer-daemon", ["@example.com"]),
    ],
)
def test_check_sender_refuses_everyone_else(sender: str, allowed: list[str]) -> None:
    verdict = check_sender(sender, allowed)
    assert verdict.outcome is SenderOutcome.REFUSED
    assert verdict.reason == f"sender {sender} is not in the allowed senders list"


def test_check_sender_allows_everyone_when_the_list_is_empty() -> None:
    verdict = check_sender("anyone@anywhere.example", [])
    assert verdict.allowed
    assert "empty" in verdict.reason


@pytest.mark.parametrize("sender", [None, "", "   "])
@pytest.mark.parametrize("allowed", [[], ["@example.com"]])
def test_check_sender_refuses_a_missing_sender(sender: str | None, allowed: list[str]) -> None:
    verdict = check_sender(sender, allowed)
    assert verdict.outcome is SenderOutcome.REFUSED
    assert verdict.reason == "the email has no sender address"
