"""IntakeWorkflow: one form submission or widget escalation becomes one ticket.

Messages arrive in the input (form) or through the `add_messages` signal (widget, sent with
signal-with-start). A conversation escalated again while its workflow is still running signals
that run; the loop below writes every batch before the workflow completes, so nothing a
visitor said is dropped. Temporal refuses to complete a workflow that has unhandled signals in
the same task, so a signal arriving at the very end is still drained.
"""

from __future__ import annotations

from dataclasses import replace

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

ADD_MESSAGES_SIGNAL = "add_messages"


def form_workflow_id(reference: str) -> str:
    return f"intake:form:{reference}"


def widget_workflow_id(conversation_id: str) -> str:
    return f"intake:widget:{conversation_id}"


# The workflow's input and result are its activity's: one submission, one ticket.
IntakeInput = CreateIntakeTicketInput
IntakeResult = CreateIntakeTicketResult


@workflow.defn(name="IntakeWorkflow")
class IntakeWorkflow:
    @workflow.init
    def __init__(self, inp: IntakeInput) -> None:
        self._pending: list[IntakeMessage] = list(inp.messages)

    @workflow.signal(name=ADD_MESSAGES_SIGNAL)
    def add_messages(self, messages: list[IntakeMessage]) -> None:
        self._pending.extend(messages)

    @workflow.run
    async def run(self, inp: IntakeInput) -> IntakeResult:
        await workflow.wait_condition(lambda: bool(self._pending))
        result: IntakeResult | None = None
        while self._pending:
            batch, self._pending = self._pending, []
            made: CreateIntakeTicketResult = await workflow.execute_activity_method(
                IntakeActivities.create_ticket,
                replace(inp, messages=batch),
                start_to_close_timeout=DATABASE_WRITE_TIMEOUT,
                retry_policy=DATABASE_WRITE_RETRY,
            )
            created = made.created or (result is not None and result.created)
            result = IntakeResult(made.ticket_id, made.ticket_number, created)
        assert result is not None
        return result
