"""Drivers for the provider contract suite (tests/providers/test_contract.py).

The suite is written once against `ProviderDriver`; each mail provider brings a small
driver that knows how to set up its world: create a mailbox and get credentials, deliver a
raw message, make a stored cursor expire, revoke access, and make the next request answer
429 with a Retry-After or a 5xx. Adding a provider means writing its driver here and adding
it to `DRIVERS`; `test_every_provider_has_a_driver` fails until then.

The drivers below speak the emulator's control API; the provider under test speaks the
provider's own API through its real client library, as in production.
"""

from __future__ import annotations

import imaplib
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import httpx
import pytest

from core.settings import Settings
from emulator.dovecot import Dovecot
from emulator.server import RunningEmulator
from providers.base import Credentials
from providers.imap.client import message_key
from tests.emulator.support import make_message
from tests.providers.conftest import OLIVE, connect_outlook, outlook_settings
from tests.providers.support import ANN, connect, provider_settings


@dataclass(frozen=True)
class Delivered:
    """A message as the provider's own API names it once it is in the inbox."""

    message_id: str
    thread_id: str | None


class ProviderDriver(ABC):
    """One provider's world, as the contract suite needs to drive it."""

    #: The provider's name in `providers.registry`.
    name: ClassVar[str]
    #: The mailbox the suite connects and delivers to.
    address: ClassVar[str]
    #: Whether a message may come twice where a listing overlaps incremental sync (the
    #: first sync, a catch-up after an expired cursor). True only where the provider's
    #: module doc tells its caller so, whose ledger then absorbs it (the suite checks).
    listing_may_repeat: ClassVar[bool]
    #: Whether the provider names threads (IMAP has no thread ids: ingest threads by headers).
    has_thread_ids: ClassVar[bool] = True
    #: Whether a throttling answer says when to come back (HTTP's Retry-After; IMAP has none).
    tells_retry_after: ClassVar[bool] = True

    @classmethod
    def create(cls, request: pytest.FixtureRequest) -> Self:
        """The driver, with the fixtures its world needs."""
        raise NotImplementedError

    @property
    @abstractmethod
    def settings(self) -> Settings:
        """Settings that point the provider at this driver's world."""

    @abstractmethod
    def connect(self) -> Credentials:
        """Create the mailbox at `address` and consent as its user: its credentials."""

    @abstractmethod
    def deliver(self, raw: bytes) -> Delivered:
        """File `raw` (RFC 822 bytes) into the inbox as new mail."""

    @abstractmethod
    def expire_cursor(self) -> None:
        """Every cursor handed out so far stops working, as an old one does at the provider."""

    @abstractmethod
    def revoke_access(self) -> None:
        """The user withdraws the app's access: every token of the mailbox dies."""

    @abstractmethod
    def throttle_next_request(self, retry_after: int) -> None:
        """The provider's next API request answers 429 with `Retry-After: retry_after`."""

    @abstractmethod
    def fail_next_request(self, status: int) -> None:
        """The provider's next API request answers `status` (a 5xx)."""

    def end_faults(self) -> None:
        """A fault set up above stops (the emulator's faults stop by themselves after one
        request; a real server's last until they are ended)."""
        return None

    def message(self, **fields: Any) -> bytes:
        """A message to this mailbox (`tests.emulator.support.make_message` fields)."""
        fields.setdefault("to", self.address)
        return make_message(**fields)


class EmulatedDriver(ProviderDriver):
    """A provider the emulator plays: mail, revocation and faults through its control API."""

    def __init__(self, emulator: RunningEmulator, control: httpx.Client) -> None:
        self.emulator = emulator
        self.control = control

    @classmethod
    def create(cls, request: pytest.FixtureRequest) -> Self:
        return cls(request.getfixturevalue("emulator"), request.getfixturevalue("control"))

    def create_mailbox(self) -> None:
        answer = self.control.post(
            "/_emulator/mailboxes", json={"provider": self.name, "address": self.address}
        )
        assert answer.status_code == 201, answer.text

    def deliver(self, raw: bytes) -> Delivered:
        answer = self.control.post(
            f"/_emulator/mailboxes/{self.address}/messages",
            content=raw,
            headers={"Content-Type": "message/rfc822"},
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        # The control API answers the ids the provider's own API shows for the message.
        return Delivered(str(body["id"]), body["thread_id"])

    def revoke_access(self) -> None:
        answer = self.control.post(f"/_emulator/mailboxes/{self.address}/revoke")
        assert answer.status_code == 200, answer.text
        assert answer.json()["revoked_tokens"] >= 1

    def throttle_next_request(self, retry_after: int) -> None:
        self._fault(status=429, retry_after=retry_after, count=1)

    def fail_next_request(self, status: int) -> None:
        self._fault(status=status, count=1)

    def _fault(self, **fault: Any) -> None:
        # Without a route a fault hits API requests only, not a token refresh.
        answer = self.control.post("/_emulator/faults", json={"provider": self.name, **fault})
        assert answer.status_code == 201, answer.text


class GmailDriver(EmulatedDriver):
    name = "gmail"
    address = ANN
    listing_may_repeat = True

    @property
    def settings(self) -> Settings:
        return provider_settings(self.emulator)

    def connect(self) -> Credentials:
        self.create_mailbox()
        return connect(self.control, self.settings, login_hint=self.address).credentials

    def expire_cursor(self) -> None:
        # Every startHistoryId up to now answers 404, as Gmail does for week-old ids.
        answer = self.control.post(f"/_emulator/mailboxes/{self.address}/expire-history")
        assert answer.status_code == 200, answer.text


class OutlookDriver(EmulatedDriver):
    name = "outlook"
    address = OLIVE
    listing_may_repeat = True

    @property
    def settings(self) -> Settings:
        return outlook_settings(self.emulator)

    def connect(self) -> Credentials:
        self.create_mailbox()
        return connect_outlook(self.control, self.settings, login_hint=self.address).credentials

    def expire_cursor(self) -> None:
        # Delta and skip tokens answer 410 Gone, the usual way Graph asks for a resync.
        answer = self.control.post(f"/_emulator/mailboxes/{self.address}/expire-delta-tokens")
        assert answer.status_code == 200, answer.text


class ImapDriver(ProviderDriver):
    """A real Dovecot (emulator/dovecot.py), a fresh account per test, reached over implicit
    TLS verified against the server's own CA file, as a self-hosted server is."""

    name = "imap"
    address = "support@imap.example"
    listing_may_repeat = True  # a renumbered folder (UIDVALIDITY) is listed again
    has_thread_ids = False
    tells_retry_after = False

    def __init__(self, dovecot: Dovecot) -> None:
        self.dovecot = dovecot
        self.user = f"contract-{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(12)
        self._hogs: list[imaplib.IMAP4] = []
        self._stopped = False

    @classmethod
    def create(cls, request: pytest.FixtureRequest) -> Self:
        driver = cls(request.getfixturevalue("dovecot"))
        request.addfinalizer(driver.end_faults)
        return driver

    @property
    def settings(self) -> Settings:
        return Settings(imap_ca_file=self.dovecot.ca_file, imap_timeout_seconds=5)

    def connect(self) -> Credentials:
        self.dovecot.add_user(self.user, self.password)
        server: dict[str, str | int] = {
            "host": "localhost",  # the name on the certificate
            "port": self.dovecot.tls_port,
            "security": "tls",
            "username": self.user,
            "folder": "INBOX",
        }
        return Credentials(refresh_token="", password=self.password, server=server)

    def deliver(self, raw: bytes) -> Delivered:
        self.dovecot.append(self.user, raw)
        # The provider's id for a message is its Message-ID (a hash of it where it has none).
        return Delivered(message_key(raw, raw), None)

    def expire_cursor(self) -> None:
        # The server renumbers the folder, as after a restore or a migration.
        self.dovecot.set_uid_validity(self.user, self.dovecot.uid_validity(self.user) + 1000)

    def revoke_access(self) -> None:
        # The password changes on the server: the stored one no longer logs in.
        self.dovecot.set_password(self.user, secrets.token_urlsafe(12))

    def throttle_next_request(self, retry_after: int) -> None:
        # Every connection the server allows this user from here is taken.
        while True:
            conn = imaplib.IMAP4(self.dovecot.host, self.dovecot.port)
            try:
                conn.login(self.user, self.password)
            except imaplib.IMAP4.error:
                conn.shutdown()
                return
            self._hogs.append(conn)

    def fail_next_request(self, status: int) -> None:
        # The server goes away (an IMAP server has no 5xx: it is down or drops the line).
        self.dovecot.stop()
        self._stopped = True

    def end_faults(self) -> None:
        for conn in self._hogs:
            conn.logout()
        self._hogs.clear()
        if self._stopped:
            self.dovecot.start()
            self._stopped = False


DRIVERS: tuple[type[ProviderDriver], ...] = (GmailDriver, OutlookDriver, ImapDriver)
