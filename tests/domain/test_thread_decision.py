from __future__ import annotations

import pytest

from domain.mime import NormalisedEmail
from domain.thread_decision import (
    ThreadKeys,
    ThreadLookup,
    ThreadOutcome,
    decide_thread,
    thread_keys,
)
from tests.domain.builders import email_with


def _reply(
    subject: str = "Re: [#42] Printer broken",
    in_reply_to: str = "<parent@acme.example>",
    references: str = "<root@x.example> <middle@acme.example> <parent@acme.example>",
    sender: str | None = "Ann <Ann@Customer.example>",
) -> NormalisedEmail:
    headers = [("In-Reply-To", in_reply_to), ("References", references)]
    present = [(name, value) for name, value in headers if value]
    return email_with(present, sender=sender, subject=subject)


def test_thread_keys_lists_everything_the_caller_must_look_up() -> None:
    keys = thread_keys(_reply(subject="Re: [#42] and [# 7 ] again [#42]"), "gmail-thread-1")
    assert keys == ThreadKeys(
        provider_thread_id="gmail-thread-1",
        reference_ids=("parent@acme.example", "middle@acme.example", "root@x.example"),
        ticket_numbers=(42, 7),
        own_message_id="m1@customer.example",
    )


def test_thread_keys_never_lists_the_emails_own_id_as_a_reference() -> None:
    email = _reply(in_reply_to="<m1@customer.example>", references="<a@x> <m1@customer.example>")
    keys = thread_keys(email, None)
    assert keys.reference_ids == ("a@x",)
    assert keys.provider_thread_id is None


@pytest.mark.parametrize(
    ("subject", "numbers"),
    [
        ("Printer broken", ()),
        ("Re: #42 Printer broken", ()),
        ("Re: [42] Printer broken", ()),
        ("Re: [#abc] Printer broken", ()),
        ("RE: AW: [#0042] Printer", (42,)),
        ("[#1][#2][#3][#4][#5][#6]", (1, 2, 3, 4, 5)),
        ("[#1234567890123456789]", ()),
    ],
)
def test_thread_keys_reads_only_bracketed_ticket_numbers(
    subject: str, numbers: tuple[int, ...]
) -> None:
    assert thread_keys(_reply(subject=subject), None).ticket_numbers == numbers


def test_decide_thread_calls_a_stored_message_a_duplicate_before_anything_else() -> None:
    email = _reply()
    found = ThreadLookup(
        thread_ticket_id="t-thread",
        ticket_by_message_id={"parent@acme.example": "t-ref"},
        own_message_ticket_id="t-own",
    )
    verdict = decide_thread(email, thread_keys(email, "th"), found)
    assert (verdict.outcome, verdict.ticket_id) == (ThreadOutcome.DUPLICATE, "t-own")
    assert "m1@customer.example" in verdict.reason


def test_decide_thread_appends_by_provider_thread_first() -> None:
    email = _reply()
    found = ThreadLookup(
        thread_ticket_id="t-thread", ticket_by_message_id={"parent@acme.example": "t-ref"}
    )
    verdict = decide_thread(email, thread_keys(email, "th"), found)
    assert (verdict.outcome, verdict.ticket_id) == (ThreadOutcome.APPEND, "t-thread")


@pytest.mark.parametrize(
    ("known", "expected_ticket", "expected_id"),
    [
        ({"parent@acme.example": "t-parent", "root@x.example": "t-root"}, "t-parent", "parent"),
        ({"middle@acme.example": "t-middle", "root@x.example": "t-root"}, "t-middle", "middle"),
        ({"root@x.example": "t-root"}, "t-root", "root"),
    ],
)
def test_decide_thread_appends_by_the_most_recent_known_reference(
    known: dict[str, str], expected_ticket: str, expected_id: str
) -> None:
    email = _reply()
    verdict = decide_thread(
        email, thread_keys(email, None), ThreadLookup(ticket_by_message_id=known)
    )
    assert (verdict.outcome, verdict.ticket_id) == (ThreadOutcome.APPEND, expected_ticket)
    assert f"<{expected_id}@" in verdict.reason


def test_decide_thread_appends_by_subject_number_when_the_sender_takes_part() -> None:
    email = _reply(in_reply_to="", references="")
    found = ThreadLookup(ticket_by_number={42: ("t-42", {"ANN@customer.example", "b@x.example"})})
    verdict = decide_thread(email, thread_keys(email, None), found)
    assert (verdict.outcome, verdict.ticket_id) == (ThreadOutcome.APPEND, "t-42")
    assert "ann@customer.example already takes part" in verdict.reason


def test_decide_thread_refuses_a_subject_number_from_a_stranger() -> None:
    email = _reply(in_reply_to="", references="", sender="mallory@evil.example")
    found = ThreadLookup(ticket_by_number={42: ("t-42", frozenset({"ann@customer.example"}))})
    verdict = decide_thread(email, thread_keys(email, None), found)
    assert (verdict.outcome, verdict.ticket_id) == (ThreadOutcome.NEW_TICKET, None)
    assert "mallory@evil.example does not take part in it" in verdict.reason


def test_decide_thread_explains_an_unknown_ticket_number() -> None:
    email = _reply(in_reply_to="", references="")
    verdict = decide_thread(email, thread_keys(email, None), ThreadLookup())
    assert verdict.outcome is ThreadOutcome.NEW_TICKET
    assert "[#42] but there is no such ticket" in verdict.reason


def test_decide_thread_explains_a_missing_sender_with_a_ticket_number() -> None:
    email = _reply(in_reply_to="", references="", sender=None)
    found = ThreadLookup(ticket_by_number={42: ("t-42", {"ann@customer.example"})})
    verdict = decide_thread(email, thread_keys(email, None), found)
    assert verdict.outcome is ThreadOutcome.NEW_TICKET
    assert "no sender" in verdict.reason


def test_decide_thread_tries_the_next_number_after_a_refused_one() -> None:
    email = _reply(subject="Re: [#1] [#2] x", in_reply_to="", references="")
    found = ThreadLookup(ticket_by_number={1: ("t-1", set()), 2: ("t-2", {"ann@customer.example"})})
    verdict = decide_thread(email, thread_keys(email, None), found)
    assert (verdict.outcome, verdict.ticket_id) == (ThreadOutcome.APPEND, "t-2")


def test_decide_thread_says_unknown_references_did_not_match() -> None:
    email = _reply(subject="Re: Printer broken")
    verdict = decide_thread(email, thread_keys(email, None), ThreadLookup())
    assert verdict.outcome is ThreadOutcome.NEW_TICKET
    assert "none of the emails it replies to belongs to a ticket" in verdict.reason


def test_decide_thread_never_threads_by_subject_text_alone() -> None:
    email = _reply(subject="Re: Printer broken", in_reply_to="", references="")
    verdict = decide_thread(email, thread_keys(email, None), ThreadLookup())
    assert (verdict.outcome, verdict.ticket_id) == (ThreadOutcome.NEW_TICKET, None)
    assert verdict.reason == "new conversation: it does not reply to any email of a ticket"
