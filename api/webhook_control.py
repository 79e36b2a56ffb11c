"""Starting and waking webhook dispatchers, for the API (like `mailbox_control`) and for the
worker's `OutboxWaker` (no Starlette here: the worker imports this module alone).

`wake` is signal-with-start, so an endpoint whose dispatcher ended (disabled, terminated by an
operator, lost with a dev server's state) gets one back from the database's view.

`OutboxWaker` runs in every worker process beside the `Worker`s. Event writers (the intake
and mailbox activities, the API's status changes) know nothing of Temporal: the waker reads
the workspaces' event counters a few times a second and wakes each enabled endpoint's
dispatcher once for each advance. It signals first and then records the advance, so a waker
killed in between wakes it again after restart (a doubled wake is one more empty round,
never a lost event); several workers' wakers rarely double up, as the record is shared.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings
from store import events, webhooks
from store.db import transaction
from store.models import utcnow
from store.notify import drain, listening
from workflows.webhooks import (
    WAKE_SIGNAL,
    DispatcherInput,
    WebhookDispatcher,
    dispatcher_workflow_id,
)

log = logging.getLogger("deskclone.webhooks")

# On SQLite, how often the waker reads the event counters: the most a new event waits to be
# noticed. On PostgreSQL, how long it lets a burst of notifications land before reading them.
WAKER_TICK_SECONDS = 0.1
# On PostgreSQL the waker reads the counters this often even with no notification (one lost
# with a dropped connection is found this late at worst).
LISTEN_FALLBACK_SECONDS = 30.0


async def wake(client: Client, settings: Settings, endpoint_id: str) -> None:
    await client.start_workflow(
        WebhookDispatcher.run,
        DispatcherInput(
            endpoint_id,
            settings.webhook_task_queue,
            linger_seconds=settings.webhook_linger_seconds,
        ),
        id=dispatcher_workflow_id(endpoint_id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"webhook endpoint {endpoint_id}",
        start_signal=WAKE_SIGNAL,
    )


async def wake_if_running(client: Client, endpoint_id: str) -> None:
    """For a deleted endpoint: its running dispatcher finds it gone and ends; none is started."""
    handle = client.get_workflow_handle(dispatcher_workflow_id(endpoint_id))
    try:
        await handle.signal(WAKE_SIGNAL)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise


class OutboxWaker:
    def __init__(
        self,
        client: Client,
        settings: Settings,
        engine: Engine,
        tick_seconds: float = WAKER_TICK_SECONDS,
    ) -> None:
        self._client = client
        self._settings = settings
        self._engine = engine
        self._tick = tick_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """On PostgreSQL, woken by the NOTIFY an event's commit sends (and every
        `LISTEN_FALLBACK_SECONDS` anyway): an idle system costs the database nothing. On
        SQLite (`deskclone dev`), a read every `tick_seconds`."""
        listening = self._engine.dialect.name == "postgresql"
        while not stop.is_set():
            try:
                if listening:
                    await self._listen(stop)
                else:
                    await self.once()
                    await _wait(stop, self._tick)
            except Exception as error:  # the database or Temporal away for a moment
                log.warning("waking webhook dispatchers failed (%s); trying again", error)
                await _wait(stop, 1.0)

    async def _listen(self, stop: asyncio.Event) -> None:
        async with listening(self._engine, events.EVENTS_CHANNEL) as connection:
            await self.once()  # what was written before we listened
            read_at = time.monotonic()
            while not stop.is_set():
                rang = False
                # A short wait, so that a stopping worker is not held up by a quiet channel.
                async for _ in connection.notifies(timeout=1.0, stop_after=1):
                    rang = True
                if rang:
                    # A burst rings many times: let it land, then read the counters once.
                    await _wait(stop, self._tick)
                    await drain(connection)
                elif time.monotonic() - read_at < LISTEN_FALLBACK_SECONDS:
                    continue
                await self.once()
                read_at = time.monotonic()

    async def once(self) -> int:
        """Wakes every dispatcher behind its workspace's events; returns how many."""
        behind = await asyncio.to_thread(self._behind)
        if not behind:
            return 0
        outcomes = await asyncio.gather(
            *(wake(self._client, self._settings, item.endpoint_id) for item in behind),
            return_exceptions=True,
        )
        woken = [
            item
            for item, out in zip(behind, outcomes, strict=True)
            if not isinstance(out, BaseException)
        ]
        for out in outcomes:
            if isinstance(out, RPCError):
                log.warning("a webhook dispatcher could not be woken: %s", out)
            elif isinstance(out, BaseException):
                raise out
        await asyncio.to_thread(self._mark, woken)
        return len(woken)

    def _behind(self) -> list[webhooks.Behind]:
        with transaction(self._engine) as session:
            return webhooks.behind(session, utcnow())

    def _mark(self, woken: list[webhooks.Behind]) -> None:
        with transaction(self._engine) as session:
            webhooks.mark_signalled(session, woken)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
