"""HTTP clients for Google endpoints that trust exactly the CA bundle the settings name.

This machine exports REQUESTS_CA_BUNDLE, SSL_CERT_FILE and HTTPLIB2_CA_CERTS;
each client library would silently prefer them over implicit settings
(research/providers.md §1.7, §3.3), so the bundle is always passed explicitly.

Gmail calls borrow an `httplib2.Http` from a process-wide pool (`borrowed_http`)
instead of opening and closing connections per mailbox: an httplib2 connection
builds its own TLS context, loading the whole CA bundle (about 30 ms of CPU with
the system bundle), then does a TLS handshake. A pooled connection is kept alive
between polls and serves any mailbox: it carries no credentials of its own
(`Authorization` is added per request by `google_auth_httplib2.AuthorizedHttp`
around the borrowed pool, and httplib2 keeps no cookies), and only one call uses
it at a time.
"""

from __future__ import annotations

import select
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httplib2  # type: ignore[import-untyped]
import httpx

from core.settings import Settings


def httplib2_http(settings: Settings) -> httplib2.Http:
    """One connection pool for googleapiclient and google-auth refreshes; close it when done.

    Without a bundle httplib2 uses its default store (HTTPLIB2_CA_CERTS, else certifi),
    which is what trusting the system means for httplib2.
    """
    bundle = settings.provider_ca_bundle
    return httplib2.Http(
        ca_certs=str(bundle) if bundle is not None else None,
        timeout=settings.provider_timeout_seconds,
    )


class HttpPool:
    """Idle `httplib2.Http` objects for one CA bundle and timeout, most recently used first.

    `borrow()` hands one to a single caller; `give_back()` keeps it for the next caller
    (at most `max_idle` are kept; the rest are closed). Something that failed mid-call
    must be `discard()`ed instead: after a timeout httplib2 leaves the connection with an
    unread answer on it, which the next request would otherwise read as its own.
    """

    def __init__(self, bundle: Path | None, timeout: float, max_idle: int) -> None:
        self._bundle = bundle
        self._timeout = timeout
        self._max_idle = max_idle
        self._idle: list[httplib2.Http] = []
        self._lock = threading.Lock()

    def borrow(self) -> httplib2.Http:
        with self._lock:
            http = self._idle.pop() if self._idle else None
        if http is None:
            return httplib2.Http(
                ca_certs=str(self._bundle) if self._bundle is not None else None,
                timeout=self._timeout,
            )
        _drop_closed_connections(http)
        return http

    def give_back(self, http: httplib2.Http) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(http)
                return
        http.close()

    @staticmethod
    def discard(http: httplib2.Http) -> None:
        http.close()

    def close(self) -> None:
        """Close the idle connections (those borrowed are closed or kept by their users)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for http in idle:
            http.close()


def _drop_closed_connections(http: httplib2.Http) -> None:
    """Close kept-alive connections the server has hung up on (as urllib3 checks): an idle
    connection with something to read has been closed by the peer, or is out of step."""
    for conn in http.connections.values():
        sock = getattr(conn, "sock", None)
        if sock is None:
            continue
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            buffered = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
        except (OSError, ValueError):
            readable, buffered = [sock], True
        if readable or buffered:
            conn.close()


_pools: dict[tuple[Path | None, float], HttpPool] = {}
_pools_lock = threading.Lock()


def http_pool(settings: Settings) -> HttpPool:
    """The process-wide pool for these settings' CA bundle and timeout."""
    key = (settings.provider_ca_bundle, settings.provider_timeout_seconds)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = HttpPool(*key, max_idle=settings.worker_max_concurrent_activities)
        return pool


@contextmanager
def borrowed_http(settings: Settings) -> Iterator[httplib2.Http]:
    """An `httplib2.Http` for one call: kept alive for the next call if this one completed,
    closed if it raised (its connection may be in any state)."""
    pool = http_pool(settings)
    http = pool.borrow()
    try:
        yield http
    except BaseException:
        pool.discard(http)
        raise
    pool.give_back(http)


def close_pooled_connections() -> None:
    """Close every idle pooled connection (process shutdown, tests)."""
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        pool.close()


def httpx_client(settings: Settings) -> httpx.Client:
    bundle = settings.provider_ca_bundle
    context = (
        ssl.create_default_context(cafile=str(bundle))
        if bundle is not None
        else ssl.create_default_context()
    )
    # trust_env=False: no proxy or CA variables from the environment, and no .netrc.
    return httpx.Client(
        verify=context,
        trust_env=False,
        timeout=settings.provider_timeout_seconds,
        follow_redirects=False,
    )
