"""Provider requests, for `GET /_emulator/requests` and `GET /_emulator/requests/log`.

Counting by pattern (`GET /gmail/v1/users/{user}/history`) rather than by URL
lets tests assert "one history call, no full resync" without knowing ids. The
log says, per request, which mailbox its token signed in as and which client
connection carried it: what a test needs to prove that clients sharing
connections never share credentials, seen from the provider's side.

Pushes go the other way (the emulator calls the product), so they are kept apart:
`count_push` tallies each push's end (`GET /_emulator/requests` -> `pushes`) and
`log_push` keeps every attempt (`GET /_emulator/push/log`); see `emulator.push_delivery`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


class RequestLog:
    """Provider requests seen since the last reset, keyed `"METHOD /route/pattern"`."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._entries: list[dict[str, Any]] = []
        self._pushes: Counter[str] = Counter()
        self._push_entries: list[dict[str, Any]] = []

    def record(self, key: str) -> None:
        self._counts[key] += 1

    def log(self, key: str, *, account: str | None, peer: str | None) -> None:
        """`account`: the mailbox the request's token belongs to (None if none was checked);
        `peer`: the client's "host:port" (None for a part of a batch)."""
        self._entries.append({"route": key, "account": account, "peer": peer})

    def count_push(self, provider: str, kind: str, outcome: str) -> None:
        self._pushes[f"{provider} {kind} {outcome}"] += 1

    def log_push(self, entry: dict[str, Any]) -> None:
        self._push_entries.append(entry)

    def push_counts(self) -> dict[str, int]:
        return dict(sorted(self._pushes.items()))

    def push_entries(self) -> list[dict[str, Any]]:
        return list(self._push_entries)

    def counts(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)

    def reset(self) -> None:
        self._counts.clear()
        self._entries.clear()
        self._pushes.clear()
        self._push_entries.clear()
