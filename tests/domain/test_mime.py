"""normalise_email on hand-made messages: the rules behind the goldens, one at a time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.mime import MAX_DEPTH, Attachment, normalise_email
from tests.domain.builders import raw_email


def test_normalise_email_strips_angle_brackets_and_keeps_reference_order() -> None:
    email = normalise_email(
        raw_email([("In-Reply-To", "<b@x>"), ("References", "<a@x>\r\n <b@x> <a@x>")])
    )
    assert email.message_id == "m1@customer.example"
    assert email.in_reply_to == ("b@x",)
    assert email.references == ("a@x", "b@x")


def test_normalise_email_accepts_ids_without_brackets() -> None:
    email = normalise_email(raw_email([("In-Reply-To", "bare-id@x.example")]))
    assert email.in_reply_to == ("bare-id@x.example",)


def test_normalise_email_lowercases_addresses_and_decodes_names() -> None:
    email = normalise_email(
        raw_email(
            [("Cc", "A <A@X.Example>, b@y.example"), ("Reply-To", "Help <HELP@x.example>")],
            sender="=?utf-8?Q?Ren=C3=A9e?= <Renee@Example.COM>",
        )
    )
    assert (email.from_address, email.from_name) == ("renee@example.com", "Renée")
    assert email.cc == ("a@x.example", "b@y.example")
    assert email.reply_to == "help@x.example"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Mon, 4 Mar 2024 10:12:39 +0100", datetime(2024, 3, 4, 9, 12, 39, tzinfo=UTC)),
        ("Mon, 4 Mar 2024 10:12:39 -0000", datetime(2024, 3, 4, 10, 12, 39, tzinfo=UTC)),
        ("4 Mar 2024 10:12 GMT", datetime(2024, 3, 4, 10, 12, tzinfo=UTC)),
    ],
)
def test_normalise_email_gives_aware_dates(header: str, expected: datetime) -> None:
    email = normalise_email(raw_email([("Date", header)]))
    assert email.date == expected
    assert email.date is not None and email.date.tzinfo is not None


@pytest.mark.parametrize("header", ["not a date", "Mon, 99 Foo 2024 99:99:99", "32 Dec 99999"])
def test_normalise_email_reports_unreadable_dates(header: str) -> None:
    email = normalise_email(raw_email([("Date", header)]))
    assert email.date is None
    assert any("Date header" in defect for defect in email.defects)


def test_normalise_email_header_lookup_is_case_insensitive_and_keeps_order() -> None:
    email = normalise_email(raw_email([("X-Loop", "one"), ("x-loop", "two")]))
    assert email.header("X-LOOP") == "one"
    assert email.header_values("x-loop") == ("one", "two")
    assert email.header("x-missing") is None


def test_normalise_email_keeps_encoded_words_raw_in_headers() -> None:
    email = normalise_email(raw_email([("X-Note", "=?utf-8?q?caf=C3=A9?=")]))
    assert email.header("x-note") == "=?utf-8?q?caf=C3=A9?="


def test_normalise_email_prefers_plain_text_over_html() -> None:
    raw = (
        b"From: a@x.example\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>html version</p>\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nplain version\r\n--b--\r\n"
    )
    assert normalise_email(raw).text == "plain version"


def test_normalise_email_uses_html_when_the_plain_part_is_empty() -> None:
    raw = (
        b"From: a@x.example\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\n \r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>only &amp; here</p>\r\n--b--\r\n"
    )
    assert normalise_email(raw).text == "only & here"


def test_normalise_email_lists_inline_and_unnamed_parts_as_attachments() -> None:
    raw = (
        b"From: a@x.example\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee files\r\n"
        b"--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n"
        b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nlog line\r\n"
        b'--b\r\nContent-Type: text/plain; name="C:\\\\temp\\\\notes.txt"\r\n'
        b"Content-Disposition: inline\r\n\r\nnotes\r\n--b--\r\n"
    )
    email = normalise_email(raw)
    assert email.text == "see files"
    assert email.attachments == (
        Attachment("attachment.png", "image/png", 4),
        Attachment("attachment.txt", "text/plain", 8),
        Attachment("notes.txt", "text/plain", 5),
    )


def test_normalise_email_ignores_parts_nested_beyond_the_depth_limit() -> None:
    levels = MAX_DEPTH + 5
    head = b"From: a@x.example\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n--b0\r\n"
    middle = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(1, levels)
    )
    email = normalise_email(head + middle + b"Content-Type: text/plain\r\n\r\ndeep text\r\n")
    assert email.text == ""
    assert any("nested more than" in defect for defect in email.defects)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00" * 100,
        b"\xff\xfe\xfd" * 50,
        b"From: \r\n\r\n",
        b"Subject: =?utf-8?B?!!!?= =?x-bogus?Q?=FF?=\r\n\r\nbody",
        b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--\r\n",
        b"Content-Type: text/plain; charset=base64\r\n\r\nabc",
        b"Content-Type: text/plain; charset*=''%FF%FE\r\n\r\nabc",
        b"Content-Type: message/rfc822\r\n\r\nnot really a message",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!",
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=",
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a\r\n!!!\r\nend\r\n",
        b"From: " + b"a" * 100_000 + b"\r\n\r\n",
        b"To: " + b"x@y, " * 20_000 + b"\r\n\r\n",
        b"\r\n\r\n\r\n",
        b"no headers at all, just text",
    ],
)
def test_normalise_email_never_raises_on_hostile_input(raw: bytes) -> None:
    email = normalise_email(raw)
    assert email.size == len(raw)
    assert "\x00" not in email.text


def test_normalise_email_removes_nul_bytes_and_says_so() -> None:
    email = normalise_email(raw_email(body="A\x00B\r\n"))
    assert email.text == "AB"
    assert "NUL characters were removed from the body" in email.defects


def test_normalise_email_survives_a_parser_failure_with_the_raw_body() -> None:
    head = b"From: Ann <ann@x.example>\r\nSubject: deep\r\n"
    nested = b"".join(
        b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (i, i)
        for i in range(3000)
    )
    email = normalise_email(head + nested)
    assert (email.from_address, email.subject) == ("ann@x.example", "deep")
    assert email.text.startswith("--n0")
    assert any("nested too deeply" in defect for defect in email.defects)
