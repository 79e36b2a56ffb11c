"""MSAL for Outlook: the app, its HTTP session, the stored token cache and error classes.

Decisions (research/providers.md §3):

- A **fresh `ConfidentialClientApplication` per token request**: MSAL keeps a per-app
  cache of responses (an identical 400 replayed for 60 s, a 429/5xx for Retry-After
  seconds), which would hide a retry Temporal makes after a failure.
- **Discovery once per process** (`DiscoveryCache`): building an app fetches the
  openid-configuration (and, on Microsoft's hosts, the instance discovery), which would be
  one extra request per refresh; our session answers those GETs from a per-process cache.
- An **explicit `requests.Session`** with `trust_env=False` and `verify=<CA bundle>`:
  this machine exports REQUESTS_CA_BUNDLE, which otherwise wins over the session's CA.
- **`instance_discovery=False` unless the authority is a Microsoft host**: discovery
  asks login.microsoftonline.com about the host, which fails for the emulator.
- Scopes: MSAL is asked for exactly `Mail.Read` and `User.Read`; it adds `openid`,
  `profile` and `offline_access` itself (and refuses to be given them).

The grant is stored as MSAL's serialised token cache (compact JSON: account, id
token, refresh token, access token). It is what `Credentials.refresh_token` carries
for Outlook: an opaque secret the caller encrypts at rest, replaced whenever MSAL
changes it (Microsoft hands out a new refresh token at every refresh).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msal  # type: ignore[import-untyped]
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS  # type: ignore[import-untyped]

from core.settings import Settings
from providers.base import (
    AuthExpired,
    Credentials,
    ProviderError,
    Throttled,
    Transient,
    retry_after_seconds,
)
from providers.outlook import GRAPH_SCOPES

#: Refresh this long before the access token expires, so a call never races its expiry.
EXPIRY_MARGIN = timedelta(minutes=5)

#: Token-endpoint errors after which only a new consent helps (RFC 6749 and OIDC codes).
_REAUTH_ERRORS = frozenset(
    {"invalid_grant", "interaction_required", "consent_required", "login_required"}
)
#: Entra's reasons, in words a support person can pass on.
_AADSTS_REASONS = {
    50034: "the account no longer exists",
    50055: "the account's password has expired",
    50057: "the account is disabled",
    50076: "multi-factor authentication is now required",
    50079: "the account must register for multi-factor authentication",
    50173: "the sign-in was revoked (password change or an administrator)",
    53003: "a Conditional Access policy blocks it",
    65001: "the consent to DeskClone was withdrawn",
    70008: "the authorization expired",
    700016: "DeskClone's app is not registered in this directory",
    700082: "the authorization expired after 90 days without use",
}


def is_microsoft_host(authority: str) -> bool:
    return (urlsplit(authority).hostname or "").lower() in WELL_KNOWN_AUTHORITY_HOSTS


class DiscoveryCache:
    """Successful GET answers to MSAL, kept per process: its discovery documents.

    MSAL's only GETs are discovery (the tenant's openid-configuration and, for Microsoft's
    own hosts, the instance discovery); it keeps such answers itself for a day, but only
    per app, and we build an app per token request. Why here and not one of MSAL's two
    ways (msal 1.39, throttled_http_client.py):
    - a per-process `http_cache` shared by every app: that one mapping also holds MSAL's
      replays of token-endpoint answers (a 400 for 60 s, a 429/5xx for Retry-After), which
      would come back and hide the retry Temporal makes; and each app guards the mapping's
      index with a lock of its own, not shared between the threads of concurrent refreshes;
    - one app reused: it holds one token cache and one HTTP session, where each mailbox has
      its own cache and each request's status must be read from its own session.
    Caching the discovery GETs below MSAL keeps every token request a real one and costs
    one discovery request per authority per process (per day). Failures are not kept.
    """

    #: As long as MSAL keeps discovery answers itself.
    TTL_SECONDS = 24 * 3600

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[float, requests.Response]] = {}

    def get(self, key: str) -> requests.Response | None:
        with self._lock:
            found = self._answers.get(key)
        if found is None or found[0] <= self._clock():
            return None
        # A copy per caller: a Response is not made to be read by two threads at once.
        return copy.copy(found[1])

    def put(self, key: str, response: requests.Response) -> None:
        with self._lock:
            if len(self._answers) >= 64:  # a few authorities at most; never grows unbounded
                self._answers.clear()
            self._answers[key] = (self._clock() + self.TTL_SECONDS, copy.copy(response))

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()


DISCOVERY = DiscoveryCache()


def _get_key(url: str | bytes, params: Any) -> str:
    text = url.decode() if isinstance(url, bytes) else url
    return f"{text} {sorted(params.items()) if isinstance(params, Mapping) else params!r}"


class MsalSession(requests.Session):
    """requests for MSAL: only the configured CA, nothing from the environment, a timeout,
    discovery documents from the per-process `DISCOVERY`.

    It also remembers the last answer's status and Retry-After, which MSAL drops
    when it turns a 429 into an error dict.
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.trust_env = False
        bundle = settings.provider_ca_bundle
        # Without a bundle: requests' own store (certifi), since the environment is ignored.
        self.verify = str(bundle) if bundle is not None else True
        self._timeout = settings.provider_timeout_seconds
        self.last_status: int | None = None
        self.last_retry_after: float | None = None

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        key = _get_key(url, kwargs.get("params")) if method.upper() == "GET" else None
        cached = DISCOVERY.get(key) if key is not None else None
        response = cached or super().request(method, url, *args, **kwargs)
        self.last_status = response.status_code
        self.last_retry_after = retry_after_seconds(response.headers)
        if key is not None and cached is None and 200 <= response.status_code < 300:
            DISCOVERY.put(key, response)
        return response


def msal_app(settings: Settings, session: MsalSession, cache: Any) -> Any:
    """A new ConfidentialClientApplication; building it reads the openid-configuration
    (fetched once per process, see `DiscoveryCache`)."""
    authority = settings.microsoft_authority.rstrip("/")
    return msal.ConfidentialClientApplication(
        settings.microsoft_client_id,
        client_credential=settings.microsoft_client_secret.get_secret_value(),
        authority=authority,
        instance_discovery=None if is_microsoft_host(authority) else False,
        http_client=session,
        token_cache=cache,
    )


def serialize_cache(cache: Any) -> str:
    """MSAL's cache as compact JSON (MSAL indents it; the stored copy need not be)."""
    return json.dumps(json.loads(cache.serialize()), separators=(",", ":"))


def load_cache(text: str) -> Any:
    cache = msal.SerializableTokenCache()
    try:
        if not isinstance(json.loads(text), dict):
            raise ValueError("not a JSON object")
        cache.deserialize(text)
    except ValueError:
        raise AuthExpired(
            "The stored Outlook authorization is unreadable, so the mailbox must be reconnected."
        ) from None  # the text is a secret: never echo it
    return cache


def _codes(result: Mapping[str, Any]) -> list[int]:
    codes = result.get("error_codes")
    return [c for c in codes if isinstance(c, int)] if isinstance(codes, list) else []


def describe_token_error(result: Mapping[str, Any]) -> str:
    """`invalid_grant, AADSTS700082: the authorization expired after 90 days without use`."""
    error = str(result.get("error") or "unknown_error")
    codes = _codes(result)
    if not codes:
        return error
    reason = _AADSTS_REASONS.get(codes[0])
    return f"{error}, AADSTS{codes[0]}" + (f": {reason}" if reason else "")


def classify_token_error(
    result: Mapping[str, Any], what: str, session: MsalSession | None = None
) -> ProviderError:
    """The provider error for an MSAL error dict from the token endpoint."""
    error = str(result.get("error") or "")
    label = f"{what}: Microsoft refused to renew access ({describe_token_error(result)})"
    if error in _REAUTH_ERRORS or error == "unauthorized_client":
        return AuthExpired(f"{label}; the mailbox must be reconnected.")
    if session is not None and session.last_status == 429:
        return Throttled(f"{label}: Microsoft asks us to slow down.", session.last_retry_after)
    if error in ("temporarily_unavailable", "server_error"):
        return Transient(f"{label}: a temporary problem at Microsoft.")
    # e.g. invalid_client: DeskClone's app registration (secret), not the customer's grant.
    return Transient(f"{label}.")


def classify_msal_exception(error: BaseException, what: str) -> ProviderError | None:
    """The provider error for what MSAL or requests raised, or None for a bug."""
    if isinstance(error, ProviderError):
        return error
    if isinstance(error, requests.Timeout):
        return Transient(f"{what}: Microsoft's sign-in service did not answer in time.")
    if isinstance(error, requests.RequestException):
        kind = type(error).__name__
        return Transient(f"{what}: network error talking to Microsoft's sign-in service ({kind}).")
    if isinstance(error, msal.exceptions.MsalServiceError):
        # MSAL raises this for a 5xx from the token endpoint or the openid-configuration.
        return Transient(f"{what}: Microsoft's sign-in service had a temporary problem ({error}).")
    if isinstance(error, ValueError):
        # The openid-configuration answered 4xx, or a token answer was not JSON.
        return Transient(f"{what}: Microsoft's sign-in service gave an unusable answer.")
    return None


class MicrosoftTokens:
    """An Outlook grant in use: the serialised MSAL cache plus the access token in hand.

    `access_token()` costs nothing while the token in hand is valid (no MSAL app, no
    request); otherwise, and on `refresh()`, a fresh MSAL app renews it silently.
    """

    def __init__(
        self, settings: Settings, credentials: Credentials, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._cache_text = credentials.refresh_token
        self._access_token = credentials.access_token
        self._expires_at = credentials.expires_at
        self._scopes = credentials.scopes

    def credentials(self) -> Credentials:
        return Credentials(
            refresh_token=self._cache_text,
            access_token=self._access_token,
            expires_at=self._expires_at,
            scopes=self._scopes,
        )

    def access_token(self) -> str:
        now = datetime.fromtimestamp(self._clock(), UTC)
        if self._access_token and self._expires_at and self._expires_at - EXPIRY_MARGIN > now:
            return self._access_token
        return self.refresh(force=False)

    def refresh(self, *, force: bool) -> str:
        """A new access token from the refresh token (`force`), or MSAL's cached one."""
        what = "renewing Microsoft access"
        cache = load_cache(self._cache_text)
        with MsalSession(self._settings) as session:
            try:
                app = msal_app(self._settings, session, cache)
                accounts = app.get_accounts()
                if not accounts:
                    raise AuthExpired(
                        f"{what}: the stored Outlook authorization holds no account, so the "
                        "mailbox must be reconnected."
                    )
                result = app.acquire_token_silent_with_error(
                    list(GRAPH_SCOPES), accounts[0], force_refresh=force
                )
            except Exception as error:
                classified = classify_msal_exception(error, what)
                if classified is None:
                    raise
                raise classified from error
        if result is None:
            raise AuthExpired(
                f"{what}: the stored Outlook authorization holds no refresh token, so the "
                "mailbox must be reconnected."
            )
        if "error" in result:
            raise classify_token_error(result, what, session)
        token = str(result["access_token"])
        issued = datetime.fromtimestamp(self._clock(), UTC)
        self._access_token = token
        self._expires_at = issued + timedelta(seconds=int(result.get("expires_in", 0)))
        if cache.has_state_changed:
            self._cache_text = serialize_cache(cache)
        return token
