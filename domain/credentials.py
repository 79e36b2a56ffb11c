"""What a provider needs to act for a mailbox: plain data, stored encrypted (core.crypto) and
never put in a Temporal payload or a log line."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class Credentials:
    """What a provider needs to act for a mailbox. Stored encrypted; never in Temporal payloads."""

    refresh_token: str
    access_token: str | None = None
    expires_at: datetime | None = None  # timezone-aware; a naive one is read as UTC
    scopes: tuple[str, ...] = ()
    # A password provider (IMAP): no tokens (`refresh_token` is ""), the password instead, and
    # the server it opens (host, port, security, username, folder), kept beside it so a provider
    # is built from its credentials alone. The server settings are also stored in the clear
    # (`Mailbox.server`) for the API to show; the password only here.
    password: str | None = None
    server: dict[str, str | int] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        # Client libraries keep expiry as naive UTC (google-auth does): one place turns it
        # aware, so no caller compares naive with aware.
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            object.__setattr__(self, "expires_at", self.expires_at.replace(tzinfo=UTC))
