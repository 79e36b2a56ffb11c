"""`users.history.list` and `users.messages.list`, with Gmail's paging rules.

Page tokens name the last item returned (a history id, or a message's
delivery sequence), not an offset, so mail arriving between pages neither
repeats nor skips items, as with Gmail.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import re
import time
from collections.abc import Callable
from typing import Any

from emulator.gmail_context import GmailContext, GmailError, invalid_argument
from emulator.state import StoredMessage

HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
_DATE = re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})$")
_HIDDEN_LABELS = frozenset({"SPAM", "TRASH"})

Predicate = Callable[[StoredMessage], bool]


def _page_token(kind: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def _read_page_token(ctx: GmailContext, kind: str) -> int | None:
    token = ctx.query.get("pageToken")
    if not token:
        return None
    try:
        decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    found_kind, _, position = decoded.partition(":")
    if found_kind != kind or not position.isdigit():
        raise invalid_argument("Invalid pageToken")
    return int(position)


def list_history(ctx: GmailContext) -> dict[str, Any]:
    raw_start = ctx.query.get("startHistoryId")
    if raw_start is None:
        raise invalid_argument("Required parameter: startHistoryId")
    if not raw_start.isdigit():
        raise invalid_argument(f"Invalid startHistoryId: {raw_start}")
    start = int(raw_start)
    mailbox = ctx.mailbox
    # Too old (expired) is Gmail's documented 404. Ahead of the mailbox can only
    # be a cursor from before an emulator restart: a 404 sends it to full sync too.
    if start < mailbox.history_floor or start > mailbox.history_id:
        raise GmailError(404)
    types = ctx.query.getlist("historyTypes")
    for kind in types:
        if kind not in HISTORY_TYPES:
            raise invalid_argument(f"Invalid value at 'history_types' ({kind})")
    label = ctx.query.get("labelId")
    page_size = ctx.max_results(DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    after = max(start, _read_page_token(ctx, "h") or 0)

    matching = []
    for record in mailbox.history:
        message = mailbox.messages[record.message_id]
        if record.id <= after or (types and "messageAdded" not in types):
            continue
        if label is not None and label not in message.label_ids:
            continue
        matching.append((record, message))

    page = matching[:page_size]
    body: dict[str, Any] = {}
    if page:
        body["history"] = [
            {
                "id": str(record.id),
                "messages": [{"id": message.id, "threadId": message.thread_id}],
                "messagesAdded": [
                    {
                        "message": {
                            "id": message.id,
                            "threadId": message.thread_id,
                            "labelIds": list(message.label_ids),
                        }
                    }
                ],
            }
            for record, message in page
        ]
    if len(matching) > page_size:
        body["nextPageToken"] = _page_token("h", page[-1][0].id)
    body["historyId"] = str(mailbox.history_id)
    return body


def _epoch_seconds(value: str) -> int:
    if value.isdigit():
        return int(value)
    found = _DATE.match(value)
    if not found:
        raise invalid_argument(f"Invalid date in search: {value}")
    year, month, day = (int(g) for g in found.groups())
    # Gmail reads dates in the account's time zone; the emulator's accounts live in UTC.
    return calendar.timegm(time.struct_time((year, month, day, 0, 0, 0, 0, 0, 0)))


def _label_term(name: str) -> Predicate:
    label = name.upper()
    return lambda m: label in m.label_ids


def _date_term(operator: str, boundary_ms: int) -> Predicate:
    if operator == "after":
        return lambda m: m.internal_date_ms >= boundary_ms
    return lambda m: m.internal_date_ms < boundary_ms


def _search(q: str) -> tuple[list[Predicate], bool]:
    """Predicates for Gmail search `q`, and whether spam and trash are searched too."""
    predicates: list[Predicate] = []
    anywhere = False
    for term in q.split():
        operator, _, value = term.lower().partition(":")
        if operator == "in" and value == "anywhere":
            anywhere = True
        elif operator in ("in", "label") and value:
            predicates.append(_label_term(value))
            anywhere = anywhere or value.upper() in _HIDDEN_LABELS
        elif operator == "is" and value == "unread":
            predicates.append(_label_term("UNREAD"))
        elif operator == "is" and value == "read":
            predicates.append(lambda m: "UNREAD" not in m.label_ids)
        elif operator in ("after", "before") and value:
            predicates.append(_date_term(operator, _epoch_seconds(value) * 1000))
        else:
            # Better a loud 400 than silently matching everything.
            raise invalid_argument(
                "The emulator's search supports only in:, label:, is:read, is:unread, "
                f"after: and before: (got {term!r})"
            )
    return predicates, anywhere


def list_messages(ctx: GmailContext) -> dict[str, Any]:
    q = ctx.query.get("q", "")
    if q and ctx.metadata_only:
        raise GmailError(403, "Metadata scope does not support 'q' parameter", "forbidden")
    predicates, anywhere = _search(q)
    predicates.extend(_label_term(label) for label in ctx.query.getlist("labelIds"))
    if ctx.query.get("includeSpamTrash", "false").lower() != "true" and not anywhere:
        predicates.append(lambda m: not _HIDDEN_LABELS & set(m.label_ids))
    page_size = ctx.max_results(DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    before_seq = _read_page_token(ctx, "m")

    newest_first = sorted(ctx.mailbox.messages.values(), key=lambda m: m.seq, reverse=True)
    matching = [m for m in newest_first if all(p(m) for p in predicates)]
    remaining = [m for m in matching if before_seq is None or m.seq < before_seq]
    page = remaining[:page_size]
    body: dict[str, Any] = {}
    if page:
        body["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
    if len(remaining) > page_size:
        body["nextPageToken"] = _page_token("m", page[-1].seq)
    body["resultSizeEstimate"] = len(matching)
    return body
