from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities
from core.crypto import Cipher
from core.settings import Settings
from domain.outcomes import MailboxStatus
from providers.base import Credentials
from store import mailboxes
from store.db import transaction
from store.models import InboundMessage, Mailbox, Ticket
from tests.conftest import make_mailbox, unique_task_queue
from tests.fakes import FakeMailbox, fake_factory, make_email
from worker import WORKFLOW_RUNNER
from workflows.mailbox import MAILBOX_STATUS, POLL_JITTER, MailboxWorkflow, mailbox_workflow_id
from workflows.mailbox_state import POLLS_PER_RUN, MailboxInput, MailboxState, SettingsChanged
from workflows.registry import WORKFLOWS

SECRET = "test-secret-key"


@dataclass
class Harness:
    env: WorkflowEnvironment
    engine: Engine
    box: FakeMailbox
    mailbox_id: str
    agent_id: str
    task_queue: str

    async def start(
        self, polls_per_run: int = 500
    ) -> WorkflowHandle[MailboxWorkflow, MailboxState]:
        state = MailboxState(self.mailbox_id, self.agent_id, "gmail", poll_interval_seconds=60)
        return await self.env.client.start_workflow(
            MailboxWorkflow.run,
            MailboxInput(state, polls_per_run),
            id=mailbox_workflow_id(self.mailbox_id),
            task_queue=self.task_queue,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(MAILBOX_STATUS, "active")]
            ),
        )

    def tickets(self) -> list[Ticket]:
        with transaction(self.engine) as session:
            return list(
                session.exec(select(Ticket).where(Ticket.mailbox_id == self.mailbox_id)).all()
            )

    def mailbox(self) -> Mailbox:
        with transaction(self.engine) as session:
            found = mailboxes.get_for_worker(session, self.mailbox_id)
            assert found is not None
            return found


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine
) -> AsyncIterator[Harness]:
    credentials = Cipher(SECRET).encrypt_credentials(Credentials(refresh_token="r"))
    mailbox = make_mailbox(sqlite_engine, credentials)
    box = FakeMailbox()
    settings = Settings(
        secret_key=SECRET, task_queue=unique_task_queue(), worker_max_concurrent_activities=4
    )
    with ThreadPoolExecutor(4) as pool:
        async with Worker(
            time_skipping_env.client,
            task_queue=settings.task_queue,
            workflows=WORKFLOWS,
            workflow_runner=WORKFLOW_RUNNER,
            activities=build_activities(sqlite_engine, settings, fake_factory(box)),
            activity_executor=pool,
            max_concurrent_activities=4,
        ):
            yield Harness(
                time_skipping_env,
                sqlite_engine,
                box,
                mailbox.id,
                mailbox.agent_id,
                settings.task_queue,
            )


async def test_backlog_becomes_tickets_then_idle_polls_cost_one_fetch(harness: Harness) -> None:
    for i in range(5):
        harness.box.deliver(make_email(subject=f"Question {i}"))
    handle = await harness.start()
    await harness.env.sleep(timedelta(seconds=1))
    assert sorted(t.title for t in harness.tickets()) == [f"Question {i}" for i in range(5)]
    calls = harness.box.fetch_calls
    await harness.env.sleep(timedelta(minutes=10, seconds=5))
    # One provider call per wait of 54-60 s (the 60 s interval less its jitter).
    assert 10 <= harness.box.fetch_calls - calls <= 11
    state = await handle.query(MailboxWorkflow.state)
    assert state.counts.tickets_created == 5
    await handle.signal(MailboxWorkflow.disconnect)
    assert (await handle.result()).status == "disconnected"


async def test_poll_waits_are_jittered_below_the_interval(harness: Harness) -> None:
    handle = await harness.start()
    await harness.env.sleep(timedelta(minutes=20))
    waits = [
        event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        async for event in handle.fetch_history_events()
        if event.HasField("timer_started_event_attributes")
    ]
    assert len(waits) >= 19
    # Never later than the interval a person set, never sooner than 90 % of it, and not the
    # same wait every time: mailboxes that polled together drift apart.
    assert all(60 * (1 - POLL_JITTER) <= wait <= 60 for wait in waits), waits
    assert len(set(waits)) > len(waits) // 2, waits
    await handle.signal(MailboxWorkflow.disconnect)
    await handle.result()


async def test_poll_now_and_interval_change_take_effect_at_once(harness: Harness) -> None:
    handle = await harness.start()
    await harness.env.sleep(timedelta(seconds=1))
    harness.box.deliver(make_email(subject="Urgent"))
    await handle.signal(MailboxWorkflow.poll_now)
    await harness.env.sleep(timedelta(seconds=1))
    assert [t.title for t in harness.tickets()] == ["Urgent"]
    await handle.signal(
        MailboxWorkflow.settings_changed, SettingsChanged(poll_interval_seconds=600)
    )
    await harness.env.sleep(timedelta(seconds=1))
    calls = harness.box.fetch_calls
    await harness.env.sleep(timedelta(minutes=30))
    assert harness.box.fetch_calls - calls == 3
    assert (await handle.query(MailboxWorkflow.state)).poll_interval_seconds == 600
    await handle.signal(MailboxWorkflow.disconnect)
    await handle.result()


async def test_auth_expiry_waits_without_calls_and_reconnect_resumes(harness: Harness) -> None:
    harness.box.deliver(make_email(subject="Before"))
    handle = await harness.start()
    await harness.env.sleep(timedelta(seconds=1))
    harness.box.revoked = True
    await harness.env.sleep(timedelta(minutes=1, seconds=5))
    assert harness.mailbox().status == "auth_expired"
    assert "Reconnect" in (harness.mailbox().last_error or "")
    described = await handle.describe()
    assert described.typed_search_attributes.get(MAILBOX_STATUS) == "auth_expired"
    cursor = harness.mailbox().cursor
    calls = harness.box.fetch_calls
    harness.box.deliver(make_email(subject="While expired"))
    await harness.env.sleep(timedelta(hours=5))
    assert harness.box.fetch_calls == calls  # zero provider calls while expired
    harness.box.revoked = False
    with transaction(harness.engine) as session:
        mailbox = mailboxes.get_for_worker(session, harness.mailbox_id)
        assert mailbox is not None
        mailboxes.reconnect(session, mailbox, mailbox.credentials_encrypted or "")
    await handle.signal(MailboxWorkflow.reconnect)
    await harness.env.sleep(timedelta(seconds=2))
    assert sorted(t.title for t in harness.tickets()) == ["Before", "While expired"]
    assert harness.mailbox().status == "active"
    assert harness.mailbox().cursor != cursor and cursor == "1"
    assert (await handle.describe()).typed_search_attributes.get(MAILBOX_STATUS) == "active"
    await handle.signal(MailboxWorkflow.disconnect)
    await handle.result()


async def test_throttling_and_outages_retry_and_lose_nothing(harness: Harness) -> None:
    harness.box.deliver(make_email(subject="One"))
    harness.box.throttle_once = 30
    harness.box.fail_once = True
    handle = await harness.start()
    await harness.env.sleep(timedelta(minutes=2))
    assert [t.title for t in harness.tickets()] == ["One"]
    await handle.signal(MailboxWorkflow.disconnect)
    await handle.result()


async def test_continue_as_new_keeps_state(harness: Harness) -> None:
    handle = await harness.start(polls_per_run=3)
    first_run = (await handle.describe()).run_id
    for i in range(4):
        harness.box.deliver(make_email(subject=f"Mail {i}"))
        await harness.env.sleep(timedelta(seconds=61))
    latest = harness.env.client.get_workflow_handle_for(
        MailboxWorkflow.run, mailbox_workflow_id(harness.mailbox_id)
    )
    state = await latest.query(MailboxWorkflow.state)
    assert (await latest.describe()).run_id != first_run
    assert state.counts.tickets_created == 4
    assert state.polls >= 4
    assert len(harness.tickets()) == 4
    await latest.signal(MailboxWorkflow.disconnect)
    await latest.result()


async def test_a_run_started_with_a_longer_bound_continues_with_todays(
    harness: Harness,
) -> None:
    # Runs recorded before the bound fell (500 polls) take it up at their next run: a cached
    # run's memory grows with every poll it has made.
    handle = await harness.start(polls_per_run=POLLS_PER_RUN + 2)
    first_run = (await handle.describe()).run_id
    for _ in range(POLLS_PER_RUN + 3):
        await harness.env.sleep(timedelta(seconds=61))
    first = harness.env.client.get_workflow_handle(handle.id, run_id=first_run)
    history = await first.fetch_history()
    continued = [
        e.workflow_execution_continued_as_new_event_attributes
        for e in history.events
        if e.HasField("workflow_execution_continued_as_new_event_attributes")
    ]
    assert len(continued) == 1
    [payload] = continued[0].input.payloads
    assert json.loads(payload.data)["polls_per_run"] == POLLS_PER_RUN
    latest = harness.env.client.get_workflow_handle(mailbox_workflow_id(harness.mailbox_id))
    assert (await latest.describe()).run_id != first_run
    await latest.signal(MailboxWorkflow.disconnect)
    await latest.result()


async def test_replies_join_their_ticket_and_skips_keep_reasons(harness: Harness) -> None:
    first = make_email(subject="Refund", message_id="<q1@customer.example>")
    harness.box.deliver(first, thread_id="T1")
    harness.box.deliver(
        make_email(subject="Re: Refund", body="Any news?", in_reply_to="<q1@customer.example>"),
        thread_id="T1",
    )
    harness.box.deliver(
        make_email(subject="Out of office", headers={"Auto-Submitted": "auto-replied"})
    )
    handle = await harness.start()
    await harness.env.sleep(timedelta(seconds=2))
    tickets = harness.tickets()
    assert [(t.title, t.message_count) for t in tickets] == [("Refund", 2)]
    with transaction(harness.engine) as session:
        rows = session.exec(
            select(InboundMessage).where(InboundMessage.mailbox_id == harness.mailbox_id)
        ).all()
        outcomes = sorted((r.subject, r.outcome) for r in rows)
        reason = next(r.reason for r in rows if r.outcome == "skipped")
    assert outcomes == [
        ("Out of office", "skipped"),
        ("Re: Refund", "appended"),
        ("Refund", "ticket_created"),
    ]
    assert reason and "auto" in reason.lower()
    await handle.signal(MailboxWorkflow.disconnect)
    await handle.result()


async def test_a_backlog_page_fetched_ahead_becomes_tickets_after_the_page_before(
    harness: Harness,
) -> None:
    # Pages of 50, then 250: the third page (replies to the second page's emails) is fetched
    # while the second becomes tickets, and its replies must still find those tickets.
    for i in range(300):
        harness.box.deliver(
            make_email(
                subject=f"Question {i}",
                sender=f"c{i}@customer.example",
                message_id=f"<q{i}@customer.example>",
            )
        )
    for i in range(260, 300):
        harness.box.deliver(
            make_email(
                subject=f"Re: Question {i}",
                sender=f"c{i}@customer.example",
                in_reply_to=f"<q{i}@customer.example>",
            )
        )
    handle = await harness.start()
    for _ in range(300):
        state = await handle.query(MailboxWorkflow.state)
        if state.counts.tickets_created + state.counts.appended >= 340:
            break
        await asyncio.sleep(0.2)
    assert (state.counts.tickets_created, state.counts.appended) == (300, 40)
    counts = {t.title: t.message_count for t in harness.tickets()}
    assert [counts[f"Question {i}"] for i in (0, 259, 260, 299)] == [1, 1, 2, 2]
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in (await handle.fetch_history()).events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    # The fetches ahead are ordinary activities (the poll's own fetch is a local one), each
    # scheduled with the create_tickets of the page before it.
    assert scheduled.count("fetch_new_mail") == 2, scheduled
    await handle.signal(MailboxWorkflow.disconnect)
    await handle.result()


async def test_poll_now_during_a_poll_is_not_forgotten(harness: Harness) -> None:
    handle = await harness.start()
    await harness.env.sleep(timedelta(seconds=1))
    fetching = harness.box.hold_fetches()
    await handle.signal(MailboxWorkflow.settings_changed, SettingsChanged())
    await asyncio.to_thread(fetching.wait, 10)  # a poll is now in progress
    harness.box.deliver(make_email(subject="Arrived mid-poll"))
    await handle.signal(MailboxWorkflow.poll_now)
    harness.box.let_fetches_go()
    await harness.env.sleep(timedelta(seconds=2))  # far less than the 60 s interval
    assert [t.title for t in harness.tickets()] == ["Arrived mid-poll"]
    await handle.signal(MailboxWorkflow.disconnect)
    await handle.result()


async def start_with_a_held_backlog(
    harness: Harness,
) -> WorkflowHandle[MailboxWorkflow, MailboxState]:
    """A backlog of 60 emails in Graph's snapshot rounds, its first page (50) read and held."""
    harness.box.snapshot_rounds = True
    for i in range(60):
        harness.box.deliver(make_email(subject=f"Backlog {i}", sender=f"c{i}@customer.example"))
    fetching = harness.box.hold_fetches()
    handle = await harness.start()
    await asyncio.to_thread(fetching.wait, 10)
    return handle


async def test_poll_now_during_a_backlog_wakes_a_poll_after_it(harness: Harness) -> None:
    # Graph's round is a snapshot: mail announced while its first page was read is in none of
    # its later pages, so the backlog's end must not swallow the notification.
    handle = await start_with_a_held_backlog(harness)
    harness.box.deliver(make_email(subject="Arrived mid-backlog"))
    await handle.signal(MailboxWorkflow.poll_now)
    harness.box.let_fetches_go()
    await harness.env.sleep(timedelta(seconds=2))  # far less than the 60 s interval
    titles = {t.title for t in harness.tickets()}
    assert len(titles) == 61 and "Arrived mid-backlog" in titles
    await handle.signal(MailboxWorkflow.disconnect)
    await handle.result()


async def test_a_reconnect_kept_through_a_backlog_is_spent_by_one_poll(harness: Harness) -> None:
    # The reconnect came while the backlog's first page was read, so it wakes one more poll;
    # when the login then turns out revoked, the mailbox waits for a person, not polls again.
    handle = await start_with_a_held_backlog(harness)
    await handle.signal(MailboxWorkflow.reconnect)
    harness.box.revoked = True  # the page ahead, and every fetch after it: invalid_grant
    harness.box.let_fetches_go()
    await harness.env.sleep(timedelta(minutes=5))
    assert (await handle.query(MailboxWorkflow.state)).status == MailboxStatus.AUTH_EXPIRED
    calls = harness.box.fetch_calls
    await harness.env.sleep(timedelta(minutes=5))
    assert harness.box.fetch_calls == calls
    await handle.signal(MailboxWorkflow.disconnect)
    await handle.result()
