"""Request body cap and rate limiting (per client address, per public key) for the public
endpoints.

The limits hold across API processes on PostgreSQL, where the counters are rows
(`SharedRateLimiter`, store/rate_limits.py); the embedded SQLite default runs one API process,
which counts in memory (`RateLimiter`). `limiter_for` picks one by the database.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError, error_response
from store import rate_limits

#: At most what is read (and dropped) of a body the app left unread before it answered.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 10.0


class _RequestBody:
    """The request body as the app reads it, and what is left of it to drain."""

    def __init__(self, receive: Receive, headers: dict[bytes, bytes]) -> None:
        self._receive = receive
        self.seen = 0
        self.read_any = False
        self.complete = (
            headers.get(b"content-length", b"0") == b"0" and b"transfer-encoding" not in headers
        )
        # Such a client sends the body only once told to go on, which reading would do.
        self.awaits_continue = headers.get(b"expect", b"").lower() == b"100-continue"

    async def receive(self) -> Message:
        message = await self._receive()
        self.read_any = True
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
        else:  # http.disconnect
            self.complete = True
        return message

    async def drain(self) -> None:
        """Read and drop the rest of the body, within DRAIN_BYTES and DRAIN_SECONDS."""
        if self.complete or (self.awaits_continue and not self.read_any):
            return
        stop_at = self.seen + DRAIN_BYTES
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                while not self.complete and self.seen < stop_at:
                    await self.receive()
        except TimeoutError:
            pass  # a client this slow is not worth holding the connection for


class BodySizeLimit:
    """Refuses a body over `max_bytes` with 413 before reading it whole, and makes sure
    that answer, like any answer given before the body was read, reaches the client.

    A declared Content-Length is checked up front; a chunked body is counted as it streams
    and the request fails as soon as it passes the cap.

    Closing a connection whose body is still arriving makes the kernel answer the client's
    next bytes with a reset, which can destroy the response before the client reads it
    (urllib, which sends the whole body before reading, saw "connection reset" instead of
    the 413 about once in 30 tries). So before an answer starts while the body is unread,
    the rest is read and dropped, up to DRAIN_BYTES within DRAIN_SECONDS, as mature servers
    do (nginx's lingering close); then the close is clean. A client that sent
    `Expect: 100-continue` and was not told to continue has sent no body: nothing to drain.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        body = _RequestBody(receive, headers)

        async def send_after_drain(message: Message) -> None:
            if message["type"] == "http.response.start":
                await body.drain()
            await send(message)

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, "payload_too_large", self._message())
            await response(scope, body.receive, send_after_drain)
            return

        async def counting_receive() -> Message:
            message = await body.receive()
            if message["type"] == "http.request" and body.seen > self.max_bytes:
                raise ApiError(413, "payload_too_large", self._message())
            return message

        await self.app(scope, counting_receive, send_after_drain)

    def _message(self) -> str:
        return f"The request body is larger than the limit of {self.max_bytes} bytes."


def too_many(retry_after: float) -> ApiError:
    seconds = max(1, math.ceil(retry_after))
    return ApiError(
        429,
        "rate_limited",
        f"Too many submissions from this address; try again in {seconds} seconds.",
        headers={"Retry-After": str(seconds)},
    )


class Limiter(Protocol):
    async def hit(self, key: str) -> None:
        """Count one hit for `key`, or raise 429 with Retry-After when over the limit."""


class RateLimiter:
    """Sliding window per key (the client IP). In memory: each API process counts alone."""

    def __init__(
        self, limit: int, window_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def check(self, key: str) -> None:
        """Record one hit for `key`, or raise 429 with Retry-After when over the limit."""
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            raise too_many(hits[0] + self.window - now)
        hits.append(now)
        if len(self._hits) > 10_000:
            self._forget_idle(now)

    async def hit(self, key: str) -> None:
        self.check(key)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]


class SharedRateLimiter:
    """The same limit counted in PostgreSQL: one atomic statement per hit, whichever API
    process takes it. Wall-clock time, so that every process agrees on the windows."""

    def __init__(
        self,
        engine: Engine,
        scope: str,
        limit: int,
        window_seconds: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.scope = scope
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._tidy_after = 0.0

    async def hit(self, key: str) -> None:
        verdict = await run_in_threadpool(self._hit, key, self._clock())
        if not verdict.allowed:
            raise too_many(verdict.retry_after)

    def _hit(self, key: str, now: float) -> rate_limits.Verdict:
        verdict = rate_limits.hit(self.engine, self.scope, key, self.limit, self.window, now)
        if now >= self._tidy_after:
            # Once a window per process is enough to keep the table at about two windows
            # of keys; a second process doing it too only deletes nothing.
            self._tidy_after = now + self.window
            rate_limits.forget_old(self.engine, self.scope, self.window, now)
        return verdict


def limiter_for(engine: Engine, scope: str, limit: int) -> Limiter:
    """Shared through the database on PostgreSQL (several API processes may serve one
    site); in this process's memory on SQLite, which serves one."""
    if engine.dialect.name == "postgresql":
        return SharedRateLimiter(engine, scope, limit)
    return RateLimiter(limit)
