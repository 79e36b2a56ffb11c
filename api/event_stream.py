"""The event feed's reading side, shared by `GET /api/v1/events[/stream]` and the pages'
live stream: cursors, and Server-Sent Events that follow a workspace's events as they commit.

`EventHub` (one per API process) reads the workspaces' event counters a few times a second,
only for workspaces someone is listening to, in one query, and rings each listener whose
workspace moved on; the listener then reads its own events from where it stands. Events are
written by other processes (the worker's activities), so the database is where they are heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

from sqlalchemy import Engine
from sqlmodel import Session
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from api import cursors
from api.deps import db, resources
from api.errors import ApiError
from domain import events as shapes
from store import events
from store.db import transaction
from store.models import Event

log = logging.getLogger("deskclone.api.events")

HUB_TICK_SECONDS = 0.1
STREAM_BATCH = 100
# A comment line this often keeps proxies and load balancers from closing a quiet stream.
HEARTBEAT_SECONDS = 15
# Seq numbers are 32-bit integers in the database.
MAX_SEQ = 2**31 - 1


def encode_cursor(seq: int) -> str:
    return cursors.encode("e", str(seq), sep=":")


def decode_cursor(cursor: str) -> int:
    prefix, seq = cursors.decode(cursor, 2, sep=":")
    if prefix != "e" or not seq.isdigit() or int(seq) > MAX_SEQ:
        raise cursors.invalid()
    return int(seq)


def position(session: Session, agent_id: str, cursor: str) -> int:
    """Where a cursor, or an event id of this workspace (`evt_...`), stands in its order."""
    if cursor.startswith("evt_"):
        found = events.seq_of(session, agent_id, cursor)
        if found is None:
            raise ApiError(400, "invalid_cursor", "No event of this workspace has that id.")
        return found
    return decode_cursor(cursor)


def event_json(event: Event) -> str:
    return shapes.body(events.envelope(event))


class EventHub:
    def __init__(self, engine: Engine, tick_seconds: float = HUB_TICK_SECONDS) -> None:
        self._engine = engine
        self._tick = tick_seconds
        self._listeners: dict[str, set[asyncio.Event]] = {}
        self._heads: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def listen(self, agent_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the workspace has events newer than when it was last set."""
        bell = asyncio.Event()
        self._listeners.setdefault(agent_id, set()).add(bell)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            yield bell
        finally:
            listeners = self._listeners.get(agent_id, set())
            listeners.discard(bell)
            if not listeners:
                self._listeners.pop(agent_id, None)
                self._heads.pop(agent_id, None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._listeners:
            try:
                heads = await run_in_threadpool(self._read, list(self._listeners))
            except Exception as error:  # the database away for a moment: listeners wait a little
                log.warning("reading the event counters failed: %s", error)
                heads = {}
            for agent_id, head in heads.items():
                if self._heads.get(agent_id) != head:
                    self._heads[agent_id] = head
                    for bell in self._listeners.get(agent_id, ()):
                        bell.set()
            await asyncio.sleep(self._tick)

    def _read(self, agent_ids: list[str]) -> dict[str, int]:
        with transaction(self._engine) as session:
            return events.heads(session, agent_ids)


def event_hub(request: Request) -> EventHub:
    hub: EventHub = request.app.state.event_hub
    return hub


async def start_position(request: Request, agent_id: str) -> int:
    """Last-Event-ID (a browser's reconnection sends it), else `after`, else now."""
    given = request.headers.get("last-event-id") or request.query_params.get("after")
    if given:
        return await db(request, lambda s: position(s, agent_id, given.strip()))
    return await db(request, lambda s: events.head(s, agent_id))


def stream_response(request: Request, agent_id: str, start: int) -> EventSourceResponse:
    engine = resources(request).engine
    hub = event_hub(request)

    def read(after: int) -> list[Event]:
        with transaction(engine) as session:
            return list(events.after(session, agent_id, after, limit=STREAM_BATCH))

    async def follow() -> AsyncIterator[ServerSentEvent]:
        at = start
        with hub.listen(agent_id) as bell:
            while True:
                bell.clear()  # before reading: an event committed after the read rings again
                found = await run_in_threadpool(read, at)
                for event in found:
                    yield ServerSentEvent(data=event_json(event), event=event.type, id=event.id)
                if found:
                    at = found[-1].seq
                if len(found) < STREAM_BATCH:
                    await bell.wait()

    return EventSourceResponse(
        follow(),
        ping=HEARTBEAT_SECONDS,
        send_timeout=30,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
