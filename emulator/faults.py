"""Injected failures for provider routes (`POST /_emulator/faults`).

A fault fires with probability `rate` on each matching request, at most
`count` times, after letting the first `skip` matching requests through. The
dice come from one seeded `random.Random`, so a test that makes the same
requests in the same order sees the same failures every run.

Scope: without `route`, a fault hits the provider's API routes (Gmail API or
Graph calls, including each sub-request of a batch) but not its OAuth
endpoints, so a "429 on the next call" fault is not swallowed by a token
refresh. With `route` (an exact request-count key such as `"POST /token"`,
`"POST /batch/gmail/v1"` or `"POST /{tenant}/oauth2/v2.0/token"`) it hits only
that route, OAuth endpoints and the batch itself included.
Control routes are never faulted.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.errors import ControlError

FAULT_PROVIDERS = ("gmail", "outlook", "any")
_FIELDS = {
    "provider", "status", "rate", "count", "retry_after", "delay", "route", "reason", "skip",
}  # fmt: skip
#: Longest accepted `delay`; longer sleeps would only hang a test run.
MAX_DELAY_SECONDS = 120.0


@dataclass
class Fault:
    """One injected failure rule; `remaining` counts down when `count` was given."""

    id: int
    provider: str
    status: int | None
    rate: float
    remaining: int | None
    retry_after: float | None
    delay: float
    route: str | None
    reason: str | None
    skip: int = 0

    def matches(self, provider: str, route: str, *, api: bool) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.provider not in ("any", provider):
            return False
        return route == self.route if self.route is not None else api

    def retry_after_header(self) -> dict[str, str]:
        # Retry-After carries whole seconds; round up so clients never retry early.
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(math.ceil(self.retry_after))}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "status": self.status,
            "rate": self.rate,
            "remaining": self.remaining,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "route": self.route,
            "reason": self.reason,
            "skip": self.skip,
        }


def _number(body: Mapping[str, object], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ControlError(422, "invalid_fault", f"{key} must be a number from {low} to {high}")
    return float(value)


def _integer(body: Mapping[str, object], key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ControlError(422, "invalid_fault", f"{key} must be an integer from {low} to {high}")
    return value


def _text(body: Mapping[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ControlError(422, "invalid_fault", f"{key} must be a non-empty string")
    return value


class FaultBook:
    """The active faults and the seeded dice that decide when they fire."""

    def __init__(self, seed: int = 0) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1
        self._rng = random.Random(seed)

    def reseed(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def add_from_json(self, body: Mapping[str, object]) -> Fault:
        """Validate a `POST /_emulator/faults` body and activate the fault."""
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise ControlError(422, "invalid_fault", f"unknown fault fields: {', '.join(unknown)}")
        provider = body.get("provider")
        if provider not in FAULT_PROVIDERS:
            raise ControlError(
                422, "unknown_provider", "provider must be one of: " + ", ".join(FAULT_PROVIDERS)
            )
        status = _integer(body, "status", 400, 599)
        delay = _number(body, "delay", 0.0, MAX_DELAY_SECONDS) or 0.0
        if status is None and delay == 0.0:
            raise ControlError(
                422, "invalid_fault", "status is required unless the fault only adds a delay"
            )
        rate = _number(body, "rate", 0.0, 1.0)
        fault = Fault(
            id=self._next_id,
            provider=str(provider),
            status=status,
            rate=1.0 if rate is None else rate,
            remaining=_integer(body, "count", 1, 10**9),
            retry_after=_number(body, "retry_after", 0.0, 86400.0),
            delay=delay,
            route=_text(body, "route"),
            reason=_text(body, "reason"),
            skip=_integer(body, "skip", 0, 10**9) or 0,
        )
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def clear(self) -> int:
        cleared = len(self._faults)
        self._faults.clear()
        return cleared

    def active(self) -> list[Fault]:
        return [f for f in self._faults if f.remaining is None or f.remaining > 0]

    def draw(self, provider: str, route: str, *, api: bool) -> Fault | None:
        """The fault that fires for this request, if any (first matching rule wins).

        Every matching rule rolls the dice, even at rate 1, so the sequence of
        random numbers depends only on the requests made, not on the rates.
        """
        for fault in self._faults:
            if not fault.matches(provider, route, api=api):
                continue
            if fault.skip > 0:
                fault.skip -= 1
                continue
            if self._rng.random() < fault.rate:
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None
