"""Property-based checks of the thread decision: whatever the headers say, it never raises,
never appends to a ticket it was not shown, never threads by the subject alone, and never
lets a stored Message-ID open a second ticket."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.mime import normalise_email
from domain.thread_decision import ThreadLookup, ThreadOutcome, decide_thread, thread_keys
from tests.domain.test_properties import BOUNDED

TEXT = st.text(max_size=80)
IDS = st.lists(st.text(alphabet="abcdefgh@.<>", min_size=1, max_size=12), max_size=4)


def _email(subject: str, sender: str, in_reply_to: list[str], references: list[str]) -> bytes:
    """Raw text, not EmailMessage: odd header values must reach the parser unfiltered."""

    def one_line(value: str) -> str:
        return value.replace("\r", " ").replace("\n", " ")

    headers = {
        "Subject": subject,
        "From": sender,
        "In-Reply-To": " ".join(f"<{i}>" for i in in_reply_to),
        "References": " ".join(f"<{i}>" for i in references),
        "Message-ID": "<self@customer.example>",
    }
    lines = [f"{name}: {one_line(value)}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode("utf-8", "surrogateescape")


@BOUNDED
@given(TEXT, TEXT, IDS, IDS, st.one_of(st.none(), TEXT), st.dictionaries(TEXT, TEXT, max_size=3))
def test_decide_thread_only_appends_to_tickets_it_was_shown(
    subject: str,
    sender: str,
    in_reply_to: list[str],
    references: list[str],
    thread_id: str | None,
    by_message_id: dict[str, str],
) -> None:
    email = normalise_email(_email(subject, sender, in_reply_to, references))
    keys = thread_keys(email, thread_id)
    verdict = decide_thread(email, keys, ThreadLookup(ticket_by_message_id=by_message_id))
    assert verdict.reason
    if verdict.outcome is ThreadOutcome.APPEND:
        assert verdict.ticket_id in by_message_id.values()
    else:
        assert verdict.outcome is ThreadOutcome.NEW_TICKET and verdict.ticket_id is None


@BOUNDED
@given(TEXT, st.integers(min_value=1, max_value=10**6), st.booleans())
def test_a_subject_token_appends_only_for_a_participant(
    subject: str, number: int, sender_takes_part: bool
) -> None:
    raw = _email(f"{subject} [#{number}]", "ann@customer.example", [], [])
    email = normalise_email(raw)
    keys = thread_keys(email, None)
    people = {"ann@customer.example"} if sender_takes_part else {"bob@customer.example"}
    found = ThreadLookup(ticket_by_number={number: ("ticket-n", people)})
    verdict = decide_thread(email, keys, found)
    if number not in keys.ticket_numbers:  # the subject text itself hid the token
        assert verdict.outcome is ThreadOutcome.NEW_TICKET
    elif sender_takes_part:
        assert (verdict.outcome, verdict.ticket_id) == (ThreadOutcome.APPEND, "ticket-n")
    else:
        assert verdict.outcome is ThreadOutcome.NEW_TICKET  # never by the subject alone


@BOUNDED
@given(TEXT, TEXT, IDS, st.one_of(st.none(), TEXT))
def test_a_stored_message_id_is_always_a_duplicate(
    subject: str, sender: str, references: list[str], thread_id: str | None
) -> None:
    email = normalise_email(_email(subject, sender, [], references))
    keys = thread_keys(email, thread_id)
    found = ThreadLookup(thread_ticket_id="other", own_message_ticket_id="stored")
    verdict = decide_thread(email, keys, found)
    assert (verdict.outcome, verdict.ticket_id) == (ThreadOutcome.DUPLICATE, "stored")
