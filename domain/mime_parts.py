"""Reading one MIME part: its type, decoded bytes, and whether and how it is an attachment."""

from __future__ import annotations

import binascii
import email.errors
import re
from email.message import Message

from domain.headers import decode_words, header_text

_DEFAULT_FILENAME_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
    "message/rfc822": ".eml",
}
_UNSAFE_FILENAME_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except (TypeError, ValueError, AttributeError):
        return "text/plain"


def payload_list(part: Message) -> list[object]:
    payload = part.get_payload()
    return list(payload) if isinstance(payload, list) else []


def decoded_payload(part: Message) -> tuple[bytes, bool]:
    """The part's bytes after its transfer encoding, and whether that encoding was damaged."""
    try:
        encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
        if encoding == "base64":
            payload = part.get_payload()
            if isinstance(payload, str):
                return _decode_base64(payload.encode("ascii", errors="ignore"))
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError, AssertionError):
        return b"", True
    return (data, False) if isinstance(data, bytes) else (b"", False)


def _decode_base64(encoded: bytes) -> tuple[bytes, bool]:
    # The stdlib hands back the *encoded* text when a cut-off upload leaves a stray
    # character (bpo-27397); decoding what is whole gives the real bytes and size.
    try:
        return binascii.a2b_base64(encoded), False
    except binascii.Error:
        pass
    cleaned = _NOT_BASE64.sub(b"", encoded)
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]  # a lone last character holds no whole byte
    try:
        return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4)), True
    except binascii.Error:
        return b"", True


def is_attachment(part: Message, kind: str) -> bool:
    try:
        disposition = part.get_content_disposition()
    except (TypeError, ValueError):
        disposition = None
    if disposition == "attachment" or filename(part):
        return True
    return not kind.startswith(("text/", "multipart/", "message/"))


def filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (TypeError, ValueError, LookupError, UnicodeError):
        return None
    if not name:
        return None
    # Outlook sends RFC 2047 words in filenames (not allowed there, but universal).
    return safe_filename(decode_words(header_text(name)))


def safe_filename(name: str) -> str | None:
    """The last path component, without control characters; None if nothing is left."""
    name = _UNSAFE_FILENAME_CHARS.sub("", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255] if name not in ("", ".", "..") else None


def default_filename(kind: str) -> str:
    return "attachment" + _DEFAULT_FILENAME_EXTENSIONS.get(kind, "")


_DEFECT_WORDS: dict[type[email.errors.MessageDefect], str] = {
    email.errors.NoBoundaryInMultipartDefect: (
        "a multipart part has no boundary, so its parts could not be separated"
    ),
    email.errors.StartBoundaryNotFoundDefect: (
        "a multipart boundary was never found, so the body was read as one part"
    ),
    email.errors.CloseBoundaryNotFoundDefect: (
        "the email ends before its last multipart boundary (it may be cut off)"
    ),
    email.errors.FirstHeaderLineIsContinuationDefect: (
        "the first header line is a continuation of nothing"
    ),
    email.errors.MisplacedEnvelopeHeaderDefect: "a mailbox 'From ' line appears among the headers",
    email.errors.MissingHeaderBodySeparatorDefect: (
        "a line among the headers is not a header; the rest was read as the body"
    ),
    email.errors.MultipartInvariantViolationDefect: (
        "the email says it is multipart but has no parts"
    ),
    email.errors.InvalidMultipartContentTransferEncodingDefect: (
        "a multipart part has an invalid transfer encoding"
    ),
    email.errors.InvalidBase64PaddingDefect: (
        "base64 content has damaged padding (it may be cut off)"
    ),
    email.errors.InvalidBase64CharactersDefect: "base64 content contains invalid characters",
    email.errors.InvalidBase64LengthDefect: (
        "base64 content has an impossible length (it may be cut off)"
    ),
}


def describe_defect(defect: object) -> str:
    for kind, words in _DEFECT_WORDS.items():
        if isinstance(defect, kind):
            return words
    name = type(defect).__name__.removesuffix("Defect")
    spaced = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return f"the mail parser noted: {spaced}"
