"""The IMAP sync cursor: an opaque, compact JSON string the workflow stores as is.

Keys:

- `v`: format version (1).
- `u`: the folder's UIDVALIDITY the UIDs below belong to. A server that changes it has
  renumbered the folder: the cursor has expired (`CursorExpired`), and the folder is listed
  again from `s`.
- `l`: the last UID handed out; new mail is `UID > l`.
- `s`: unix seconds: mail the server received (INTERNALDATE) before this is not listed (the
  first sync's `since`; also where a resync after a UIDVALIDITY change starts).
- `e`: present while a resync after an expired cursor is still going (`SyncPage.catching_up`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from providers import cursor_json as fields
from providers.cursor_json import CursorFormatError

__all__ = ["CursorFormatError", "ImapCursor"]

VERSION = 1


@dataclass(frozen=True)
class ImapCursor:
    uid_validity: int
    last_uid: int
    since: int
    expired: bool = False

    def after(self, last_uid: int, *, more: bool) -> ImapCursor:
        """Past `last_uid`; a resync ends once nothing more is waiting."""
        return replace(self, last_uid=last_uid, expired=self.expired and more)

    def encode(self) -> str:
        body: dict[str, Any] = {
            "v": VERSION,
            "u": self.uid_validity,
            "l": self.last_uid,
            "s": self.since,
        }
        if self.expired:
            body["e"] = True
        return fields.dump(body)

    @classmethod
    def decode(cls, text: str) -> ImapCursor:
        return fields.load(text, VERSION, "IMAP", cls._read)

    @classmethod
    def _read(cls, body: dict[str, Any]) -> ImapCursor:
        return cls(
            uid_validity=fields.integer(body["u"]),
            last_uid=fields.integer(body["l"]),
            since=fields.integer(body["s"]),
            expired=body.get("e") is True,
        )
