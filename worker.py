"""The Temporal worker: explicit lists of workflows and activities, one task queue.

`deskclone worker` and `python worker.py` both run `main()`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from activities import build_activities
from deskclone.logs import configure_logging
from deskclone.settings import Settings
from deskclone.temporal import connect
from store.db import make_engine
from workflows import WORKFLOWS

log = logging.getLogger("deskclone.worker")


def build_worker(
    client: Client, settings: Settings, engine: Engine, executor: ThreadPoolExecutor
) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(engine, settings),
        # Activities are synchronous database code: they run on this pool, not the event loop.
        activity_executor=executor,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        # Let in-flight activities finish on SIGTERM instead of abandoning them to a timeout.
        graceful_shutdown_timeout=timedelta(seconds=20),
    )


async def run(settings: Settings) -> None:
    engine = make_engine(settings.effective_database_url)
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=settings.worker_max_concurrent_activities) as executor:
        worker = build_worker(client, settings, engine, executor)
        log.info("worker polling task queue %s", settings.task_queue)
        async with worker:
            await stop.wait()
            log.info("worker stopping; finishing in-flight activities")
    engine.dispose()


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
