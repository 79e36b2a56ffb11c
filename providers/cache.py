"""One live provider per mailbox, kept between polls, so an idle poll costs one provider
request and no database write: its access token stays in memory.

Keyed by mailbox and credentials version: new credentials (a Reconnect, a rotated refresh
token) build a new provider and close the stale one. Bounded, least recently used first
out; shared by the worker's activity threads.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable

from core.crypto import Cipher
from core.settings import Settings
from providers.base import AuthExpired, Credentials, MailboxProvider

# A cached provider is its mailbox's credentials and access token (~1.3 KiB for Gmail, ~5 KiB
# for Outlook, whose MSAL cache it holds): the Gmail service and the connections are shared
# per process (providers.gmail.GmailApi, providers.gmail.transport, providers.outlook.graph).
# Large enough that a worker's mailboxes stay cached, so an access token is renewed once an
# hour, not on every poll of a mailbox that fell out of the cache.
MAX_CACHED_PROVIDERS = 10_000

ProviderFactory = Callable[[Settings, str, Credentials], MailboxProvider]


class ProviderCache:
    def __init__(
        self,
        settings: Settings,
        cipher: Callable[[], Cipher],
        factory: ProviderFactory,
        max_size: int = MAX_CACHED_PROVIDERS,
    ) -> None:
        self._settings = settings
        self._cipher = cipher  # called only when credentials must be decrypted
        self._factory = factory
        self._max_size = max_size
        self._providers: OrderedDict[str, tuple[str, MailboxProvider, Credentials]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, mailbox_id: str, provider_name: str, credentials_encrypted: str | None
    ) -> tuple[MailboxProvider, Credentials]:
        """The mailbox's provider and the credentials it was built with."""
        if credentials_encrypted is None:
            raise AuthExpired("the mailbox has no credentials; reconnect it")
        version = hashlib.sha256(credentials_encrypted.encode()).hexdigest()
        with self._lock:
            cached = self._providers.get(mailbox_id)
            if cached is not None and cached[0] == version:
                self._providers.move_to_end(mailbox_id)
                return cached[1], cached[2]
        credentials = self._cipher().decrypt_credentials(credentials_encrypted)
        provider = self._factory(self._settings, provider_name, credentials)
        self.forget(mailbox_id)  # a stale version (new credentials) is closed, not leaked
        with self._lock:
            self._providers[mailbox_id] = (version, provider, credentials)
            evicted = [
                self._providers.popitem(last=False)[1]
                for _ in range(len(self._providers) - self._max_size)
            ]
        for _, old, _ in evicted:
            _close(old)
        return provider, credentials

    def forget(self, mailbox_id: str) -> None:
        """Drop a cached provider and close it."""
        with self._lock:
            cached = self._providers.pop(mailbox_id, None)
        if cached is not None:
            _close(cached[1])

    def __len__(self) -> int:
        return len(self._providers)


def _close(provider: MailboxProvider) -> None:
    # Providers hold no connections between calls today; closing keeps that their business.
    close = getattr(provider, "close", None)
    if close is not None:
        close()
