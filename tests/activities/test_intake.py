from __future__ import annotations

import pytest
from sqlalchemy import Engine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.intake import CreateIntakeTicketInput, IntakeActivities, IntakeMessage
from domain.outcomes import TicketSource
from store import tickets
from store.db import transaction
from tests.conftest import make_agent


def intake(
    agent_id: str, messages: list[IntakeMessage], ref: str = "ref-1"
) -> CreateIntakeTicketInput:
    return CreateIntakeTicketInput(
        agent_id=agent_id,
        source=TicketSource.FORM,
        reference=ref,
        title="Cannot log in",
        description="Password reset mail never arrives",
        requester_email="ann@example.com",
        requester_name="Ann",
        messages=messages,
    )


MESSAGE = IntakeMessage(
    role="requester",
    content="Password reset mail never arrives",
    at="2026-11-25T10:00:00+00:00",
    author_email="ann@example.com",
)


def test_create_ticket_is_idempotent_on_retry(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    activities = IntakeActivities(engine)
    env = ActivityEnvironment()
    first = env.run(activities.create_ticket, intake(agent.id, [MESSAGE]))
    second = env.run(activities.create_ticket, intake(agent.id, [MESSAGE]))
    assert first.created and not second.created
    assert (first.ticket_id, first.ticket_number) == (second.ticket_id, second.ticket_number)
    assert second.messages_added == 0
    with transaction(engine) as session:
        ticket = tickets.get(session, agent.id, first.ticket_id)
        assert ticket is not None and ticket.message_count == 1


def test_create_ticket_appends_only_new_messages_on_a_later_run(engine: Engine) -> None:
    agent, _ = make_agent(engine)
    activities = IntakeActivities(engine)
    env = ActivityEnvironment()
    reply = IntakeMessage(role="assistant", content="Try again", at="2026-11-25T10:01:00+00:00")
    env.run(activities.create_ticket, intake(agent.id, [MESSAGE]))
    later = env.run(activities.create_ticket, intake(agent.id, [MESSAGE, reply]))
    assert later.messages_added == 1 and not later.created


def test_create_ticket_for_a_missing_agent_is_not_retried(engine: Engine) -> None:
    activities = IntakeActivities(engine)
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(activities.create_ticket, intake("no-such-agent", [MESSAGE]))
    assert raised.value.type == "AgentNotFound" and raised.value.non_retryable


@pytest.mark.parametrize("stamp", ["yesterday", "2026-11-25T10:00:00"])
def test_create_ticket_refuses_bad_timestamps_without_writing(engine: Engine, stamp: str) -> None:
    agent, _ = make_agent(engine)
    bad = IntakeMessage(role="visitor", content="hi", at=stamp)
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(IntakeActivities(engine).create_ticket, intake(agent.id, [bad]))
    assert raised.value.type == "InvalidIntake"
    with transaction(engine) as session:
        assert tickets.find_by_source_ref(session, agent.id, "form", "ref-1") is None
