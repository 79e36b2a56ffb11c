"""The header block as servers store it: a stray line inside it does not end it, and the
obsolete `Name :` form (RFC 5322 §4.5) is read as `Name:`. Both entry points agree."""

from __future__ import annotations

import pytest

from domain.header_block import mend_header_block
from domain.mime import normalise_email, read_headers


@pytest.mark.parametrize("newline", [b"\r\n", b"\n", b"\r"])
def test_a_stray_line_inside_the_header_block_does_not_end_it(newline: bytes) -> None:
    raw = newline.join(
        [
            b"From: Ann <ann@customer.example>",
            b"this line is no header",
            b"To: support@acme.example",
            b"Subject: Printer broken",
            b"",
            b"Hello",
        ]
    )
    for email in (normalise_email(raw), read_headers(raw)):
        assert email.from_address == "ann@customer.example"
        assert email.to == ("support@acme.example",)
        assert email.subject == "Printer broken"
        assert any("'this line is no header'" in defect for defect in email.defects)
    assert normalise_email(raw).text == "Hello"


def test_the_stray_line_and_its_folded_continuation_are_left_out() -> None:
    raw = b"Subject: Hi\r\nstray\r\n  continued\r\nTo: support@acme.example\r\n\r\nBody\r\n"
    email = normalise_email(raw)
    assert email.headers == (("subject", "Hi"), ("to", "support@acme.example"))
    assert email.text == "Body"


def test_stray_lines_with_no_header_after_them_are_the_body_of_a_mail_without_separator() -> None:
    raw = b"From: ann@customer.example\r\nSubject: Hi\r\nHello there,\r\n\r\nthanks\r\n"
    email = normalise_email(raw)
    assert email.subject == "Hi"
    assert email.text == "Hello there,\n\nthanks"
    assert read_headers(raw).headers == email.headers


@pytest.mark.parametrize("name", [b"From  ", b"From\t", b"Subject ", b"To \t "])
def test_whitespace_before_the_colon_is_obsolete_syntax_and_is_read(name: bytes) -> None:
    raw = b"Date: Mon, 4 Mar 2024 10:12:39 +0100\r\n" + name + b": x <ann@customer.example>\r\n"
    raw += b"Message-ID: <m1@customer.example>\r\n\r\nBody\r\n"
    wanted = name.decode().strip().lower()
    for email in (normalise_email(raw), read_headers(raw)):
        assert (wanted, "x <ann@customer.example>") in email.headers
        assert email.message_id == "m1@customer.example"


def test_obsolete_from_as_the_first_line_is_no_mbox_envelope_line() -> None:
    raw = b"From  : Ann <ann@customer.example>\r\nSubject: Hi\r\n\r\nBody\r\n"
    for email in (normalise_email(raw), read_headers(raw)):
        assert (email.from_address, email.from_name) == ("ann@customer.example", "Ann")


def test_an_mbox_envelope_line_first_is_still_left_to_the_parser() -> None:
    raw = b"From ann@customer.example Mon Mar  4 10:12:39 2024\r\nFrom: ann@customer.example\r\n"
    raw += b"Subject: Hi\r\n\r\nBody\r\n"
    assert mend_header_block(raw) == (raw, ())
    assert normalise_email(raw).subject == "Hi"


@pytest.mark.parametrize(
    "raw",
    [
        b"From: a@x.example\r\nSubject: Hi\r\n\r\nstray-looking body line\r\nTo: b@x.example\r\n",
        b"From: a@x.example\r\nSubject: Hi\r\n",
        b"From: a@x.example\r\nSubject: Hi",
        b"",
        b"\r\n\r\nbody only",
    ],
)
def test_well_formed_mail_is_handed_back_as_it_came(raw: bytes) -> None:
    mended, notes = mend_header_block(raw)
    assert mended is raw
    assert notes == ()
