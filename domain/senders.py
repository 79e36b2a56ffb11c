"""The allowed-senders rule: who may turn an email into a ticket.

Entries are exact addresses (`ann@example.com`) or whole domains (`@example.com`),
compared case-insensitively. An empty list lets everyone in.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

# Deliberately loose: the point is to catch typos and pasted display names ("Ann <a@x>"),
# not to re-implement RFC 5321. A domain needs a dot, so "@gmail" is caught as a typo.
_LOCAL_PART = r"[^\s@<>,;:\"()\[\]]+"
_DOMAIN = r"(?:[^\s@<>,;:\"()\[\].]+\.)+[^\s@<>,;:\"()\[\].]+"
_ADDRESS = re.compile(rf"{_LOCAL_PART}@{_DOMAIN}")
_DOMAIN_ENTRY = re.compile(rf"@{_DOMAIN}")


class SenderOutcome(enum.Enum):
    ALLOWED = "allowed"
    REFUSED = "refused"


@dataclass(frozen=True)
class SenderVerdict:
    outcome: SenderOutcome
    reason: str
    matched_entry: str | None = None

    @property
    def allowed(self) -> bool:
        return self.outcome is SenderOutcome.ALLOWED


def parse_allowed_senders(entries: list[str]) -> list[str]:
    """Normalise a user's list: strip, lowercase, drop repeats (first one wins).

    Raises ValueError naming the first entry that is neither an address nor `@domain`.
    """
    normalised: list[str] = []
    for entry in entries:
        value = entry.strip().lower()
        # "*@example.com" is a valid address, but its author meant a wildcard.
        wildcard = value.startswith("*@")
        if wildcard or not (_ADDRESS.fullmatch(value) or _DOMAIN_ENTRY.fullmatch(value)):
            raise ValueError(_why_invalid(entry))
        if value not in normalised:
            normalised.append(value)
    return normalised


def _why_invalid(entry: str) -> str:
    value = entry.strip()
    if not value:
        return "an empty entry is not an email address or a @domain"
    hint = ""
    if value.startswith("*@"):
        hint = f"; to allow a whole domain write {value[1:]!r}"
    elif "@" not in value and "." in value:
        hint = f"; to allow a whole domain write '@{value}'"
    return f"{entry!r} is not an email address (ann@example.com) or a @domain (@example.com){hint}"


def check_sender(from_address: str | None, allowed: list[str]) -> SenderVerdict:
    """May this sender create a ticket?

    An `@domain` entry matches that exact domain only: `@example.com` does not match
    `x@sub.example.com` (a subdomain may belong to someone else) nor `x@badexample.com`.
    A missing sender is always refused, even with an empty list: a ticket needs a requester.
    """
    sender = (from_address or "").strip().lower()
    if not sender:
        return SenderVerdict(SenderOutcome.REFUSED, "the email has no sender address")
    if not allowed:
        return SenderVerdict(
            SenderOutcome.ALLOWED, "the allowed senders list is empty, so everyone is allowed"
        )
    domain = "@" + sender.rsplit("@", 1)[1] if "@" in sender else None
    for raw_entry in allowed:
        entry = raw_entry.strip().lower()
        if entry == sender:
            return SenderVerdict(
                SenderOutcome.ALLOWED, f"sender {sender} is in the allowed senders list", entry
            )
        if domain is not None and entry == domain:
            return SenderVerdict(
                SenderOutcome.ALLOWED,
                f"sender {sender} is in the allowed domain {entry}",
                entry,
            )
    return SenderVerdict(
        SenderOutcome.REFUSED, f"sender {sender} is not in the allowed senders list"
    )
