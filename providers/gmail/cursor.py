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

from dataclasses import dataclass, field, replace
from typing import Any

from providers import cursor_json as fields
from providers.cursor_json import CursorFormatError

__all__ = ["CatchUp", "CursorFormatError", "GmailCursor"]

VERSION = 1


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
        return fields.dump(body)

    @classmethod
    def decode(cls, text: str) -> GmailCursor:
        return fields.load(text, VERSION, "Gmail", cls._read)

    @classmethod
    def _read(cls, body: dict[str, Any]) -> GmailCursor:
        catch_up = None
        if "c" in body:
            raw = body["c"]
            catch_up = CatchUp(
                after=fields.integer(raw["a"]),
                page_token=fields.optional_text(raw.get("p")),
                expired=raw.get("e") is True,
            )
        return cls(
            history_id=fields.text(body["h"]),
            advanced_at=fields.integer(body["t"]),
            page_token=fields.optional_text(body.get("p")),
            catch_up=catch_up,
            pending=tuple(fields.text(item) for item in body.get("q", [])),
        )
