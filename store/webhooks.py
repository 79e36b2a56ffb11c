"""Webhook endpoints and deliveries. Admin-facing queries are scoped by agent; the worker's
take an endpoint id. Each function takes a session and never commits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from domain.webhooks import DeliveryStatus, DisabledReason
from store import events
from store.models import Agent, Event, WebhookDelivery, WebhookEndpoint, utcnow

# After a rotation the old secret signs beside the new one for this long.
ROTATION_OVERLAP = timedelta(hours=24)


def create(
    session: Session,
    *,
    agent_id: str,
    url: str,
    event_types: list[str],
    description: str | None,
    secret_encrypted: str,
) -> WebhookEndpoint:
    """A new endpoint hears of the events after its creation, not the workspace's history."""
    start = events.head(session, agent_id)
    endpoint = WebhookEndpoint(
        agent_id=agent_id,
        url=url,
        event_types=event_types,
        description=description,
        secret_encrypted=secret_encrypted,
        cursor=start,
        signalled_seq=start,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def get(session: Session, agent_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    return session.exec(
        select(WebhookEndpoint).where(
            WebhookEndpoint.agent_id == agent_id, WebhookEndpoint.id == endpoint_id
        )
    ).first()


def get_for_worker(
    session: Session, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint | None:
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.exec(query).first()


def list_for_agent(session: Session, agent_id: str) -> Sequence[WebhookEndpoint]:
    return session.exec(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.agent_id == agent_id)
        .order_by(col(WebhookEndpoint.created_at))
    ).all()


def update(
    session: Session,
    endpoint: WebhookEndpoint,
    *,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    if url is not None:
        endpoint.url = url
    if event_types is not None:
        endpoint.event_types = event_types
    if description is not None:
        endpoint.description = description or None
    if enabled is True and not endpoint.enabled:
        # Back on: it goes on from where it stopped, so nothing that happened meanwhile is
        # lost, and a day of failures is counted afresh.
        endpoint.enabled = True
        endpoint.disabled_reason = None
        endpoint.disabled_at = None
        endpoint.failing_since = None
    elif enabled is False and endpoint.enabled:
        disable(session, endpoint, DisabledReason.MANUAL, utcnow(), "the endpoint was disabled")
    endpoint.updated_at = utcnow()
    session.add(endpoint)
    session.flush()
    return endpoint


def delete(session: Session, endpoint: WebhookEndpoint) -> None:
    # Locked first: a round claiming events for it finishes (or waits) before its deliveries go.
    get_for_worker(session, endpoint.id, lock=True)
    session.execute(
        sa.delete(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id)
    )
    session.delete(endpoint)
    session.flush()


def rotate_secret(
    session: Session, endpoint: WebhookEndpoint, secret_encrypted: str, now: datetime
) -> WebhookEndpoint:
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret_encrypted = secret_encrypted
    endpoint.updated_at = now
    session.add(endpoint)
    session.flush()
    return endpoint


def disable(
    session: Session,
    endpoint: WebhookEndpoint,
    reason: DisabledReason,
    now: datetime,
    words: str,
) -> None:
    """Off, with its reason; its deliveries still waiting are failed (each one retryable)."""
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.disabled_at = now
    endpoint.busy_until = None
    endpoint.updated_at = now
    session.add(endpoint)
    session.execute(
        sa.update(WebhookDelivery)
        .where(
            col(WebhookDelivery.endpoint_id) == endpoint.id,
            col(WebhookDelivery.status) == DeliveryStatus.PENDING,
        )
        .values(status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=words)
    )


def reencrypt_secrets(session: Session, rotate: Callable[[str], str]) -> int:
    """Apply `rotate` to every endpoint's signing secrets (`deskclone rotate-key`)."""
    count = 0
    for endpoint in session.exec(select(WebhookEndpoint)).all():
        endpoint.secret_encrypted = rotate(endpoint.secret_encrypted)
        count += 1
        if endpoint.previous_secret_encrypted is not None:
            endpoint.previous_secret_encrypted = rotate(endpoint.previous_secret_encrypted)
            count += 1
        session.add(endpoint)
    session.flush()
    return count


# --- The dispatcher's work ---------------------------------------------------------------


def claim_new(session: Session, endpoint: WebhookEndpoint, now: datetime, limit: int) -> bool:
    """Deliveries for the workspace's events after the endpoint's cursor (those of its types),
    due now, and the cursor moved past them, in one transaction: a crash before the commit
    claims them again, one after it finds them waiting. Returns whether more events wait."""
    found = events.after(session, endpoint.agent_id, endpoint.cursor, limit=limit)
    if not found:
        return False
    wanted = set(endpoint.event_types)
    for event in found:
        if wanted and event.type not in wanted:
            continue
        session.add(
            WebhookDelivery(
                agent_id=endpoint.agent_id,
                endpoint_id=endpoint.id,
                event_id=event.id,
                event_type=event.type,
                next_attempt_at=now,
                created_at=now,
            )
        )
    endpoint.cursor = found[-1].seq
    session.add(endpoint)
    session.flush()
    return len(found) == limit


def due(
    session: Session, endpoint_id: str, now: datetime, limit: int
) -> Sequence[tuple[WebhookDelivery, Event]]:
    """Waiting deliveries whose time has come, oldest event first, with their events."""
    return session.exec(
        select(WebhookDelivery, Event)
        .join(Event, col(Event.id) == col(WebhookDelivery.event_id))
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            col(WebhookDelivery.next_attempt_at) <= now,
        )
        .order_by(col(Event.seq))
        .limit(limit)
    ).all()


def next_due(session: Session, endpoint_id: str) -> datetime | None:
    found: datetime | None = session.exec(
        select(sa.func.min(WebhookDelivery.next_attempt_at)).where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
    ).first()
    return found


def deliveries_by_id(session: Session, ids: Sequence[str]) -> dict[str, WebhookDelivery]:
    if not ids:
        return {}
    rows = session.exec(select(WebhookDelivery).where(col(WebhookDelivery.id).in_(ids))).all()
    return {row.id: row for row in rows}


# --- What the API shows and does -------------------------------------------------------


def deliveries(
    session: Session,
    agent_id: str,
    endpoint_id: str,
    *,
    status: DeliveryStatus | None,
    limit: int,
    before: datetime | None = None,
) -> Sequence[WebhookDelivery]:
    """Newest first."""
    query = select(WebhookDelivery).where(
        WebhookDelivery.agent_id == agent_id, WebhookDelivery.endpoint_id == endpoint_id
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if before is not None:
        query = query.where(col(WebhookDelivery.created_at) < before)
    order = (col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc())
    return session.exec(query.order_by(*order).limit(limit)).all()


def delivery(
    session: Session, agent_id: str, endpoint_id: str, delivery_id: str
) -> WebhookDelivery | None:
    return session.exec(
        select(WebhookDelivery).where(
            WebhookDelivery.agent_id == agent_id,
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.id == delivery_id,
        )
    ).first()


def retry(session: Session, delivery: WebhookDelivery, now: datetime) -> WebhookDelivery:
    """Due at once: a failed delivery gets one more attempt, a waiting one its next now."""
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    session.add(delivery)
    session.flush()
    return delivery


# --- Waking dispatchers (api/webhook_control.py) ---------------------------------


@dataclass(frozen=True)
class Behind:
    endpoint_id: str
    agent_id: str
    head: int


def behind(session: Session, now: datetime) -> list[Behind]:
    """Enabled endpoints whose workspace has events newer than their dispatcher was woken
    for, unless a round is running that watches for them itself. Reads the workspaces'
    counters, committed with their events: never early, never missing one."""
    head = Agent.next_event_seq - 1
    rows = session.exec(
        select(WebhookEndpoint.id, WebhookEndpoint.agent_id, head)
        .join(Agent, col(Agent.id) == col(WebhookEndpoint.agent_id))
        .where(
            col(WebhookEndpoint.enabled).is_(True),
            head > WebhookEndpoint.signalled_seq,
            sa.or_(
                col(WebhookEndpoint.busy_until).is_(None), col(WebhookEndpoint.busy_until) < now
            ),
        )
    ).all()
    return [Behind(endpoint_id, agent_id, int(seq)) for endpoint_id, agent_id, seq in rows]


def round_ended(session: Session, endpoint: WebhookEndpoint) -> None:
    """A round is over: from now on new events need a wake-up, those it claimed do not."""
    endpoint.busy_until = None
    endpoint.signalled_seq = max(endpoint.signalled_seq, endpoint.cursor)
    session.add(endpoint)
    session.flush()


def mark_signalled(session: Session, woken: Sequence[Behind]) -> None:
    for item in woken:
        session.execute(
            sa.update(WebhookEndpoint)
            .where(
                col(WebhookEndpoint.id) == item.endpoint_id,
                col(WebhookEndpoint.signalled_seq) < item.head,
            )
            .values(signalled_seq=item.head)
        )
