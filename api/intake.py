"""Starting intake workflows from the API and waiting (briefly) for their ticket."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError

from activities.intake import IntakeMessage
from api.errors import ApiError
from api.schemas import Escalation, FormSubmission
from core.settings import Settings
from core.temporal import AGENT_ID
from domain.outcomes import TicketSource
from store.models import Agent
from workflows.intake import (
    ADD_MESSAGES_SIGNAL,
    IntakeInput,
    IntakeResult,
    IntakeWorkflow,
    form_workflow_id,
    widget_workflow_id,
)


@dataclass(frozen=True)
class IntakeOutcome:
    reference: str
    ticket_number: int | None  # None: still being made when we stopped waiting


def form_reference(agent_id: str, form: FormSubmission) -> str:
    """Same submission, same reference: a double POST joins the first ticket.

    With a `submission_id` (the hosted form makes one per page view) identity is that id;
    without one it is the content, so an identical resend is still one ticket.
    """
    if form.submission_id:
        basis = f"{agent_id}\nid\n{form.submission_id}"
    else:
        basis = f"{agent_id}\ncontent\n{form.email.lower()}\n{form.subject}\n{form.description}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


async def submit_form(
    client: Client, settings: Settings, agent: Agent, form: FormSubmission
) -> IntakeOutcome:
    reference = form_reference(agent.id, form)
    intake = IntakeInput(
        agent_id=agent.id,
        source=TicketSource.FORM,
        reference=reference,
        title=form.subject,
        description=form.description,
        requester_email=form.email,
        requester_name=form.name or None,
        messages=[
            IntakeMessage(
                role="requester",
                content=form.description,
                at=datetime.now(UTC).isoformat(),
                author_email=form.email,
                author_name=form.name or None,
                key="submission",
            )
        ],
    )
    handle = await _start(client, settings, form_workflow_id(reference), intake)
    return IntakeOutcome(reference, await _wait_for_number(handle, settings.intake_wait_seconds))


VISITOR_NAME = "Website visitor"
TITLE_LENGTH = 120


def escalation_intake(agent: Agent, escalation: Escalation) -> IntakeInput:
    """The ticket a conversation becomes; its messages travel separately, by signal."""
    first_words = next(
        (m.content.strip().splitlines()[0] for m in escalation.messages if m.role == "visitor"),
        "",
    )
    if len(first_words) > TITLE_LENGTH:
        first_words = first_words[: TITLE_LENGTH - 1].rstrip() + "…"
    return IntakeInput(
        agent_id=agent.id,
        source=TicketSource.WIDGET,
        reference=escalation.conversation_id,
        title=f"Chat: {first_words}" if first_words else "Chat escalation",
        description=escalation.reason
        or "Escalated from the chat widget: the assistant could not answer.",
        requester_email=escalation.visitor.email,
        requester_name=escalation.visitor.name or VISITOR_NAME,
    )


def escalation_messages(escalation: Escalation) -> list[IntakeMessage]:
    visitor = escalation.visitor
    return [
        IntakeMessage(
            role=m.role,
            content=m.content,
            at=m.at.isoformat(),
            author_email=visitor.email if m.role == "visitor" else None,
            author_name=(visitor.name or VISITOR_NAME) if m.role == "visitor" else "Assistant",
        )
        for m in escalation.messages
    ]


async def escalate_to_ticket(
    client: Client, settings: Settings, agent: Agent, escalation: Escalation
) -> int | None:
    """Signal-with-start: a running workflow for this conversation takes the new messages,
    otherwise a new run starts with them; either way one ticket per conversation."""
    handle = await _start(
        client,
        settings,
        widget_workflow_id(escalation.conversation_id),
        escalation_intake(agent, escalation),
        signal_messages=escalation_messages(escalation),
    )
    return await _wait_for_number(handle, settings.intake_wait_seconds)


async def _start(
    client: Client,
    settings: Settings,
    workflow_id: str,
    intake: IntakeInput,
    *,
    signal_messages: list[IntakeMessage] | None = None,
) -> WorkflowHandle[IntakeWorkflow, IntakeResult]:
    attributes = TypedSearchAttributes([SearchAttributePair(AGENT_ID, intake.agent_id)])
    try:
        if signal_messages is None:
            return await client.start_workflow(
                IntakeWorkflow.run,
                intake,
                id=workflow_id,
                task_queue=settings.task_queue,
                # A repeated request while the first is running joins that run.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=attributes,
            )
        return await client.start_workflow(
            IntakeWorkflow.run,
            intake,
            id=workflow_id,
            task_queue=settings.task_queue,
            search_attributes=attributes,
            start_signal=ADD_MESSAGES_SIGNAL,
            start_signal_args=[signal_messages],
        )
    except RPCError as error:
        raise ApiError(
            503,
            "temporarily_unavailable",
            "We could not accept the request right now; please try again in a minute.",
            headers={"Retry-After": "30"},
        ) from error


async def _wait_for_number(
    handle: WorkflowHandle[IntakeWorkflow, IntakeResult], seconds: float
) -> int | None:
    try:
        result = await asyncio.wait_for(handle.result(), timeout=seconds)
    except TimeoutError:
        return None
    return result.ticket_number


async def pending_form_number(client: Client, agent: Agent, reference: str) -> int | None:
    """The ticket number of an earlier 202 submission, or None while it is still running."""
    handle = client.get_workflow_handle_for(IntakeWorkflow.run, form_workflow_id(reference))
    try:
        described = await handle.describe()
        if described.typed_search_attributes.get(AGENT_ID) != agent.id:
            raise ApiError(404, "not_found", "No submission has that reference.")
        result = await asyncio.wait_for(handle.result(), timeout=0.5)
    except TimeoutError:
        return None
    except RPCError as error:
        raise ApiError(404, "not_found", "No submission has that reference.") from error
    return result.ticket_number
