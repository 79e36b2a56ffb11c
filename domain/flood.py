"""The per-sender flood guard: one sender may open only so many tickets an hour.

A looping autoresponder that slips past the loop guards, or a person pasting the same
complaint fifty times, must not bury the queue. Replies to existing tickets are not limited.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FloodVerdict:
    allowed: bool
    reason: str


def check_flood(sender: str | None, tickets_opened_last_hour: int, limit: int) -> FloodVerdict:
    if sender is None or tickets_opened_last_hour < limit:
        return FloodVerdict(True, "under the per-sender ticket limit")
    return FloodVerdict(
        False,
        f"{sender} already opened {tickets_opened_last_hour} tickets in the past hour "
        f"(the limit is {limit}); further new requests from them are held back as a flood",
    )
