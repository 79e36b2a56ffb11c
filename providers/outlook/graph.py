"""Microsoft Graph over httpx for one mailbox: bearer token, one renewal on 401, no retries.

The client trusts exactly `provider_ca_bundle` and ignores the environment
(`trust_env=False`: no proxy or CA variables, no .netrc), times out after
`provider_timeout_seconds`, and never follows redirects: Graph's links are
followed by the provider, verbatim.

Connections are shared: one `httpx.Client` per process (per CA bundle and timeout)
serves every mailbox, so an idle poll reuses a kept-alive TLS connection instead of
loading the CA bundle into a new context (about 30 ms of CPU and 0.8 MB with the
system bundle) and shaking hands. It carries nothing of a mailbox's: the bearer
token is set on each request, and the client keeps no cookies. A provider cached
between polls holds no sockets of its own.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any
from urllib.request import Request

import httpx

from core.settings import Settings
from providers.base import Transient
from providers.outlook.auth import MicrosoftTokens
from providers.outlook.errors import classify_response, classify_transport

_contexts: dict[Path | None, ssl.SSLContext] = {}
_clients: dict[tuple[Path | None, float], httpx.Client] = {}
_lock = threading.Lock()


def graph_ssl_context(settings: Settings) -> ssl.SSLContext:
    """One context per CA bundle for the process (SSLContext is safe to share)."""
    bundle = settings.provider_ca_bundle
    with _lock:
        context = _contexts.get(bundle)
        if context is None:
            context = _contexts[bundle] = (
                ssl.create_default_context()
                if bundle is None
                else ssl.create_default_context(cafile=str(bundle))
            )
        return context


class _NoCookies(DefaultCookiePolicy):
    """A shared client must not carry one mailbox's cookies into another's requests."""

    def set_ok(self, cookie: Cookie, request: Request) -> bool:  # noqa: ARG002
        return False

    def return_ok(self, cookie: Cookie, request: Request) -> bool:  # noqa: ARG002
        return False


def shared_graph_client(settings: Settings) -> httpx.Client:
    """The process-wide Graph client for these settings' CA bundle and timeout."""
    key = (settings.provider_ca_bundle, settings.provider_timeout_seconds)
    context = graph_ssl_context(settings)
    with _lock:
        client = _clients.get(key)
        if client is None:
            keep = settings.worker_max_concurrent_activities
            client = _clients[key] = httpx.Client(
                verify=context,
                trust_env=False,
                timeout=settings.provider_timeout_seconds,
                follow_redirects=False,
                cookies=CookieJar(policy=_NoCookies()),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=keep),
            )
        return client


def close_shared_clients() -> None:
    """Close the shared clients and their kept-alive connections (shutdown, tests)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


class GraphClient:
    def __init__(self, settings: Settings, tokens: MicrosoftTokens) -> None:
        self.api_url = settings.graph_api_url.rstrip("/")
        self._settings = settings
        self._tokens = tokens
        self._http: httpx.Client | None = None

    @contextmanager
    def session(self) -> Iterator[None]:
        """One provider call on the shared client; its connections stay in the shared pool."""
        if self._http is not None:
            yield
            return
        self._http = shared_graph_client(self._settings)
        try:
            yield
        finally:
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
