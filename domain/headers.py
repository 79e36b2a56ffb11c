"""Reading header values: raw 8-bit bytes, RFC 2047 encoded words, addresses, ids, dates.

The mail parser runs with the fast compat32 policy (see perf-notes.md), which hands back
header values undecoded; these helpers do the decoding it skips, and never raise.
"""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime

from domain.charsets import decode_bytes

# Longest header value we look at when parsing addresses: anything longer is hostile or broken,
# and the address parser's cost grows with it.
MAX_ADDRESS_HEADER = 16_384
# Most Message-IDs we keep from one References header (the newest ones: they matter most).
MAX_REFERENCES = 100

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])|\r(?=[ \t])")
_SPACES = re.compile(r"\s+")
_BRACKETED_ID = re.compile(r"<([^<>\s]+)>")

# An address: a local part and a domain, both present. Loose where real mail is loose (UTF-8
# local parts, docomo's "a..b."), strict where a reply could go nowhere: no empty side, no
# second "@", no empty domain label, nothing from an encoded word ("=?utf-8?q?a@b?=").
_ATEXT = r"[^\s\"(),.:;<>@\[\\\]\x00-\x1f\x7f]"
_LOCAL = rf"(?:\.*{_ATEXT}[^\s\"(),:;<>@\[\\\]\x00-\x1f\x7f]*|\"[^\"\\\s]+\")"
_LABEL = r"[\w-]+"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[^\[\]\\\s]+\])"
_ADDRESS = re.compile(rf"{_LOCAL}@{_DOMAIN}")
# Words of a header value that has addresses outside the syntax getaddresses reads.
_WORD = re.compile(r"[^\s<>(),;:\"\[\]]+")


def header_text(value: object) -> str:
    """A header value as plain text: 8-bit bytes decoded, folding undone, NULs gone.

    Encoded words are left alone (the raw value loop guards and storage want).
    """
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        # The bytes parser keeps non-ASCII bytes as surrogate escapes; give them back their
        # real characters (RFC 6532 allows UTF-8 headers; older mail uses windows-1252).
        raw = text.encode("utf-8", errors="surrogateescape")
        text, _problem = decode_bytes(raw, "utf-8")
    text = _FOLD.sub("", text)
    return text.replace("\x00", "").replace("\r", " ").replace("\n", " ")


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words; whitespace between two encoded words is dropped, and
    adjacent words in one charset are joined before decoding (encoders split characters)."""
    if "=?" not in text:
        return text
    pieces: list[str] = []
    pending: bytearray = bytearray()
    pending_charset = ""
    position = 0
    last_was_word = False

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            decoded, _problem = decode_bytes(bytes(pending), pending_charset)
            pieces.append(decoded)
        pending = bytearray()
        pending_charset = ""

    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        if between and not (last_was_word and between.isspace()):
            flush()
            pieces.append(between)
        charset, encoding, payload = match.group(1), match.group(2).lower(), match.group(3)
        charset = charset.split("*", 1)[0].lower()
        if pending and charset != pending_charset:
            flush()
        pending_charset = charset
        pending += _decode_word_payload(encoding, payload)
        position = match.end()
        last_was_word = True
    flush()
    pieces.append(text[position:])
    return "".join(pieces)


def _decode_word_payload(encoding: str, payload: str) -> bytes:
    data = payload.encode("ascii", errors="replace")
    try:
        if encoding == "b":
            data = data.rstrip(b"=")
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        return binascii.a2b_qp(data, header=True)
    except (binascii.Error, ValueError):
        return data


def decode_header_value(value: object) -> str:
    """A display header (Subject, names): decoded, whitespace collapsed, stripped."""
    return _SPACES.sub(" ", decode_words(header_text(value))).strip()


def is_address(text: str) -> bool:
    """Whether `text` is an address a reply can go to: a local part, "@" and a domain."""
    return _ADDRESS.fullmatch(text) is not None


def parse_addresses(value: object) -> list[tuple[str, str]]:
    """(display name, lowercased address) pairs, in order; groups' names and anything that is
    not an address (no local part, no domain) are dropped.

    The standard parser reads RFC 5322 with its obsolete forms (comments, source routes,
    spaces around "@"). Where it meets what it cannot read, such as an address after a name
    without angle brackets (`Big Bug bb@bug.example`) or addresses without commas between
    them, the value's words are read instead: every word that is an address, in order.
    """
    text = header_text(value)[:MAX_ADDRESS_HEADER]
    pairs: list[tuple[str, str]] = []
    unreadable = False
    for name, address in getaddresses([text]):
        address = address.strip().strip("<>").strip().lower()
        if not address:
            continue
        if not is_address(address):
            unreadable = True
            continue
        pairs.append((_display_name(name), address))
    if unreadable or (not pairs and "@" in text):
        return _addresses_in_words(text)
    return pairs


def name_without_address(value: object) -> str | None:
    """The name a From header gives when it holds no address (`MAILER-DAEMON` alone, `Joe
    <joe>`): no one to reply to, but enough for the bounce filter to know a mail system."""
    text = header_text(value)[:MAX_ADDRESS_HEADER]
    for name, address in getaddresses([text]):
        shown = _display_name(name) or address.strip().strip("<>").strip()
        if shown and "@" not in shown:
            return shown
    return None


def _addresses_in_words(text: str) -> list[tuple[str, str]]:
    """Every word of `text` that is an address, named by the text before it (`Big Bug
    bb@bug.example`) back to the previous address or comma."""
    pairs: list[tuple[str, str]] = []
    previous = 0
    for word in _WORD.finditer(text):
        if "@" not in word.group():
            continue
        address = word.group().strip("'.").lower()
        before = text[previous : word.start()]
        previous = word.end()
        if is_address(address):
            pairs.append((_display_name(_after_last_separator(before).strip(" \t<>")), address))
    return pairs


def _after_last_separator(text: str) -> str:
    """The text after its last comma or semicolon outside double quotes."""
    cut, quoted = 0, False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char in ",;" and not quoted:
            cut = index + 1
    return text[cut:]


def _display_name(name: str) -> str:
    return _unquote(_SPACES.sub(" ", decode_words(name)).strip())


def _unquote(name: str) -> str:
    # Outlook writes 'Bob Smith' and some encoders quote the decoded words themselves.
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        return name[1:-1].strip()
    # A comment standing for the name: "bb@bug.example (Big Bug)" read as "(Big Bug)".
    if name[:1] == "(" and name[-1:] == ")" and name.count("(") == 1 and name.count(")") == 1:
        return name[1:-1].strip()
    return name


def message_ids(value: object) -> list[str]:
    """Message-IDs in a header, without angle brackets, in order, duplicates dropped.

    Some clients forget the brackets, so a bracketless value falls back to its words.
    """
    text = header_text(value)
    found = _BRACKETED_ID.findall(text)
    if not found:
        found = [word.strip("<>,;") for word in text.split()]
    seen: set[str] = set()
    ids: list[str] = []
    for candidate in found:
        if candidate and candidate not in seen and len(candidate) <= 998:
            seen.add(candidate)
            ids.append(candidate)
    return ids


def parse_date(value: object) -> datetime | None:
    """An aware datetime, or None when the Date header cannot be read."""
    text = header_text(value).strip()
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        # RFC 5322 "-0000": the time is UTC and the sender's zone is unknown.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
