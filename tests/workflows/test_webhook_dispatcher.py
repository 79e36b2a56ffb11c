"""WebhookDispatcher on Temporal's time-skipping server, delivering over real HTTP to a real
receiver on a free local port: signatures, retries, the day-long schedule, 410, rotation,
private targets. The retry schedule runs in workflow time, so a day passes in seconds."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities
from api.webhook_control import wake
from api.webhook_service import new_secret
from bench.receiver import Receiver, running_receiver
from core.crypto import Cipher
from core.settings import Settings
from domain import webhooks as rules
from domain.outcomes import TicketStatus
from domain.webhooks import DeliveryStatus, DisabledReason
from store import tickets, webhooks
from store.db import transaction
from store.models import WebhookDelivery, WebhookEndpoint, utcnow
from tests.conftest import make_agent, unique_task_queue
from tests.event_support import form_ticket
from worker import WORKFLOW_RUNNER, delivering
from workflows.registry import WORKFLOWS
from workflows.webhooks import dispatcher_workflow_id

SECRET_KEY = "webhook-tests-key"


@dataclass
class Harness:
    env: WorkflowEnvironment
    engine: Engine
    settings: Settings
    agent_id: str
    woken: set[str] = field(default_factory=set)

    def endpoint(self, url: str, secret: str, types: list[str] | None = None) -> str:
        with transaction(self.engine) as session:
            made = webhooks.create(
                session,
                agent_id=self.agent_id,
                url=url,
                event_types=types or [],
                description=None,
                secret_encrypted=Cipher(SECRET_KEY).encrypt(secret.encode()),
            )
            return made.id

    def ticket(self, title: str) -> str:
        new = form_ticket(self.agent_id, f"{title}-{datetime.now(UTC).timestamp()}", title)
        with transaction(self.engine) as session:
            return tickets.create_ticket(session, new).ticket.id

    async def pass_time(self, span: timedelta) -> None:
        """An hour at a time: the test server refuses one sleep of a day ("Timeout expired")."""
        while span > timedelta():
            step = min(span, timedelta(hours=1))
            await self.env.sleep(step)
            span -= step

    async def wake(self, endpoint_id: str) -> None:
        self.woken.add(endpoint_id)
        await wake(self.env.client, self.settings, endpoint_id)

    async def end_dispatchers(self) -> None:
        """A dispatcher left running would wake after this test with no worker to run its
        round, and a pending activity stops the test server from skipping time."""
        for endpoint_id in self.woken:
            handle = self.env.client.get_workflow_handle(dispatcher_workflow_id(endpoint_id))
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test over")

    def deliveries(self, endpoint_id: str) -> list[WebhookDelivery]:
        with transaction(self.engine) as session:
            found = webhooks.deliveries(session, self.agent_id, endpoint_id, status=None, limit=100)
            return list(reversed(found))

    def endpoint_row(self, endpoint_id: str) -> WebhookEndpoint:
        with transaction(self.engine) as session:
            found = webhooks.get(session, self.agent_id, endpoint_id)
            assert found is not None
            return found

    async def dispatcher_status(self, endpoint_id: str) -> WorkflowExecutionStatus | None:
        handle = self.env.client.get_workflow_handle(dispatcher_workflow_id(endpoint_id))
        return (await handle.describe()).status


def harness_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "secret_key": SECRET_KEY,
        "task_queue": unique_task_queue(),
        "worker_max_concurrent_activities": 4,
        "webhook_allow_private": True,
        # One pass a round: an open round runs in real time, which the test server waits for.
        "webhook_linger_seconds": 0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment, postgres_engine: Engine
) -> AsyncIterator[Harness]:
    agent, _ = make_agent(postgres_engine)
    settings = harness_settings()
    async for running in _running(time_skipping_env, postgres_engine, settings, agent.id):
        yield running


async def _running(
    env: WorkflowEnvironment, engine: Engine, settings: Settings, agent_id: str
) -> AsyncIterator[Harness]:
    with ThreadPoolExecutor(4) as pool:
        async with (
            Worker(
                env.client,
                task_queue=settings.task_queue,
                workflows=WORKFLOWS,
                workflow_runner=WORKFLOW_RUNNER,
                activities=build_activities(engine, settings),
                activity_executor=pool,
                max_concurrent_activities=4,
            ),
            delivering(env.client, settings, engine, wake_dispatchers=False),
        ):
            harness = Harness(env, engine, settings, agent_id)
            try:
                yield harness
            finally:
                await harness.end_dispatchers()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def hand_checked(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks signature checked without the library: HMAC-SHA256 over
    `id.timestamp.body` with the base64-decoded secret, any one `v1,` signature matching."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split()]
    return any(hmac.compare_digest(expected, s) for s in offered)


async def test_a_receiver_failing_twice_gets_the_same_id_three_times(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.script = [500, 503]
    secret = new_secret()
    endpoint_id = harness.endpoint(receiver.url, secret)
    ticket_id = harness.ticket("Printer on fire")
    await harness.wake(endpoint_id)
    await harness.env.sleep(timedelta(seconds=40))  # first retry at 5 s, second at 35 s
    got = await receiver.arrived(3, seconds=10)
    assert len({r.headers["webhook-id"] for r in got}) == 1
    assert got[0].headers["webhook-id"].startswith("evt_")
    for request in got:
        event = Webhook(secret).verify(request.body, request.headers)
        assert hand_checked(secret, request.headers, request.body)
        assert request.headers["content-type"] == "application/json"
    assert event["type"] == "ticket.created" and event["id"] == got[0].headers["webhook-id"]
    assert event["data"]["ticket"]["id"] == ticket_id
    assert event["data"]["ticket"]["title"] == "Printer on fire"
    assert event["data"]["ticket"]["requester"] == {
        "email": "ann@customer.example",
        "name": "Ann Lee",
    }
    assert got[0].body == got[2].body  # the same event, byte for byte
    [delivery] = harness.deliveries(endpoint_id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.SUCCEEDED,
        3,
        200,
    )
    assert delivery.last_error is None and harness.endpoint_row(endpoint_id).failing_since is None
    # A wrong secret does not verify.
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(new_secret()).verify(got[0].body, got[0].headers)


async def test_down_past_the_schedule_fails_then_one_retry_delivers(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.status = 503
    endpoint_id = harness.endpoint(receiver.url, new_secret())
    harness.ticket("Nobody listens")
    await harness.wake(endpoint_id)
    await harness.pass_time(sum(rules.RETRY_DELAYS, timedelta()) + timedelta(minutes=5))
    [delivery] = harness.deliveries(endpoint_id)
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == rules.MAX_ATTEMPTS == len(receiver.received)
    assert delivery.last_status_code == 503 and "answered 503" in (delivery.last_error or "")
    assert len(set(receiver.event_ids())) == 1
    # Down for a day: the endpoint is off, with its reason.
    endpoint = harness.endpoint_row(endpoint_id)
    assert not endpoint.enabled and endpoint.disabled_reason == DisabledReason.FAILING
    assert await harness.dispatcher_status(endpoint_id) == WorkflowExecutionStatus.COMPLETED

    # Fixed: back on, and Retry delivers it with one call (here: the service's two steps).
    receiver.status = 200
    with transaction(harness.engine) as session:
        found = webhooks.get(session, harness.agent_id, endpoint_id)
        assert found is not None
        webhooks.update(session, found, enabled=True)
        row = webhooks.delivery(session, harness.agent_id, endpoint_id, delivery.id)
        assert row is not None
        webhooks.retry(session, row, utcnow())
    await harness.wake(endpoint_id)
    await receiver.arrived(rules.MAX_ATTEMPTS + 1, seconds=15)
    await harness.env.sleep(timedelta(seconds=1))
    [again] = harness.deliveries(endpoint_id)
    assert (again.status, again.attempts) == (DeliveryStatus.SUCCEEDED, rules.MAX_ATTEMPTS + 1)


def test_the_schedule_starts_within_10_s_grows_and_lasts_a_day() -> None:
    delays = list(rules.RETRY_DELAYS)
    assert delays[0] <= timedelta(seconds=10)
    assert all(a < b for a, b in pairwise(delays))
    assert sum(delays, timedelta()) >= timedelta(hours=24)


async def test_410_disables_the_endpoint_and_ends_its_dispatcher(
    harness: Harness, receiver: Receiver
) -> None:
    receiver.status = 410
    endpoint_id = harness.endpoint(receiver.url, new_secret())
    harness.ticket("Gone")
    await harness.wake(endpoint_id)
    await receiver.arrived(1)
    await harness.env.sleep(timedelta(seconds=2))
    endpoint = harness.endpoint_row(endpoint_id)
    assert not endpoint.enabled and endpoint.disabled_reason == DisabledReason.GONE
    assert await harness.dispatcher_status(endpoint_id) == WorkflowExecutionStatus.COMPLETED
    [delivery] = harness.deliveries(endpoint_id)
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_status_code == 410
    harness.ticket("After it went")
    await harness.wake(endpoint_id)
    await harness.env.sleep(timedelta(minutes=10))
    assert len(receiver.received) == 1 and len(harness.deliveries(endpoint_id)) == 1


async def test_after_a_rotation_old_and_new_secrets_both_verify(
    harness: Harness, receiver: Receiver
) -> None:
    old, new = new_secret(), new_secret()
    endpoint_id = harness.endpoint(receiver.url, old)
    with transaction(harness.engine) as session:
        found = webhooks.get(session, harness.agent_id, endpoint_id)
        assert found is not None
        webhooks.rotate_secret(session, found, Cipher(SECRET_KEY).encrypt(new.encode()), utcnow())
    harness.ticket("Rotated")
    await harness.wake(endpoint_id)
    [request] = await receiver.arrived(1)
    assert len(request.headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)
        assert hand_checked(secret, request.headers, request.body)


async def test_only_the_types_an_endpoint_asked_for_are_delivered(
    harness: Harness, receiver: Receiver
) -> None:
    endpoint_id = harness.endpoint(receiver.url, new_secret(), ["ticket.status_changed"])
    ticket_id = harness.ticket("Quiet")
    with transaction(harness.engine) as session:
        found = tickets.get(session, harness.agent_id, ticket_id)
        assert found is not None
        tickets.set_status(session, found, TicketStatus.SOLVED)
    await harness.wake(endpoint_id)
    [request] = await receiver.arrived(1)
    assert request.event["type"] == "ticket.status_changed"
    assert request.event["data"]["previous_status"] == "open"
    assert request.event["data"]["ticket"]["status"] == "solved"


async def test_private_targets_are_refused_at_delivery_in_production_settings(
    time_skipping_env: WorkflowEnvironment, postgres_engine: Engine, receiver: Receiver
) -> None:
    """A name that resolves to a loopback address when the delivery is made (as after DNS
    rebinding) is refused, even though the endpoint was saved: the receiver hears nothing."""
    agent, _ = make_agent(postgres_engine)
    settings = harness_settings(webhook_allow_private=False)
    async for harness in _running(time_skipping_env, postgres_engine, settings, agent.id):
        endpoint_id = harness.endpoint(f"https://localhost:{receiver.port}/hook", new_secret())
        harness.ticket("Rebound")
        await harness.wake(endpoint_id)
        await harness.env.sleep(timedelta(seconds=1))
        [delivery] = harness.deliveries(endpoint_id)
        assert delivery.attempts >= 1 and delivery.last_status_code is None
        assert "loopback" in (delivery.last_error or ""), delivery.last_error
        assert receiver.received == []


async def test_an_open_round_sends_new_events_without_a_wake_or_another_activity(
    time_skipping_env: WorkflowEnvironment, postgres_engine: Engine, receiver: Receiver
) -> None:
    agent, _ = make_agent(postgres_engine)
    settings = harness_settings(webhook_linger_seconds=3)
    async for harness in _running(time_skipping_env, postgres_engine, settings, agent.id):
        endpoint_id = harness.endpoint(receiver.url, new_secret())
        harness.ticket("First")
        await harness.wake(endpoint_id)
        await receiver.arrived(1)
        harness.ticket("Second, while the round is open")  # no wake for this one
        [_, second] = await receiver.arrived(2, seconds=5)
        assert second.event["data"]["ticket"]["title"] == "Second, while the round is open"
        handle = harness.env.client.get_workflow_handle(dispatcher_workflow_id(endpoint_id))
        history = await handle.fetch_history()
        scheduled = [
            e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert len(scheduled) == 1  # both events, one activity
        with transaction(harness.engine) as session:
            row = webhooks.get(session, harness.agent_id, endpoint_id)
            assert row is not None and row.busy_until is not None  # the waker leaves it be
