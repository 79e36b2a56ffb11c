"""One webhook attempt over HTTP: signed (Standard Webhooks), to a vetted address, bounded.

- The address is checked when the connection is made, on what the name resolves to then
  (`VettedBackend`), and the connection goes to that very address: a name that resolved to a
  public address when the endpoint was saved and to 127.0.0.1 now (DNS rebinding) is refused.
  A reused keep-alive connection was vetted when it was opened.
- 15 s from the first byte sent to the last byte read, then the attempt has failed.
- No redirect is followed (httpcore never follows one; a 3xx is not a 2xx, so it failed).
- At most `RESPONSE_READ_LIMIT` bytes of the answer are read; a longer one is cut off and its
  connection closed rather than drained.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import certifi
import httpcore
from standardwebhooks.webhooks import Webhook

from domain import webhooks as rules

USER_AGENT = "DeskClone-Webhooks/1"


class AddressRefused(Exception):
    """The endpoint's name resolves to an address deliveries may not go to."""


class VettedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself, refuses the connection unless every address it resolves to
    is allowed, and connects to one of those addresses (never resolving twice)."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise httpcore.ConnectError(f"{host} could not be resolved: {error}") from error
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        for address in addresses:
            verdict = rules.address_verdict(address, allow_private=self._allow_private)
            if not verdict.allowed:
                raise AddressRefused(f"{host} resolves to {verdict.reason}; not delivered")
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last = error
        raise last or httpcore.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self,
        path: str,  # noqa: ARG002
        timeout: float | None = None,  # noqa: ARG002
        socket_options: Any = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("unix sockets are not webhook endpoints")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and rules.succeeded(self.status_code)


def signature(secrets: list[str], event_id: str, timestamp: datetime, body: str) -> str:
    """`v1,<sig>` for each secret, space-separated: with a rotated secret the old and the new
    both sign, and a receiver holding either verifies the delivery."""
    return " ".join(Webhook(secret).sign(event_id, timestamp, body) for secret in secrets)


class Sender:
    """One connection pool for every endpoint a worker delivers to (keep-alive per host)."""

    def __init__(self, *, allow_private: bool, max_connections: int = 200) -> None:
        context = ssl.create_default_context(cafile=certifi.where())
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=max_connections,
            keepalive_expiry=30,
            network_backend=VettedBackend(allow_private),
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def post(self, url: str, secrets: list[str], event_id: str, body: str) -> Attempt:
        now = datetime.now(UTC)  # the receiver's clock judges this one, not workflow time
        data = body.encode()
        parsed = httpcore.URL(url)
        host = parsed.host.decode()
        default_port = 443 if parsed.scheme == b"https" else 80
        netloc = host if parsed.port in (None, default_port) else f"{host}:{parsed.port}"
        headers = [
            ("Host", netloc),
            ("User-Agent", USER_AGENT),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("webhook-id", event_id),
            ("webhook-timestamp", str(int(now.timestamp()))),
            ("webhook-signature", signature(secrets, event_id, now, body)),
        ]
        timeout = rules.ATTEMPT_TIMEOUT_SECONDS
        extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": 5}}
        try:
            async with asyncio.timeout(timeout):
                async with self._pool.stream(
                    "POST", url, headers=headers, content=data, extensions=extensions
                ) as response:
                    text = await _read_some(response)
        except TimeoutError:
            return Attempt(None, f"no answer within {timeout:.0f} s")
        except AddressRefused as error:
            return Attempt(None, str(error))
        except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
            return Attempt(None, _words("could not connect", error))
        except httpcore.TimeoutException as error:
            return Attempt(None, _words("timed out", error))
        except (httpcore.NetworkError, httpcore.ProtocolError) as error:
            return Attempt(None, _words("the connection failed", error))
        except (httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as error:
            return Attempt(None, _words("not a URL we can call", error))
        status = response.status
        if rules.succeeded(status):
            return Attempt(status, None)
        answer = f": {text}" if text else ""
        return Attempt(status, f"answered {status}{answer}"[: rules.ERROR_TEXT_LIMIT])


async def _read_some(response: httpcore.Response) -> str:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_stream():
        chunks.append(chunk)
        size += len(chunk)
        if size >= rules.RESPONSE_READ_LIMIT:
            break  # leaving the stream closes the connection: the rest is never read
    text = b"".join(chunks)[: rules.RESPONSE_READ_LIMIT].decode("utf-8", "replace")
    return " ".join(text.split())[:200]


def _words(what: str, error: Exception) -> str:
    detail = str(error) or type(error).__name__
    return f"{what}: {detail}"[: rules.ERROR_TEXT_LIMIT]
