"""The Gmail sync cursor: an opaque, compact JSON string the workflow stores as is.

Keys (absent when empty, so an idle mailbox's cursor stays short):

- `v`: format version (1).
- `h`: the history id to read `history.list` from (`startHistoryId`).
- `t`: unix seconds when `h` was last known current. If `h` expires, the
  catch-up listing starts a safety margin before this moment.
- `p`: a `history.list` page token; `h` stays the page set's start id until its
  last page hands out a new one.
- `c`: catch-up state `{"a": after_unix_seconds, "p": list page token, "e": bool}`:
  pages come from `messages.list in:inbox after:a` until it is exhausted, then
  history continues from `h` (captured before the listing began). `e` says the
  catch-up was forced by an expired history id (`SyncPage.catching_up`).
- `q`: message ids already listed but not yet returned, because one history
  page held more than `max_messages`; they are fetched before listing further.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

VERSION = 1


class CursorFormatError(ValueError):
    """The string is not a cursor this provider made (corrupted, or another provider's)."""


@dataclass(frozen=True)
class CatchUp:
    after: int
    page_token: str | None = None
    expired: bool = False


@dataclass(frozen=True)
class GmailCursor:
    history_id: str
    advanced_at: int
    page_token: str | None = None
    catch_up: CatchUp | None = None
    pending: tuple[str, ...] = field(default=())

    def with_pending(self, pending: list[str]) -> GmailCursor:
        return replace(self, pending=tuple(pending))

    def encode(self) -> str:
        body: dict[str, Any] = {"v": VERSION, "h": self.history_id, "t": self.advanced_at}
        if self.page_token is not None:
            body["p"] = self.page_token
        if self.catch_up is not None:
            catch_up: dict[str, Any] = {"a": self.catch_up.after}
            if self.catch_up.page_token is not None:
                catch_up["p"] = self.catch_up.page_token
            if self.catch_up.expired:
                catch_up["e"] = True
            body["c"] = catch_up
        if self.pending:
            body["q"] = list(self.pending)
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> GmailCursor:
        try:
            body = json.loads(text)
            if not isinstance(body, dict) or body.get("v") != VERSION:
                raise CursorFormatError("not a Gmail cursor of version 1")
            catch_up = None
            if "c" in body:
                raw = body["c"]
                catch_up = CatchUp(
                    after=_int(raw["a"]),
                    page_token=_optional_str(raw.get("p")),
                    expired=raw.get("e") is True,
                )
            return cls(
                history_id=_str(body["h"]),
                advanced_at=_int(body["t"]),
                page_token=_optional_str(body.get("p")),
                catch_up=catch_up,
                pending=tuple(_str(item) for item in body.get("q", [])),
            )
        except (ValueError, KeyError, TypeError) as error:
            # The text is ours to read but not to echo: keep the message generic.
            raise CursorFormatError(f"unreadable Gmail cursor: {error}") from None


def _str(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a non-empty string")
    return value


def _optional_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return value
