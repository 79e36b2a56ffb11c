"""Microsoft Graph over httpx for one mailbox: bearer token, one renewal on 401, no retries.

The client trusts exactly `provider_ca_bundle` and ignores the environment
(`trust_env=False`: no proxy or CA variables, no .netrc), times out after
`provider_timeout_seconds`, and never follows redirects: Graph's links are
followed by the provider, verbatim. A connection pool lives for one provider call
(`session()`), so a provider cached between polls holds no sockets.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from deskclone.settings import Settings
from providers.base import Transient
from providers.graph_errors import classify_response, classify_transport
from providers.microsoft_auth import MicrosoftTokens


def graph_ssl_context(settings: Settings) -> ssl.SSLContext:
    bundle = settings.provider_ca_bundle
    if bundle is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=str(bundle))


class GraphClient:
    def __init__(self, settings: Settings, tokens: MicrosoftTokens) -> None:
        self.api_url = settings.graph_api_url.rstrip("/")
        self._tokens = tokens
        self._ssl = graph_ssl_context(settings)
        self._timeout = settings.provider_timeout_seconds
        self._http: httpx.Client | None = None

    @contextmanager
    def session(self) -> Iterator[None]:
        """Keep-alive within one provider call; nothing left open after it."""
        if self._http is not None:
            yield
            return
        self._http = httpx.Client(
            verify=self._ssl, trust_env=False, timeout=self._timeout, follow_redirects=False
        )
        try:
            yield
        finally:
            self._http.close()
            self._http = None

    def send(
        self,
        method: str,
        url: str,
        what: str,
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """The answer, whatever its status, once a 401 was met with one forced renewal."""
        response = self._attempt(method, url, what, self._tokens.access_token(), headers, json)
        if response.status_code == 401:
            # The token may have been revoked or rotated early: renew it once, then retry.
            token = self._tokens.refresh(force=True)
            response = self._attempt(method, url, what, token, headers, json)
        return response

    def renew(self) -> None:
        """Force a new access token (a batch part answered 401)."""
        self._tokens.refresh(force=True)

    def expect_ok(self, response: httpx.Response, what: str) -> Any:
        """The JSON body of a 2xx answer; any other answer raises its provider error."""
        if not response.is_success:
            raise classify_response(response, what)
        try:
            return response.json()
        except ValueError:
            raise Transient(f"{what}: Microsoft Graph sent an answer that is not JSON.") from None

    def _attempt(
        self,
        method: str,
        url: str,
        what: str,
        token: str,
        headers: dict[str, str] | None,
        body: Any,
    ) -> httpx.Response:
        if self._http is None:
            raise RuntimeError("GraphClient.send outside session()")
        request_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        request_headers.update(headers or {})
        try:
            return self._http.request(method, url, headers=request_headers, json=body)
        except httpx.TransportError as error:
            raise classify_transport(error, what) from error
