"""Tickets are made a batch of emails per transaction: every email must come out exactly as
if it had been processed alone, whatever the batch holds (replies to one another, copies,
[#N] references to tickets the same batch opened, a sender reaching the flood limit)."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import select

from domain.mime import read_headers
from domain.outcomes import Outcome, SkipReason
from domain.thread_decision import decide_thread
from ingest.batch import Done, process_batch
from ingest.tickets import make_tickets
from store import ledger, tickets
from store.db import transaction
from store.ledger import NewInbound
from store.models import InboundMessage, Ticket
from tests.conftest import make_mailbox
from tests.fakes import make_email

FLOOD_LIMIT = 3


@dataclass(frozen=True)
class Delivered:
    raw: bytes
    thread_id: str | None


def conversation(seed: int, size: int = 40) -> list[Delivered]:
    """Mail as a busy support inbox gets it: new requests, replies by header or only by the
    provider's thread, re-delivered copies, [#N] subjects from people on the ticket and from
    strangers, and one sender writing often enough to hit the flood limit."""
    rng = random.Random(seed)
    senders = ["ann@customer.example", "bob@customer.example", "flood@bot.example"]
    sent: list[tuple[str, str, str]] = []  # (message id, thread id, sender)
    mail: list[Delivered] = []
    for i in range(size):
        kind = rng.choice(["new", "new", "reply", "thread", "copy", "number", "stranger"])
        message_id = f"m{i}-{seed}@customer.example"
        if kind == "new" or not sent:
            sender = rng.choice(senders)
            thread = f"T{i}"
            raw = make_email(subject=f"Request {i}", sender=sender, message_id=f"<{message_id}>")
        elif kind == "reply":
            parent, thread, sender = rng.choice(sent)
            raw = make_email(
                subject="Re: request", message_id=f"<{message_id}>", in_reply_to=f"<{parent}>"
            )
            sender = "ann@customer.example"
        elif kind == "thread":
            _parent, thread, sender = rng.choice(sent)
            raw = make_email(subject="more", sender=sender, message_id=f"<{message_id}>")
        elif kind == "copy":
            copied = rng.choice(mail)
            mail.append(Delivered(copied.raw, rng.choice([copied.thread_id, f"X{i}"])))
            continue
        else:
            number = rng.randint(1, 8)
            sender = rng.choice(senders) if kind == "number" else "eve@elsewhere.example"
            thread = f"N{i}"
            raw = make_email(
                subject=f"Re: [#{number}] status?", sender=sender, message_id=f"<{message_id}>"
            )
        sent.append((message_id, thread, sender))
        mail.append(Delivered(raw, thread))
    return mail


def new_requests(count: int) -> list[Delivered]:
    """`count` unrelated new requests, each from its own sender (no flood limit in play)."""
    return [
        Delivered(make_email(subject=f"Request {i}", sender=f"c{i}@customer.example"), f"T{i}")
        for i in range(count)
    ]


def deliver(engine: Engine, mail: list[Delivered]) -> tuple[str, list[str]]:
    """A new workspace and mailbox holding `mail` in its ledger, as a fetch stores it."""
    mailbox = make_mailbox(engine, "x", address="support@acme.example")
    with transaction(engine) as session:
        rows = [_inbound(i, m) for i, m in enumerate(mail)]
        ids = ledger.insert_new(
            session, agent_id=mailbox.agent_id, mailbox_id=mailbox.id, rows=rows
        )
    return mailbox.id, ids


def _inbound(index: int, message: Delivered) -> NewInbound:
    email = read_headers(message.raw)
    return NewInbound(
        provider_message_id=f"p{index}",
        provider_thread_id=message.thread_id,
        internet_message_id=email.message_id,
        from_address=email.from_address,
        from_name=email.from_name,
        subject=email.subject,
        received_at=None,
        raw=message.raw,
    )


def outcomes(engine: Engine, ids: list[str]) -> list[tuple[str, int | None, str | None]]:
    """Per email, in delivery order: outcome, ticket number, reason."""
    with transaction(engine) as session:
        rows = {row.id: row for row in ledger.rows(session, ids)}
        numbers: dict[str | None, int] = dict(session.exec(select(Ticket.id, Ticket.number)).all())
    return [(rows[i].outcome, numbers.get(rows[i].ticket_id), rows[i].reason) for i in ids]


def run(engine: Engine, mailbox_id: str, ids: list[str], batch_size: int) -> None:
    make_tickets(
        engine,
        mailbox_id,
        ids,
        flood_limit=FLOOD_LIMIT,
        heartbeat=lambda: None,
        batch_size=batch_size,
    )


@pytest.mark.parametrize("seed", range(6))
def test_a_batch_decides_every_email_as_one_at_a_time_would(engine: Engine, seed: int) -> None:
    mail = conversation(seed)
    alone_box, alone_ids = deliver(engine, mail)
    batch_box, batch_ids = deliver(engine, mail)
    run(engine, alone_box, alone_ids, batch_size=1)
    run(engine, batch_box, batch_ids, batch_size=len(mail))
    alone, batched = outcomes(engine, alone_ids), outcomes(engine, batch_ids)
    assert batched == alone
    # The conversation exercises what batching could get wrong, so the check means something.
    kinds = {outcome for outcome, _, _ in alone}
    assert {"ticket_created", "appended", "skipped"} <= kinds
    assert any(reason and "flood" in reason for _, _, reason in alone)


def test_an_email_the_rules_choke_on_fails_alone_and_its_batch_goes_on(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    mail = new_requests(5)
    mailbox_id, ids = deliver(engine, mail)

    def choking(email, keys, found):  # type: ignore[no-untyped-def]
        if email.subject == "Request 2":
            raise RuntimeError("a bug in a rule")
        return decide_thread(email, keys, found)

    monkeypatch.setattr("ingest.batch.decide_thread", choking)
    run(engine, mailbox_id, ids, batch_size=5)
    got = [(outcome, reason) for outcome, _, reason in outcomes(engine, ids)]
    assert got[2] == ("failed", "could not be processed: RuntimeError")
    assert [outcome for outcome, _ in got[:2] + got[3:]] == ["ticket_created"] * 4


def test_a_batch_whose_write_breaks_is_redone_one_email_at_a_time(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    mail = new_requests(4)
    mailbox_id, ids = deliver(engine, mail)
    sizes: list[int] = []

    def fragile(session, mailbox_id, ledger_ids, *, flood_limit):  # type: ignore[no-untyped-def]
        sizes.append(len(ledger_ids))
        if len(ledger_ids) > 1:
            process_batch(session, mailbox_id, ledger_ids, flood_limit=flood_limit)
            raise ValueError("something only a whole batch trips over")
        return process_batch(session, mailbox_id, ledger_ids, flood_limit=flood_limit)

    monkeypatch.setattr("ingest.tickets.process_batch", fragile)
    run(engine, mailbox_id, ids, batch_size=4)
    assert sizes == [4, 1, 1, 1, 1]
    # The broken batch rolled back whole; the singles made each ticket once.
    assert [o for o, _, _ in outcomes(engine, ids)] == ["ticket_created"] * 4
    assert [n for _, n, _ in outcomes(engine, ids)] == [1, 2, 3, 4]


def test_ticket_numbers_stay_gapless_across_batches(engine: Engine) -> None:
    mail = new_requests(7)
    mailbox_id, ids = deliver(engine, mail)
    run(engine, mailbox_id, ids, batch_size=3)
    assert [n for _, n, _ in outcomes(engine, ids)] == list(range(1, 8))
    with transaction(engine) as session:
        pending = session.exec(
            select(InboundMessage).where(
                InboundMessage.mailbox_id == mailbox_id, InboundMessage.outcome == "pending"
            )
        ).all()
    assert pending == []


def test_a_classic_bounce_is_skipped_with_reason_bounce(engine: Engine) -> None:
    fixtures = Path(__file__).parent.parent / "fixtures" / "emails"
    raw = (fixtures / "bounce-mail-system-name-noreply-wrapped-original.eml").read_bytes()
    mailbox_id, ids = deliver(engine, [Delivered(raw, "T1")])
    run(engine, mailbox_id, ids, batch_size=1)
    with transaction(engine) as session:
        [row] = ledger.rows(session, ids)
    assert (row.outcome, row.skip_reason) == (Outcome.SKIPPED, SkipReason.BOUNCE)
    assert row.reason is not None and "mail system" in row.reason


def test_each_skip_names_its_reason_in_the_ledger(engine: Engine) -> None:
    """Flood and duplicate are told apart (they used to share one name in the metrics)."""
    flood = [
        Delivered(make_email(subject=f"Again {i}", sender="flood@bot.example"), f"F{i}")
        for i in range(FLOOD_LIMIT + 1)
    ]
    first = flood[0]
    mail = [*flood, Delivered(first.raw, "elsewhere")]  # a copy of the first, re-delivered
    mailbox_id, ids = deliver(engine, mail)
    counts = make_tickets(engine, mailbox_id, ids, flood_limit=FLOOD_LIMIT, heartbeat=lambda: None)
    with transaction(engine) as session:
        reasons = [row.skip_reason for row in ledger.rows(session, ids)]
    assert reasons == [None] * FLOOD_LIMIT + [SkipReason.FLOOD, SkipReason.DUPLICATE]
    assert (counts.tickets_created, counts.skipped) == (FLOOD_LIMIT, 2)


def statements_for(engine: Engine, mail: list[Delivered]) -> int:
    mailbox_id, ids = deliver(engine, mail)
    sent: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        with transaction(engine) as session:
            process_batch(session, mailbox_id, ids, flood_limit=FLOOD_LIMIT)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(sent)


def test_a_batch_costs_the_same_statements_however_many_emails_it_holds(engine: Engine) -> None:
    # A statement per email (an autoflush set off by a query or a NOTIFY between emails) made
    # ingest several times slower once; a batch's reads and its one flush do not grow with it.
    # (New requests all: the ORM writes rows whose changed columns differ in separate runs.)
    small = statements_for(engine, new_requests(5))
    large = statements_for(engine, new_requests(25))
    assert large == small, (small, large)


@pytest.mark.parametrize(
    ("sender", "requester", "skip"),
    [
        ("@example.com", None, SkipReason.SENDER_NOT_ALLOWED),
        ("a@x.example b@x.example", "a@x.example", None),
        ("Big Bug bb@bug.example", "bb@bug.example", None),
    ],
)
def test_the_requester_is_the_first_valid_address_or_the_email_is_skipped(
    engine: Engine, sender: str, requester: str | None, skip: SkipReason | None
) -> None:
    raw = f"From: {sender}\r\nTo: support@acme.example\r\nSubject: Hi\r\n\r\nHi\r\n".encode()
    mailbox_id, ids = deliver(engine, [Delivered(raw, "T1")])
    run(engine, mailbox_id, ids, batch_size=1)
    with transaction(engine) as session:
        [row] = ledger.rows(session, ids)
        made = session.exec(select(Ticket).where(Ticket.mailbox_id == mailbox_id)).all()
    assert row.skip_reason == skip
    assert [ticket.requester_email for ticket in made] == ([requester] if requester else [])
    if skip is not None:
        assert row.outcome == Outcome.SKIPPED
        assert row.reason == f"the email's From header ({sender!r}) holds no valid sender address"


def test_rows_done_while_a_batch_waited_for_the_lock_are_left_alone(
    postgres_engine: Engine,
) -> None:
    # A batch reads and parses its rows before it takes the workspace lock. An earlier attempt
    # of the same activity (its worker thought dead) may finish some of them meanwhile: the
    # later batch must neither redo them nor count them again.
    mailbox_id, ids = deliver(postgres_engine, new_requests(3))
    with transaction(postgres_engine) as session:
        agent_id = ledger.rows(session, ids[:1])[0].agent_id
    late: list[list[Done]] = []

    def later_attempt() -> None:
        with transaction(postgres_engine) as session:
            late.append(process_batch(session, mailbox_id, ids, flood_limit=FLOOD_LIMIT))

    with transaction(postgres_engine) as session:
        tickets.lock_agent(session, agent_id)
        waiting = threading.Thread(target=later_attempt)
        waiting.start()
        _until_a_session_waits_for_a_lock(postgres_engine)
        first = process_batch(session, mailbox_id, ids[:1], flood_limit=FLOOD_LIMIT)
    waiting.join(timeout=30)
    assert [d.outcome for d in first] == [Outcome.TICKET_CREATED]
    assert [d.outcome for d in late[0]] == [Outcome.TICKET_CREATED] * 2
    assert [n for _, n, _ in outcomes(postgres_engine, ids)] == [1, 2, 3]


def _until_a_session_waits_for_a_lock(engine: Engine) -> None:
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            if connection.execute(waiting).scalar():
                return
        time.sleep(0.01)
    raise AssertionError("the second batch never waited for the workspace lock")
