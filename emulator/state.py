"""The emulator's whole world, in memory: mailboxes, their mail, history and tokens.

Mailboxes are provider-neutral on purpose. A mailbox records its provider, and
each provider module renders the same stored messages in its own shapes (the
Gmail module as `Message` resources; the Graph modules as `message`
resources), so delivery, threading, tokens, faults and request counts are
shared by both sides.

Thread safety: the app mutates this from its event loop. Code outside the loop
(a pytest fixture resetting between tests) may call it only while no requests
are in flight.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import TYPE_CHECKING, Literal, get_args

from emulator.faults import FaultBook
from emulator.request_log import RequestLog
from emulator.tokens import (
    DEFAULT_GOOGLE_CLIENT_ID,
    DEFAULT_GOOGLE_CLIENT_SECRET,
    DEFAULT_MICROSOFT_CLIENT_ID,
    DEFAULT_MICROSOFT_CLIENT_SECRET,
    OAuthClient,
    TokenStore,
)

if TYPE_CHECKING:
    from emulator.push import PushHub

Provider = Literal["gmail", "outlook"]
KNOWN_PROVIDERS: tuple[str, ...] = get_args(Provider)
Folder = Literal["inbox", "sent"]
FOLDERS: tuple[str, ...] = get_args(Folder)
#: Gmail's labels for new mail in each folder.
FOLDER_LABELS: dict[str, tuple[str, ...]] = {"inbox": ("INBOX", "UNREAD"), "sent": ("SENT",)}
#: Google's access-token lifetime; `expires_in` in token responses.
DEFAULT_ACCESS_TOKEN_LIFETIME = 3599

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_MSG_ID = re.compile(r"<[^<>\s]+>")


class UnknownProviderError(ValueError):
    """The provider is neither gmail nor outlook."""


class ProviderConflictError(ValueError):
    """The address already belongs to a mailbox of the other provider."""


class InvalidAddressError(ValueError):
    """The address does not look like an email address."""


@dataclass(frozen=True)
class StoredMessage:
    """One delivered message, kept as the raw RFC 822 bytes it arrived as."""

    id: str
    thread_id: str
    raw: bytes
    folder: str
    label_ids: tuple[str, ...]
    history_id: int
    internal_date_ms: int
    #: Delivery order within the mailbox; list pages and sorting use it.
    seq: int

    def parsed(self) -> Message:
        # compat32 keeps header values as written, which is what Gmail echoes.
        return BytesParser(policy=compat32).parsebytes(self.raw)


@dataclass(frozen=True)
class RemovedMessage:
    """A message deleted from its folder; Graph delta reports it as `@removed`."""

    message_id: str
    folder: str
    #: The change sequence of the removal (same counter as `StoredMessage.seq`).
    seq: int


@dataclass(frozen=True)
class HistoryRecord:
    """A `messageAdded` change; the only kind a read-only world produces."""

    id: int
    message_id: str


@dataclass
class Mailbox:
    provider: str
    address: str
    #: The account's stable OpenID subject (`sub`).
    subject_id: str
    #: The current history id; every change takes the next integer.
    history_id: int
    #: The oldest `startHistoryId` still accepted; older ones answer 404.
    history_floor: int
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    history: list[HistoryRecord] = field(default_factory=list)
    #: RFC 822 Message-ID -> thread id, to thread replies like Gmail does.
    thread_index: dict[str, str] = field(default_factory=dict)
    #: When on, every refresh grant returns a new refresh token and kills the old one.
    rotate_refresh_tokens: bool = False
    #: Messages deleted so far, oldest first (Graph delta's `@removed` rows).
    removed: list[RemovedMessage] = field(default_factory=list)
    #: Graph delta tokens carry this; a new value expires every token handed out before.
    delta_epoch: str = field(default_factory=lambda: secrets.token_hex(6))
    #: How an expired delta token answers: 410 Gone, or 400 `syncStateNotFound`.
    delta_expired_status: int = 410

    def thread(self, thread_id: str) -> list[StoredMessage]:
        return [m for m in self.messages.values() if m.thread_id == thread_id]

    def thread_count(self) -> int:
        return len({m.thread_id for m in self.messages.values()})

    def expire_history(self) -> None:
        """Forget all history so far, as Gmail does after about a week."""
        self.history.clear()
        self.history_floor = self.history_id

    def expire_delta_tokens(self, status: int = 410) -> None:
        """Every Graph delta token handed out so far stops working and answers `status`."""
        self.delta_epoch = secrets.token_hex(6)
        self.delta_expired_status = status


def normalize_address(address: str) -> str:
    cleaned = address.strip().lower()
    if not _ADDRESS.match(cleaned):
        raise InvalidAddressError(f"not an email address: {address!r}")
    return cleaned


def _referenced_ids(headers: Message) -> list[str]:
    """Message-IDs this message points at, most specific first.

    Its own Message-ID comes first so a duplicate delivery joins its
    original's thread; then In-Reply-To; then References, newest first.
    """
    ids: list[str] = []
    for name in ("Message-ID", "In-Reply-To"):
        ids.extend(_MSG_ID.findall(str(headers.get(name, ""))))
    ids.extend(reversed(_MSG_ID.findall(str(headers.get("References", "")))))
    return ids


class EmulatorState:
    """Mailboxes, tokens, faults and request counts of one emulator instance."""

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        access_token_lifetime: int = DEFAULT_ACCESS_TOKEN_LIFETIME,
        clients: Iterable[OAuthClient] | None = None,
    ) -> None:
        self.clock = clock
        self._initial_lifetime = access_token_lifetime
        self._initial_clients = (
            list(clients)
            if clients is not None
            else [
                OAuthClient("gmail", DEFAULT_GOOGLE_CLIENT_ID, DEFAULT_GOOGLE_CLIENT_SECRET),
                OAuthClient(
                    "outlook", DEFAULT_MICROSOFT_CLIENT_ID, DEFAULT_MICROSOFT_CLIENT_SECRET
                ),
            ]
        )
        self.requests = RequestLog()
        self.faults = FaultBook(seed)
        # Imported here: the push modules read this module's types (Mailbox, ...).
        from emulator.push import PushHub

        #: Gmail watches, Pub/Sub, Graph subscriptions and the pushes they send.
        self.push: PushHub = PushHub(clock, self.requests)
        self.reset(seed=seed)

    def reset(self, *, seed: int = 0) -> None:
        """Back to a fresh instance: no mailboxes, tokens, faults, counts or push set-up
        (pushes still being sent are dropped; the push signing key stays)."""
        self.access_token_lifetime = self._initial_lifetime
        self.mailboxes: dict[str, Mailbox] = {}
        self.tokens = TokenStore(self.clock, self._initial_clients)
        self.requests.reset()
        self.faults.clear()
        self.faults.reseed(seed)
        self.push.reset()
        self._last_message_id = 0
        self._seq = 0

    # -- mailboxes -------------------------------------------------------------

    def ensure_mailbox(self, provider: str, address: str) -> tuple[Mailbox, bool]:
        """The mailbox for `address`, created if missing; `True` when created."""
        if provider not in KNOWN_PROVIDERS:
            raise UnknownProviderError(provider)
        address = normalize_address(address)
        existing = self.mailboxes.get(address)
        if existing is not None:
            if existing.provider != provider:
                raise ProviderConflictError(
                    f"{address} is already a {existing.provider} mailbox, not {provider}"
                )
            return existing, False
        # Start history at the clock so a restarted emulator never re-issues
        # ids a client stored from the previous run (it gets a 404 instead).
        start = int(self.clock())
        mailbox = Mailbox(
            provider=provider,
            address=address,
            subject_id=str(int(hashlib.sha256(address.encode()).hexdigest(), 16))[:21],
            history_id=start,
            history_floor=start,
        )
        self.mailboxes[address] = mailbox
        return mailbox, True

    def mailbox(self, address: str) -> Mailbox | None:
        return self.mailboxes.get(address.strip().lower())

    @property
    def last_seq(self) -> int:
        """The sequence number of the latest change (delivery or removal) in any mailbox."""
        return self._seq

    # -- mail ------------------------------------------------------------------

    def _new_message_id(self) -> str:
        # Gmail ids are roughly the arrival time in ms shifted left by 20 bits,
        # in hex; keep that shape and keep them strictly increasing.
        candidate = int(self.clock() * 1000) << 20
        self._last_message_id = max(self._last_message_id + 1, candidate)
        return f"{self._last_message_id:x}"

    def deliver(self, mailbox: Mailbox, raw: bytes, folder: str) -> StoredMessage:
        """File `raw` into `folder` as new mail: a new message and a history record, and
        the push notifications the mailbox's watch or subscriptions send for it."""
        if folder not in FOLDERS:
            raise ValueError(f"unknown folder {folder!r}")
        headers = BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
        message_id = self._new_message_id()
        referenced = _referenced_ids(headers)
        thread_id = next(
            (mailbox.thread_index[r] for r in referenced if r in mailbox.thread_index),
            message_id,
        )
        mailbox.history_id += 1
        self._seq += 1
        stored = StoredMessage(
            id=message_id,
            thread_id=thread_id,
            raw=raw,
            folder=folder,
            label_ids=FOLDER_LABELS[folder],
            history_id=mailbox.history_id,
            internal_date_ms=int(self.clock() * 1000),
            seq=self._seq,
        )
        mailbox.messages[message_id] = stored
        mailbox.history.append(HistoryRecord(id=mailbox.history_id, message_id=message_id))
        for own_id in _MSG_ID.findall(str(headers.get("Message-ID", ""))):
            mailbox.thread_index.setdefault(own_id, thread_id)
        self.push.mail_arrived(mailbox, stored)
        return stored

    def remove_message(self, mailbox: Mailbox, message_id: str) -> StoredMessage | None:
        """Delete a message, as the user deleting it would; None if there is no such message.

        Graph delta reports the removal. Gmail's history only records additions, so the
        message simply drops out of it (and of listings), as if it had never arrived.
        """
        stored = mailbox.messages.pop(message_id, None)
        if stored is None:
            return None
        mailbox.history = [r for r in mailbox.history if r.message_id != message_id]
        self._seq += 1
        mailbox.removed.append(RemovedMessage(message_id, stored.folder, self._seq))
        return stored
