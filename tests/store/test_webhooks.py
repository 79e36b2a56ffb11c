"""Webhook queries: claiming events once, the waker's view, key rotation."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import Engine

from store import tickets, webhooks
from store.db import transaction
from store.models import WebhookEndpoint, utcnow
from tests.conftest import make_agent
from tests.event_support import form_ticket


def endpoint(engine: Engine, agent_id: str, types: list[str], secret: str) -> WebhookEndpoint:
    with transaction(engine) as session:
        return webhooks.create(
            session,
            agent_id=agent_id,
            url="https://hooks.example.com/h",
            event_types=types,
            description=None,
            secret_encrypted=secret,
        )


def ticket(engine: Engine, agent_id: str, ref: str) -> None:
    with transaction(engine) as session:
        tickets.create_ticket(session, form_ticket(agent_id, ref, title=ref))


def test_claims_start_after_creation_happen_once_and_follow_the_types(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    ticket(engine, agent.id, "before")
    every = endpoint(engine, agent.id, [], "s1")
    statuses = endpoint(engine, agent.id, ["ticket.status_changed"], "s2")
    ticket(engine, agent.id, "after-1")
    ticket(engine, agent.id, "after-2")
    now = utcnow()
    with transaction(engine) as session:
        for made in (every, statuses):
            row = webhooks.get_for_worker(session, made.id, lock=True)
            assert row is not None
            assert webhooks.claim_new(session, row, now, 1) is True  # a full batch: more wait
            assert webhooks.claim_new(session, row, now, 10) is False
            assert webhooks.claim_new(session, row, now, 10) is False  # nothing twice
        due = webhooks.due(session, every.id, now, 10)
        assert [e.data["ticket"]["title"] for _, e in due] == ["after-1", "after-2"]
        assert webhooks.due(session, statuses.id, now, 10) == []
        assert webhooks.next_due(session, every.id) == now
        assert webhooks.due(session, every.id, now - timedelta(seconds=1), 10) == []


def test_the_waker_sees_an_endpoint_behind_until_it_is_marked_or_busy(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    made = endpoint(engine, agent.id, [], "s")
    with transaction(engine) as session:
        assert made.id not in {b.endpoint_id for b in webhooks.behind(session, utcnow())}
    ticket(engine, agent.id, "one")
    with transaction(engine) as session:
        [found] = [b for b in webhooks.behind(session, utcnow()) if b.endpoint_id == made.id]
        webhooks.mark_signalled(session, [found])
    with transaction(engine) as session:
        assert made.id not in {b.endpoint_id for b in webhooks.behind(session, utcnow())}
    ticket(engine, agent.id, "two")
    with transaction(engine) as session:
        row = webhooks.get_for_worker(session, made.id)
        assert row is not None
        row.busy_until = utcnow() + timedelta(seconds=5)  # an open round watches itself
        session.add(row)
    with transaction(engine) as session:
        assert made.id not in {b.endpoint_id for b in webhooks.behind(session, utcnow())}
        later = utcnow() + timedelta(seconds=6)
        assert made.id in {b.endpoint_id for b in webhooks.behind(session, later)}


def test_reencrypt_secrets_rotates_current_and_previous(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    mark = "mine-" + secrets.token_hex(4)
    made = endpoint(engine, agent.id, [], f"{mark}-old")
    with transaction(engine) as session:
        row = webhooks.get_for_worker(session, made.id)
        assert row is not None
        webhooks.rotate_secret(session, row, f"{mark}-new", utcnow())
    with transaction(engine) as session:
        count = webhooks.reencrypt_secrets(
            session, lambda s: "rotated:" + s if s.startswith(mark) else s
        )
        assert count >= 2
        row = webhooks.get_for_worker(session, made.id)
        assert row is not None
        assert (row.secret_encrypted, row.previous_secret_encrypted) == (
            f"rotated:{mark}-new",
            f"rotated:{mark}-old",
        )
