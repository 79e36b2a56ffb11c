"""The worker's outbox waker on PostgreSQL: an event's commit rings a NOTIFY that wakes the
endpoint's dispatcher within moments, and a quiet system costs the database nothing."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.webhook_control import OutboxWaker
from core.settings import Settings
from store import webhooks
from store.db import transaction
from store.models import utcnow
from tests.conftest import make_agent, unique_task_queue
from tests.store.test_webhooks import endpoint, ticket
from workflows.webhooks import dispatcher_workflow_id


async def behind(engine: Engine, endpoint_id: str) -> bool:
    def read() -> bool:
        with transaction(engine) as session:
            return endpoint_id in {b.endpoint_id for b in webhooks.behind(session, utcnow())}

    return await asyncio.to_thread(read)


async def test_a_committed_event_wakes_its_dispatcher_through_notify(
    postgres_engine: Engine, dev_server_env: WorkflowEnvironment
) -> None:
    agent, _ = make_agent(postgres_engine)
    made = endpoint(postgres_engine, agent.id, [], "s")
    settings = Settings(task_queue=unique_task_queue())
    stop = asyncio.Event()
    # The fallback read is 30 s away: only the notification explains a wake-up within 3 s.
    waker = OutboxWaker(dev_server_env.client, settings, postgres_engine, tick_seconds=0.05)
    running = asyncio.create_task(waker.run(stop))
    try:
        await asyncio.sleep(1.5)  # listening
        started = time.monotonic()
        await asyncio.to_thread(ticket, postgres_engine, agent.id, "rings")
        while await behind(postgres_engine, made.id):
            assert time.monotonic() - started < 3, "the dispatcher was not woken"
            await asyncio.sleep(0.05)
        handle = dev_server_env.client.get_workflow_handle(dispatcher_workflow_id(made.id))
        assert (await handle.describe()).id == dispatcher_workflow_id(made.id)
        await handle.terminate("test over")
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)  # a quiet channel does not hold a stopping worker
