"""Record the workflow histories that `test_replay.py` replays.

    .venv/bin/python -m tests.workflows.record_histories

Run it when a workflow change is meant to be compatible with the old histories only after a
`workflow.patched(...)` guard: keep the old files, add the new ones next to them.
"""

from __future__ import annotations

import asyncio
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import build_activities
from activities.intake import IntakeMessage
from core.crypto import Cipher
from core.settings import Settings
from core.temporal import register_search_attributes, test_server_path
from domain.outcomes import TicketSource
from providers.base import Credentials
from store import mailboxes
from store.db import make_engine, transaction
from store.migrate import upgrade
from tests.conftest import make_agent
from tests.fakes import FakeMailbox, fake_factory, make_email
from worker import WORKFLOW_RUNNER
from workflows.intake import IntakeInput, IntakeWorkflow
from workflows.mailbox import MAILBOX_STATUS, MailboxWorkflow
from workflows.mailbox_state import MailboxInput, MailboxState
from workflows.registry import WORKFLOWS

HERE = Path(__file__).parent / "histories"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/h.db")
        upgrade(engine)
        agent, _ = make_agent(engine)
        cipher = Cipher("record")
        with transaction(engine) as session:
            mailbox, _ = mailboxes.connect(
                session,
                agent_id=agent.id,
                provider="gmail",
                address="support@acme.example",
                credentials_encrypted=cipher.encrypt_credentials(Credentials(refresh_token="r")),
            )
        box = FakeMailbox()
        box.deliver(make_email(subject="Hello", message_id="<h1@customer.example>"), "T1")
        box.deliver(make_email(subject="Re: Hello", in_reply_to="<h1@customer.example>"), "T1")
        settings = Settings(
            secret_key="record", task_queue="record", worker_max_concurrent_activities=2
        )
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(test_server_path())
        )
        await register_search_attributes(env.client, env.client.namespace)
        with ThreadPoolExecutor(2) as pool:
            async with Worker(
                env.client,
                task_queue="record",
                workflows=WORKFLOWS,
                workflow_runner=WORKFLOW_RUNNER,
                activities=build_activities(engine, settings, fake_factory(box)),
                activity_executor=pool,
                max_concurrent_activities=2,
            ):
                handle = await env.client.start_workflow(
                    MailboxWorkflow.run,
                    MailboxInput(MailboxState(mailbox.id, agent.id, "gmail")),
                    id="mailbox:recorded",
                    task_queue="record",
                    search_attributes=TypedSearchAttributes(
                        [SearchAttributePair(MAILBOX_STATUS, "active")]
                    ),
                )
                await env.sleep(timedelta(minutes=3))
                box.revoked = True
                await handle.signal(MailboxWorkflow.poll_now)
                await env.sleep(timedelta(minutes=1))
                box.revoked = False
                await handle.signal(MailboxWorkflow.reconnect)
                await env.sleep(timedelta(seconds=5))
                await handle.signal(MailboxWorkflow.disconnect)
                await handle.result()
                (HERE / "mailbox_poll_expire_reconnect.json").write_text(
                    (await handle.fetch_history()).to_json()
                )
                intake = await env.client.start_workflow(
                    IntakeWorkflow.run,
                    IntakeInput(
                        agent.id,
                        TicketSource.FORM,
                        "recorded",
                        "Help",
                        "Please",
                        "a@b.example",
                        "A",
                        [IntakeMessage("requester", "Please", "2026-11-25T10:00:00+00:00")],
                    ),
                    id="intake:form:recorded",
                    task_queue="record",
                )
                await intake.result()
                (HERE / "intake_form.json").write_text((await intake.fetch_history()).to_json())
        await env.shutdown()
        engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
