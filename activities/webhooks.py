"""The webhook delivery activity: one round of an endpoint's dispatcher.

A round claims the workspace's new events for the endpoint (deliveries written, cursor moved,
one transaction), sends every delivery that is due, a few at a time, and writes each attempt's
answer. While events keep coming it goes on: it watches the workspace's event counter itself
(a primary-key read every `POLL_SECONDS`) and sends each new event at once, so under steady
traffic a delivery costs no Temporal round trip; quiet for `linger_seconds`, or open for
`ROUND_MAX_SECONDS`, it ends and its workflow waits for a wake-up or the next retry.

At least once: a round cut short by a crash sends again what it had not recorded, under the
same `webhook-id`, and loses nothing.

Time: "now" is the workflow's (`DeliverInput.now`, plus the time the round has run), so a retry
schedule of a day runs in seconds under Temporal's time-skipping test server; the signature's
timestamp is the real clock, which is what the receiver checks it against.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from temporalio import activity

from activities.webhook_sender import Attempt, Sender
from core.crypto import Cipher, SecretsUnavailable
from core.settings import Settings
from domain import events as shapes
from domain import webhooks as rules
from domain.webhooks import DeliveryStatus, DisabledReason
from store import events, webhooks
from store.db import transaction
from store.models import WebhookEndpoint, utcnow

# Deliveries one pass takes on: a backlog drains a pass at a time, each a few seconds.
ROUND_SIZE = 100
# While open, a round reads the event counter this often: the most a new event waits.
POLL_SECONDS = 0.05
# A round hands back to its workflow this often even under steady traffic.
ROUND_MAX_SECONDS = 60.0
# How long an open round stays open once quiet.
LINGER_SECONDS = 2.0
# Heartbeats while requests are in flight (a slow receiver takes up to 15 s to answer).
HEARTBEAT_SECONDS = 5.0


@dataclass
class DeliverInput:
    endpoint_id: str
    now: str  # ISO 8601, the workflow's time
    round_size: int = ROUND_SIZE
    linger_seconds: float = LINGER_SECONDS


@dataclass
class DeliverResult:
    # False: the endpoint is gone or disabled; its dispatcher ends.
    active: bool
    # More events or due deliveries wait: the next round goes at once.
    more: bool = False
    # When the next waiting delivery is due (ISO 8601), if any waits.
    next_due: str | None = None
    sent: int = 0
    succeeded: int = 0
    # Deliveries that failed for good in this round (listed, retryable by hand).
    failed: int = 0


@dataclass
class _Item:
    delivery_id: str
    event_id: str
    body: str


@dataclass
class _Plan:
    agent_id: str
    cursor: int
    url: str
    secrets: list[str]
    items: list[_Item]
    more: bool


class _Clock:
    """The workflow's time when the round started, moved on by the time the round has run."""

    def __init__(self, workflow_now: str) -> None:
        self._start = datetime.fromisoformat(workflow_now)
        self._started = time.monotonic()
        self.open_since = self._started

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._started)

    def open_for(self) -> float:
        return time.monotonic() - self._started


class WebhookActivities:
    def __init__(self, engine: Engine, settings: Settings, cipher: Cipher | None) -> None:
        self._engine = engine
        self._cipher = cipher
        self._per_endpoint = settings.webhook_concurrency_per_endpoint
        self._sender = Sender(allow_private=settings.webhook_allow_private)

    async def aclose(self) -> None:
        await self._sender.aclose()

    @activity.defn(name="deliver_webhooks")
    async def deliver(self, inp: DeliverInput) -> DeliverResult:
        clock = _Clock(inp.now)
        total = DeliverResult(active=True)
        quiet_since = time.monotonic()
        due_at: datetime | None = None
        while True:
            plan = await asyncio.to_thread(
                self._plan, inp.endpoint_id, clock.now(), inp.round_size, inp.linger_seconds
            )
            if plan is None:
                total.active = False
                return total
            if plan.items:
                attempts = await self._send_all(plan)
                done = await asyncio.to_thread(self._record, inp.endpoint_id, attempts, clock.now())
                total.sent += done.sent
                total.succeeded += done.succeeded
                total.failed += done.failed
                if not done.active:
                    total.active = False
                    return total
                due_at = datetime.fromisoformat(done.next_due) if done.next_due else None
                quiet_since = time.monotonic()
            if plan.more and clock.open_for() < ROUND_MAX_SECONDS:
                continue
            if plan.more or not await self._more_soon(plan, clock, due_at, quiet_since, inp):
                total.more = plan.more
                break
        next_due = await asyncio.to_thread(self._end_round, inp.endpoint_id)
        total.next_due = next_due.isoformat() if next_due is not None else None
        return total

    async def _more_soon(
        self,
        plan: _Plan,
        clock: _Clock,
        due_at: datetime | None,
        quiet_since: float,
        inp: DeliverInput,
    ) -> bool:
        """Whether, while the round stays open, a new event comes or a retry falls due."""
        while (
            time.monotonic() - quiet_since < inp.linger_seconds
            and clock.open_for() < ROUND_MAX_SECONDS
        ):
            await asyncio.sleep(POLL_SECONDS)
            activity.heartbeat()
            if await asyncio.to_thread(self._head, plan.agent_id) > plan.cursor:
                return True
            if due_at is not None and clock.now() >= due_at:
                return True
        return False

    def _head(self, agent_id: str) -> int:
        with transaction(self._engine) as session:
            return events.head(session, agent_id)

    def _plan(self, endpoint_id: str, now: datetime, size: int, linger: float) -> _Plan | None:
        with transaction(self._engine) as session:
            # Locked: a zombie round of the same endpoint (its worker presumed dead) waits
            # here instead of claiming the same events twice.
            endpoint = webhooks.get_for_worker(session, endpoint_id, lock=True)
            if endpoint is None or not endpoint.enabled:
                return None
            more = webhooks.claim_new(session, endpoint, now, size)
            if linger > 0:  # the round watches for new events itself meanwhile
                endpoint.busy_until = utcnow() + timedelta(seconds=linger + HEARTBEAT_SECONDS)
                session.add(endpoint)
            due = webhooks.due(session, endpoint.id, now, size)
            items = [_Item(d.id, e.id, shapes.body(events.envelope(e))) for d, e in due]
            return _Plan(
                endpoint.agent_id,
                endpoint.cursor,
                endpoint.url,
                self._secrets(endpoint),
                items,
                more or len(due) == size,
            )

    def _end_round(self, endpoint_id: str) -> datetime | None:
        with transaction(self._engine) as session:
            endpoint = webhooks.get_for_worker(session, endpoint_id, lock=True)
            if endpoint is None:
                return None
            webhooks.round_ended(session, endpoint)
            return webhooks.next_due(session, endpoint.id)

    def _secrets(self, endpoint: WebhookEndpoint) -> list[str]:
        """The current secret, and the one before it while its day of overlap lasts (by the
        real clock, as the API set it: a rotation is about receivers, not the schedule)."""
        now = datetime.now(UTC)
        if self._cipher is None:
            raise SecretsUnavailable("DESKCLONE_SECRET_KEY is not set on this worker")
        found = [self._cipher.decrypt(endpoint.secret_encrypted).decode()]
        expires = endpoint.previous_secret_expires_at
        if endpoint.previous_secret_encrypted and expires is not None and expires > now:
            found.append(self._cipher.decrypt(endpoint.previous_secret_encrypted).decode())
        return found

    async def _send_all(self, plan: _Plan) -> dict[str, Attempt]:
        gate = asyncio.Semaphore(self._per_endpoint)
        attempts: dict[str, Attempt] = {}

        async def one(item: _Item) -> None:
            async with gate:
                attempts[item.delivery_id] = await self._sender.post(
                    plan.url, plan.secrets, item.event_id, item.body
                )
            activity.heartbeat(len(attempts))

        async def beat() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                activity.heartbeat(len(attempts))

        beating = asyncio.create_task(beat())
        try:
            await asyncio.gather(*(one(item) for item in plan.items))
        finally:
            beating.cancel()
        return attempts

    def _record(
        self, endpoint_id: str, attempts: dict[str, Attempt], now: datetime
    ) -> DeliverResult:
        result = DeliverResult(active=True, sent=len(attempts))
        with transaction(self._engine) as session:
            endpoint = webhooks.get_for_worker(session, endpoint_id, lock=True)
            if endpoint is None:
                return DeliverResult(active=False, sent=len(attempts))
            rows = webhooks.deliveries_by_id(session, list(attempts))
            gone: Attempt | None = None
            for delivery_id, attempt in attempts.items():
                delivery = rows.get(delivery_id)
                if delivery is None or delivery.status != DeliveryStatus.PENDING:
                    continue  # deleted, or already settled by an overlapping round
                delivery.attempts += 1
                delivery.last_attempt_at = now
                delivery.last_status_code = attempt.status_code
                delivery.last_error = attempt.error
                if attempt.succeeded:
                    delivery.status = DeliveryStatus.SUCCEEDED
                    delivery.next_attempt_at = None
                    result.succeeded += 1
                else:
                    delivery.next_attempt_at = rules.next_attempt(delivery.attempts, now)
                    if delivery.next_attempt_at is None:
                        delivery.status = DeliveryStatus.FAILED
                        result.failed += 1
                    if attempt.status_code is not None and rules.disables_endpoint(
                        attempt.status_code
                    ):
                        gone = attempt
                session.add(delivery)
            failing = bool(attempts) and not result.succeeded
            if result.succeeded:
                endpoint.failing_since = None
            elif failing:
                endpoint.failing_since = endpoint.failing_since or now
            session.add(endpoint)
            session.flush()
            if endpoint.enabled and gone is not None:
                words = "The receiver answered 410 Gone: the endpoint was disabled."
                webhooks.disable(session, endpoint, DisabledReason.GONE, now, words)
            elif (
                endpoint.enabled and failing and rules.failing_too_long(endpoint.failing_since, now)
            ):
                words = "No delivery succeeded for a day: the endpoint was disabled."
                webhooks.disable(session, endpoint, DisabledReason.FAILING, now, words)
            if not endpoint.enabled:
                return DeliverResult(active=False, sent=len(attempts), failed=result.failed)
            upcoming = webhooks.next_due(session, endpoint.id)
            result.next_due = upcoming.isoformat() if upcoming is not None else None
        return result
