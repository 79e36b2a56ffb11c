"""IMAP's push: one IDLE connection per watched IMAP mailbox, held by an asyncio supervisor in
the worker process beside the Temporal `Worker`s (no Starlette here: the worker imports this
module alone, like `webhook_control`).

Not an activity per mailbox: a thousand IDLE connections would hold a thousand activity slots
forever. Here each is a socket and a small task in one event loop (docs/scaling.md, IMAP
IDLE). A watcher only ever tells: on `EXISTS` it signals the mailbox workflow `poll_now`
(which coalesces), and the poll reads through the durable cursor over the provider's own
connection, so a lost or doubled notice can neither lose nor double a ticket.

Which mailboxes: every active IMAP mailbox with credentials (`store.mailboxes.watchable`),
read again every `imap_idle_rescan_seconds` and, on PostgreSQL, at once when a connect,
reconnect, disconnect or status change rings `WATCHERS_CHANNEL`. On PostgreSQL a worker
watches only the mailboxes whose advisory lock it wins on its own session, so several
workers share them without a second connection per mailbox; a worker that dies drops its
locks with its session and the others take its mailboxes at their next read.

The push state (`live`, `failed`, `off`) is written to the mailbox row (the API and the card
read it) and sent to the workflow as `push_event("state")` (its query and `MailboxPush`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.crypto import Cipher
from core.settings import Settings
from domain.outcomes import PushState
from providers.base import AuthExpired
from providers.imap import idle
from store import mailboxes
from store.db import transaction
from store.models import utcnow
from store.notify import drain, listening
from workflows.mailbox import mailbox_workflow_id
from workflows.mailbox_state import PollRequest, PushEvent

log = logging.getLogger("deskclone.imap_idle")

PROVIDER = "imap"
# On SQLite (`deskclone dev`, one worker) the mailboxes are read this often: nothing rings.
SQLITE_RESCAN_SECONDS = 1.0
# A server without IDLE is asked again this much later (it may have been upgraded).
NO_IDLE_RECHECK_SECONDS = 3600.0
# How long a Temporal signal may take before the notice is given up (the safety net covers).
SIGNAL_TIMEOUT_SECONDS = 10.0
# A workflow not found is asked once more this much later (it may be starting).
NOT_FOUND_RETRY_SECONDS = 2.0

# How a watcher reaches its server, from its mailbox's encrypted credentials.
AccountReader = Callable[[str], idle.IdleAccount]


def lock_key(mailbox_id: str) -> int:
    """The mailbox's PostgreSQL advisory lock: a signed 64-bit number from its id."""
    digest = hashlib.sha256(f"deskclone-imap-idle:{mailbox_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def backoff_seconds(attempt: int, ceiling: float, rand: Callable[[], float]) -> float:
    """Before the `attempt`-th retry in a row (1-based): 1 s doubling up to `ceiling`, each
    drawn between half and all of it, so watchers cut off together do not return together."""
    base = min(ceiling, 2.0 ** max(attempt - 1, 0))
    return base * (0.5 + 0.5 * rand())


@dataclass
class Watcher:
    token: str  # the credentials it logs in with: new ones (Reconnect) restart it
    task: asyncio.Task[None]
    state: PushState | None = None
    # No login again before this (loop time): inf after a refused login, until Reconnect.
    parked_until: float | None = None
    connections: int = 0  # IDLE sessions that went live
    notices: int = 0  # EXISTS passed on as poll_now
    renewals: int = 0  # IDLE commands ended and issued again on the same connection


class IdleSupervisor:
    def __init__(
        self,
        client: Client,
        settings: Settings,
        engine: Engine,
        account_of: AccountReader,
    ) -> None:
        self._client = client
        self._settings = settings
        self._engine = engine
        self._account_of = account_of
        self._watchers: dict[str, Watcher] = {}
        self._rand = random.Random()
        self._ring = asyncio.Event()
        self._errands: set[asyncio.Task[None]] = set()

    # --- what tests and the benchmark read ---

    def watched(self) -> dict[str, PushState | None]:
        """Mailbox id → the state its watcher last reported, for running watchers."""
        return {key: w.state for key, w in self._watchers.items() if not w.task.done()}

    def connections(self) -> int:
        """Watchers whose IDLE connection is live."""
        return sum(1 for w in self._watchers.values() if w.state == PushState.LIVE)

    def watcher(self, mailbox_id: str) -> Watcher | None:
        return self._watchers.get(mailbox_id)

    # --- the loop ---

    async def run(self, stop: asyncio.Event) -> None:
        if not self._settings.imap_idle:
            await self._all_off()
            await stop.wait()
            return
        try:
            while not stop.is_set():
                try:
                    if self._engine.dialect.name == "postgresql":
                        await self._listen(stop)
                    else:
                        await self._sync(None)
                        await _wait(stop, self._ring, SQLITE_RESCAN_SECONDS)
                except Exception as error:  # the database away for a moment
                    log.warning("IMAP IDLE supervisor: %s; trying again", error)
                    await self._stop_all()  # locks went with the session: others may watch
                    await _wait(stop, self._ring, 1.0)
        finally:
            await self._stop_all()

    async def _all_off(self) -> None:
        """Watching turned off (`DESKCLONE_IMAP_IDLE=0`): no mailbox may go on saying `live`,
        or it would poll only at the safety interval with nobody watching."""
        try:
            for found in await asyncio.to_thread(self._read):
                if found.push_state != PushState.OFF:
                    key, token = found.mailbox_id, found.credentials_encrypted
                    await self._report(key, token, PushState.OFF, None)
        except Exception as error:  # the database away: the workflows' safety net still polls
            log.warning("IMAP IDLE off: mailbox states not reset (%s)", error)

    def rescan(self) -> None:
        """Read the mailboxes again now (tests; SQLite has no NOTIFY)."""
        self._ring.set()

    async def _listen(self, stop: asyncio.Event) -> None:
        async with listening(self._engine, mailboxes.WATCHERS_CHANNEL) as session:
            rescan = self._settings.imap_idle_rescan_seconds
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                await self._sync(session)
                due = loop.time() + rescan
                while not stop.is_set() and loop.time() < due and not self._ring.is_set():
                    rang = False
                    async for _ in session.notifies(timeout=1.0, stop_after=1):
                        rang = True
                    if rang:
                        await drain(session)
                        break
                self._ring.clear()

    async def _sync(self, session: psycopg.AsyncConnection[Any] | None) -> None:
        """Start a watcher for each mailbox to watch, stop those no longer to watch."""
        self._ring.clear()
        wanted = {
            w.mailbox_id: w.credentials_encrypted for w in await asyncio.to_thread(self._read)
        }
        now = asyncio.get_running_loop().time()
        gone = [
            key
            for key, w in self._watchers.items()
            if wanted.get(key) != w.token or (w.task.done() and _due(w, now))
        ]
        for key in gone:
            watcher = self._watchers[key]
            await self._stop(key, session)
            if key not in wanted and watcher.state in (PushState.LIVE, PushState.FAILED):
                # Expired or disconnected: its push is off until Reconnect (say so, or the
                # workflow and its search attribute would go on saying `live`).
                self._spawn(self._left(key))
        room = self._settings.imap_idle_max_per_worker - len(self._watchers)
        fresh = [key for key in wanted if key not in self._watchers][: max(room, 0)]
        if session is not None and fresh:
            fresh = await _take_locks(session, fresh)
        for key in fresh:
            token = wanted[key]
            self._watchers[key] = Watcher(token, asyncio.create_task(self._watch(key, token)))

    def _read(self) -> list[mailboxes.Watchable]:
        with transaction(self._engine) as session:
            return mailboxes.watchable(session, PROVIDER)

    async def _stop(self, key: str, session: psycopg.AsyncConnection[Any] | None) -> None:
        watcher = self._watchers.pop(key)
        watcher.task.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await watcher.task
        if session is not None:
            await session.execute("SELECT pg_advisory_unlock(%s)", (lock_key(key),))

    async def _stop_all(self) -> None:
        tasks = [watcher.task for watcher in self._watchers.values()] + list(self._errands)
        self._watchers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Work that must not hold up the read loop (a signal may wait for its workflow)."""
        task = asyncio.create_task(work)
        self._errands.add(task)
        task.add_done_callback(self._errands.discard)

    async def _left(self, mailbox_id: str) -> None:
        await asyncio.to_thread(self._clear, mailbox_id)
        event = PushEvent("state", PushState.OFF, None, self._settings.push_safety_poll_seconds)
        await self._signal(mailbox_id, "push_event", event)

    def _clear(self, mailbox_id: str) -> None:
        with transaction(self._engine) as session:
            mailboxes.clear_watch(session, mailbox_id)

    # --- one mailbox ---

    async def _watch(self, mailbox_id: str, token: str) -> None:
        """Hold IDLE for the mailbox until cancelled, reconnecting with backoff; ends (parked)
        on a refused login or a server without IDLE."""
        watcher = self._watchers[mailbox_id]
        settings = self._settings
        failures = 0
        loop = asyncio.get_running_loop()
        try:
            account = await asyncio.to_thread(self._account_of, token)
        except Exception as error:  # undecryptable, or not an IMAP account: nothing to hold
            log.warning("mailbox %s: cannot watch it (%s)", mailbox_id, error)
            await self._report(mailbox_id, token, PushState.FAILED, "cannot read its settings")
            watcher.parked_until = float("inf")
            return

        async def on_live() -> None:
            nonlocal failures
            failures = 0
            watcher.connections += 1
            # Mail that came while nobody watched (before this worker started, during a
            # drop) announced itself to nobody: one poll reads it through the cursor. A
            # `live` report wakes that poll in the workflow; a reconnection that reported
            # nothing asks for it (not a notification: `last_notification_at` stays the
            # server's).
            if watcher.state != PushState.LIVE:
                await self._report(mailbox_id, token, PushState.LIVE, None)
            else:
                await self._signal(mailbox_id, "poll_now", PollRequest())

        async def on_new_mail() -> None:
            watcher.notices += 1
            await self._notify(mailbox_id)

        def on_renewed() -> None:
            watcher.renewals += 1

        while True:
            try:
                await idle.watch(
                    account, on_new_mail, on_live, settings.imap_idle_renew_seconds, on_renewed
                )
            except AuthExpired as error:
                # The mailbox goes auth_expired through its own fetch; no login until Reconnect.
                log.info("mailbox %s: IDLE login refused (%s); not watching", mailbox_id, error)
                await self._report(mailbox_id, token, PushState.FAILED, "The login was refused.")
                watcher.parked_until = float("inf")
                return
            except idle.NoIdle:
                await self._report(mailbox_id, token, PushState.OFF, None)
                watcher.parked_until = loop.time() + NO_IDLE_RECHECK_SECONDS
                return
            except Exception as error:  # Transient, Throttled, or what the library raised
                failures += 1
                was_live = watcher.state == PushState.LIVE
                if failures == 1 and was_live:
                    log.info("mailbox %s: IDLE dropped (%s); reconnecting", mailbox_id, error)
                    continue  # at once: a server restart or a kick is back in a moment
                if watcher.state != PushState.FAILED:
                    words = "The mail server's connection keeps failing; checking by polling."
                    await self._report(mailbox_id, token, PushState.FAILED, words)
                delay = backoff_seconds(
                    failures - (1 if was_live else 0),
                    settings.imap_idle_backoff_max_seconds,
                    self._rand.random,
                )
                log.info("mailbox %s: IDLE failed (%s); again in %.1fs", mailbox_id, error, delay)
                await asyncio.sleep(delay)

    async def _report(
        self, mailbox_id: str, token: str, state: PushState, error: str | None
    ) -> None:
        watcher = self._watchers.get(mailbox_id)
        if watcher is not None:
            watcher.state = state
        kept = await asyncio.to_thread(self._record, mailbox_id, token, state, error)
        if not kept:
            return  # disconnected or reconnected meanwhile: the next read stops this watcher
        event = PushEvent(
            "state",
            state=state,
            error=error,
            safety_poll_seconds=self._settings.push_safety_poll_seconds,
        )
        await self._signal(mailbox_id, "push_event", event)

    def _record(self, mailbox_id: str, token: str, state: PushState, error: str | None) -> bool:
        with transaction(self._engine) as session:
            return mailboxes.record_watch(session, mailbox_id, token, state, error)

    async def _notify(self, mailbox_id: str) -> None:
        at = utcnow()
        await self._signal(mailbox_id, "poll_now", PollRequest("push", at.isoformat()))
        # Off the watch's path: the next EXISTS is read while the row is written.
        self._spawn(asyncio.to_thread(self._noted, mailbox_id, at))

    def _noted(self, mailbox_id: str, at: Any) -> None:
        with transaction(self._engine) as session:
            mailboxes.note_notifications(session, [mailbox_id], at)

    async def _signal(self, mailbox_id: str, name: str, arg: Any) -> None:
        """Best effort: a lost notice costs a poll's delay (the safety net), never mail. A
        workflow not found may be one the API is starting this moment (a fresh connect
        rings the supervisor as soon as the row is stored): asked once more shortly."""
        handle = self._client.get_workflow_handle(mailbox_workflow_id(mailbox_id))
        for attempt in range(2):
            try:
                await asyncio.wait_for(handle.signal(name, arg), SIGNAL_TIMEOUT_SECONDS)
                return
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    log.warning("mailbox %s: %s not signalled (%s)", mailbox_id, name, error)
                    return
                if attempt == 0:
                    await asyncio.sleep(NOT_FOUND_RETRY_SECONDS)
            except TimeoutError:
                log.warning("mailbox %s: %s not signalled in time", mailbox_id, name)
                return


def _due(watcher: Watcher, now: float) -> bool:
    """A watcher that ended may start again: at once if it died, later if it was parked."""
    return watcher.parked_until is None or now >= watcher.parked_until


async def _take_locks(session: psycopg.AsyncConnection[Any], keys: list[str]) -> list[str]:
    """The mailboxes among `keys` whose advisory lock this session wins (held until released
    or the session ends)."""
    by_lock = {lock_key(key): key for key in keys}
    cursor = await session.execute(
        "SELECT k FROM unnest(%s::bigint[]) AS k WHERE pg_try_advisory_lock(k)",
        (list(by_lock),),
    )
    return [by_lock[row[0]] for row in await cursor.fetchall()]


async def _wait(stop: asyncio.Event, ring: asyncio.Event, seconds: float) -> None:
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(ring.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


def account_reader(settings: Settings) -> AccountReader:
    """How a watcher learns its server and password: the mailbox's credentials, decrypted
    only in the watcher's own task (never logged, never in a Temporal payload)."""
    cipher = Cipher.from_settings(settings) if settings.secret_key else None

    def read(token: str) -> idle.IdleAccount:
        if cipher is None:
            raise RuntimeError("DESKCLONE_SECRET_KEY is not set on this worker")
        return idle.account(settings, cipher.decrypt_credentials(token))

    return read


@asynccontextmanager
async def idle_watching(
    client: Client, settings: Settings, engine: Engine
) -> AsyncIterator[IdleSupervisor]:
    """The supervisor for the life of the block; its watchers log out when it ends."""
    supervisor = IdleSupervisor(client, settings, engine, account_reader(settings))
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        yield supervisor
    finally:
        stop.set()
        await task
