"""IntakeWorkflow: one form submission or widget escalation becomes one ticket."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    # Passed through: re-importing SQLAlchemy inside the sandbox costs 15-20x throughput.
    from activities.intake import (
        CreateIntakeTicketInput,
        CreateIntakeTicketResult,
        IntakeActivities,
        IntakeMessage,
    )
    from workflows.policies import DATABASE_WRITE_RETRY, DATABASE_WRITE_TIMEOUT


def form_workflow_id(reference: str) -> str:
    return f"intake:form:{reference}"


def widget_workflow_id(conversation_id: str) -> str:
    return f"intake:widget:{conversation_id}"


@dataclass
class IntakeInput:
    agent_id: str
    source: str  # "form" or "widget"
    reference: str
    title: str
    description: str
    requester_email: str | None
    requester_name: str | None
    messages: list[IntakeMessage] = field(default_factory=list)


@dataclass
class IntakeResult:
    ticket_id: str
    ticket_number: int
    created: bool


@workflow.defn(name="IntakeWorkflow")
class IntakeWorkflow:
    @workflow.run
    async def run(self, inp: IntakeInput) -> IntakeResult:
        made: CreateIntakeTicketResult = await workflow.execute_activity_method(
            IntakeActivities.create_ticket,
            CreateIntakeTicketInput(
                agent_id=inp.agent_id,
                source=inp.source,
                reference=inp.reference,
                title=inp.title,
                description=inp.description,
                requester_email=inp.requester_email,
                requester_name=inp.requester_name,
                messages=inp.messages,
            ),
            start_to_close_timeout=DATABASE_WRITE_TIMEOUT,
            retry_policy=DATABASE_WRITE_RETRY,
        )
        return IntakeResult(made.ticket_id, made.ticket_number, made.created)
