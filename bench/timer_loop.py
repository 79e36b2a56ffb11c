"""The floor for `bench.fanout`: a bare timer loop with one no-op activity per tick.

Kept in a module of its own with nothing but Temporal imports, so the workflow sandbox can
import it cleanly."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_tick")
def tick(value: str) -> str:
    return value


@workflow.defn(name="BenchTimerLoopWorkflow")
class TimerLoopWorkflow:
    @workflow.run
    async def run(self, interval_seconds: int) -> None:
        while True:
            await workflow.execute_activity(tick, "x", start_to_close_timeout=timedelta(seconds=30))
            await workflow.sleep(timedelta(seconds=interval_seconds))
