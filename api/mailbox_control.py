"""Talking to a mailbox's workflow from the API.

Every signal but `disconnect` goes through signal-with-start: if the workflow is not running
(terminated by an operator, lost with a dev server's state) it is started again from the
database's view of the mailbox, so a button press never fails for that reason.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from core.settings import Settings
from core.temporal import AGENT_ID
from store.models import Mailbox
from workflows.mailbox import MAILBOX_PUSH, MAILBOX_STATUS, MailboxWorkflow, mailbox_workflow_id
from workflows.mailbox_state import MailboxInput, MailboxState

MAILBOX_ID = SearchAttributeKey.for_keyword("MailboxId")
MAILBOX_ADDRESS = SearchAttributeKey.for_keyword("MailboxAddress")
MAILBOX_PROVIDER = SearchAttributeKey.for_keyword("MailboxProvider")


def _input(mailbox: Mailbox) -> MailboxInput:
    return MailboxInput(
        MailboxState(
            mailbox_id=mailbox.id,
            agent_id=mailbox.agent_id,
            provider=mailbox.provider,
            status=mailbox.status,
            poll_interval_seconds=mailbox.poll_interval_seconds,
            cursor=mailbox.cursor,
        )
    )


def _attributes(mailbox: Mailbox) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(MAILBOX_ID, mailbox.id),
            SearchAttributePair(MAILBOX_ADDRESS, mailbox.address),
            SearchAttributePair(MAILBOX_PROVIDER, mailbox.provider),
            SearchAttributePair(MAILBOX_STATUS, mailbox.status),
            SearchAttributePair(MAILBOX_PUSH, mailbox.push_state),
            SearchAttributePair(AGENT_ID, mailbox.agent_id),
        ]
    )


async def signal(
    client: Client, settings: Settings, mailbox: Mailbox, name: str, *args: Any
) -> None:
    """Deliver `name` to the mailbox's workflow, starting it first if it is not running."""
    try:
        await client.start_workflow(
            MailboxWorkflow.run,
            _input(mailbox),
            id=mailbox_workflow_id(mailbox.id),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=_attributes(mailbox),
            static_summary=f"{mailbox.provider} mailbox {mailbox.address}",
            start_signal=name,
            start_signal_args=list(args),
        )
    except RPCError as error:
        raise _unavailable() from error


async def disconnect(client: Client, mailbox: Mailbox) -> bool:
    """Tell the mailbox's workflow to end; False when none was running."""
    handle = client.get_workflow_handle(mailbox_workflow_id(mailbox.id))
    try:
        await handle.signal(MailboxWorkflow.disconnect)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise _unavailable() from error
        return False
    return True


async def live_state(client: Client, mailbox_id: str) -> MailboxState | None:
    """The running workflow's own view (last poll time, cursor), or None if it does not say."""
    handle = client.get_workflow_handle_for(MailboxWorkflow.run, mailbox_workflow_id(mailbox_id))
    try:
        return await handle.query(MailboxWorkflow.state)
    except Exception:  # not running, no worker, timeout: the database view is used instead
        return None


def _unavailable() -> ApiError:
    return ApiError(
        503,
        "temporarily_unavailable",
        "The mailbox service is not reachable right now; please try again in a minute.",
        headers={"Retry-After": "30"},
    )
