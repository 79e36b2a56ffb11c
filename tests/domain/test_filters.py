"""Each filter alone, then `FILTERS` as a whole: order, and the first that fires wins."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from domain import filters
from domain.filters import FILTERS, MAX_EMAIL_BYTES, Candidate, first_skip
from domain.mime import read_headers
from domain.outcomes import SkipReason
from domain.thread_decision import ThreadOutcome, ThreadVerdict
from tests.fakes import make_email

FIXTURES = Path(__file__).parent.parent / "fixtures" / "emails"
MAILBOX = "support@acme.example"
NEW = ThreadVerdict(ThreadOutcome.NEW_TICKET, None, "new conversation")
REPLY = ThreadVerdict(ThreadOutcome.APPEND, "t-1", "it replies to an email of the ticket")
SAME = ThreadVerdict(ThreadOutcome.DUPLICATE, "t-1", "this email is already stored")


def candidate(raw: bytes | None = None, **facts: object) -> Candidate:
    raw = raw if raw is not None else make_email()
    mail = Candidate(email=read_headers(raw), raw=raw, mailbox_address=MAILBOX)
    return replace(mail, **facts)  # type: ignore[arg-type]


def fixture(name: str) -> Candidate:
    return candidate((FIXTURES / name).read_bytes())


def test_an_ordinary_request_passes_every_filter() -> None:
    assert first_skip(candidate(thread=NEW)) is None


def test_too_large_names_the_size_and_the_one_limit() -> None:
    skip = filters.too_large(candidate(size=MAX_EMAIL_BYTES + 1))
    assert skip is not None and skip.reason is SkipReason.TOO_LARGE
    assert "over the 25 MB limit" in skip.why
    assert filters.too_large(candidate(size=MAX_EMAIL_BYTES)) is None


def test_own_mail() -> None:
    skip = filters.own_mail(candidate(make_email(sender="Support <support+x@acme.example>")))
    assert skip is not None and (skip.reason, skip.rule) == (
        SkipReason.OWN_MAIL,
        "own-address-alias",
    )


def test_bounce_report_is_the_delivery_status_report() -> None:
    skip = filters.bounce_report(fixture("bounce-delivery-status-report.eml"))
    assert skip is not None and skip.reason is SkipReason.BOUNCE


@pytest.mark.parametrize(
    "name",
    [
        "bounce-postfix-rfc822-headers-no-dsn.eml",
        "bounce-mail-system-name-noreply-wrapped-original.eml",
        "bounce-exchange-system-mailbox-sender-rfc822.eml",
    ],
)
def test_bounce_without_report_skips_classic_bounces(name: str) -> None:
    skip = filters.bounce_without_report(fixture(name))
    assert skip is not None and (skip.reason, skip.rule) == (SkipReason.BOUNCE, "classic-bounce")


@pytest.mark.parametrize(
    "name", ["not-bounce-forwarded-as-attachment.eml", "not-bounce-delivery-team-person.eml"]
)
def test_a_person_forwarding_or_writing_about_delivery_is_not_a_bounce(name: str) -> None:
    assert first_skip(replace(fixture(name), thread=NEW)) is None


def test_auto_reply() -> None:
    skip = filters.auto_reply(candidate(make_email(headers={"Auto-Submitted": "auto-replied"})))
    assert skip is not None and skip.reason is SkipReason.AUTO_REPLY


def test_mailing_list() -> None:
    skip = filters.mailing_list(candidate(make_email(headers={"List-Id": "<dev.lists.example>"})))
    assert skip is not None and skip.reason is SkipReason.MAILING_LIST


def test_null_return_path_is_a_bounce() -> None:
    skip = filters.null_return_path(candidate(make_email(headers={"Return-Path": "<>"})))
    assert skip is not None and skip.reason is SkipReason.BOUNCE


def test_sender_not_allowed() -> None:
    mail = candidate(allowed_senders=("@customer.example",))
    assert filters.sender_not_allowed(mail) is None
    skip = filters.sender_not_allowed(replace(mail, allowed_senders=("@other.example",)))
    assert skip is not None and skip.reason is SkipReason.SENDER_NOT_ALLOWED


@pytest.mark.parametrize("sender", ["@example.com", "<@example.com>", "Joe <joe>", "user@"])
def test_a_from_header_without_a_valid_address_is_no_requester(sender: str) -> None:
    raw = b"From: " + sender.encode() + b"\r\nTo: support@acme.example\r\nSubject: Hi\r\n\r\nHi\r\n"
    mail = candidate(raw, thread=NEW)
    assert mail.email.from_address is None
    skip = first_skip(mail)
    assert skip is not None and skip.reason is SkipReason.SENDER_NOT_ALLOWED
    assert skip.why == f"the email's From header ({sender!r}) holds no valid sender address"


@pytest.mark.parametrize(
    ("name", "requester"),
    [
        ("from-domain-without-local-part.eml", None),
        ("from-bare-domain-without-local-part.eml", None),
        ("from-address-without-angle-brackets.eml", "bb@bug.example"),
        ("from-several-addresses-without-commas.eml", "ops@shop-team.example"),
        ("obsolete-comments-in-addresses.eml", "bb@bug.example"),
        ("obsolete-whitespace-before-colon.eml", "greta.lind@kund.example"),
        ("header-block-stray-line-without-colon.eml", "nils.berg@kunde.example"),
        ("header-block-stray-lines-between-fields.eml", "aiko@tanaka-design.example"),
    ],
)
def test_mail_from_every_kind_of_server_has_a_requester_or_is_skipped(
    name: str, requester: str | None
) -> None:
    mail = replace(fixture(name), thread=NEW)
    skip = first_skip(mail)
    if requester is None:
        assert skip is not None and skip.reason is SkipReason.SENDER_NOT_ALLOWED
    else:
        assert (skip, mail.email.from_address) == (None, requester)


def test_a_missing_from_header_is_still_told_as_missing() -> None:
    raw = b"To: support@acme.example\r\nSubject: Hi\r\n\r\nHi\r\n"
    skip = first_skip(candidate(raw, thread=NEW))
    assert skip is not None and skip.reason is SkipReason.SENDER_NOT_ALLOWED
    assert skip.why == "the email has no sender address"


def test_duplicate_keeps_the_ticket_that_holds_the_email() -> None:
    assert filters.duplicate(candidate()) is None  # the thread is not known yet
    skip = filters.duplicate(candidate(thread=SAME))
    assert skip is not None and (skip.reason, skip.ticket_id) == (SkipReason.DUPLICATE, "t-1")


def test_flood_holds_back_only_new_tickets_over_the_limit() -> None:
    over = candidate(thread=NEW, sender_tickets_last_hour=3, flood_limit=3)
    skip = filters.flood(over)
    assert skip is not None and skip.reason is SkipReason.FLOOD
    assert filters.flood(replace(over, sender_tickets_last_hour=2)) is None
    assert filters.flood(replace(over, thread=REPLY)) is None  # replies are never held back
    assert filters.flood(replace(over, ticket_exists=True)) is None  # made from it already
    assert filters.flood(replace(over, thread=None)) is None  # not known yet


def test_the_first_filter_that_fires_names_the_skip() -> None:
    raw = make_email(sender="support@acme.example", headers={"Auto-Submitted": "auto-replied"})
    mail = candidate(raw, allowed_senders=("@other.example",), thread=SAME)
    skip = first_skip(mail)
    assert skip is not None and skip.reason is SkipReason.OWN_MAIL


def test_every_skip_reason_has_a_filter() -> None:
    fired = set()
    cases = [
        candidate(size=MAX_EMAIL_BYTES + 1),
        candidate(make_email(sender="support@acme.example")),
        fixture("bounce-postfix-rfc822-headers-no-dsn.eml"),
        candidate(make_email(headers={"Precedence": "bulk"})),
        candidate(make_email(headers={"List-Id": "<x.lists.example>"})),
        candidate(allowed_senders=("@other.example",)),
        candidate(thread=SAME),
        candidate(thread=NEW, sender_tickets_last_hour=9, flood_limit=1),
    ]
    for mail in cases:
        skip = first_skip(mail)
        assert skip is not None
        fired.add(skip.reason)
    assert fired == set(SkipReason)
    assert len(FILTERS) == len(set(FILTERS))
