"""The mailbox workflow's side of IMAP IDLE on the time-skipping server, with the in-memory
provider: the supervisor's `push_event("state")` shows on the query and `MailboxPush` at once,
a `live` report always polls (mail that came while nobody watched), the wait between polls is
the safety net's while IDLE is live and the mailbox's own otherwise, and a report whose signal
never arrived is read from the database at the next poll. The supervisor itself, against
Dovecot, is tested in tests/imap/test_idle_*.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from temporalio.client import WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities
from core.crypto import Cipher
from core.settings import Settings
from domain.outcomes import PushState
from providers.base import Credentials
from store import mailboxes
from store.db import transaction
from tests.conftest import make_mailbox, unique_task_queue
from tests.fakes import FakeMailbox, fake_factory
from worker import WORKFLOW_RUNNER
from workflows.mailbox import MAILBOX_PUSH, MAILBOX_STATUS, MailboxWorkflow, mailbox_workflow_id
from workflows.mailbox_state import MailboxInput, MailboxState, PushEvent
from workflows.registry import WORKFLOWS

SECRET = "test-secret-key"
INTERVAL = 60
SAFETY = 900

Handle = WorkflowHandle[MailboxWorkflow, MailboxState]
TOKEN = Cipher(SECRET).encrypt_credentials(Credentials(""))


@dataclass
class Watched:
    """A started IMAP mailbox workflow, and the supervisor's two ways of telling it."""

    handle: Handle
    engine: Engine
    mailbox_id: str

    def record(self, state: PushState) -> None:
        with transaction(self.engine) as session:
            assert mailboxes.record_watch(session, self.mailbox_id, TOKEN, state, None)

    async def report(self, state: PushState) -> None:
        """As the supervisor does: the row first, then the signal."""
        self.record(state)
        event = PushEvent("state", state=state, safety_poll_seconds=SAFETY)
        await self.handle.signal(MailboxWorkflow.push_event, event)


@pytest.fixture
async def watched(
    time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine
) -> AsyncIterator[Watched]:
    mailbox = make_mailbox(sqlite_engine, TOKEN, "imap")
    settings = Settings(
        secret_key=SECRET,
        task_queue=unique_task_queue(),
        worker_max_concurrent_activities=4,
        push_safety_poll_seconds=SAFETY,
    )
    with ThreadPoolExecutor(4) as pool:
        async with Worker(
            time_skipping_env.client,
            task_queue=settings.task_queue,
            workflows=WORKFLOWS,
            workflow_runner=WORKFLOW_RUNNER,
            activities=build_activities(sqlite_engine, settings, fake_factory(FakeMailbox())),
            activity_executor=pool,
            max_concurrent_activities=4,
        ):
            state = MailboxState(
                mailbox.id, mailbox.agent_id, "imap", poll_interval_seconds=INTERVAL
            )
            handle = await time_skipping_env.client.start_workflow(
                MailboxWorkflow.run,
                MailboxInput(state),
                id=mailbox_workflow_id(mailbox.id),
                task_queue=settings.task_queue,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(MAILBOX_STATUS, "active"),
                        SearchAttributePair(MAILBOX_PUSH, "off"),
                    ]
                ),
            )
            await time_skipping_env.sleep(timedelta(seconds=1))
            try:
                yield Watched(handle, sqlite_engine, mailbox.id)
            finally:
                await handle.terminate("test over")


async def polls(handle: Handle) -> int:
    return (await handle.query(MailboxWorkflow.state)).polls


async def shown(handle: Handle) -> tuple[PushState, str | None]:
    state = await handle.query(MailboxWorkflow.state)
    attribute = (await handle.describe()).typed_search_attributes.get(MAILBOX_PUSH)
    return state.push.state, attribute


async def test_idle_state_reports_show_at_once_and_set_the_polling_pace(
    watched: Watched, time_skipping_env: WorkflowEnvironment
) -> None:
    env = time_skipping_env
    started = watched.handle
    assert await polls(started) == 1  # the start's poll
    # An IMAP mailbox keeps no watch of its own: no keep_push, its push is what is reported.
    assert await shown(started) == (PushState.OFF, "off")

    await watched.report(PushState.LIVE)
    await env.sleep(timedelta(seconds=1))
    assert await shown(started) == (PushState.LIVE, "live")
    assert await polls(started) == 2  # live: read what came while nobody watched

    # IDLE live: the mailbox's 60 s interval gives way to the safety net's 900 s.
    await env.sleep(timedelta(seconds=INTERVAL * 5))
    assert await polls(started) == 2
    await env.sleep(timedelta(seconds=SAFETY))
    assert await polls(started) == 3

    # A worker restarted: the same `live` again still polls once (its IDLE is new).
    await watched.report(PushState.LIVE)
    await env.sleep(timedelta(seconds=1))
    assert await polls(started) == 4

    # The connection keeps failing: shown at once, one poll, then the mailbox's own pace.
    await watched.report(PushState.FAILED)
    await env.sleep(timedelta(seconds=1))
    assert await shown(started) == (PushState.FAILED, "failed")
    assert await polls(started) == 5
    await env.sleep(timedelta(seconds=INTERVAL + 1))
    assert await polls(started) == 6

    # A server without IDLE: off, polled at the mailbox's interval.
    await watched.report(PushState.OFF)
    await env.sleep(timedelta(seconds=1))
    assert await shown(started) == (PushState.OFF, "off")
    before = await polls(started)
    await env.sleep(timedelta(seconds=INTERVAL + 1))
    assert await polls(started) == before + 1


async def test_a_report_whose_signal_was_lost_is_read_at_the_next_poll(
    watched: Watched, time_skipping_env: WorkflowEnvironment
) -> None:
    """The supervisor went live before the workflow existed (a bulk connect, a busy server):
    its signal found nobody, and the mailbox must not poll at its interval for good."""
    env = time_skipping_env
    started = watched.handle
    assert await shown(started) == (PushState.OFF, "off")
    watched.record(PushState.LIVE)  # recorded; the signal never came

    await env.sleep(timedelta(seconds=INTERVAL + 1))  # the next poll, at the interval
    assert await polls(started) == 2
    assert await shown(started) == (PushState.LIVE, "live")
    # From then on the safety net's pace.
    await env.sleep(timedelta(seconds=INTERVAL * 5))
    assert await polls(started) == 2

    watched.record(PushState.FAILED)  # the same the other way: a failure is read too
    await started.signal(MailboxWorkflow.poll_now)
    await env.sleep(timedelta(seconds=1))
    assert await shown(started) == (PushState.FAILED, "failed")
