from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine
from sqlmodel import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.mailbox import MailboxActivities, page_size_for_attempt
from activities.mailbox_types import CreateTicketsInput, FetchInput, FilterInput, SetStatusInput
from core.crypto import Cipher
from core.settings import Settings
from domain.outcomes import MailboxStatus
from providers.base import Credentials
from store import mailboxes
from store.db import transaction
from store.models import InboundMessage, Ticket
from tests.conftest import make_agent
from tests.fakes import FakeMailbox, fake_factory, make_email


def setup(
    engine: Engine, allowed: list[str] | None = None
) -> tuple[MailboxActivities, FakeMailbox, str]:
    agent, _ = make_agent(engine)
    cipher = Cipher("k")
    with transaction(engine) as session:
        mailbox, _ = mailboxes.connect(
            session,
            agent_id=agent.id,
            provider="gmail",
            address=f"support-{uuid.uuid4().hex[:6]}@acme.example",
            credentials_encrypted=cipher.encrypt_credentials(Credentials(refresh_token="r")),
        )
        mailbox.allowed_senders = allowed or []
    box = FakeMailbox()
    return MailboxActivities(engine, Settings(), cipher, fake_factory(box)), box, mailbox.id


def count(engine: Engine, model: type[InboundMessage] | type[Ticket], mailbox_id: str) -> int:
    with transaction(engine) as session:
        return session.exec(
            select(func.count()).select_from(model).where(model.mailbox_id == mailbox_id)
        ).one()


def test_fetch_is_idempotent_and_carries_rows_left_pending(engine: Engine) -> None:
    acts, box, mailbox_id = setup(engine)
    box.deliver(make_email(subject="A"))
    env = ActivityEnvironment()
    first = env.run(acts.fetch_new_mail, FetchInput(mailbox_id))
    # As if the workflow died before filtering: the next fetch hands the pending row back.
    box.deliver(make_email(subject="B"))
    second = env.run(acts.fetch_new_mail, FetchInput(mailbox_id))
    assert len(first.ledger_ids) == 1 and len(second.ledger_ids) == 2
    assert first.ledger_ids[0] in second.ledger_ids
    assert count(engine, InboundMessage, mailbox_id) == 2


def test_idle_fetch_writes_nothing(engine: Engine) -> None:
    acts, box, mailbox_id = setup(engine)
    env = ActivityEnvironment()
    env.run(acts.fetch_new_mail, FetchInput(mailbox_id))  # stores the initial cursor
    before = _mailbox_row(engine, mailbox_id)
    idle = env.run(acts.fetch_new_mail, FetchInput(mailbox_id))
    assert idle.ledger_ids == [] and box.fetch_calls == 2
    assert _mailbox_row(engine, mailbox_id) == before


def _mailbox_row(engine: Engine, mailbox_id: str) -> tuple[object, ...]:
    with transaction(engine) as session:
        m = mailboxes.get_for_worker(session, mailbox_id)
        assert m is not None
        return (m.cursor, m.last_polled_at, m.updated_at, m.credentials_encrypted)


def test_filter_and_create_twice_make_one_ticket_each(engine: Engine) -> None:
    acts, box, mailbox_id = setup(engine, allowed=["@customer.example"])
    box.deliver(make_email(subject="Allowed"))
    box.deliver(make_email(subject="Stranger", sender="eve@elsewhere.example"))
    env = ActivityEnvironment()
    ids = env.run(acts.fetch_new_mail, FetchInput(mailbox_id)).ledger_ids
    accepted = env.run(acts.filter_mail, FilterInput(mailbox_id, ids)).accepted_ids
    again = env.run(acts.filter_mail, FilterInput(mailbox_id, ids)).accepted_ids
    assert accepted == again and len(accepted) == 1
    made = env.run(acts.create_tickets, CreateTicketsInput(mailbox_id, accepted))
    repeat = env.run(acts.create_tickets, CreateTicketsInput(mailbox_id, accepted))
    assert (made.tickets_created, repeat.tickets_created) == (1, 0)
    assert count(engine, Ticket, mailbox_id) == 1
    with transaction(engine) as session:
        skipped = session.exec(
            select(InboundMessage).where(
                InboundMessage.mailbox_id == mailbox_id, InboundMessage.outcome == "skipped"
            )
        ).one()
    assert skipped.reason is not None and "eve@elsewhere.example" in skipped.reason


def test_a_duplicate_message_id_never_opens_a_second_ticket(engine: Engine) -> None:
    acts, box, mailbox_id = setup(engine)
    raw = make_email(subject="Same", message_id="<same@customer.example>")
    box.deliver(raw, thread_id="T1")
    box.deliver(raw, thread_id="T9")  # the same email again under another provider id
    env = ActivityEnvironment()
    ids = env.run(acts.fetch_new_mail, FetchInput(mailbox_id)).ledger_ids
    env.run(acts.create_tickets, CreateTicketsInput(mailbox_id, ids))
    assert count(engine, Ticket, mailbox_id) == 1


def test_a_broken_email_is_marked_and_the_rest_go_on(engine: Engine) -> None:
    acts, box, mailbox_id = setup(engine)
    box.deliver(b"\x00\xff garbage that is no email at all")
    box.deliver(make_email(subject="Fine"))
    env = ActivityEnvironment()
    ids = env.run(acts.fetch_new_mail, FetchInput(mailbox_id)).ledger_ids
    accepted = env.run(acts.filter_mail, FilterInput(mailbox_id, ids)).accepted_ids
    env.run(acts.create_tickets, CreateTicketsInput(mailbox_id, accepted))
    with transaction(engine) as session:
        outcomes = {
            r.outcome
            for r in session.exec(
                select(InboundMessage).where(InboundMessage.mailbox_id == mailbox_id)
            ).all()
        }
    assert "pending" not in outcomes
    assert count(engine, Ticket, mailbox_id) >= 1


def test_revoked_credentials_are_a_non_retryable_auth_error(engine: Engine) -> None:
    acts, box, mailbox_id = setup(engine)
    box.revoked = True
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(acts.fetch_new_mail, FetchInput(mailbox_id))
    assert raised.value.type == "AuthExpired" and raised.value.non_retryable


def test_throttling_carries_the_retry_after(engine: Engine) -> None:
    acts, box, mailbox_id = setup(engine)
    box.throttle_once = 42
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(acts.fetch_new_mail, FetchInput(mailbox_id))
    assert raised.value.type == "Throttled"
    assert raised.value.next_retry_delay is not None
    assert raised.value.next_retry_delay.total_seconds() == 42


def test_an_email_over_25_mb_is_skipped_with_a_reason(engine: Engine) -> None:
    acts, box, mailbox_id = setup(engine)
    huge = make_email(subject="Scans") + b"\n" + b"A" * (26 * 1024 * 1024)
    box.deliver(huge)
    env = ActivityEnvironment()
    ids = env.run(acts.fetch_new_mail, FetchInput(mailbox_id)).ledger_ids
    assert env.run(acts.filter_mail, FilterInput(mailbox_id, ids)).accepted_ids == []
    with transaction(engine) as session:
        row = session.exec(
            select(InboundMessage).where(InboundMessage.mailbox_id == mailbox_id)
        ).one()
    assert (row.outcome, row.subject) == ("skipped", "Scans")
    assert row.reason is not None and "25 MB" in row.reason


def test_set_mailbox_status_twice_is_the_same_as_once(engine: Engine) -> None:
    acts, _box, mailbox_id = setup(engine)
    env = ActivityEnvironment()
    for _ in range(2):
        env.run(
            acts.set_mailbox_status,
            SetStatusInput(mailbox_id, MailboxStatus.AUTH_EXPIRED, "sign in again"),
        )
    with transaction(engine) as session:
        mailbox = mailboxes.get_for_worker(session, mailbox_id)
        assert mailbox is not None
        assert (mailbox.status, mailbox.last_error) == ("auth_expired", "sign in again")
        assert mailbox.credentials_encrypted is not None  # kept: Reconnect replaces it


def test_a_retried_fetch_asks_for_one_batch_then_half_as_much_each_time() -> None:
    sizes = [page_size_for_attempt(250, attempt) for attempt in range(1, 8)]
    assert sizes == [250, 50, 25, 12, 10, 10, 10]
    assert page_size_for_attempt(30, 2) == 30
