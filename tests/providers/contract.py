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

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from core.settings import Settings
from emulator.server import RunningEmulator
from providers.base import Credentials
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

    def __init__(self, emulator: RunningEmulator, control: httpx.Client) -> None:
        self.emulator = emulator
        self.control = control

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

    def message(self, **fields: Any) -> bytes:
        """A message to this mailbox (`tests.emulator.support.make_message` fields)."""
        fields.setdefault("to", self.address)
        return make_message(**fields)


class EmulatedDriver(ProviderDriver):
    """A provider the emulator plays: mail, revocation and faults through its control API."""

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


DRIVERS: tuple[type[ProviderDriver], ...] = (GmailDriver, OutlookDriver)
