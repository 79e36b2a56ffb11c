"""Raw RFC 822 bytes turned into the few fields a help desk needs, for any message at all.

Parsing uses the compat32 policy (about 6x faster than policy.default, see perf-notes.md)
and decodes headers itself (domain.headers). Hostile or broken mail never raises: each
problem met along the way is described in `defects`, in words support staff can read.
"""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from typing import Literal

from domain import mime_parts as parts
from domain.charsets import decode_bytes
from domain.header_block import header_end, mend_header_block
from domain.headers import (
    MAX_REFERENCES,
    decode_header_value,
    header_text,
    message_ids,
    name_without_address,
    parse_addresses,
    parse_date,
)
from domain.html_text import MAX_HTML_CHARS, html_to_text

MAX_SUBJECT_CHARS = 1_000
MAX_HEADER_CHARS = 16_384
MAX_HEADERS = 500
# Parts nested deeper than this are ignored; real mail rarely goes past 5 levels.
MAX_DEPTH = 30


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int  # decoded bytes


@dataclass(frozen=True)
class NormalisedEmail:
    """What the pipeline keeps of one email. Ids are without angle brackets; addresses are
    lowercased; `headers` holds every header as (lowercased name, unfolded value with
    encoded words left as sent) for the loop guards and the ledger."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_address: str | None
    from_name: str | None
    reply_to: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None
    text: str
    attachments: tuple[Attachment, ...]
    headers: tuple[tuple[str, str], ...]
    content_type: str
    size: int
    defects: tuple[str, ...] = field(default=())

    def header(self, name: str) -> str | None:
        """The first value of a header, or None when absent."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def header_values(self, name: str) -> tuple[str, ...]:
        wanted = name.lower()
        return tuple(value for key, value in self.headers if key == wanted)


def normalise_email(raw: bytes) -> NormalisedEmail:
    """Parse and normalise one raw message. Never raises."""
    data = bytes(raw)
    mended, notes = mend_header_block(data)
    try:
        return _Normaliser(data, notes=notes).run(email.message_from_bytes(mended))
    except RecursionError:
        # The stdlib parser recurses once per nesting level; hostile nesting exhausts it.
        problem = "the email's parts are nested too deeply to read"
    except Exception as exc:  # a hostile message must become a row with a reason, not a crash
        problem = f"the mail parser failed ({type(exc).__name__})"
    try:
        message = BytesParser().parsebytes(mended, headersonly=True)
        return _Normaliser(data, body="raw", problem=problem, notes=notes).run(message)
    except Exception:  # the very last resort below cannot fail
        return _unreadable(data, problem)


def read_headers(raw: bytes) -> NormalisedEmail:
    """The header fields of `normalise_email` without reading the body: `text` is empty and
    no attachments are listed. The ledger columns, the loop guards and the sender filter need
    no more, and the body is most of the parsing work. Never raises."""
    data = bytes(raw)
    try:
        mended, notes = mend_header_block(data)
        # Only the header block is handed over: in headers-only mode the parser stops at the
        # blank line anyway, but would still copy and decode the rest of the message first.
        message = BytesParser().parsebytes(mended[: header_end(mended)], headersonly=True)
        return _Normaliser(data, body="none", notes=notes).run(message)
    except Exception as exc:  # as in normalise_email: a row with a reason, never a crash
        return _unreadable(data, f"the mail parser failed ({type(exc).__name__})")


class _Normaliser:
    """One pass over a parsed message, collecting body text, attachments and defects."""

    def __init__(
        self,
        raw: bytes,
        *,
        body: Literal["parts", "raw", "none"] = "parts",
        problem: str = "",
        notes: tuple[str, ...] = (),
    ) -> None:
        self.raw = raw
        self.body = body
        self.defects: list[str] = []
        if problem:
            self.defects.append(f"{problem}; its body is shown as raw text")
        self.defects += notes  # what mending the header block left out
        self.attachments: list[Attachment] = []

    def run(self, message: Message) -> NormalisedEmail:
        headers = self._headers(message)
        first = dict(reversed(headers))  # first occurrence of each name wins

        message_id = next(iter(message_ids(first.get("message-id", ""))), None)
        if message_id is None:
            self.defects.append(
                "the email has no Message-ID, so replies to it and re-imports of it cannot be "
                "recognised by id"
            )
        references = message_ids(_raw(message, "references"))[-MAX_REFERENCES:]
        from_header = _raw(message, "from")
        senders = parse_addresses(from_header)
        written = first.get("from", "").strip()
        if not senders and written:
            self.defects.append(f"the From header {written[:80]!r} holds no valid sender address")
        elif not senders:
            self.defects.append("the email has no sender address (From header)")
        reply_to = parse_addresses(_raw(message, "reply-to"))
        date = parse_date(first.get("date", ""))
        if date is None:
            date_text = first.get("date", "").strip()
            if date_text:
                self.defects.append(f"the Date header {date_text[:80]!r} could not be read")
            else:
                self.defects.append("the email has no Date header")
        subject = decode_header_value(first.get("subject", ""))
        if len(subject) > MAX_SUBJECT_CHARS:
            self.defects.append(
                f"the subject is {len(subject)} characters long; "
                f"only the first {MAX_SUBJECT_CHARS} are kept"
            )
            subject = subject[:MAX_SUBJECT_CHARS].rstrip()

        if self.body == "parts":
            body = self._body(message)
        elif self.body == "raw":
            body = self._raw_body(message)
        else:
            body = ""
        if "\x00" in body:
            self.defects.append("NUL characters were removed from the body")
        text = _clean_text(body)
        self._collect_parser_defects(message)

        return NormalisedEmail(
            message_id=message_id,
            in_reply_to=tuple(message_ids(first.get("in-reply-to", ""))),
            references=tuple(references),
            subject=subject,
            from_address=senders[0][1] if senders else None,
            from_name=(senders[0][0] or None) if senders else name_without_address(from_header),
            reply_to=reply_to[0][1] if reply_to else None,
            to=tuple(address for _, address in parse_addresses(_raw(message, "to"))),
            cc=tuple(address for _, address in parse_addresses(_raw(message, "cc"))),
            date=date,
            text=text,
            attachments=tuple(self.attachments),
            headers=headers,
            content_type=parts.content_type(message),
            size=len(self.raw),
            defects=tuple(dict.fromkeys(self.defects)),
        )

    def _headers(self, message: Message) -> tuple[tuple[str, str], ...]:
        pairs: list[tuple[str, str]] = []
        for name, value in message.raw_items():
            if len(pairs) == MAX_HEADERS:
                self.defects.append(f"only the first {MAX_HEADERS} headers were read")
                break
            shown_name = header_text(name).strip()
            text = header_text(value).strip()
            if len(text) > MAX_HEADER_CHARS:
                self.defects.append(
                    f"the {shown_name[:80]} header is {len(text)} characters long; "
                    f"only the first {MAX_HEADER_CHARS} are kept"
                )
                text = text[:MAX_HEADER_CHARS]
            pairs.append((shown_name.lower(), text))
        return tuple(pairs)

    # Body and attachments -------------------------------------------------------------

    def _body(self, message: Message) -> str:
        found: list[tuple[str, str]] = []
        self._walk(message, 0, found)
        texts = [html_to_text(text) if kind == "html" else text for kind, text in found]
        # Clients split one body around inline attachments (Apple Mail): one blank line
        # between the pieces reads as the sender wrote it.
        return "\n\n".join(cleaned for text in texts if (cleaned := _clean_text(text)))

    def _walk(self, part: Message, depth: int, body: list[tuple[str, str]]) -> None:
        """Collect body texts (in order) into `body` and attachments into self."""
        kind = parts.content_type(part)
        if kind in ("message/rfc822", "message/global"):
            self._attach_message(part)
            return
        if part.is_multipart():
            children = [child for child in parts.payload_list(part) if isinstance(child, Message)]
            if depth >= MAX_DEPTH:
                self.defects.append(f"parts nested more than {MAX_DEPTH} levels deep were ignored")
                return
            if kind == "multipart/alternative":
                self._walk_alternatives(children, depth, body)
            elif not kind.startswith("message/"):  # delivery-status blocks: skip
                for child in children:
                    self._walk(child, depth + 1, body)
            return
        if kind.startswith("multipart/"):
            # A multipart without a usable boundary: its text is all there is.
            body.append(("plain", self._text(part)))
        elif parts.is_attachment(part, kind):
            self._attach_leaf(part, kind)
        elif kind in ("text/plain", "text/html"):
            body.append(("plain" if kind == "text/plain" else "html", self._text(part)))

    def _walk_alternatives(
        self, children: list[Message], depth: int, body: list[tuple[str, str]]
    ) -> None:
        # Every alternative is walked (their inline images are attachments); the body is the
        # first one with plain text, else the first with any text (usually the HTML).
        options: list[list[tuple[str, str]]] = []
        for child in children:
            option: list[tuple[str, str]] = []
            self._walk(child, depth + 1, option)
            options.append([(kind, text) for kind, text in option if text.strip()])
        with_plain = [o for o in options if o and all(kind == "plain" for kind, _ in o)]
        with_text = [o for o in options if o]
        if with_plain:
            body.extend(with_plain[0])
        elif with_text:
            body.extend(with_text[0])

    def _text(self, part: Message) -> str:
        data = self._payload(part, parts.content_type(part) + " part")
        try:
            charset = part.get_content_charset()
        except (TypeError, ValueError, LookupError):
            charset = None
        text, problem = decode_bytes(data, charset)
        if "\x00" in text:
            # PostgreSQL text cannot hold NUL; _clean_text drops them.
            self.defects.append("NUL characters were removed from the body")
        if problem:
            self.defects.append(f"{parts.content_type(part)} part: {problem}")
        if parts.content_type(part) == "text/html" and len(text) > MAX_HTML_CHARS:
            self.defects.append(
                f"the HTML body is longer than {MAX_HTML_CHARS} characters; "
                "only the start was converted to text"
            )
        return text

    def _raw_body(self, message: Message) -> str:
        payload = message.get_payload()
        data = (
            payload.encode("utf-8", errors="surrogateescape") if isinstance(payload, str) else b""
        )
        text, _problem = decode_bytes(data, "utf-8")
        return text

    def _attach_leaf(self, part: Message, kind: str) -> None:
        name = parts.filename(part) or parts.default_filename(kind)
        data = self._payload(part, f"attachment {name}")
        self.attachments.append(Attachment(filename=name, content_type=kind, size=len(data)))

    def _payload(self, part: Message, what: str) -> bytes:
        data, damaged = parts.decoded_payload(part)
        if damaged:
            self.defects.append(f"the encoding of {what} is damaged (it may be cut off)")
        return data

    def _attach_message(self, part: Message) -> None:
        """A forwarded or bounced message is listed as one attachment, never read as body."""
        inner = next((p for p in parts.payload_list(part) if isinstance(p, Message)), None)
        filename = parts.filename(part)
        size = 0
        if inner is not None:
            if not filename:
                subject = decode_header_value(inner.get("subject", "") or "")
                filename = parts.safe_filename(subject[:100] + ".eml") if subject else None
            try:
                size = len(inner.as_bytes())
            except Exception:  # re-serialising junk can fail; the size is informative only
                size = 0
        self.attachments.append(
            Attachment(
                filename=filename or "forwarded-message.eml",
                content_type=parts.content_type(part),
                size=size,
            )
        )

    def _collect_parser_defects(self, message: Message) -> None:
        for part in message.walk():
            for defect in getattr(part, "defects", []):
                self.defects.append(parts.describe_defect(defect))


# Helpers -------------------------------------------------------------------------------


def _raw(message: Message, name: str) -> str:
    """A header's untruncated value; for To and Cc every occurrence, joined."""
    values = [str(value) for key, value in message.raw_items() if key.lower() == name]
    if name in ("to", "cc"):
        return ", ".join(values)
    return values[0] if values else ""


def _clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text.lstrip("\n").rstrip()


def _unreadable(raw: bytes, problem: str) -> NormalisedEmail:
    """The last resort: no fields, the raw text as body. Uses nothing that can fail."""
    text = raw.decode("utf-8", errors="replace").replace("\x00", "")
    return NormalisedEmail(
        message_id=None,
        in_reply_to=(),
        references=(),
        subject="",
        from_address=None,
        from_name=None,
        reply_to=None,
        to=(),
        cc=(),
        date=None,
        text=text.strip(),
        attachments=(),
        headers=(),
        content_type="text/plain",
        size=len(raw),
        defects=(f"{problem}; the whole raw email is shown as text",),
    )
