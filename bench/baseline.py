"""The floor every intake benchmark is measured against: a no-op one-activity workflow on the
same Temporal server, started and awaited the same way the API starts and awaits an intake."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


@activity.defn(name="bench_noop")
def noop(value: str) -> str:
    return value


@workflow.defn(name="BenchNoopWorkflow")
class NoopWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_activity(
            noop, value, start_to_close_timeout=timedelta(seconds=30)
        )


async def noop_workflow_latencies(address: str, count: int) -> list[float]:
    """Milliseconds from start to result for `count` sequential no-op workflows."""
    client = await Client.connect(address)
    task_queue = f"bench-baseline-{uuid.uuid4()}"
    latencies: list[float] = []
    with ThreadPoolExecutor(4) as pool:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[NoopWorkflow],
            activities=[noop],
            activity_executor=pool,
            max_concurrent_activities=4,
        ):
            for _ in range(count):
                started = time.perf_counter()
                handle = await client.start_workflow(
                    NoopWorkflow.run, "x", id=f"bench-noop-{uuid.uuid4()}", task_queue=task_queue
                )
                await handle.result()
                latencies.append((time.perf_counter() - started) * 1000)
    return latencies
