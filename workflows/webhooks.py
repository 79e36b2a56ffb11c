"""WebhookDispatcher: one long-lived workflow per enabled webhook endpoint (`webhooks:{id}`).

It runs delivery rounds (`deliver_webhooks`, on the delivery task queue): each round claims the
workspace's new events for the endpoint, sends what is due and records the answers. Between
rounds it sleeps until the next retry is due or until `wake` (new events, a retry by hand, the
endpoint switched back on). A backlog is a round after another at once; an endpoint disabled
(410, a day of failures, by hand) or deleted ends its dispatcher.

Why this shape (docs/events.md): a workflow per delivery would cost a workflow start and its
history per event, several per ticket with several endpoints; here a round of up to 100
deliveries costs one activity, and a slow endpoint slows only its own dispatcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import DeliverInput, DeliverResult, WebhookActivities
    from workflows.policies import (
        DELIVERY_HEARTBEAT,
        DELIVERY_RETRY,
        DELIVERY_ROUND_TIMEOUT,
        DISPATCHER_IDLE_CHECK,
    )

WAKE_SIGNAL = "wake"
# Continue-As-New after this many rounds in one run, or at the server's suggestion.
ROUNDS_PER_RUN = 500


def dispatcher_workflow_id(endpoint_id: str) -> str:
    return f"webhooks:{endpoint_id}"


@dataclass
class DispatcherInput:
    endpoint_id: str
    # The task queue of the delivery activities (Settings.webhook_task_queue).
    delivery_task_queue: str
    rounds_per_run: int = ROUNDS_PER_RUN
    # Settings.webhook_linger_seconds: how long a round stays open for more events.
    linger_seconds: float = 2.0


@workflow.defn(name="WebhookDispatcher")
class WebhookDispatcher:
    @workflow.init
    def __init__(self, inp: DispatcherInput) -> None:  # noqa: ARG002
        self._woken = False
        self.rounds = 0
        self.last: DeliverResult | None = None

    @workflow.signal(name=WAKE_SIGNAL)
    def wake(self) -> None:
        self._woken = True

    @workflow.query(name="state")
    def state(self) -> DeliverResult | None:
        return self.last

    @workflow.run
    async def run(self, inp: DispatcherInput) -> None:
        while True:
            # Cleared before the round: a wake that comes while it runs means another round.
            self._woken = False
            result: DeliverResult = await workflow.execute_activity_method(
                WebhookActivities.deliver,
                DeliverInput(
                    inp.endpoint_id,
                    workflow.now().isoformat(),
                    linger_seconds=inp.linger_seconds,
                ),
                task_queue=inp.delivery_task_queue,
                start_to_close_timeout=DELIVERY_ROUND_TIMEOUT,
                heartbeat_timeout=DELIVERY_HEARTBEAT,
                retry_policy=DELIVERY_RETRY,
            )
            self.last = result
            self.rounds += 1
            if not result.active:
                return
            if not result.more:
                try:
                    await workflow.wait_condition(
                        lambda: self._woken,
                        timeout=self._until(result.next_due),
                        timeout_summary="next retry or idle check",
                    )
                except TimeoutError:
                    pass
            if workflow.info().is_continue_as_new_suggested() or self.rounds >= inp.rounds_per_run:
                await workflow.wait_condition(workflow.all_handlers_finished)
                # The next run starts with a round: a wake that came meanwhile is served.
                workflow.continue_as_new(inp)

    def _until(self, next_due: str | None) -> timedelta:
        if next_due is None:
            return DISPATCHER_IDLE_CHECK
        wait = datetime.fromisoformat(next_due) - workflow.now()
        return max(timedelta(milliseconds=1), min(wait, DISPATCHER_IDLE_CHECK))
