"""Classic bounces: a mail system hands an email back without a delivery status report.

The loop guards recognise a bounce by its RFC 3464 report (`multipart/report;
report-type=delivery-status`), by `X-Failed-Recipients` or by an empty Return-Path. Plenty of
real bounces carry none of these: qmail's "failure notice" and Exim's classic bounce are
plain text with the original pasted in, relays and servers that drop or never write the
report part send `multipart/mixed`, and mail exported from a mailbox by an API has no
envelope to show an empty Return-Path. What they always share is who wrote them (a mail
system) and what they say (here is your email back, or a bounce subject). Both are needed,
never one alone: a person may forward an email as an attachment, and a shop's "Delivery
Team" may write about a failed parcel delivery.

Delivery reports that are not failures (Gmail's "Delivery Status Notification (Delay)",
Postfix's "Delayed Mail", Exchange's "Delivered:") count too: a mail system wrote them
about an earlier email, nobody asks anything, and answering them reaches only a mail
daemon. The loop guards already treat every RFC 3464 report (delays included) as a bounce,
so these get the same skip reason; the sentence says which kind of report it was.

Pure and fast: `part_types` reads only header blocks and finds boundaries with
`bytes.find`, so the filter step can afford it on every email.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.message import Message

# Bounds for hostile input; a real bounce has fewer than ten parts, three levels deep.
MAX_PARTS = 200
MAX_DEPTH = 30
# Header lines read per part; a part with more is recorded but not looked into.
MAX_HEADER_LINES = 2_000
# Places where a multipart's boundary text is looked at, per multipart.
MAX_BOUNDARY_CANDIDATES = 10_000

# The parser's own test for a header line (email.feedparser.headerRE): anything else ends
# the header block, as it does for the parser.
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")

# Addresses only mail software sends from. RFC 5321 §4.5.1 requires every server to have a
# postmaster; "MAILER-DAEMON" is the sender name of sendmail, Postfix, qmail, Exim and
# Gmail's bounces.
_SYSTEM_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})
# Exchange and Microsoft 365 send reports from a system mailbox named after a fixed GUID
# (MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@...).
_EXCHANGE_SYSTEM_MAILBOX = re.compile(r"microsoftexchange[0-9a-f]{32}")
# Display names mail software gives itself, compared whole after lowercasing and turning
# "-" and "_" into spaces: a substring test would take "Delivery Team" for a mail system.
_SYSTEM_NAMES = frozenset(
    {
        "mail delivery subsystem",  # Gmail, sendmail, AOL
        "mail delivery system",  # Postfix ("MAILER-DAEMON@host (Mail Delivery System)"), Exim
        "mail delivery service",
        "mail administrator",
        "mailer daemon",  # "MAILER-DAEMON" as a name
        "postmaster",
        # Exchange and Microsoft 365 reports ("Microsoft Outlook" <postmaster@...>). Outlook's
        # account test mail uses the name too, from a person's address; it wraps nothing and
        # has no bounce subject, so the second condition keeps it out.
        "microsoft outlook",
        "microsoft exchange",
    }
)

# Parts that carry the returned email (or its headers) back to its sender: RFC 3462 and
# RFC 6522 `text/rfc822-headers`, `message/rfc822`, and their RFC 6532/6533 (UTF-8) twins.
_RETURNED_PARTS = (
    "message/rfc822",
    "message/global",
    "text/rfc822-headers",
    "message/global-headers",
)
# A delivery status report found in a part of something other than multipart/report (a relay
# re-wrapped it): the loop guards only look at the top-level type.
_REPORT_PARTS = ("message/delivery-status", "message/global-delivery-status")


def _subjects(*patterns: str) -> re.Pattern[str]:
    """Patterns matched at the start of the subject, case-insensitively."""
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns), re.IGNORECASE)


# Subjects of failure reports, as the common mail servers write them.
_FAILURE_SUBJECTS = _subjects(
    r"undelivered mail returned to sender\b",  # Postfix
    r"undeliver(?:ed|able)\b",  # Exchange "Undeliverable: <subject>", "Undelivered Mail"
    r"delivery status notification \(failure\)",  # Gmail, Exchange, sendmail
    r"returned mail\b",  # sendmail "Returned mail: see transcript for details"
    r"mail delivery failed\b",  # Exim "Mail delivery failed: returning message to sender"
    r"failure notice\b",  # qmail, Yahoo
    r"delivery failure\b",  # Lotus Domino "DELIVERY FAILURE: User ... not listed"
    r"(?:delivery notification: )?delivery has failed\b",  # older groupware servers
    r"non-?delivery\b",  # "Non-Delivery Report", "Nondelivery notification"
    r"mail system error\b",  # "Mail System Error - Returned Mail"
    r"message (?:could not be|not) delivered\b",
    # Exchange writes "Undeliverable:" in the sender's language: German, French, Spanish,
    # Dutch, Italian.
    r"unzustellbar:",
    r"non remis\s?:",
    r"no se puede entregar:",
    r"onbestelbaar:",
    r"non recapitabile:",
)
# Reports that delivery is late, not failed; the mail server is still trying.
_DELAY_SUBJECTS = _subjects(
    r"delivery status notification \(delay\)",  # Gmail, Exchange, sendmail
    r"delayed mail\b",  # Postfix "Delayed Mail (still being retried)"
    r"delivery delayed\b",  # Exchange "Delivery delayed: <subject>"
    r"warning: could not send message\b",  # sendmail "... for past 4 hours"
    r"warning: message \S+ delayed\b",  # Exim "Warning: message 1rpQ2a-... delayed 24 hours"
)
# Reports that an earlier email did arrive (asked for with DSN NOTIFY=SUCCESS or a delivery
# receipt).
_SUCCESS_SUBJECTS = _subjects(
    r"delivery status notification \((?:success|relay)\)",
    r"successful mail delivery report\b",  # Postfix
    r"delivered:",  # Exchange delivery receipt "Delivered: <subject>"
    r"relayed:",  # Exchange, when the receiving server sends no receipt
)


def part_types(raw: bytes) -> tuple[str, ...]:
    """The lowercased content type of every MIME part, the message itself first, depth first
    (the order and types of compat32's `message.walk()`, except that the header blocks inside
    a delivery-status part are not parts). Reads header blocks only; never raises; at most
    MAX_PARTS types, MAX_DEPTH levels."""
    data = raw if isinstance(raw, bytes) else bytes(raw)
    found: list[str] = []
    try:
        _scan(data, 0, len(data), "text/plain", 0, found)
    except Exception:  # a hostile email keeps the types read so far; the filter must go on
        pass
    return tuple(found[:MAX_PARTS])


def is_mail_system(from_address: str | None, from_name: str | None) -> bool:
    """Does the From header name a mail system rather than a person? Cheap: a filter can ask
    this first and read the parts only when it says yes."""
    address = (from_address or "").strip().lower()
    local_part = address.rsplit("@", 1)[0].strip('"') if address else ""
    if local_part in _SYSTEM_LOCAL_PARTS or _EXCHANGE_SYSTEM_MAILBOX.fullmatch(local_part):
        return True
    name = (from_name or "").strip().strip("\"'()").strip()
    if not name:
        return False
    candidates = [name]
    if "@" in name:  # "MAILER-DAEMON@mx.example" given as the display name
        candidates.append(name.rsplit("@", 1)[0])
    return any(_name_key(candidate) in _SYSTEM_NAMES for candidate in candidates)


def classic_bounce(
    from_address: str | None, from_name: str | None, subject: str, part_types: Sequence[str]
) -> str | None:
    """Why this email is a bounce (a sentence for a person), or None when it is not one.

    A bounce needs a mail system as the sender AND a sign that the email reports on an
    earlier one: a part that returns it (message/rfc822, text/rfc822-headers), a delivery
    status part, or a bounce subject. The arguments are `read_headers(raw)`'s fields and
    `part_types(raw)`.
    """
    if not is_mail_system(from_address, from_name):
        return None
    sender = _sender_text(from_address, from_name)
    subject = (subject or "").strip()
    shown_subject = subject[:120]
    kinds = {kind.lower() for kind in part_types}
    # The subject first when it says "delay" or "delivered": such reports often return the
    # original too, and "returns an undelivered message" would be wrong for them.
    if _DELAY_SUBJECTS.match(subject):
        return (
            f"the sender {sender} is a mail system and the subject {shown_subject!r} reports "
            "that an earlier email is delayed (not failed yet, but an automatic notice that "
            "asks nothing)"
        )
    if _SUCCESS_SUBJECTS.match(subject):
        return (
            f"the sender {sender} is a mail system and the subject {shown_subject!r} reports "
            "that an earlier email was delivered (an automatic notice that asks nothing)"
        )
    report = next((kind for kind in _REPORT_PARTS if kind in kinds), None)
    if report is not None:
        return (
            f"the sender {sender} is a mail system and the email carries a delivery status "
            f"report (in its {report} part)"
        )
    returned = next((kind for kind in _RETURNED_PARTS if kind in kinds), None)
    if returned is not None:
        return (
            f"the sender {sender} is a mail system and the email returns an undelivered "
            f"message (in its {returned} part)"
        )
    if _FAILURE_SUBJECTS.match(subject):
        return (
            f"the sender {sender} is a mail system and the subject {shown_subject!r} reports "
            "an undelivered email"
        )
    return None


# Reading the parts ------------------------------------------------------------------------


def _scan(data: bytes, start: int, end: int, default: str, depth: int, found: list[str]) -> None:
    """Record the type of the part in data[start:end], then of the parts inside it."""
    if len(found) >= MAX_PARTS:
        return
    value, body = _content_type_header(data, start, end)
    kind, boundary = _type_and_boundary(value, default)
    found.append(kind)
    if body is None or depth >= MAX_DEPTH:
        return
    if kind.startswith("multipart/"):
        if boundary is None:
            return  # the parser reads such a body as text, without parts
        inner_default = "message/rfc822" if kind == "multipart/digest" else "text/plain"
        for part_start, part_end in _parts(
            data, body, end, boundary.encode("ascii", "surrogateescape")
        ):
            _scan(data, part_start, part_end, inner_default, depth + 1, found)
            if len(found) >= MAX_PARTS:
                return
    elif kind.startswith("message/") and not kind.endswith("delivery-status"):
        # message/rfc822 and its kin hold a whole email; a delivery status holds header
        # blocks that are not parts.
        _scan(data, body, end, "text/plain", depth + 1, found)


def _content_type_header(data: bytes, start: int, end: int) -> tuple[str | None, int | None]:
    """The part's first Content-Type value (unfolded) and where its body starts; the body is
    None when the header block is too long to read."""
    value: list[bytes] | None = None
    in_content_type = False
    position = start
    for _ in range(MAX_HEADER_LINES):
        if position >= end:
            return _joined(value), end
        newline = data.find(b"\n", position, end)
        line_end = end if newline < 0 else newline + 1
        line = data[position:line_end]
        if line[:1] in (b"\r", b"\n"):
            return _joined(value), line_end  # the blank line between header and body
        if not _HEADER_LINE.match(line):
            return _joined(value), position  # a line that is not a header starts the body
        if line[:1] in (b" ", b"\t"):
            if in_content_type and value is not None:
                value.append(line)
        elif value is None and not line.startswith(b"From "):
            name, _, rest = line.partition(b":")
            in_content_type = name.lower() == b"content-type"
            if in_content_type:
                value = [rest.lstrip(b" \t")]
        else:
            in_content_type = False
        position = line_end
    return _joined(value), None


def _joined(value: list[bytes] | None) -> str | None:
    if value is None:
        return None
    return b"".join(value).rstrip(b"\r\n").decode("ascii", "surrogateescape")


def _type_and_boundary(value: str | None, default: str) -> tuple[str, str | None]:
    """The stdlib's reading of a Content-Type value: its type (invalid ones become
    text/plain) and its boundary parameter (quoted or RFC 2231 forms included)."""
    if value is None:
        return default, None
    header = Message()
    header.set_default_type(default)
    header.set_raw("Content-Type", value)
    kind = header.get_content_type()
    boundary = header.get_boundary() if kind.startswith("multipart/") else None
    return kind, boundary


def _parts(data: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    """(start, end) of each part between the boundary lines in data[start:end]; the preamble
    before the first line and anything after the closing line are not parts."""
    delimiter = b"--" + boundary
    lines: list[tuple[int, int, bool]] = []  # line start, line end, whether it closes
    position = start
    # Hostile bodies repeat the boundary text mid-line: bound the candidates, not just parts.
    for _ in range(MAX_BOUNDARY_CANDIDATES):
        if len(lines) > MAX_PARTS:
            break
        found = data.find(delimiter, position, end)
        if found < 0:
            break
        position = found + 1
        if found > start and data[found - 1] not in b"\r\n":
            continue  # not at the start of a line
        after = found + len(delimiter)
        closing = data.startswith(b"--", after, end)
        if closing:
            after += 2
        while after < end and data[after] in b" \t":
            after += 1
        if after < end and data[after] not in b"\r\n":
            continue  # "--boundary" followed by more text: a longer boundary, or content
        line_end = _line_end(data, after, end)
        lines.append((found, line_end, closing))
        position = line_end
        if closing:
            break
    parts: list[tuple[int, int]] = []
    for (_, part_start, closing), following in zip(lines, [*lines[1:], None], strict=True):
        if closing:
            break
        part_end = following[0] if following is not None else end
        if part_start < part_end:  # two boundary lines in a row make no part (as the parser)
            parts.append((part_start, part_end))
    return parts


def _line_end(data: bytes, position: int, end: int) -> int:
    """Just past the line break at `position` (CRLF, LF or CR), or `end`."""
    if data.startswith(b"\r\n", position, end):
        return position + 2
    if position < end and data[position] in b"\r\n":
        return position + 1
    return end


# Naming the sender --------------------------------------------------------------------------


def _name_key(name: str) -> str:
    return " ".join(re.split(r"[\s_-]+", name.lower())).strip()


def _sender_text(from_address: str | None, from_name: str | None) -> str:
    name = (from_name or "").strip()[:100]
    address = (from_address or "").strip()[:200]
    if name and address:
        return f"{name} <{address}>"
    return name or address
