"""What every provider's sync cursor shares: a compact, versioned JSON object the workflow
stores as an opaque string, read back strictly (a cursor is ours to read, never to trust)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class CursorFormatError(ValueError):
    """The string is not a cursor this provider made (corrupted, or another provider's)."""


def dump(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def load(text: str, version: int, provider: str, read: Callable[[dict[str, Any]], T]) -> T:
    """`read` the cursor's fields; any fault in them is one generic CursorFormatError."""
    try:
        body = json.loads(text)
        if not isinstance(body, dict) or body.get("v") != version:
            raise CursorFormatError(f"not a {provider} cursor of version {version}")
        return read(body)
    except (ValueError, KeyError, TypeError) as error:
        # The text is ours to read but not to echo: keep the message generic.
        raise CursorFormatError(f"unreadable {provider} cursor: {error}") from None


def text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a non-empty string")
    return value


def optional_text(value: object) -> str | None:
    return None if value is None else text(value)


def integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return value
