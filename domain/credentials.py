"""What a provider needs to act for a mailbox: plain data, stored encrypted (core.crypto) and
never put in a Temporal payload or a log line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Credentials:
    """What a provider needs to act for a mailbox. Stored encrypted; never in Temporal payloads."""

    refresh_token: str
    access_token: str | None = None
    expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
