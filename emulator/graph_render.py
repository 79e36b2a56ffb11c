"""Stored RFC 822 messages rendered as Microsoft Graph `message` and attachment resources.

Ids look like Graph's (opaque base64, `AAMk...` for items, `AAQk...` for
conversations, `AQMk...` for folders) and decode back to the emulator's own ids.
Property order follows the v1.0 `message` resource. As Graph does, `body`,
`uniqueBody` and `internetMessageHeaders` only appear when `$select`ed (the
project's brief keeps `body` out of the default set too, so a client that
forgets `$select` is noticed by its size, not by a surprise).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import html
import re
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from emulator.mime import header_value, headers, leaf_bytes
from emulator.state import Mailbox, StoredMessage

#: Folder names Graph accepts instead of ids, and the emulator folder each one is.
WELL_KNOWN_FOLDERS = {"inbox": "inbox", "sentitems": "sent"}
_FOLDER_NAMES = {"inbox": "inbox", "sent": "sentitems"}
_MESSAGE_PREFIX = "AAMkAGEm"
_CONVERSATION_PREFIX = "AAQkAGEm"
_FOLDER_PREFIX = "AQMkAGEm"
_ATTACHMENT_PREFIX = "AAMkAGAt"
BODY_PREVIEW_LENGTH = 255
_TAG = re.compile(r"<[^>]*>")
_HIDDEN_HTML = re.compile(r"<(style|script|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")

#: Every property `$select` may name, in Graph's order, with its canonical spelling.
MESSAGE_PROPERTIES = (
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "uniqueBody",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
    "internetMessageHeaders",
    "id",
)
#: Left out unless `$select`ed.
SELECT_ONLY = frozenset({"body", "uniqueBody", "internetMessageHeaders"})
CANONICAL = {name.lower(): name for name in MESSAGE_PROPERTIES}


def _encode(prefix: str, text: str) -> str:
    # Padded like Graph's own ids, which often end in "=".
    return prefix + base64.urlsafe_b64encode(text.encode()).decode("ascii")


def _decode(prefix: str, value: str) -> str | None:
    if not value.startswith(prefix):
        return None
    try:
        return base64.urlsafe_b64decode(value[len(prefix) :].encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None


def encoded_message_id(emulator_id: str) -> str:
    """The Graph id of the emulator's message `emulator_id` (present or deleted).

    A Graph id comes back unchanged: the control API answers Graph ids for Outlook
    mailboxes, and callers written when it answered the emulator's own (hex) id still
    pass its answer through here. Hex ids never start with the Graph prefix.
    """
    if stored_id(emulator_id) is not None:
        return emulator_id
    return _encode(_MESSAGE_PREFIX, "m:" + emulator_id)


def message_id(message: StoredMessage) -> str:
    return encoded_message_id(message.id)


def stored_id(graph_id: str) -> str | None:
    """The emulator id behind a Graph message id, or None if it is not one."""
    decoded = _decode(_MESSAGE_PREFIX, graph_id)
    return decoded[2:] if decoded is not None and decoded.startswith("m:") else None


def conversation_id(message: StoredMessage) -> str:
    return encoded_conversation_id(message.thread_id)


def encoded_conversation_id(thread_id: str) -> str:
    """The Graph conversationId of the emulator's thread `thread_id`."""
    return _encode(_CONVERSATION_PREFIX, "c:" + thread_id)


def folder_id(mailbox: Mailbox, folder: str) -> str:
    return _encode(_FOLDER_PREFIX, f"f:{mailbox.address}:{folder}")


def resolve_folder(mailbox: Mailbox, segment: str) -> str | None:
    """The emulator folder a Graph folder segment (well-known name or id) names."""
    known = WELL_KNOWN_FOLDERS.get(segment.lower())
    if known is not None:
        return known
    decoded = _decode(_FOLDER_PREFIX, segment)
    if decoded is None:
        return None
    prefix, _, folder = decoded.rpartition(":")
    return folder if prefix == f"f:{mailbox.address}" and folder in _FOLDER_NAMES else None


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def received_at(message: StoredMessage) -> dt.datetime:
    return dt.datetime.fromtimestamp(message.internal_date_ms / 1000, dt.UTC)


def _sent_at(parsed: Message, fallback: dt.datetime) -> dt.datetime:
    raw = parsed.get("Date")
    if raw is None:
        return fallback
    try:
        when = parsedate_to_datetime(header_value(str(raw)))
    except (TypeError, ValueError, IndexError):
        return fallback
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _recipients(parsed: Message, name: str) -> list[dict[str, Any]]:
    values = [header_value(str(v)) for v in parsed.get_all(name, [])]
    return [
        {"emailAddress": {"name": display or address, "address": address}}
        for display, address in getaddresses(values)
        if address
    ]


def _leaves(part: Message) -> list[Message]:
    """Leaf parts, not descending into attached messages (their text is not the body)."""
    if not part.is_multipart() or part.get_content_type() == "message/rfc822":
        return [part]
    payload = part.get_payload()
    children = [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
    return [leaf for child in children for leaf in _leaves(child)]


def attachment_parts(parsed: Message) -> list[Message]:
    """Attachments in MIME order: named (or `attachment`) leaves and attached messages."""
    found: list[Message] = []

    def visit(part: Message) -> None:
        if part is not parsed and part.get_content_type() == "message/rfc822":
            found.append(part)  # an attached message is one item attachment
            return
        if not part.is_multipart():
            named = part.get_filename() or part.get_content_disposition() == "attachment"
            if part is not parsed and named:
                found.append(part)
            return
        payload = part.get_payload()
        for child in payload if isinstance(payload, list) else []:
            if isinstance(child, Message):
                visit(child)

    visit(parsed)
    return found


def has_attachments(parsed: Message) -> bool:
    """Graph's `hasAttachments` is false when every attachment is inline (signatures)."""
    return any(p.get_content_disposition() != "inline" for p in attachment_parts(parsed))


def _text(part: Message) -> str:
    data = leaf_bytes(part)
    try:
        return data.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _body_parts(parsed: Message) -> tuple[Message | None, Message | None]:
    """The first text/plain and text/html parts that are not attachments."""
    plain = rich = None
    for part in _leaves(parsed):
        if part.get_filename() or part.get_content_disposition() == "attachment":
            continue
        if part.get_content_type() == "text/plain" and plain is None:
            plain = part
        elif part.get_content_type() == "text/html" and rich is None:
            rich = part
    return plain, rich


def _strip_html(text: str) -> str:
    return html.unescape(_TAG.sub(" ", _HIDDEN_HTML.sub(" ", text)))


def body(parsed: Message, prefer_text: bool) -> dict[str, str]:
    """Graph's `body`: HTML when the message has it, unless the client prefers text."""
    plain, rich = _body_parts(parsed)
    if rich is not None and not prefer_text:
        return {"contentType": "html", "content": _text(rich)}
    if plain is not None:
        return {"contentType": "text", "content": _text(plain)}
    if rich is not None:
        return {"contentType": "text", "content": _SPACE.sub(" ", _strip_html(_text(rich)))}
    return {"contentType": "text", "content": ""}


def body_preview(parsed: Message) -> str:
    plain, rich = _body_parts(parsed)
    text = _text(plain) if plain is not None else _strip_html(_text(rich)) if rich else ""
    return _SPACE.sub(" ", text).strip()[:BODY_PREVIEW_LENGTH]


def change_key(message: StoredMessage) -> str:
    digest = hashlib.sha256(f"{message.id}:{message.seq}".encode()).digest()[:16]
    return "CQAAABYAAA" + base64.b64encode(digest).decode("ascii")


def _importance(parsed: Message) -> str:
    value = str(parsed.get("Importance", "")).strip().lower()
    return value if value in ("low", "normal", "high") else "normal"


def render_message(
    mailbox: Mailbox,
    message: StoredMessage,
    select: list[str] | None,
    *,
    prefer_text: bool = False,
) -> dict[str, Any]:
    """A `message` resource; `select` is the canonical `$select` list (None: defaults)."""
    parsed = message.parsed()
    received = received_at(message)
    graph_id = message_id(message)
    wanted = set(select) if select is not None else set(MESSAGE_PROPERTIES) - SELECT_ONLY
    origin = _recipients(parsed, "From")
    sender = _recipients(parsed, "Sender") or origin
    values: dict[str, Any] = {
        "createdDateTime": iso(received),
        "lastModifiedDateTime": iso(received),
        "changeKey": change_key(message),
        "categories": [],
        "receivedDateTime": iso(received),
        "sentDateTime": iso(_sent_at(parsed, received)),
        "hasAttachments": has_attachments(parsed),
        "internetMessageId": header_value(str(parsed.get("Message-ID", ""))) or None,
        "subject": header_value(str(parsed.get("Subject", ""))),
        "bodyPreview": body_preview(parsed),
        "importance": _importance(parsed),
        "parentFolderId": folder_id(mailbox, message.folder),
        "conversationId": conversation_id(message),
        "conversationIndex": base64.b64encode(
            hashlib.sha256(message.thread_id.encode()).digest()[:22]
        ).decode("ascii"),
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": parsed.get("Disposition-Notification-To") is not None,
        "isRead": "UNREAD" not in message.label_ids,
        "isDraft": False,
        "webLink": "https://outlook.office365.com/owa/?ItemID="
        + quote(graph_id, safe="")
        + "&exvsurl=1&viewmodel=ReadMessageItem",
        "inferenceClassification": "focused",
        "body": None,
        "uniqueBody": None,
        "sender": sender[0] if sender else None,
        "from": origin[0] if origin else None,
        "toRecipients": _recipients(parsed, "To"),
        "ccRecipients": _recipients(parsed, "Cc"),
        "bccRecipients": _recipients(parsed, "Bcc"),
        "replyTo": _recipients(parsed, "Reply-To"),
        "flag": {"flagStatus": "notFlagged"},
        "internetMessageHeaders": headers(parsed),
    }
    if "body" in wanted or "uniqueBody" in wanted:
        # The emulator does not tell quoted text apart: uniqueBody is the whole body.
        values["body"] = values["uniqueBody"] = body(parsed, prefer_text)
    rendered: dict[str, Any] = {
        "@odata.etag": f'W/"{values["changeKey"]}"',
        "id": graph_id,
    }
    for name in MESSAGE_PROPERTIES:
        if name in wanted and name != "id":
            rendered[name] = values[name]
    return rendered


def attachment_id(message: StoredMessage, index: int) -> str:
    return _encode(_ATTACHMENT_PREFIX, f"a:{message.id}:{index}")


def render_attachments(message: StoredMessage) -> list[dict[str, Any]]:
    """The message's `fileAttachment`s (bytes inline) and `itemAttachment`s (attached mail)."""
    parsed = message.parsed()
    modified = iso(received_at(message))
    rendered: list[dict[str, Any]] = []
    for index, part in enumerate(attachment_parts(parsed)):
        data = leaf_bytes(part)
        name = header_value(part.get_filename() or "") or (
            header_value(str(part.get("Subject", ""))) if part.is_multipart() else ""
        )
        common: dict[str, Any] = {
            "id": attachment_id(message, index),
            "lastModifiedDateTime": modified,
            "name": name or "Untitled attachment",
            "contentType": part.get_content_type(),
            "size": len(data),
            "isInline": part.get_content_disposition() == "inline",
        }
        if part.get_content_type() == "message/rfc822":
            rendered.append({"@odata.type": "#microsoft.graph.itemAttachment", **common})
            continue
        content_id = part.get("Content-ID")
        rendered.append(
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                **common,
                "contentId": str(content_id).strip().strip("<>") if content_id else None,
                "contentLocation": None,
                # Graph's Edm.Binary: standard base64 with padding.
                "contentBytes": base64.b64encode(data).decode("ascii"),
            }
        )
    return rendered
