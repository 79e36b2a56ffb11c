"""Provider requests, for `GET /_emulator/requests` and `GET /_emulator/requests/log`.

Counting by pattern (`GET /gmail/v1/users/{user}/history`) rather than by URL
lets tests assert "one history call, no full resync" without knowing ids. The
log says, per request, which mailbox its token signed in as and which client
connection carried it: what a test needs to prove that clients sharing
connections never share credentials, seen from the provider's side.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


class RequestLog:
    """Provider requests seen since the last reset, keyed `"METHOD /route/pattern"`."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._entries: list[dict[str, Any]] = []

    def record(self, key: str) -> None:
        self._counts[key] += 1

    def log(self, key: str, *, account: str | None, peer: str | None) -> None:
        """`account`: the mailbox the request's token belongs to (None if none was checked);
        `peer`: the client's "host:port" (None for a part of a batch)."""
        self._entries.append({"route": key, "account": account, "peer": peer})

    def counts(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)

    def reset(self) -> None:
        self._counts.clear()
        self._entries.clear()
