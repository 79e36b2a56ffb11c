"""Sending pushes: background POSTs with retries, never in the way of request handling.

Every push (a Pub/Sub push, a Graph notification or lifecycle notification) is an
asyncio task on the emulator's own event loop, sent with one shared `httpx.AsyncClient`
to whatever URL its subscription names (plain http to a local API in dev is fine). A
push that is not answered 2xx in time is retried after `RETRY_DELAYS` (short and
bounded, where the real services keep trying for hours or days), then given up.

Every attempt is logged (`GET /_emulator/push/log`) and every push's end counted in
`GET /_emulator/requests` under `pushes`, as `"<provider> <kind> <outcome>"`: kinds
`notification`, `lifecycle`, `validation`; outcomes `delivered`, `failed` (gave up),
`dropped` (a push fault), `rate_limited` (Gmail's one per second per mailbox) and
`retried` (one per attempt after the first).

`send` may be called from the loop or from another thread (a test delivering mail
through `EmulatorState.deliver`). The server binds the pusher to its loop at start and
closes it after the last request (`aclose`: pending pushes cancelled, client closed), so
nothing outlives the emulator. `cancel_pending` (on state reset) drops every push made
before it, even in-flight retries, so one test's pushes never reach the next test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from emulator.request_log import RequestLog

logger = logging.getLogger(__name__)

#: Waits before the 2nd, 3rd and 4th attempt; then the push is given up.
RETRY_DELAYS = (0.2, 0.4, 0.8)


@dataclass(frozen=True)
class Push:
    #: "gmail", "outlook" or "pubsub" (a message published through the Pub/Sub API).
    provider: str
    #: "notification" or "lifecycle".
    kind: str
    mailbox: str | None
    url: str
    body: bytes
    #: Headers for one attempt; called per attempt (Gmail's ID token is signed afresh).
    headers: Callable[[], dict[str, str]]
    #: How long the endpoint has to answer one attempt (Pub/Sub's ack deadline, Graph's 3 s).
    timeout: float


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Pusher:
    def __init__(self, log: RequestLog) -> None:
        self._log = log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: dict[asyncio.Task[None], int] = {}
        # Bumped by cancel_pending (any thread); tasks remember the generation they began in.
        self._generation = 0
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    async def aclose(self) -> None:
        """Cancel every pending push and close the client; call on the bound loop."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None

    def cancel_pending(self) -> None:
        """Drop every push made so far (state reset); safe from any thread."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        # Nothing to cancel when no loop ever ran a push.
        self._call_on_loop(lambda: self._cancel_older_than(generation), quiet=True)

    def _cancel_older_than(self, generation: int) -> None:
        for task, born in list(self._tasks.items()):
            if born < generation:
                task.cancel()

    def pending(self) -> int:
        return len(self._tasks)

    # -- sending ---------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # trust_env off: pushes go straight to the URL named, whatever proxies are set.
            self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        return self._client

    def send(self, push: Push, *, delay: float = 0.0) -> None:
        """Send `push` in the background (after `delay` seconds), retrying as above."""
        with self._lock:
            generation = self._generation
        self._call_on_loop(lambda: self._spawn(self._deliver(push, delay), generation))

    def _call_on_loop(self, callback: Callable[[], None], *, quiet: bool = False) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and (self._loop is None or running is self._loop):
            self._loop = running
            callback()
            return
        if self._loop is None:
            if not quiet:
                logger.warning("push not sent: the emulator is not serving")
            return
        try:
            self._loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed
            if not quiet:
                logger.warning("push not sent: the emulator has stopped")

    def _spawn(self, work: Coroutine[Any, Any, None], generation: int) -> None:
        if generation < self._generation:
            work.close()  # reset before it began
            return
        task = asyncio.get_running_loop().create_task(work)
        self._tasks[task] = generation
        task.add_done_callback(self._tasks.pop)

    async def _deliver(self, push: Push, delay: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            for attempt, wait in enumerate((0.0, *RETRY_DELAYS), start=1):
                if wait:
                    self._log.count_push(push.provider, push.kind, "retried")
                    await asyncio.sleep(wait)
                status = await self.attempt(push, attempt)
                if status is not None and 200 <= status < 300:
                    self._log.count_push(push.provider, push.kind, "delivered")
                    return
            self._log.count_push(push.provider, push.kind, "failed")
        except asyncio.CancelledError:
            raise
        except Exception:  # a push must never take the emulator down
            logger.exception("push to %s failed unexpectedly", push.url)

    async def attempt(self, push: Push, attempt: int) -> int | None:
        """POST once; the status, or None when nothing came back in time."""
        status: int | None = None
        error: str | None = None
        try:
            answer = await self.client.post(
                push.url, content=push.body, headers=push.headers(), timeout=push.timeout
            )
            status = answer.status_code
        except (httpx.HTTPError, httpx.InvalidURL) as failure:
            error = f"{type(failure).__name__}: {failure}"
        self._log.log_push(
            {
                "provider": push.provider,
                "kind": push.kind,
                "mailbox": push.mailbox,
                "url": push.url,
                "attempt": attempt,
                "status": status,
                "error": error,
                "at": _now_iso(),
            }
        )
        return status
