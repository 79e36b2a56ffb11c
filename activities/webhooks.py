"""The webhook delivery activity: one round of an endpoint's dispatcher.

A round claims the workspace's new events for the endpoint (deliveries written, cursor moved,
one transaction), sends every delivery that is due, a few at a time, and writes each attempt's
answer. It is idempotent in the way that matters, at least once: a round cut short by a crash
sends again what it had not recorded, under the same `webhook-id`, and loses nothing.

Time: "now" is the workflow's (`DeliverInput.now`), so a retry schedule of a day runs in
seconds under Temporal's time-skipping test server; the signature's timestamp is the real
clock, which is what the receiver checks it against.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
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
from store.models import WebhookEndpoint

# Deliveries one round takes on: a backlog drains a round at a time, each a few seconds.
ROUND_SIZE = 100


@dataclass
class DeliverInput:
    endpoint_id: str
    now: str  # ISO 8601, the workflow's time
    round_size: int = ROUND_SIZE


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
    # Ids of deliveries that have failed for good in this round (retryable by hand).
    failed: list[str] = field(default_factory=list)


@dataclass
class _Item:
    delivery_id: str
    event_id: str
    body: str


@dataclass
class _Plan:
    url: str
    secrets: list[str]
    items: list[_Item]
    more: bool


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
        now = datetime.fromisoformat(inp.now)
        started = time.monotonic()
        plan = await asyncio.to_thread(self._plan, inp.endpoint_id, now, inp.round_size)
        if plan is None:
            return DeliverResult(active=False)
        attempts = await self._send_all(plan)
        finished = now + timedelta(seconds=time.monotonic() - started)
        return await asyncio.to_thread(self._record, inp.endpoint_id, plan, attempts, finished)

    def _plan(self, endpoint_id: str, now: datetime, size: int) -> _Plan | None:
        with transaction(self._engine) as session:
            # Locked: a zombie round of the same endpoint (its worker presumed dead) waits
            # here instead of claiming the same events twice.
            endpoint = webhooks.get_for_worker(session, endpoint_id, lock=True)
            if endpoint is None or not endpoint.enabled:
                return None
            more = webhooks.claim_new(session, endpoint, now, size)
            due = webhooks.due(session, endpoint.id, now, size)
            items = [_Item(d.id, e.id, shapes.body(events.envelope(e))) for d, e in due]
            return _Plan(endpoint.url, self._secrets(endpoint), items, more or len(due) == size)

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

        await asyncio.gather(*(one(item) for item in plan.items))
        return attempts

    def _record(
        self, endpoint_id: str, plan: _Plan, attempts: dict[str, Attempt], now: datetime
    ) -> DeliverResult:
        result = DeliverResult(active=True, more=plan.more, sent=len(attempts))
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
                        result.failed.append(delivery.id)
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
