"""What the Google and Microsoft sign-in flows share."""

from __future__ import annotations

from typing import Any

import httpx


def json_object(answer: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object, or {} when it is not one (an error page, say)."""
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
