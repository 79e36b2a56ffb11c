"""Whatever a server hands over, the MIME entry points give an outcome, never a crash, and
never a requester a reply could not go to (issue 20 §5)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.filters import Candidate, first_skip
from domain.mime import normalise_email, read_headers
from domain.thread_decision import ThreadOutcome, ThreadVerdict

MAILBOX = "support@acme.example"
NEW = ThreadVerdict(ThreadOutcome.NEW_TICKET, None, "new conversation")
BOUNDED = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def valid_requester(address: str) -> bool:
    """Written apart from the code under test: a local part, one last "@", a domain."""
    local, at, domain = address.rpartition("@")
    return (
        at == "@"
        and local.strip('".') != ""
        and domain.strip(".") != ""
        and ".." not in domain
        and not domain.startswith(".")
        and not any(ch.isspace() or ch in "<>,;" for ch in address)
        and address == address.lower()
    )


def assert_outcome(raw: bytes) -> None:
    """What the pipeline does with `raw`: its header fields decide, the full parse fills in."""
    full, headers = normalise_email(raw), read_headers(raw)
    assert (headers.from_address, headers.from_name) == (full.from_address, full.from_name)
    assert headers.headers == full.headers
    for address in (headers.from_address, headers.reply_to, *headers.to, *headers.cc):
        assert address is None or valid_requester(address), address
    skip = first_skip(Candidate(email=headers, raw=raw, mailbox_address=MAILBOX, thread=NEW))
    if skip is None:  # a ticket would be made: its requester must be someone to reply to
        assert headers.from_address is not None and valid_requester(headers.from_address)


@BOUNDED
@given(st.binary(max_size=2000))
def test_any_bytes_give_an_outcome_and_never_an_invalid_requester(raw: bytes) -> None:
    assert_outcome(raw)


# Pieces servers and scripts really write into address headers, shuffled.
ADDRESS_PIECES = st.sampled_from(
    ["a", "bb", "Big", "Bug", "@", "@@", "x.example", "bug.example", ".", "..", "<", ">", "(",
     ")", "(the bug)", ",", ";", ":", " ", "  ", "\t", '"', "'", "\\", "=?utf-8?q?a@b?=",
     "[192.0.2.1]", "MAILER-DAEMON", "postmaster", "support@acme.example", "jörg", "ü"]
)  # fmt: skip
NAMES = st.sampled_from(
    ["From", "To", "Cc", "Reply-To", "Sender", "Subject", "Message-ID", "Return-Path",
     "Auto-Submitted", "Content-Type", "X-Stray", "Date", "from", "FROM"]
)  # fmt: skip
SEPARATORS = st.sampled_from([": ", ":", " : ", "  :", "\t:", " ", "", "::", ";"])
NEWLINES = st.sampled_from([b"\r\n", b"\n", b"\r"])


@st.composite
def header_lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["field", "field", "field", "stray", "folded", "envelope"]))
    if kind == "stray":
        return draw(st.text(max_size=40)).encode("utf-8", errors="surrogatepass")
    if kind == "envelope":
        return b"From bb@bug.example Mon Mar  4 10:12:39 2024"
    value = "".join(draw(st.lists(ADDRESS_PIECES, max_size=12)))
    if kind == "folded":
        return b" " + value.encode()
    return (draw(NAMES) + draw(SEPARATORS) + value).encode()


@BOUNDED
@given(st.lists(header_lines(), max_size=10), NEWLINES, st.booleans(), st.binary(max_size=200))
def test_near_email_bytes_give_an_outcome_and_never_an_invalid_requester(
    lines: list[bytes], newline: bytes, separated: bool, body: bytes
) -> None:
    raw = newline.join(lines) + (newline * 2 if separated else newline) + body
    assert_outcome(raw)


@BOUNDED
@given(st.lists(ADDRESS_PIECES, max_size=16), NEWLINES)
def test_any_from_value_gives_a_valid_requester_or_none(pieces: list[str], newline: bytes) -> None:
    raw = b"From: " + "".join(pieces).encode() + newline + b"Subject: x" + newline * 2 + b"x"
    assert_outcome(raw)
