"""Property-based checks: hostile bytes never crash parsing, round trips are stable,
and sender matching treats case and spacing as users expect."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.mime import NormalisedEmail, normalise_email, read_headers
from domain.quotes import trim_quoted_reply
from domain.senders import check_sender, parse_allowed_senders
from tests.domain.builders import reserialise

# Bounded and without an example database, so the run is fast and writes nothing.
BOUNDED = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

HEADER_NAMES = [
    "From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To",
    "References", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
    "Return-Path", "Auto-Submitted", "Precedence", "MIME-Version",
]  # fmt: skip
CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "shift_jis", "iso-2022-jp", "x-bogus", ""]
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "binary", "bogus"]


def _assert_sane(email: NormalisedEmail, raw: bytes) -> None:
    assert email.size == len(raw)
    assert "\x00" not in email.text
    assert email.from_address is None or email.from_address == email.from_address.lower()
    assert all(attachment.size >= 0 for attachment in email.attachments)
    assert email.date is None or email.date.tzinfo is not None
    # The catch-all fallback is for the stdlib parser giving up, never for our own bugs.
    assert not any("the mail parser failed" in defect for defect in email.defects)
    # Everything must be storable as UTF-8 text (no lone surrogates from raw bytes).
    for value in (email.subject, email.text, *(v for _, v in email.headers)):
        value.encode("utf-8")


@BOUNDED
@given(st.binary(max_size=3000))
def test_normalise_email_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    _assert_sane(normalise_email(raw), raw)


@BOUNDED
@given(
    st.lists(
        st.tuples(
            st.sampled_from(HEADER_NAMES),
            st.one_of(
                st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
            ),
        ),
        max_size=12,
    ),
    st.binary(max_size=500),
)
def test_normalise_email_never_raises_on_arbitrary_header_values(
    headers: list[tuple[str, str]], body: bytes
) -> None:
    head = b"".join(
        name.encode() + b": " + value.encode("utf-8", errors="surrogatepass") + b"\r\n"
        for name, value in headers
    )
    raw = head + b"\r\n" + body
    _assert_sane(normalise_email(raw), raw)


HEADER_FIELDS = ("message_id", "in_reply_to", "references", "subject", "from_address", "to")


@BOUNDED
@given(
    st.lists(
        st.tuples(st.sampled_from(HEADER_NAMES), st.text(max_size=120)),
        max_size=10,
    ),
    st.sampled_from([b"\r\n", b"\n", b"\r"]),
    st.binary(max_size=300),
)
def test_read_headers_agrees_with_the_full_parse_whatever_the_line_endings(
    headers: list[tuple[str, str]], newline: bytes, body: bytes
) -> None:
    head = b"".join(
        name.encode() + b": " + value.encode("utf-8", errors="surrogatepass") + newline
        for name, value in headers
    )
    raw = head + newline + body
    full, quick = normalise_email(raw), read_headers(raw)
    assert [getattr(quick, f) for f in HEADER_FIELDS] == [getattr(full, f) for f in HEADER_FIELDS]
    assert quick.headers == full.headers


@st.composite
def _mime_trees(draw: st.DrawFn, depth: int = 0) -> bytes:
    """Random but plausible MIME structures with random charsets and encodings."""
    if depth < 3 and draw(st.booleans()):
        subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "digest"]))
        boundary = draw(st.sampled_from(["b1", "b2", "==x==", ""]))
        children = draw(st.lists(_mime_trees(depth + 1), max_size=3))
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + child for child in children)
        if draw(st.booleans()):
            body += b"--" + boundary.encode() + b"--\r\n"
        head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'
        return head.encode() + body
    content_type = draw(
        st.sampled_from(
            ["text/plain", "text/html", "image/png", "message/rfc822", "application/pdf"]
        )
    )
    head = (
        f"Content-Type: {content_type}; charset={draw(st.sampled_from(CHARSETS))}\r\n"
        f"Content-Transfer-Encoding: {draw(st.sampled_from(ENCODINGS))}\r\n"
    )
    if draw(st.booleans()):
        head += f'Content-Disposition: attachment; filename="{draw(st.text(max_size=20))}"\r\n'
    payload = draw(st.binary(max_size=200))
    return head.encode("utf-8", errors="surrogatepass") + b"\r\n" + payload + b"\r\n"


@BOUNDED
@given(_mime_trees())
def test_normalise_email_never_raises_on_random_mime_structures(tree: bytes) -> None:
    raw = b"From: a@x.example\r\nMIME-Version: 1.0\r\n" + tree
    _assert_sane(normalise_email(raw), raw)


_PRINTABLE = st.text(
    alphabet=st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"], max_codepoint=0x2FFF),
    max_size=80,
)
# Display names without address syntax: a name like "<x" makes the sender itself ambiguous,
# and then there is nothing meaningful to keep stable.
_NAME = st.text(
    alphabet=st.characters(
        exclude_categories=["Cc", "Cs", "Zl", "Zp"],
        exclude_characters='<>()[]",;:@\\',
        max_codepoint=0x2FFF,
    ),
    max_size=40,
)
_ADDRESS = st.from_regex(
    r"[a-z0-9][a-z0-9._+-]{0,15}@[a-z0-9]{1,10}\.(com|example|org)", fullmatch=True
)


@BOUNDED
@given(
    subject=_PRINTABLE,
    name=_NAME,
    address=_ADDRESS,
    body=st.text(
        alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r"),
        max_size=400,
    ),
)
def test_normalise_email_is_stable_when_reserialised(
    subject: str, name: str, address: str, body: str
) -> None:
    raw = (
        f"From: {name} <{address}>\r\nSubject: {subject}\r\nMessage-ID: <id@x.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body.encode()
    first = normalise_email(raw)
    second = normalise_email(reserialise(first))
    assert (second.subject, second.from_address, second.message_id) == (
        first.subject,
        first.from_address,
        first.message_id,
    )
    assert second.text == first.text
    assert normalise_email(reserialise(second)) == second


@BOUNDED
@given(st.text(max_size=500))
def test_trim_quoted_reply_never_empties_text_with_content(text: str) -> None:
    trimmed = trim_quoted_reply(text)
    assert bool(trimmed.strip()) == bool(text.strip())


@BOUNDED
@given(
    address=_ADDRESS,
    spaces=st.tuples(st.text(" \t", max_size=3), st.text(" \t", max_size=3)),
    upper=st.booleans(),
)
def test_check_sender_ignores_case_and_surrounding_whitespace(
    address: str, spaces: tuple[str, str], upper: bool
) -> None:
    shown = address.upper() if upper else address.title()
    sender = f"{spaces[0]}{shown}{spaces[1]}"
    domain = "@" + address.split("@")[1]
    assert check_sender(sender, parse_allowed_senders([f" {address.swapcase()} "])).allowed
    assert check_sender(sender, parse_allowed_senders([domain.upper()])).allowed
    assert not check_sender(sender, parse_allowed_senders(["@sub." + domain[1:]])).allowed
    assert not check_sender(sender, parse_allowed_senders(["@x" + domain[1:]])).allowed
