"""The Temporal worker: explicit lists of workflows and activities, one task queue.

`deskclone worker` and `python worker.py` both run `main()`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities import build_activities, build_webhook_activities
from api.idle_supervisor import idle_watching
from api.webhook_control import OutboxWaker
from core import metrics
from core.json_logs import secret_values
from core.logs import configure_logging
from core.settings import Settings
from core.shared_code import share_workflow_code
from core.temporal import connect
from providers.registry import close_shared_connections
from store.db import make_engine
from workflows.registry import WORKFLOWS

log = logging.getLogger("deskclone.worker")

# The default sandbox, on purpose: `with_passthrough_all_modules()` would save about 30 KiB
# per cached workflow, but a workflow module's own `from datetime import datetime` (random,
# uuid) would then reach the real thing, unguarded (tests/workflows/test_sandbox.py). The
# sandbox's per-workflow cost is kept down instead by what `workflows/` imports: plain data
# and activity types are passed through, and the package `__init__` imports nothing; and the
# modules it imports afresh for each run are compiled once per process (`core/shared_code.py`).
WORKFLOW_RUNNER = SandboxedWorkflowRunner()
share_workflow_code(["workflows"])


def build_worker(
    client: Client, settings: Settings, engine: Engine, executor: ThreadPoolExecutor
) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        activities=build_activities(engine, settings),
        # Activities are synchronous database code: they run on this pool, not the event loop.
        activity_executor=executor,
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        # The mailbox fetch runs as a local activity, on the same pool.
        max_concurrent_local_activities=settings.worker_max_concurrent_activities,
        max_cached_workflows=settings.worker_max_cached_workflows,
        # Let in-flight activities finish on SIGTERM instead of abandoning them to a timeout.
        graceful_shutdown_timeout=timedelta(seconds=20),
    )


@asynccontextmanager
async def delivering(
    client: Client, settings: Settings, engine: Engine, *, wake_dispatchers: bool = True
) -> AsyncIterator[None]:
    """The webhook side of a worker process: a second `Worker` for the delivery activities,
    on a task queue of their own (their slots are not intake's: no endpoint, however slow,
    holds up a ticket), and the outbox waker that wakes dispatchers when events are written
    (tests that wake their own dispatchers go without it)."""
    deliveries = build_webhook_activities(engine, settings)
    stop = asyncio.Event()
    waking = OutboxWaker(client, settings, engine).run(stop) if wake_dispatchers else stop.wait()
    waker = asyncio.create_task(waking)
    try:
        async with Worker(
            client,
            task_queue=settings.webhook_task_queue,
            activities=[deliveries.deliver],
            max_concurrent_activities=settings.webhook_max_concurrent_deliveries,
            graceful_shutdown_timeout=timedelta(seconds=20),
        ):
            yield
    finally:
        stop.set()
        await waker
        await deliveries.aclose()


def make_runtime(settings: Settings) -> Runtime | None:
    """With DESKCLONE_METRICS_PORT: a Temporal runtime serving Prometheus metrics there, the
    SDK's `temporal_*` and our `deskclone_*` counters on one endpoint (docs/operations.md)."""
    if settings.metrics_port is None:
        return None
    host = settings.metrics_host
    host = f"[{host}]" if ":" in host else host
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"{host}:{settings.metrics_port}", counters_total_suffix=True
            )
        )
    )
    metrics.bind_temporal_meter(runtime.metric_meter)
    log.info("worker metrics on http://%s:%d/metrics", host, settings.metrics_port)
    return runtime


async def connect_worker_client(settings: Settings) -> Client:
    runtime = make_runtime(settings)
    if runtime is None:
        return await connect(settings)
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, runtime=runtime
    )


async def run(settings: Settings) -> None:
    # As many connections as activity threads (half pooled, half overflow): an activity never
    # waits for a connection another thread holds idle (docs/benchmarks.md §7).
    pool = max(1, settings.worker_max_concurrent_activities // 2)
    engine = make_engine(settings.effective_database_url, pool_size=pool)
    client = await connect_worker_client(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=settings.worker_max_concurrent_activities) as executor:
        worker = build_worker(client, settings, engine, executor)
        # Everything imported and built so far lives as long as the process: keep it out of
        # the collector's full passes, which otherwise stall every workflow for as long as
        # they take to walk it (hundreds of ms with 1,000 mailboxes; docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        log.info("worker polling task queue %s", settings.task_queue)
        # IMAP IDLE connections live beside the workers, not in activity slots; they log out
        # first when the worker stops (docs/scaling.md, IMAP IDLE).
        async with (
            worker,
            delivering(client, settings, engine),
            idle_watching(client, settings, engine),
        ):
            await stop.wait()
            log.info("worker stopping; finishing in-flight activities")
    engine.dispose()
    close_shared_connections()
    # A Temporal runtime of our own (DESKCLONE_METRICS_PORT) must go while the interpreter
    # still runs: one left to interpreter exit aborts it about one time in three
    # ("PyGILState_Release ... finalizing"). The metrics bridge and the client hold it.
    metrics.bind_temporal_meter(None)
    del worker, client
    gc.unfreeze()  # frozen at start-up, they would be out of this collection's reach
    gc.collect()


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, secret_values(settings))
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
