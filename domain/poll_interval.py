"""How often a mailbox is polled: the default, the bounds a person may set, and what push
changes (CONTRACT.md §2 and §5)."""

from __future__ import annotations

DEFAULT_SECONDS = 60
MIN_SECONDS = 10
MAX_SECONDS = 24 * 3600


def check(seconds: int) -> int:
    """The interval a person asked for, or ValueError saying what is allowed."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ValueError("must be a whole number of seconds")
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError(f"must be from {MIN_SECONDS} to {MAX_SECONDS} seconds")
    return seconds


def parse(text: str) -> int:
    """`check` for what was typed into a form field."""
    raw = text.strip()
    if not raw.isdigit():
        raise ValueError("must be a whole number of seconds")
    return check(int(raw))
