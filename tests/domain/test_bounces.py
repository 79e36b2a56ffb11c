"""Classic bounces (no delivery status report): a mail system as sender AND a returned email
or a bounce subject. Each rule alone, the real shapes as fixtures, and `part_types` against
the stdlib parser."""

from __future__ import annotations

import email
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.bounces import MAX_DEPTH, MAX_PARTS, classic_bounce, is_mail_system, part_types
from domain.mime import read_headers
from tests.domain.goldens import FIXTURES, fixture_paths

BOUNDED = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

GMAIL = "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"
EXCHANGE_SYSTEM = (
    "Microsoft Outlook <microsoftexchange329e71ec88ae4615bbc36ab6ce41109e@acme.onmicrosoft.example>"
)

# What each fixture is: the exact sentence a person reads in the ledger, or None.
FIXTURE_VERDICTS: dict[str, str | None] = {
    "bounce-postfix-rfc822-headers-no-dsn.eml": (
        "the sender Mail Delivery System <mailer-daemon@mail.customer.example> is a mail system "
        "and the email returns an undelivered message (in its text/rfc822-headers part)"
    ),
    "bounce-qmail-failure-notice-original-inline.eml": (
        "the sender mailer-daemon@mx1.oldhost.example is a mail system and the subject "
        "'failure notice' reports an undelivered email"
    ),
    "bounce-exim-original-inline-no-dsn.eml": (
        "the sender Mail Delivery System <mailer-daemon@server12.sharedhost.example> is a mail "
        "system and the subject 'Mail delivery failed: returning message to sender' reports an "
        "undelivered email"
    ),
    "bounce-exchange-undeliverable-postmaster-rfc822.eml": (
        "the sender Microsoft Outlook <postmaster@fabrikam.example> is a mail system and the "
        "email returns an undelivered message (in its message/rfc822 part)"
    ),
    "bounce-exchange-system-mailbox-sender-rfc822.eml": (
        f"the sender {EXCHANGE_SYSTEM} is a mail system and the email returns an undelivered "
        "message (in its message/rfc822 part)"
    ),
    "bounce-gmail-dsn-failure-subject-only.eml": (
        f"the sender {GMAIL} is a mail system and the subject "
        "'Delivery Status Notification (Failure)' reports an undelivered email"
    ),
    "bounce-gmail-dsn-delay-subject-only.eml": (
        f"the sender {GMAIL} is a mail system and the subject "
        "'Delivery Status Notification (Delay)' reports that an earlier email is delayed "
        "(not failed yet, but an automatic notice that asks nothing)"
    ),
    "bounce-mail-system-name-noreply-wrapped-original.eml": (
        "the sender Mail Delivery System <noreply@outbound.mailrelay.example> is a mail system "
        "and the email returns an undelivered message (in its message/rfc822 part)"
    ),
    "not-bounce-forwarded-as-attachment.eml": None,
    "not-bounce-delivery-team-person.eml": None,
    # Older fixtures, so the two bounce rules are seen to agree on them.
    "bounce-delivery-status-report.eml": (
        f"the sender {GMAIL} is a mail system and the email carries a delivery status report "
        "(in its message/delivery-status part)"
    ),
    "bounce-x-failed-recipients-exim.eml": (
        "the sender Mail Delivery System <mailer-daemon@relay.hosting.example> is a mail system "
        "and the subject 'Mail delivery failed: returning message to sender' reports an "
        "undelivered email"
    ),
    "bounce-null-return-path.eml": None,  # a digest from a no-reply address: not a mail system
    "nested-message-rfc822.eml": None,  # a person forwarding a phishing email
    "out-of-office-auto-submitted.eml": None,
}


def _verdict(raw: bytes) -> str | None:
    headers = read_headers(raw)
    return classic_bounce(headers.from_address, headers.from_name, headers.subject, part_types(raw))


@pytest.mark.parametrize("name", sorted(FIXTURE_VERDICTS))
def test_fixture_is_or_is_not_a_classic_bounce(name: str) -> None:
    assert _verdict((FIXTURES / name).read_bytes()) == FIXTURE_VERDICTS[name]


def test_every_bounce_fixture_is_recognised_and_no_person_is() -> None:
    for path in fixture_paths():
        verdict = _verdict(path.read_bytes())
        if path.name.startswith("not-bounce-"):
            assert verdict is None, path.name
        elif path.name.startswith("bounce-") and path.name != "bounce-null-return-path.eml":
            assert verdict is not None, path.name


def test_fixture_part_types_are_read_from_the_real_shapes() -> None:
    def types(name: str) -> tuple[str, ...]:
        return part_types((FIXTURES / name).read_bytes())

    assert types("bounce-postfix-rfc822-headers-no-dsn.eml") == (
        "multipart/mixed",
        "text/plain",
        "text/rfc822-headers",
    )
    assert types("bounce-qmail-failure-notice-original-inline.eml") == ("text/plain",)
    assert types("bounce-exchange-system-mailbox-sender-rfc822.eml") == (
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "message/rfc822",
        "multipart/mixed",
        "text/plain",
        "application/pdf",
    )
    # The three header blocks of the delivery status are not parts.
    assert types("bounce-delivery-status-report.eml") == (
        "multipart/report",
        "multipart/related",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "message/delivery-status",
        "message/rfc822",
        "text/plain",
    )


# The sender ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "from_header",
    [
        "Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "MAILER-DAEMON@mail.customer.example (Mail Delivery System)",  # Postfix
        "MAILER-DAEMON@mx1.oldhost.example",  # qmail
        "MAILER-DAEMON",
        "Mail Delivery System <Mailer-Daemon@server12.sharedhost.example>",  # Exim
        "Microsoft Outlook <postmaster@fabrikam.example>",
        "postmaster@outlook.com",
        "Microsoft Outlook\r\n\t<MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@x.example>",
        "<MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@x.onmicrosoft.example>",
        # A mail system named only by its display name, sending from an ordinary address.
        '"Mail Delivery System" <noreply@outbound.mailrelay.example>',
        "mail delivery subsystem <bounces@relay.example>",
        "MAIL DELIVERY SERVICE <noreply@relay.example>",
        "Mail Administrator <admin@isp.example>",
        "Microsoft Exchange <exchange@corp.example>",
        '"MAILER-DAEMON" <bounce@relay.example>',
        '"Mailer_Daemon" <bounce@relay.example>',
        '"MAILER-DAEMON@relay.example" <bounce-8812@relay.example>',
        '"Postmaster" <it@corp.example>',
        "=?utf-8?q?Mail_Delivery_System?= <noreply@relay.example>",
    ],
)
def test_mail_system_senders(from_header: str) -> None:
    headers = read_headers(f"From: {from_header}\r\nSubject: x\r\n\r\n".encode())
    assert is_mail_system(headers.from_address, headers.from_name)
    assert classic_bounce(headers.from_address, headers.from_name, "x", ["message/rfc822"])


@pytest.mark.parametrize(
    "from_header",
    [
        "Delivery Team <ops@shop.example>",  # "delivery" in a person's or team's name
        "Mail Delivery Team <post@shop.example>",
        "Mail Delivery System Support <help@hoster.example>",
        "Daniel Weber <d.weber@customer.example>",
        "Ann Daemon <ann.daemon@customer.example>",
        "mailer-daemon-fan@customer.example",
        "postmaster.jones@customer.example",
        "<postmasters@customer.example>",
        "Microsoft Outlook Team <news@vendor.example>",
        # An Exchange-like address without the 32 hex digits of the system mailbox.
        "<microsoftexchange@customer.example>",
        "Undisclosed recipients:;",
    ],
)
def test_people_and_lookalikes_are_not_mail_systems(from_header: str) -> None:
    headers = read_headers(f"From: {from_header}\r\nSubject: x\r\n\r\n".encode())
    assert not is_mail_system(headers.from_address, headers.from_name)
    parts = ["multipart/mixed", "message/rfc822", "text/rfc822-headers"]
    assert classic_bounce(headers.from_address, headers.from_name, "Returned mail", parts) is None


def test_no_sender_at_all_is_not_a_mail_system() -> None:
    assert not is_mail_system(None, None)
    assert not is_mail_system("", "  ")
    assert classic_bounce(None, None, "failure notice", ["message/rfc822"]) is None


def test_sender_text_uses_what_the_from_header_gave() -> None:
    name_only = classic_bounce(None, "Mail Delivery System", "failure notice", [])
    assert name_only is not None and name_only.startswith("the sender Mail Delivery System is")
    address_only = classic_bounce("postmaster@mx.example", None, "failure notice", [])
    assert address_only is not None
    assert address_only.startswith("the sender postmaster@mx.example is")


# The sender alone, or the returned email alone, is never enough -------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Mail server maintenance tonight from 22:00",
        "Your mailbox is almost full",
        "Microsoft Outlook Test Message",
        # A person forwarding or answering a bounce writes the prefix; a mail system never does.
        "Fwd: Returned mail: see transcript for details",
        "Re: Undeliverable: [#1211] Refund",
        "",
    ],
)
def test_a_mail_system_sender_alone_is_not_a_bounce(subject: str) -> None:
    for parts in ([], ["text/plain"], ["multipart/alternative", "text/plain", "text/html"]):
        assert classic_bounce("postmaster@corp.example", "Postmaster", subject, parts) is None


def test_the_microsoft_outlook_test_message_is_not_a_bounce() -> None:
    # Outlook's account test mail comes from the person's own address under this name.
    verdict = classic_bounce(
        "ann.lee@customer.example",
        "Microsoft Outlook",
        "Microsoft Outlook Test Message",
        ["text/plain"],
    )
    assert verdict is None


@pytest.mark.parametrize(
    "parts",
    [
        ["multipart/mixed", "text/plain", "message/rfc822", "text/plain"],
        ["multipart/mixed", "text/plain", "text/rfc822-headers"],
        ["multipart/report", "text/plain", "message/delivery-status", "message/rfc822"],
    ],
)
def test_a_person_sending_a_wrapped_email_is_not_a_bounce(parts: list[str]) -> None:
    verdict = classic_bounce(
        "d.weber@customer.example", "Daniel Weber", "Fw: Undelivered Mail Returned to Sender", parts
    )
    assert verdict is None


# Each sign that the email reports on an earlier one --------------------------------------------


@pytest.mark.parametrize(
    "returned",
    ["message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"],
)
def test_a_returned_email_part_makes_a_mail_system_email_a_bounce(returned: str) -> None:
    parts = ["multipart/mixed", "text/plain", returned]
    verdict = classic_bounce("noreply@relay.example", "Mail Delivery System", "Notice", parts)
    assert verdict == (
        "the sender Mail Delivery System <noreply@relay.example> is a mail system and the "
        f"email returns an undelivered message (in its {returned} part)"
    )


@pytest.mark.parametrize("report", ["message/delivery-status", "message/global-delivery-status"])
def test_a_delivery_status_part_anywhere_makes_a_mail_system_email_a_bounce(report: str) -> None:
    # A relay re-wrapped the report in multipart/mixed, so the top-level type says nothing.
    parts = ["multipart/mixed", "text/plain", report, "message/rfc822"]
    verdict = classic_bounce("mailer-daemon@mx.example", None, "Notice", parts)
    assert verdict is not None
    assert verdict.endswith(f"carries a delivery status report (in its {report} part)")


def test_part_types_are_compared_without_regard_to_case() -> None:
    verdict = classic_bounce("mailer-daemon@mx.example", None, "Notice", ["Message/RFC822"])
    assert verdict is not None and "message/rfc822 part" in verdict


FAILURE_SUBJECTS = [
    "Undelivered Mail Returned to Sender",
    "Undeliverable: [#1211] Refund for order 88213",
    "Undeliverable mail: Your order",
    "Undelivered Message",
    "Delivery Status Notification (Failure)",
    "Returned mail: see transcript for details",
    "Returned mail: User unknown",
    "Mail delivery failed: returning message to sender",
    "Mail delivery failed",
    "failure notice",
    "FAILURE NOTICE",
    "DELIVERY FAILURE: User lee.chen not listed in Domino Directory",
    "Delivery Notification: Delivery has failed",
    "Non-Delivery Report: Your order",
    "Nondelivery notification",
    "Mail System Error - Returned Mail",
    "Message not delivered",
    "Message could not be delivered",
    "  Undeliverable: leading spaces",
    "Unzustellbar: Ihre Bestellung",
    "Non remis : Votre commande",
    "No se puede entregar: Su pedido",
    "Onbestelbaar: Uw bestelling",
    "Non recapitabile: Il suo ordine",
]


@pytest.mark.parametrize("subject", FAILURE_SUBJECTS)
def test_a_failure_subject_makes_a_mail_system_email_a_bounce(subject: str) -> None:
    verdict = classic_bounce("mailer-daemon@mx.example", None, subject, ["text/plain"])
    assert verdict == (
        f"the sender mailer-daemon@mx.example is a mail system and the subject "
        f"{subject.strip()!r} reports an undelivered email"
    )
    assert classic_bounce("ann@customer.example", "Ann", subject, ["text/plain"]) is None


DELAY_SUBJECTS = [
    "Delivery Status Notification (Delay)",
    "Delayed Mail (still being retried)",
    "Delivery delayed: [#1219] Your order",
    "Warning: could not send message for past 4 hours",
    "Warning: message 1rpQ2a-0003Xy-1B delayed 24 hours",
]


@pytest.mark.parametrize("subject", DELAY_SUBJECTS)
def test_a_delay_notice_is_skipped_as_a_bounce_and_called_a_delay(subject: str) -> None:
    # Postfix's delay notice returns the headers too: the sentence must still say "delayed".
    for parts in (["text/plain"], ["multipart/mixed", "text/plain", "text/rfc822-headers"]):
        verdict = classic_bounce("mailer-daemon@mx.example", None, subject, parts)
        assert verdict is not None
        assert "reports that an earlier email is delayed (not failed yet" in verdict
        assert "undelivered" not in verdict
    assert classic_bounce("ann@customer.example", "Ann", subject, ["text/plain"]) is None


SUCCESS_SUBJECTS = [
    "Delivery Status Notification (Success)",
    "Delivery Status Notification (Relay)",
    "Successful Mail Delivery Report",
    "Delivered: [#1215] Your invoice copy",
    "Relayed: [#1215] Your invoice copy",
]


@pytest.mark.parametrize("subject", SUCCESS_SUBJECTS)
def test_a_delivered_report_is_skipped_and_called_delivered(subject: str) -> None:
    parts = ["multipart/mixed", "text/plain", "message/rfc822"]
    verdict = classic_bounce("postmaster@corp.example", "Microsoft Outlook", subject, parts)
    assert verdict is not None
    assert "reports that an earlier email was delivered" in verdict
    assert classic_bounce("ann@customer.example", "Ann", subject, parts) is None


@pytest.mark.parametrize(
    "subject",
    [
        "Delivery Team weekly update",
        "Your delivery failed?",  # not at the start of the subject
        "Re: failure notice",
        "Message rejected: [#1220] Warranty claim form",
        "Delivered goods: invoice attached",
    ],
)
def test_subjects_that_only_mention_delivery_are_no_sign(subject: str) -> None:
    assert classic_bounce("mailer-daemon@mx.example", None, subject, ["text/plain"]) is None


# part_types --------------------------------------------------------------------------------


def _compat32_types(message: Message, found: list[str]) -> list[str]:
    """The stdlib's parts, depth first, without the header blocks of a delivery status."""
    found.append(message.get_content_type())
    if message.get_content_type().endswith("delivery-status"):
        return found
    payload = message.get_payload()
    if isinstance(payload, list):
        for child in payload:
            if isinstance(child, Message):
                _compat32_types(child, found)
    return found


@pytest.mark.parametrize(
    "eml",
    [path for path in fixture_paths() if path.name != "deeply-nested-multipart.eml"],
    ids=lambda path: path.stem,
)
def test_part_types_agrees_with_the_stdlib_parser_on_every_fixture(eml: Path) -> None:
    raw = eml.read_bytes()
    assert part_types(raw) == tuple(_compat32_types(email.message_from_bytes(raw), []))


def test_part_types_stops_at_the_depth_limit_where_the_stdlib_parser_overflows() -> None:
    raw = (FIXTURES / "deeply-nested-multipart.eml").read_bytes()
    assert part_types(raw) == ("multipart/mixed",) * (MAX_DEPTH + 1)


def _multipart(boundary: str, *parts: str, kind: str = "multipart/mixed") -> bytes:
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    head = f'Content-Type: {kind}; boundary="{boundary}"\r\n\r\n'
    return (head + "preamble\r\n" + body + f"--{boundary}--\r\nepilogue\r\n").encode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", ("text/plain",)),
        (b"Subject: no type\r\n\r\nbody", ("text/plain",)),
        (b"Content-Type: TEXT/HTML; charset=utf-8\r\n\r\n<p>", ("text/html",)),
        (b"Content-Type: nonsense\r\n\r\nbody", ("text/plain",)),  # as the stdlib
        (b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nbody\r\n--x--", ("multipart/mixed",)),
        (_multipart("b", "Content-Type: text/plain\r\n\r\nhi"), ("multipart/mixed", "text/plain")),
        (  # a part without headers is text/plain; in a digest it is an email
            _multipart("d", "\r\nFrom: a@x.example\r\n\r\nhi", kind="multipart/digest"),
            ("multipart/digest", "message/rfc822", "text/plain"),
        ),
        (  # LF line ends, a folded type, the boundary unquoted
            b"Content-Type: multipart/mixed;\n boundary=zz\n\n--zz\nContent-Type: text/plain\n\n"
            b"x\n--zz\nContent-Type: text/rfc822-headers\n\nFrom: a@x\n--zz--\n",
            ("multipart/mixed", "text/plain", "text/rfc822-headers"),
        ),
        (  # an RFC 2231 boundary parameter
            b"Content-Type: multipart/mixed; boundary*=''q\r\n\r\n--q\r\n"
            b"Content-Type: message/rfc822\r\n\r\nContent-Type: text/html\r\n\r\n<p>\r\n--q--\r\n",
            ("multipart/mixed", "message/rfc822", "text/html"),
        ),
        (  # the boundary text mid-line, or as the start of a longer line, is not a boundary
            _multipart("ab", "Content-Type: text/plain\r\n\r\nsee --ab here\r\n--abc\r\nmore"),
            ("multipart/mixed", "text/plain"),
        ),
        (  # ... nor at the end of a line
            _multipart("ab", "Content-Type: text/plain\r\n\r\nthe line ends in --ab\r\nmore"),
            ("multipart/mixed", "text/plain"),
        ),
        (  # two boundary lines in a row make no empty part between them, as in the stdlib
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n--b\r\n'
            b"Content-Type: text/html\r\n\r\n<p>\r\n--b--\r\n",
            ("multipart/mixed", "text/html"),
        ),
        (  # a delivery status holds header blocks, not parts
            _multipart(
                "r",
                "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
                "Final-Recipient: rfc822; a@x\r\nAction: failed\r\n",
                "Content-Type: text/rfc822-headers\r\n\r\nFrom: a@x",
                kind="multipart/report; report-type=delivery-status",
            ),
            ("multipart/report", "message/delivery-status", "text/rfc822-headers"),
        ),
        (  # no closing boundary: the last part runs to the end
            b'Content-Type: multipart/mixed; boundary="c"\r\n\r\n--c\r\n'
            b"Content-Type: message/rfc822\r\n\r\nSubject: cut off\r\n\r\nbody",
            ("multipart/mixed", "message/rfc822", "text/plain"),
        ),
    ],
)
def test_part_types_reads_mime_structure(raw: bytes, expected: tuple[str, ...]) -> None:
    assert part_types(raw) == expected
    assert part_types(raw) == tuple(_compat32_types(email.message_from_bytes(raw), []))


def test_part_types_reads_at_most_max_parts() -> None:
    raw = _multipart("m", *["Content-Type: text/plain\r\n\r\nx"] * (MAX_PARTS * 3))
    assert part_types(raw) == ("multipart/mixed",) + ("text/plain",) * (MAX_PARTS - 1)


def test_part_types_stops_nesting_at_max_depth() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\n" * 5_000 + b"Subject: deep\r\n\r\nx"
    types = part_types(raw)
    assert types == ("message/rfc822",) * (MAX_DEPTH + 1)


@BOUNDED
@given(st.binary(max_size=3000))
def test_part_types_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    types = part_types(raw)
    assert 1 <= len(types) <= MAX_PARTS
    assert all(kind == kind.lower() and kind.count("/") == 1 for kind in types)


_PIECES = [
    b'Content-Type: multipart/mixed; boundary="b"\r\n',
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/rfc822-headers\r\n",
    b"Content-Type: message/delivery-status\r\n",
    b"Content-Type: multipart/digest; boundary=b\r\n",
    b"Content-Type: multipart/alternative; boundary*0=b; boundary*1=c\r\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"--bc\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b" folded\r\n",
    b"From x\r\n",
    b"Subject: \xff\xfe\r\n",
    b"body text --b inside\r\n",
]


@BOUNDED
@given(st.lists(st.sampled_from(_PIECES), max_size=60))
def test_part_types_never_raises_on_mime_like_junk(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    types = part_types(raw)
    assert 1 <= len(types) <= MAX_PARTS


# Generated MIME trees: part_types must list exactly the parts that were written.


@dataclass(frozen=True)
class Part:
    kind: str
    children: tuple[Part, ...] = ()


_LEAVES = ["text/plain", "text/html", "application/pdf", "text/rfc822-headers", "image/png"]
_CONTAINERS = ["multipart/mixed", "multipart/alternative", "multipart/related", "message/rfc822"]

_trees = st.recursive(
    st.sampled_from(_LEAVES).map(Part),
    lambda children: st.one_of(
        st.tuples(st.sampled_from(_CONTAINERS[:3]), st.lists(children, min_size=1, max_size=4)).map(
            lambda pair: Part(pair[0], tuple(pair[1]))
        ),
        children.map(lambda child: Part("message/rfc822", (child,))),
    ),
    max_leaves=12,
)


def _render(part: Part, newline: bytes, counter: list[int]) -> bytes:
    counter[0] += 1
    if part.kind.startswith("multipart/"):
        boundary = f"=_b{counter[0]}".encode()
        head = b"Content-Type: " + part.kind.encode() + b'; boundary="' + boundary + b'"'
        body = b""
        for child in part.children:
            body += b"--" + boundary + newline + _render(child, newline, counter) + newline
        body += b"--" + boundary + b"--" + newline
        return head + newline + newline + b"preamble" + newline + body
    if part.kind == "message/rfc822":
        inner = _render(part.children[0], newline, counter)
        return b"Content-Type: message/rfc822" + newline + newline + b"Subject: x" + newline + inner
    return b"Content-Type: " + part.kind.encode() + newline + newline + b"content"


def _flatten(part: Part) -> list[str]:
    return [part.kind] + [kind for child in part.children for kind in _flatten(child)]


@BOUNDED
@given(_trees, st.sampled_from([b"\r\n", b"\n"]))
def test_part_types_lists_every_part_of_a_generated_email(tree: Part, newline: bytes) -> None:
    raw = b"From: a@x.example" + newline + _render(tree, newline, [0])
    assert part_types(raw) == tuple(_flatten(tree))
    assert part_types(raw) == tuple(_compat32_types(email.message_from_bytes(raw), []))
