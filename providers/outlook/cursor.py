"""The Outlook sync cursor: an opaque, compact JSON string the workflow stores as is.

Its heart is Graph's own link: the `@odata.deltaLink` of the last finished delta
round, or the `@odata.nextLink` of the round in progress, followed verbatim.
Keys (absent when empty or false, so an idle mailbox's cursor stays short):

- `v`: format version (1).
- `l`: the URL to GET next: a Graph link, or the provider's own first query of a
  round (`initial_cursor`, or a resync after an expired token).
- `n`: true while a round is in progress (`l` is a nextLink or a first query): the
  page that follows is not the last, so `SyncPage.more` stays true until it is.
- `f`: unix seconds, the *floor*: inbox mail received before it has all been seen.
  A resync (Graph answered 410 or `syncStateNotFound`) lists inbox mail received
  from here. It starts at `since` and then follows each finished round's start,
  less a safety margin; it never goes down.
- `s`: unix seconds when the round in progress began.
- `r`: true while the round in progress is a resync (its pages are `catching_up`).
- `q`: messages listed but not yet returned (a page held more than `max_messages`),
  as `[id, conversationId, receivedDateTime]`; fetched before listing further.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from providers import cursor_json as fields
from providers.cursor_json import CursorFormatError

__all__ = ["CursorFormatError", "Listed", "OutlookCursor"]

VERSION = 1


@dataclass(frozen=True)
class Listed:
    """A message a delta page named, before its MIME is fetched."""

    id: str
    conversation_id: str | None
    received: str | None


@dataclass(frozen=True)
class OutlookCursor:
    link: str
    floor: int
    in_round: bool = False
    round_started: int | None = None
    resync: bool = False
    pending: tuple[Listed, ...] = field(default=())

    def with_pending(self, pending: list[Listed]) -> OutlookCursor:
        return replace(self, pending=tuple(pending))

    def encode(self) -> str:
        body: dict[str, Any] = {"v": VERSION, "l": self.link, "f": self.floor}
        if self.in_round:
            body["n"] = True
        if self.round_started is not None:
            body["s"] = self.round_started
        if self.resync:
            body["r"] = True
        if self.pending:
            body["q"] = [[m.id, m.conversation_id, m.received] for m in self.pending]
        return fields.dump(body)

    @classmethod
    def decode(cls, text: str) -> OutlookCursor:
        return fields.load(text, VERSION, "Outlook", cls._read)

    @classmethod
    def _read(cls, body: dict[str, Any]) -> OutlookCursor:
        started = body.get("s")
        return cls(
            link=fields.text(body["l"]),
            floor=fields.integer(body["f"]),
            in_round=body.get("n") is True,
            round_started=None if started is None else fields.integer(started),
            resync=body.get("r") is True,
            pending=tuple(_listed(item) for item in body.get("q", [])),
        )


def _listed(item: object) -> Listed:
    if not isinstance(item, list) or len(item) != 3:
        raise TypeError("expected [id, conversationId, receivedDateTime]")
    return Listed(
        fields.text(item[0]), fields.optional_text(item[1]), fields.optional_text(item[2])
    )
