"""The mailbox workflow's push logic on the time-skipping server, with the in-memory provider
(the real watch and subscription calls are tested against the emulator in
tests/providers/test_push.py; the whole path in tests/e2e/test_push.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities
from core.crypto import Cipher
from core.settings import Settings
from domain.outcomes import MailboxStatus, PushState
from providers.base import Credentials
from store import mailboxes
from store.db import transaction
from store.models import Mailbox, Ticket
from tests.conftest import make_mailbox, unique_task_queue
from tests.fakes import FakeMailbox, fake_factory, make_email
from worker import WORKFLOW_RUNNER
from workflows.mailbox import MAILBOX_PUSH, MAILBOX_STATUS, MailboxWorkflow, mailbox_workflow_id
from workflows.mailbox_state import MailboxInput, MailboxState, PollRequest, PushEvent
from workflows.registry import WORKFLOWS

SECRET = "test-secret-key"
SAFETY = 900


@dataclass
class Harness:
    env: WorkflowEnvironment
    engine: Engine
    box: FakeMailbox
    mailbox_id: str
    agent_id: str
    task_queue: str
    started: list[WorkflowHandle[MailboxWorkflow, MailboxState]]

    async def start(self) -> WorkflowHandle[MailboxWorkflow, MailboxState]:
        state = MailboxState(self.mailbox_id, self.agent_id, "gmail", poll_interval_seconds=60)
        handle = await self.env.client.start_workflow(
            MailboxWorkflow.run,
            MailboxInput(state),
            id=mailbox_workflow_id(self.mailbox_id),
            task_queue=self.task_queue,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(MAILBOX_STATUS, "active"),
                    SearchAttributePair(MAILBOX_PUSH, "off"),
                ]
            ),
        )
        self.started.append(handle)
        await self.env.sleep(timedelta(seconds=1))
        return handle

    async def stop(self) -> None:
        """A workflow left running on the shared server would hold its time still."""
        for handle in self.started:
            try:
                await handle.terminate("test over")
            except RPCError:
                pass  # it had ended

    def tickets(self) -> list[str]:
        with transaction(self.engine) as session:
            rows = session.exec(select(Ticket).where(Ticket.mailbox_id == self.mailbox_id)).all()
            return sorted(t.title for t in rows)

    def mailbox(self) -> Mailbox:
        with transaction(self.engine) as session:
            found = mailboxes.get_for_worker(session, self.mailbox_id)
            assert found is not None
            return found

    async def push(self, handle: WorkflowHandle[MailboxWorkflow, MailboxState]) -> None:
        """A notification, as the API signals it: stamped with when it arrived."""
        now = await self.env.get_current_time()
        await handle.signal(MailboxWorkflow.poll_now, PollRequest("push", now.isoformat()))


async def sleep(env: WorkflowEnvironment, total: timedelta) -> None:
    """Skip long spans in steps: every safety-net poll on the way runs a real activity, and
    one skip RPC that waits on hundreds of them times out."""
    step = timedelta(hours=4)
    while total > timedelta(0):
        await env.sleep(min(step, total))
        total -= step


async def search_attribute(handle: WorkflowHandle[MailboxWorkflow, MailboxState]) -> str | None:
    described = await handle.describe()
    return described.typed_search_attributes.get(MAILBOX_PUSH)


def harness_settings(*, push: bool) -> Settings:
    return Settings(
        secret_key=SECRET,
        task_queue=unique_task_queue(),
        worker_max_concurrent_activities=4,
        gmail_push_topic="projects/p/topics/gmail" if push else None,
        gmail_push_service_account="push@p.iam.gserviceaccount.com",
        push_safety_poll_seconds=SAFETY,
    )


@pytest.fixture(params=[True], ids=["push"])
async def harness(
    request: pytest.FixtureRequest, time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine
) -> AsyncIterator[Harness]:
    mailbox = make_mailbox(sqlite_engine, Cipher(SECRET).encrypt_credentials(Credentials("r")))
    box = FakeMailbox()
    settings = harness_settings(push=request.param)
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
            running = Harness(
                time_skipping_env,
                sqlite_engine,
                box,
                mailbox.id,
                mailbox.agent_id,
                settings.task_queue,
                [],
            )
            try:
                yield running
            finally:
                await running.stop()


async def test_push_is_set_up_at_start_and_polling_becomes_the_safety_net(
    harness: Harness,
) -> None:
    handle = await harness.start()
    assert len(harness.box.watches) == 1
    target, current = harness.box.watches[0]
    assert (target.gmail_topic, current) == ("projects/p/topics/gmail", None)
    state = await handle.query(MailboxWorkflow.state)
    assert state.push.state == PushState.LIVE
    assert await search_attribute(handle) == "live"
    assert harness.mailbox().push_state == PushState.LIVE
    polls = harness.box.fetch_calls
    await harness.env.sleep(timedelta(minutes=13))  # 13 intervals of 60 s: not one poll
    assert harness.box.fetch_calls == polls
    await harness.env.sleep(timedelta(minutes=3))  # the safety net: 900 s less jitter
    assert harness.box.fetch_calls == polls + 1


async def test_a_notification_makes_a_ticket_without_waiting_for_the_interval(
    harness: Harness,
) -> None:
    handle = await harness.start()
    harness.box.deliver(make_email(subject="Pushed"))
    await harness.push(handle)
    await harness.env.sleep(timedelta(seconds=1))
    assert harness.tickets() == ["Pushed"]


async def test_push_is_renewed_daily_across_simulated_days(harness: Harness) -> None:
    handle = await harness.start()
    await sleep(harness.env, timedelta(days=3, minutes=1))
    # The set-up, then one renewal a day, each renewing the watch it holds.
    assert len(harness.box.watches) == 4
    assert all(current is not None for _target, current in harness.box.watches[1:])
    assert (await handle.query(MailboxWorkflow.state)).push.state == PushState.LIVE


async def test_many_notifications_during_a_poll_coalesce_into_one_more_poll(
    harness: Harness,
) -> None:
    handle = await harness.start()
    before = harness.box.fetch_calls
    fetching = harness.box.hold_fetches()
    await harness.push(handle)
    await harness.env.sleep(timedelta(milliseconds=200))
    assert fetching.wait(10)
    for i in range(50):  # a storm while the poll is held
        harness.box.deliver(make_email(subject=f"Storm {i}", sender=f"c{i}@customer.example"))
        await harness.push(handle)
    harness.box.let_fetches_go()
    await harness.env.sleep(timedelta(seconds=10))
    assert harness.tickets() == sorted(f"Storm {i}" for i in range(50))
    # The held poll, one for the whole storm, and the follow-up after it found mail: the
    # storm's last notification came less than a second before that poll.
    assert harness.box.fetch_calls - before == 3


async def test_mail_whose_notification_was_dropped_is_found_by_the_follow_up(
    harness: Harness,
) -> None:
    handle = await harness.start()
    harness.box.deliver(make_email(subject="First"))
    await harness.push(handle)
    await harness.env.sleep(timedelta(milliseconds=500))
    polls = harness.box.fetch_calls
    # Gmail drops a notification within a second of the last: this one never comes.
    harness.box.deliver(make_email(subject="Second, unannounced"))
    await harness.env.sleep(timedelta(seconds=3))
    assert harness.tickets() == ["First", "Second, unannounced"]
    assert harness.box.fetch_calls == polls + 1  # one follow-up, at the second's end
    assert len(harness.box.watches) == 1  # not mistaken for broken push


async def test_no_follow_up_when_the_notified_poll_came_after_the_drop_window(
    harness: Harness,
) -> None:
    handle = await harness.start()
    harness.box.deliver(make_email(subject="Late poll"))
    stamped = (await harness.env.get_current_time()) - timedelta(seconds=5)
    await handle.signal(MailboxWorkflow.poll_now, PollRequest("push", stamped.isoformat()))
    await harness.env.sleep(timedelta(seconds=1))
    polls = harness.box.fetch_calls
    await harness.env.sleep(timedelta(seconds=5))
    assert harness.tickets() == ["Late poll"]
    assert harness.box.fetch_calls == polls  # a busy system pays for no follow-up


async def test_mail_the_safety_net_finds_unannounced_means_push_is_replaced(
    harness: Harness,
) -> None:
    await harness.start()
    # The watch lapsed silently (nobody told us): mail comes with no notification.
    harness.box.deliver(make_email(subject="Silent"))
    await harness.env.sleep(timedelta(minutes=15, seconds=30))
    assert harness.tickets() == ["Silent"]
    assert len(harness.box.unwatches) == 1  # the broken one stopped
    assert len(harness.box.watches) == 2 and harness.box.watches[1][1] is None


async def test_lifecycle_events(harness: Harness) -> None:
    handle = await harness.start()
    polls = harness.box.fetch_calls
    await handle.signal(MailboxWorkflow.push_event, PushEvent("missed"))
    await harness.env.sleep(timedelta(seconds=1))
    assert harness.box.fetch_calls == polls + 1
    assert len(harness.box.watches) == 1

    await handle.signal(MailboxWorkflow.push_event, PushEvent("reauthorizationRequired"))
    await harness.env.sleep(timedelta(seconds=1))
    assert len(harness.box.watches) == 2  # renewed, which reauthorizes it
    assert harness.box.watches[1][1] is not None and harness.box.unwatches == []

    harness.box.deliver(make_email(subject="While removed"))
    await handle.signal(MailboxWorkflow.push_event, PushEvent("subscriptionRemoved"))
    await harness.env.sleep(timedelta(seconds=1))
    assert harness.box.watches[2][1] is None  # a new one, not a renewal of the removed one
    assert harness.tickets() == ["While removed"]  # then polled for what was missed


async def test_disconnect_stops_push_then_drops_the_credentials(harness: Harness) -> None:
    handle = await harness.start()
    with transaction(harness.engine) as session:
        row = mailboxes.get_for_worker(session, harness.mailbox_id)
        assert row is not None
        mailboxes.disconnect(session, row)  # what the API does first
    assert harness.mailbox().credentials_encrypted is not None
    await handle.signal(MailboxWorkflow.disconnect)
    await handle.result()
    assert len(harness.box.unwatches) == 1
    assert harness.mailbox().credentials_encrypted is None
    assert harness.mailbox().push_state == PushState.OFF


async def test_auth_expiry_pauses_push_and_reconnect_restores_it(harness: Harness) -> None:
    handle = await harness.start()
    harness.box.revoked = True
    await handle.signal(MailboxWorkflow.poll_now)
    await harness.env.sleep(timedelta(seconds=1))
    assert harness.mailbox().status == MailboxStatus.AUTH_EXPIRED
    harness.box.deliver(make_email(subject="While expired"))
    await harness.push(handle)  # the API would not even signal; this changes nothing either
    await sleep(harness.env, timedelta(days=2))
    assert harness.tickets() == []
    assert len(harness.box.watches) == 1  # no renewal while expired: no provider call
    harness.box.revoked = False
    await handle.signal(MailboxWorkflow.reconnect)
    await harness.env.sleep(timedelta(seconds=1))
    assert len(harness.box.watches) == 2
    assert harness.tickets() == ["While expired"]
    assert (await handle.query(MailboxWorkflow.state)).push.state == PushState.LIVE


async def test_a_refused_push_polls_as_before_and_is_tried_again_hourly(
    harness: Harness,
) -> None:
    harness.box.refuse_push = True
    handle = await harness.start()
    state = await handle.query(MailboxWorkflow.state)
    assert state.push.state == PushState.FAILED and state.push.error
    assert await search_attribute(handle) == "failed"
    polls = harness.box.fetch_calls
    await harness.env.sleep(timedelta(minutes=5))
    assert harness.box.fetch_calls >= polls + 5  # the mailbox's own 60 s interval
    harness.box.refuse_push = False
    await sleep(harness.env, timedelta(hours=1))
    assert (await handle.query(MailboxWorkflow.state)).push.state == PushState.LIVE
    assert await search_attribute(handle) == "live"


@pytest.mark.parametrize("harness", [False], ids=["push-off"], indirect=True)
async def test_without_push_settings_the_mailbox_polls_at_its_interval(harness: Harness) -> None:
    handle = await harness.start()
    assert harness.box.watches == []
    assert (await handle.query(MailboxWorkflow.state)).push.state == PushState.OFF
    polls = harness.box.fetch_calls
    await harness.env.sleep(timedelta(minutes=3))
    assert harness.box.fetch_calls >= polls + 3
