"""Opaque paging cursors: what a page ended on, as text the client hands back unchanged.

URL-safe base64 of the parts joined by a separator (one a part never holds), so a client
never builds one, and one it tampered with is refused with the same 400 wherever it is used.
"""

from __future__ import annotations

import base64
import binascii

from api.errors import ApiError


def encode(*parts: str, sep: str = "|") -> str:
    text = sep.join(parts)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str, parts: int, sep: str = "|") -> list[str]:
    """The `parts` strings `encode` was given, or ApiError 400 `invalid_cursor`."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise invalid() from error
    found = text.split(sep, parts - 1)
    if len(found) != parts:
        raise invalid()
    return found


def invalid() -> ApiError:
    return ApiError(400, "invalid_cursor", "The cursor is not one this API gave out.")
