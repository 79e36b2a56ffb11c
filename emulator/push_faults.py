"""Injected trouble for push notifications (`POST /_emulator/push/faults`).

A push fault hits the next `count` change notifications of its provider (every one
until cleared when `count` is omitted): `drop` loses them, `duplicate` sends each twice,
`delay` sends each `delay` seconds late. Change notifications are Gmail's Pub/Sub pushes
and Graph's notifications of new mail; Graph's validation handshakes and lifecycle
notifications are never faulted, so a test can tell "the notification was lost" apart
from "the subscription never existed". Faults are decided when the notification is
made, one per push to one endpoint, first matching fault first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.errors import ControlError

PUSH_FAULT_PROVIDERS = ("gmail", "outlook", "any")
PUSH_FAULT_MODES = ("drop", "duplicate", "delay")
_FIELDS = {"provider", "mode", "count", "delay"}
#: Longest accepted `delay`; longer waits would only hang a test run.
MAX_DELAY_SECONDS = 120.0


@dataclass
class PushFault:
    id: int
    provider: str
    mode: str
    #: Notifications still to hit; None: every one until cleared.
    remaining: int | None
    delay: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "mode": self.mode,
            "remaining": self.remaining,
            "delay": self.delay,
        }


def _invalid(message: str) -> ControlError:
    return ControlError(422, "invalid_push_fault", message)


class PushFaultBook:
    def __init__(self) -> None:
        self._faults: list[PushFault] = []
        self._next_id = 1

    def add_from_json(self, body: Mapping[str, object]) -> PushFault:
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise _invalid(f"unknown push fault fields: {', '.join(unknown)}")
        provider, mode = body.get("provider"), body.get("mode")
        if provider not in PUSH_FAULT_PROVIDERS:
            raise _invalid("provider must be one of: " + ", ".join(PUSH_FAULT_PROVIDERS))
        if mode not in PUSH_FAULT_MODES:
            raise _invalid("mode must be one of: " + ", ".join(PUSH_FAULT_MODES))
        count = body.get("count")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise _invalid("count must be a positive integer")
        delay = body.get("delay", 0.0)
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | float)
            or not 0 <= delay <= MAX_DELAY_SECONDS
        ):
            raise _invalid(f"delay must be a number of seconds from 0 to {MAX_DELAY_SECONDS:g}")
        if mode == "delay" and delay <= 0:
            raise _invalid("a delay fault needs a positive delay")
        fault = PushFault(self._next_id, str(provider), str(mode), count, float(delay))
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def active(self) -> list[PushFault]:
        return [f for f in self._faults if f.remaining is None or f.remaining > 0]

    def clear(self) -> None:
        self._faults.clear()

    def draw(self, provider: str) -> PushFault | None:
        """The fault for the next notification of `provider`, counted down; None if none."""
        for fault in self.active():
            if fault.provider in ("any", provider):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None
