"""Turning what googleapiclient, google-auth and httplib2 raise into `providers.base` errors.

Shapes come from research/providers.md §1.4 and §2.3. Messages are written for
a support person and never carry tokens: they are built from the status, the
Google `reason` and Google's own error text, not from request data.
"""

from __future__ import annotations

import httplib2  # type: ignore[import-untyped]
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import BatchError, HttpError  # type: ignore[import-untyped]

from providers.base import (
    AuthExpired,
    ProviderError,
    Throttled,
    Transient,
    retry_after_seconds,
)

#: 403 reasons that mean "this grant may not do that": only a new consent helps.
_REAUTH_REASONS = frozenset({"insufficientPermissions", "forbidden"})
#: 403 reasons that are quota, not permission (Gmail's "Resolve errors" guide).
# dailyLimitExceeded is the project's courtesy quota: retrying later is right too.
_THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "dailyLimitExceeded"})
#: Token-endpoint errors after which the stored grant can never work again.
_DEAD_GRANT_ERRORS = frozenset({"invalid_grant", "unauthorized_client"})


def http_status(error: HttpError) -> int:
    return int(error.resp.status)


def http_reason(error: HttpError) -> str | None:
    """Google's machine-readable `errors[0].reason`, when the body has one."""
    details = error.error_details
    if isinstance(details, list) and details and isinstance(details[0], dict):
        reason = details[0].get("reason")
        return str(reason) if reason else None
    return None


def classify_http_error(error: HttpError, what: str) -> ProviderError:
    status = http_status(error)
    reason = http_reason(error)
    label = f"{what}: Gmail answered HTTP {status}" + (f" ({reason})" if reason else "")
    if status == 401:
        # AuthorizedHttp already refreshed and retried (max_refresh_attempts=2) before
        # googleapiclient raised, so the token endpoint keeps handing out tokens Gmail refuses.
        return AuthExpired(f"{label}: Google no longer accepts this mailbox's authorization.")
    if status == 403 and reason in _REAUTH_REASONS:
        return AuthExpired(f"{label}: the Google grant lacks permission to read this mailbox.")
    if status == 429 or (status == 403 and reason in _THROTTLE_REASONS):
        return Throttled(f"{label}: Google asks us to slow down.", retry_after_seconds(error.resp))
    if status >= 500:
        return Transient(f"{label}: Google had a temporary problem.")
    # Any other 4xx (400, 404 outside history, 409, unknown 403s...) is most likely a bug
    # on our side or a change at Google. AuthExpired would send the customer to
    # reconnect for nothing and nothing here is about a bad cursor, so it is retried
    # with backoff: the failing attempts stay visible until a fix ships.
    return Transient(f"{label}: unexpected rejection ({_google_message(error)}).")


def classify_refresh_error(error: RefreshError, what: str) -> ProviderError:
    details = error.args[1] if len(error.args) > 1 else None
    code = details.get("error") if isinstance(details, dict) else None
    if not error.retryable and code in _DEAD_GRANT_ERRORS:
        return AuthExpired(
            f"{what}: Google refused to renew access ({code}); the authorization was "
            "revoked or has expired, so the mailbox must be reconnected."
        )
    if error.retryable:
        return Transient(f"{what}: Google's token service had a temporary problem ({code}).")
    # e.g. invalid_client: our OAuth client configuration, not the customer's grant.
    return Transient(f"{what}: Google refused to renew access ({code or 'no error code'}).")


def classify(error: BaseException, what: str) -> ProviderError | None:
    """The provider error for `error`, or None when it is not a provider failure (a bug)."""
    if isinstance(error, ProviderError):
        return error
    if isinstance(error, HttpError):
        return classify_http_error(error, what)
    if isinstance(error, RefreshError):
        return classify_refresh_error(error, what)
    if isinstance(error, TransportError):
        return Transient(f"{what}: could not reach Google's token service ({_kind(error)}).")
    if isinstance(error, TimeoutError):
        return Transient(f"{what}: Google did not answer in time.")
    if isinstance(error, httplib2.ServerNotFoundError):
        return Transient(f"{what}: Google's server name could not be resolved.")
    if isinstance(error, OSError | httplib2.HttpLib2Error):
        # ConnectionError, ssl.SSLError and friends are all OSErrors.
        return Transient(f"{what}: network error talking to Google ({_kind(error)}).")
    if isinstance(error, BatchError):
        return Transient(f"{what}: Gmail sent a batch answer we could not read.")
    return None


def _kind(error: BaseException) -> str:
    cause = error.args[0] if error.args and isinstance(error.args[0], BaseException) else error
    return type(cause).__name__


def _google_message(error: HttpError) -> str:
    message = getattr(error, "reason", None)
    return str(message) if message else "no details"
