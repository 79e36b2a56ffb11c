"""Who may push: Google's OIDC tokens on Pub/Sub pushes, verified with google-auth.

`google.oauth2.id_token.verify_token` checks the signature against the certs URL, the expiry
and the audience; we then check the issuer, the service account and that its email is
verified (research/push.md). It fetches the certs on every call, so the transport handed to
it answers GETs from a cache kept for as long as Google's Cache-Control allows (an hour or
more), and a token signed by a key the cache does not know refetches them once.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import google.auth.transport
import google.auth.transport.requests
import requests
from google.oauth2 import id_token

from core.settings import Settings

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
DEFAULT_MAX_AGE = 3600.0
# However often unknown keys come, the certs are fetched again at most this often.
REFETCH_AT_MOST_EVERY = 60.0
# A token minted a moment ago by a clock a little ahead of ours is still good.
CLOCK_SKEW_SECONDS = 10
_MAX_AGE = re.compile(r"max-age=(\d+)")


class PushRefused(Exception):
    """Not a push we may act on; `status` is 401 (no or unreadable token) or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Cached:
    response: google.auth.transport.Response
    expires: float


class CachingRequest(google.auth.transport.Request):
    """A google-auth transport that keeps successful GET answers until they expire."""

    def __init__(self, inner: google.auth.transport.Request) -> None:
        self._inner = inner
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self._last_forget = float("-inf")  # monotonic time may start near 0 at boot

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> google.auth.transport.Response:
        if method != "GET":
            answer: google.auth.transport.Response
            answer = self._inner(url, method, body, headers, timeout, **kwargs)
            return answer
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None and cached.expires > time.monotonic():
                return cached.response
        response: google.auth.transport.Response
        response = self._inner(url, method, body, headers, timeout or 10, **kwargs)
        if response.status == 200:
            with self._lock:
                self._cache[url] = _Cached(response, time.monotonic() + _max_age(response))
        return response

    def forget(self) -> bool:
        """Drop the cache (a token named an unknown key); False when it was dropped too
        recently to do it again."""
        with self._lock:
            now = time.monotonic()
            if now - self._last_forget < REFETCH_AT_MOST_EVERY:
                return False
            self._last_forget = now
            self._cache.clear()
            return True


def _max_age(response: google.auth.transport.Response) -> float:
    control = {k.lower(): v for k, v in response.headers.items()}.get("cache-control", "")
    found = _MAX_AGE.search(control)
    return float(found.group(1)) if found else DEFAULT_MAX_AGE


class GooglePushVerifier:
    """Verifies the bearer token of a Pub/Sub push. Synchronous: run it off the event loop."""

    def __init__(self, settings: Settings) -> None:
        session = requests.Session()
        session.trust_env = False
        if settings.provider_ca_bundle is not None:
            session.verify = str(settings.provider_ca_bundle)
        self._request = CachingRequest(google.auth.transport.requests.Request(session))
        self._certs_url = settings.gmail_push_certs_url
        self._audience = settings.effective_gmail_push_audience
        self._account = settings.gmail_push_service_account

    def verify(self, authorization: str) -> Mapping[str, Any]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PushRefused(401, "no bearer token")
        claims = self._claims(token.strip())
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise PushRefused(403, "the token was not issued by Google")
        if self._account is None or claims.get("email") != self._account:
            raise PushRefused(403, "the token is not the push service account's")
        if claims.get("email_verified") is not True:
            raise PushRefused(403, "the service account's email is not verified")
        return claims

    def _claims(self, token: str) -> Mapping[str, Any]:
        for attempt in (1, 2):
            try:
                return id_token.verify_token(
                    token,
                    self._request,
                    audience=self._audience,
                    certs_url=self._certs_url,
                    clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
                )
            except (google.auth.exceptions.TransportError, requests.RequestException) as error:
                # Google's certs could not be read: not the sender's fault, but unverified.
                raise PushRefused(401, f"the certs could not be read: {error}") from error
            except (ValueError, google.auth.exceptions.GoogleAuthError) as error:
                unknown_key = "Certificate for key id" in str(error)
                if attempt == 1 and unknown_key and self._request.forget():
                    continue  # Google rotated its keys: fetch them again, once
                status = 403 if "audience" in str(error).lower() else 401
                raise PushRefused(status, f"the token does not verify: {error}") from error
        raise AssertionError("unreachable")
