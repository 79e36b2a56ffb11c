"""Counts of provider requests by route pattern, for `GET /_emulator/requests`.

Counting by pattern (`GET /gmail/v1/users/{user}/history`) rather than by URL
lets tests assert "one history call, no full resync" without knowing ids.
"""

from __future__ import annotations

from collections import Counter


class RequestLog:
    """Provider requests seen since the last reset, keyed `"METHOD /route/pattern"`."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def record(self, key: str) -> None:
        self._counts[key] += 1

    def counts(self) -> dict[str, int]:
        return dict(sorted(self._counts.items()))

    def reset(self) -> None:
        self._counts.clear()
