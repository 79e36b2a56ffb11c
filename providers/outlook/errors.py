"""Turning Microsoft Graph answers and httpx failures into `providers.base` errors.

Graph's error body is `{"error": {"code", "message", "innerError": {...}}}`
(research/providers.md §4.1). Throttling is matched on the status, not the code,
which varies (`TooManyRequests`, `ApplicationThrottled`, ...). Messages never
carry tokens or URLs (delta links hold sync state): only the status, Graph's
error code and its message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from providers.base import AuthExpired, ProviderError, Throttled, Transient, retry_after_seconds

#: Error codes with which Graph says "this delta token is no good: sync again from scratch".
SYNC_RESET_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
#: 403 codes that mean the grant may not read this mailbox: only a new consent helps.
_ACCESS_DENIED_CODES = frozenset(
    {"erroraccessdenied", "accessdenied", "authorization_requestdenied"}
)


def error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return str(code) if code else None


def error_message(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message)[:300] if message else None


def response_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def is_sync_reset(status: int, body: Any) -> bool:
    """410 Gone, or a 4xx naming an expired sync state: the delta query must restart."""
    if status == 410:
        return True
    code = error_code(body)
    return 400 <= status < 500 and code is not None and code.lower() in SYNC_RESET_CODES


def classify_status(
    status: int, body: Any, headers: Mapping[str, str] | None, what: str
) -> ProviderError:
    """The provider error for a failed Graph call (401s reach here after one refresh)."""
    code = error_code(body)
    label = f"{what}: Microsoft Graph answered HTTP {status}" + (f" ({code})" if code else "")
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if status == 401:
        return AuthExpired(
            f"{label}: Microsoft no longer accepts this mailbox's authorization, even after "
            "renewing it, so the mailbox must be reconnected."
        )
    if status == 403 and code is not None and code.lower() in _ACCESS_DENIED_CODES:
        return AuthExpired(
            f"{label}: the Microsoft grant may not read this mailbox, so the mailbox must be "
            "reconnected."
        )
    if status == 429:
        return Throttled(f"{label}: Microsoft asks us to slow down.", retry_after_seconds(lowered))
    if status >= 500:
        return Transient(f"{label}: Microsoft had a temporary problem.")
    # Any other 4xx is most likely a bug on our side or a change at Microsoft: retried
    # with backoff, so the failing attempts stay visible until a fix ships.
    message = error_message(body) or "no details"
    return Transient(f"{label}: unexpected rejection ({message}).")


def classify_response(response: httpx.Response, what: str) -> ProviderError:
    return classify_status(response.status_code, response_body(response), response.headers, what)


def classify_transport(error: httpx.TransportError, what: str) -> ProviderError:
    if isinstance(error, httpx.TimeoutException):
        return Transient(f"{what}: Microsoft Graph did not answer in time.")
    return Transient(f"{what}: network error talking to Microsoft Graph ({type(error).__name__}).")
