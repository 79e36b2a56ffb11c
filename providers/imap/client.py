"""The IMAP provider: read-only for real.

Each poll opens one connection (no more than one per mailbox in a process: a lock), logs in
and opens the folder with `EXAMINE`, so nothing it does can change a flag; messages are read
with `BODY.PEEK[]` only, and nothing is stored, copied, moved or expunged. The connection is
closed when the page is read: an idle mailbox holds no connection for fetching (IDLE, where the
server has it, is watched elsewhere).

Cursor (providers.imap.cursor): `(UIDVALIDITY, last UID)`. New mail is `UID > last`, read in
bounded pages: sizes and dates first (`RFC822.SIZE`, `INTERNALDATE`), so an oversized message
is handed over as its header alone with its size (the filters skip it as too large) and never
downloaded; then the bodies, in chunks.

A message's provider id is its Message-ID (a content hash where it has none), not its UID: a
server that changes UIDVALIDITY has renumbered the folder, the cursor expires, the folder is
listed again from the cursor's `since`, and every message already seen comes again with the
same id, which the caller's ledger (unique on provider message id) absorbs. Nothing is lost:
the listing covers everything the old cursor could have missed.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import imaplib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from core.settings import Settings
from domain.filters import MAX_EMAIL_BYTES
from providers.base import AuthExpired, BaseProvider, Credentials, RawMessage, SyncPage
from providers.imap.cursor import ImapCursor
from providers.imap.errors import classify
from providers.imap.server import ImapServer, StepFailed, opened

# One page's bodies are held in memory and stored in one transaction: at most this many bytes
# (and at least one message, whatever its size up to the limit).
PAGE_BYTES = 16 * 1024 * 1024
# Bodies are fetched this many at a time within a page.
FETCH_CHUNK = 25
# Message-IDs longer than this are hashed to fit the ledger's provider id column.
MAX_ID_LENGTH = 200
_META = ["RFC822.SIZE", "INTERNALDATE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
_META_HEADER = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def close_shared_connections() -> None:
    """IMAP shares no connections between mailboxes: nothing to close."""


class ImapProvider(BaseProvider):
    def __init__(self, settings: Settings, credentials: Credentials) -> None:
        if credentials.server is None or not credentials.password:
            raise AuthExpired("no IMAP login is stored for this mailbox; reconnect it")
        self._settings = settings
        self._credentials = credentials
        self._server = ImapServer.from_dict(credentials.server)
        self._password = credentials.password
        # One fetching connection per mailbox: this provider is the mailbox's in this process.
        self._lock = threading.Lock()

    def credentials(self) -> Credentials:
        return self._credentials

    def initial_cursor(self, since: datetime) -> str:
        with self._session() as (client, uid_validity, uid_next):
            last = _first_uid_since(client, since, uid_next) - 1
        return ImapCursor(uid_validity, last, int(since.timestamp())).encode()

    def fetch_page(self, cursor: str, max_messages: int) -> SyncPage:
        current = ImapCursor.decode(cursor)
        with self._session() as (client, uid_validity, uid_next):
            if uid_validity != current.uid_validity:
                # Renumbered (CursorExpired): list the folder again from `since`.
                since = datetime.fromtimestamp(current.since, UTC)
                last = _first_uid_since(client, since, uid_next) - 1
                current = ImapCursor(uid_validity, last, current.since, expired=True)
            return _page(client, current, max(1, max_messages))

    @contextmanager
    def _session(self) -> Iterator[tuple[Any, int, int]]:
        with self._lock:
            try:
                with opened(self._settings, self._server, self._password) as (client, status):
                    yield client, int(status[b"UIDVALIDITY"]), int(status.get(b"UIDNEXT", 1))
            except (StepFailed, OSError, imaplib.IMAP4.error) as error:
                # OSError covers timeouts, resets and TLS errors; IMAP4.error a NO, BAD or BYE.
                raise classify(error) from None


def _first_uid_since(client: Any, since: datetime, uid_next: int) -> int:
    """The lowest UID of mail received since the day before `since` (SEARCH SINCE counts
    whole days, in the server's time zone); the exact moment is checked per message."""
    day = (since.astimezone(UTC) - timedelta(days=1)).date()
    uids = client.search(["SINCE", day])
    return min(uids) if uids else max(uid_next, 1)


def _page(client: Any, cursor: ImapCursor, max_messages: int) -> SyncPage:
    waiting = sorted(
        u for u in client.search(["UID", f"{cursor.last_uid + 1}:*"]) if u > cursor.last_uid
    )
    window = waiting[:max_messages]
    if not window:
        return SyncPage(
            [], cursor.after(cursor.last_uid, more=False).encode(), False, cursor.expired
        )
    meta = client.fetch(window, _META)
    taken: list[int] = []
    budget = 0
    for uid in window:
        info = meta.get(uid)
        length = int(info[b"RFC822.SIZE"]) if info else 0
        cost = length if length <= MAX_EMAIL_BYTES else 0
        if taken and budget + cost > PAGE_BYTES:
            break
        taken.append(uid)
        budget += cost
    since = datetime.fromtimestamp(cursor.since, UTC)
    # Gone since the search (expunged by another client), or older than `since`: passed over.
    wanted = [u for u in taken if u in meta and _received(meta[u]) >= since]
    small = [u for u in wanted if int(meta[u][b"RFC822.SIZE"]) <= MAX_EMAIL_BYTES]
    bodies: dict[int, bytes] = {}
    for start in range(0, len(small), FETCH_CHUNK):
        chunk = small[start : start + FETCH_CHUNK]
        for uid, data in client.fetch(chunk, ["BODY.PEEK[]"]).items():
            if b"BODY[]" in data:
                bodies[uid] = bytes(data[b"BODY[]"])
    oversized = [u for u in wanted if u not in set(small)]
    heads: dict[int, bytes] = {}
    if oversized:
        for uid, data in client.fetch(oversized, ["BODY.PEEK[HEADER]"]).items():
            heads[uid] = bytes(data.get(b"BODY[HEADER]", b""))
    messages = []
    for uid in wanted:
        info = meta[uid]
        if uid in bodies:
            raw, size = bodies[uid], None
        elif uid in heads:
            raw, size = heads[uid], int(info[b"RFC822.SIZE"])
        else:
            continue  # expunged between the two fetches
        messages.append(
            RawMessage(
                provider_message_id=message_key(bytes(info.get(_META_HEADER, b"")), raw),
                provider_thread_id=None,
                raw=raw,
                received_at=_received(info),
                size=size,
            )
        )
    more = len(taken) < len(waiting)
    next_cursor = cursor.after(taken[-1], more=more)
    return SyncPage(messages, next_cursor.encode(), more, catching_up=cursor.expired)


def message_key(header: bytes, raw: bytes) -> str:
    """The id a message keeps across a renumbered folder: its Message-ID, or a hash of its
    bytes where it has none (for an oversized message, of its header)."""
    found = _HEADERS.parsebytes(header).get("Message-ID")
    message_id = str(found).strip() if found is not None else ""
    if message_id:
        if len(message_id) <= MAX_ID_LENGTH:
            return message_id
        return "mid-sha256:" + hashlib.sha256(message_id.encode()).hexdigest()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _received(info: dict[bytes, Any]) -> datetime:
    stamp = info.get(b"INTERNALDATE")
    if not isinstance(stamp, datetime):
        return datetime.now(UTC)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)
