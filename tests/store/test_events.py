"""The outbox's order: events of one workspace are numbered under its lock, so a reader that
keeps its place misses nothing and sees nothing twice, however writers interleave."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from sqlalchemy import Engine

from domain.outcomes import MailboxStatus, TicketStatus
from store import events, mailboxes, tickets
from store.db import transaction
from tests.conftest import make_agent
from tests.event_support import form_ticket


def read_all(engine: Engine, agent_id: str, after: int) -> list[tuple[int, str]]:
    with transaction(engine) as session:
        return [(e.seq, e.id) for e in events.after(session, agent_id, after, limit=1000)]


def test_concurrent_writers_and_a_reader_keeping_its_place(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    writers, per_writer = 6, 25
    seen: list[tuple[int, str]] = []
    done = threading.Event()

    def write(writer: int) -> None:
        for i in range(per_writer):
            with transaction(engine) as session:
                made = tickets.create_ticket(session, form_ticket(agent.id, f"w{writer}-{i}"))
                if i % 5 == 0:  # a second event in the same transaction
                    tickets.set_status(session, made.ticket, TicketStatus.PENDING)

    def read() -> None:
        place = 0
        while True:
            finished = done.is_set()  # read once more after the last writer is done
            page = read_all(engine, agent.id, place)
            seen.extend(page)
            if page:
                place = page[-1][0]
            if finished:
                return

    reader = threading.Thread(target=read)
    reader.start()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(write, range(writers)))
    done.set()
    reader.join(timeout=60)
    expected = writers * per_writer + writers * (per_writer // 5)
    assert [seq for seq, _ in seen] == list(range(1, expected + 1))  # no gap, no repeat
    assert len({event_id for _, event_id in seen}) == expected
    assert read_all(engine, agent.id, 0) == seen


def test_a_later_writer_waits_for_the_earlier_ones_commit(postgres_engine: Engine) -> None:
    """The case an autoincrement id gets wrong: the first transaction to take a number
    commits last. Under the lock the second cannot take a number until the first is done."""
    agent, _ = make_agent(postgres_engine)
    first_holds = threading.Event()
    release = threading.Event()
    second_done = threading.Event()

    def first() -> None:
        with transaction(postgres_engine) as session:
            tickets.create_ticket(session, form_ticket(agent.id, "slow"))
            session.flush()
            first_holds.set()
            release.wait(timeout=30)

    def second() -> None:
        first_holds.wait(timeout=30)
        with transaction(postgres_engine) as session:
            tickets.create_ticket(session, form_ticket(agent.id, "quick"))
        second_done.set()

    with ThreadPoolExecutor(2) as pool:
        slow, quick = pool.submit(first), pool.submit(second)
        first_holds.wait(timeout=30)
        time.sleep(0.3)  # give the second writer every chance to overtake
        assert not second_done.is_set()
        assert read_all(postgres_engine, agent.id, 0) == []  # nothing committed, nothing shown
        release.set()
        slow.result(timeout=30)
        quick.result(timeout=30)
    found = read_all(postgres_engine, agent.id, 0)
    assert [seq for seq, _ in found] == [1, 2]
    with transaction(postgres_engine) as session:
        titles = [e.data["ticket"]["title"] for e in events.after(session, agent.id, 0, limit=9)]
    assert titles == ["Ticket slow", "Ticket quick"]


def test_mailbox_expiry_and_reconnection_are_events_of_their_change(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    with transaction(engine) as session:
        mailbox, _ = mailboxes.connect(
            session,
            agent_id=agent.id,
            provider="gmail",
            address="help@acme.example",
            credentials_encrypted="secret-token-never-in-an-event",
        )
    with transaction(engine) as session:
        row = mailboxes.get(session, agent.id, mailbox.id)
        assert row is not None
        mailboxes.set_status(session, row, MailboxStatus.AUTH_EXPIRED, "Sign in again.")
        mailboxes.set_status(session, row, MailboxStatus.AUTH_EXPIRED, "Sign in again.")
    try:
        with transaction(engine) as session:
            row = mailboxes.get(session, agent.id, mailbox.id)
            assert row is not None
            mailboxes.reconnect(session, row, "new-secret-token")
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with transaction(engine) as session:
        row = mailboxes.get(session, agent.id, mailbox.id)
        assert row is not None and row.status == MailboxStatus.AUTH_EXPIRED  # nor its event
        mailboxes.reconnect(session, row, "new-secret-token")
    with transaction(engine) as session:
        found = list(events.after(session, agent.id, 0, limit=10))
    assert [e.type for e in found] == ["mailbox.auth_expired", "mailbox.reconnected"]
    assert found[0].data["mailbox"] == {
        "id": mailbox.id,
        "provider": "gmail",
        "address": "help@acme.example",
        "status": "auth_expired",
        "last_error": "Sign in again.",
    }
    assert found[1].data["mailbox"]["status"] == "active"
    assert "token" not in repr([e.data for e in found])


def notifications(database_url: str) -> tuple[psycopg.Connection[tuple[object, ...]], Any]:
    listener = psycopg.connect(database_url, autocommit=True)
    listener.execute(f"LISTEN {events.EVENTS_CHANNEL}")
    return listener, lambda: [n.payload for n in listener.notifies(timeout=0.5)]


def test_a_commit_rings_one_notify_per_workspace_and_a_rollback_none(
    postgres_engine: Engine, postgres_database: str
) -> None:
    agent, _ = make_agent(postgres_engine)
    listener, received = notifications(postgres_database.replace("+psycopg", ""))
    with listener:
        with transaction(postgres_engine) as session:
            for i in range(3):  # three events, one transaction
                tickets.create_ticket(session, form_ticket(agent.id, f"n{i}"))
        assert received() == [agent.id]
        try:
            with transaction(postgres_engine) as session:
                tickets.create_ticket(session, form_ticket(agent.id, "rolled back"))
                raise RuntimeError("abandon")
        except RuntimeError:
            pass
        with transaction(postgres_engine) as session:
            tickets.create_ticket(session, form_ticket(agent.id, "after the rollback"))
        assert received() == [agent.id]  # the rolled-back transaction rang nothing
