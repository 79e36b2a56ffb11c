"""RFC 822 messages rendered as Gmail `MessagePart` trees, snippets and attachments.

Shapes follow what Gmail returns: the top part has `partId` "", children
"0", "1", grandchildren "0.0"; container parts carry `body: {"size": 0}`;
leaf parts carry their transfer-decoded bytes as padded base64url `data`,
except parts with a filename (attachments) and attached messages, which carry
an `attachmentId` to fetch separately.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

SNIPPET_LENGTH = 200
_ATTACHMENT_PREFIX = "ANGjdJ"
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_HIDDEN_HTML = re.compile(r"<(style|script|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def b64url(data: bytes) -> str:
    """Gmail's base64url: URL-safe alphabet, with padding."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def _clean_text(value: str) -> str:
    # compat32 smuggles raw 8-bit header bytes as surrogates; JSON cannot carry them.
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def header_value(raw_value: str) -> str:
    """A header value unfolded, with RFC 2047 encoded words decoded, as Gmail shows it."""
    value = _FOLD.sub("", _clean_text(str(raw_value)))
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, UnicodeDecodeError, ValueError):
        return value


def headers(part: Message) -> list[dict[str, str]]:
    return [{"name": name, "value": header_value(value)} for name, value in part.items()]


def _filename(part: Message) -> str:
    name = part.get_filename()
    return header_value(name) if name else ""


def _is_leaf(part: Message) -> bool:
    # An attached message is a leaf for Gmail: it comes back as one attachment.
    return not part.is_multipart() or part.get_content_type() == "message/rfc822"


def leaf_bytes(part: Message) -> bytes:
    """The part's content with the transfer encoding (base64, QP) undone."""
    if part.get_content_type() == "message/rfc822" and part.is_multipart():
        inner = part.get_payload(0)
        return inner.as_bytes() if isinstance(inner, Message) else b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _has_attachment_id(part: Message) -> bool:
    return bool(_filename(part)) or part.get_content_type() == "message/rfc822"


def attachment_id(message_id: str, part_id: str) -> str:
    token = base64.urlsafe_b64encode(f"{message_id}:{part_id}".encode()).decode().rstrip("=")
    return _ATTACHMENT_PREFIX + token


def parse_attachment_id(value: str) -> tuple[str, str] | None:
    """`(message_id, part_id)` for an id made by `attachment_id`, else None."""
    if not value.startswith(_ATTACHMENT_PREFIX):
        return None
    token = value[len(_ATTACHMENT_PREFIX) :]
    try:
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    message_id, sep, part_id = decoded.partition(":")
    return (message_id, part_id) if sep else None


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def payload_tree(message_id: str, part: Message, part_id: str = "") -> dict[str, Any]:
    """The `payload` of a `format=full` message."""
    node: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": _filename(part),
        "headers": headers(part),
    }
    if not _is_leaf(part):
        node["body"] = {"size": 0}
        node["parts"] = [
            payload_tree(message_id, child, f"{part_id}.{i}" if part_id else str(i))
            for i, child in enumerate(_children(part))
        ]
        return node
    data = leaf_bytes(part)
    body: dict[str, Any] = {}
    if _has_attachment_id(part):
        body["attachmentId"] = attachment_id(message_id, part_id)
    body["size"] = len(data)
    if data and "attachmentId" not in body:
        body["data"] = b64url(data)
    node["body"] = body
    return node


def find_part(part: Message, part_id: str) -> Message | None:
    """The leaf with Gmail part id `part_id` ("" is the whole message)."""
    if part_id == "":
        return part
    current = part
    for step in part_id.split("."):
        children = _children(current) if not _is_leaf(current) else []
        if not step.isdigit() or int(step) >= len(children):
            return None
        current = children[int(step)]
    return current


def metadata_payload(part: Message, wanted: list[str]) -> dict[str, Any]:
    """The `payload` of a `format=metadata` message: MIME type and chosen headers."""
    names = {w.lower() for w in wanted}
    chosen = [h for h in headers(part) if not names or h["name"].lower() in names]
    return {"mimeType": part.get_content_type(), "headers": chosen}


def _text_of(part: Message) -> str:
    charset = part.get_content_charset() or "utf-8"
    data = leaf_bytes(part)
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _walk_leaves(part: Message) -> list[Message]:
    if _is_leaf(part):
        return [part]
    return [leaf for child in _children(part) for leaf in _walk_leaves(child)]


def snippet(message: Message) -> str:
    """Gmail's snippet: the start of the body text, whitespace collapsed, HTML-escaped."""
    leaves = [p for p in _walk_leaves(message) if not _has_attachment_id(p)]
    plain = next((p for p in leaves if p.get_content_type() == "text/plain"), None)
    rich = next((p for p in leaves if p.get_content_type() == "text/html"), None)
    if plain is not None:
        text = _text_of(plain)
    elif rich is not None:
        text = html.unescape(_TAG.sub(" ", _HIDDEN_HTML.sub(" ", _text_of(rich))))
    else:
        text = ""
    text = _SPACE.sub(" ", text).strip()[:SNIPPET_LENGTH]
    # Gmail escapes like this (apostrophe as &#39;), not like html.escape.
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )
