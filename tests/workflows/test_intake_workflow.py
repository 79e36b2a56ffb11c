from __future__ import annotations

import ast
import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.intake import CreateIntakeTicketInput, CreateIntakeTicketResult, IntakeMessage
from core.settings import Settings
from domain.outcomes import TicketSource
from tests.conftest import make_agent, unique_task_queue
from worker import build_worker
from workflows.intake import ADD_MESSAGES_SIGNAL, IntakeInput, IntakeWorkflow, form_workflow_id

ROOT = Path(__file__).resolve().parents[2]


def intake_input(agent_id: str, reference: str) -> IntakeInput:
    return IntakeInput(
        agent_id=agent_id,
        source=TicketSource.FORM,
        reference=reference,
        title="Broken login",
        description="I cannot log in",
        requester_email="ann@example.com",
        requester_name="Ann",
        messages=[
            IntakeMessage(
                role="requester", content="I cannot log in", at="2026-11-25T10:00:00+00:00"
            )
        ],
    )


async def test_intake_workflow_makes_one_ticket_even_when_run_twice(
    time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine
) -> None:
    agent, _ = make_agent(sqlite_engine)
    settings = Settings(task_queue=unique_task_queue(), worker_max_concurrent_activities=4)
    reference = uuid.uuid4().hex
    with ThreadPoolExecutor(4) as pool:
        async with build_worker(time_skipping_env.client, settings, sqlite_engine, pool):
            results = [
                await time_skipping_env.client.execute_workflow(
                    IntakeWorkflow.run,
                    intake_input(agent.id, reference),
                    id=form_workflow_id(reference),
                    task_queue=settings.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                )
                for _ in range(2)
            ]
    assert results[0].created and not results[1].created
    assert results[0].ticket_id == results[1].ticket_id
    assert results[0].ticket_number == 1


async def test_intake_workflow_retries_the_activity_until_the_database_is_back(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    attempts: list[int] = []

    @activity.defn(name="create_ticket")
    def flaky_create_ticket(inp: CreateIntakeTicketInput) -> CreateIntakeTicketResult:
        attempts.append(activity.info().attempt)
        if len(attempts) < 4:
            raise ConnectionError("database is restarting")
        return CreateIntakeTicketResult(ticket_id="t-1", ticket_number=7, created=True)

    task_queue = unique_task_queue()
    with ThreadPoolExecutor(2) as pool:
        async with Worker(
            time_skipping_env.client,
            task_queue=task_queue,
            workflows=[IntakeWorkflow],
            activities=[flaky_create_ticket],
            activity_executor=pool,
        ):
            result = await time_skipping_env.client.execute_workflow(
                IntakeWorkflow.run,
                intake_input("agent", "r"),
                id=f"intake:form:{uuid.uuid4()}",
                task_queue=task_queue,
            )
    assert result.ticket_number == 7
    assert attempts == [1, 2, 3, 4]


async def test_intake_workflow_fails_fast_for_a_missing_agent(
    time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine
) -> None:
    settings = Settings(task_queue=unique_task_queue(), worker_max_concurrent_activities=4)
    with ThreadPoolExecutor(4) as pool:
        async with build_worker(time_skipping_env.client, settings, sqlite_engine, pool):
            try:
                await time_skipping_env.client.execute_workflow(
                    IntakeWorkflow.run,
                    intake_input("missing", "r"),
                    id=f"intake:form:{uuid.uuid4()}",
                    task_queue=settings.task_queue,
                )
            except WorkflowFailureError as failure:
                assert isinstance(failure.cause, ActivityError)
                assert isinstance(failure.cause.cause, ApplicationError)
                assert failure.cause.cause.type == "AgentNotFound"
            else:
                raise AssertionError("the workflow should fail")


def test_workflow_modules_import_database_code_only_through_pass_through() -> None:
    """Importing SQLAlchemy inside the sandbox costs 15-20x throughput (research/temporal.md)."""
    for path in (ROOT / "workflows").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # top level only: the pass-through block is a `with`
            if isinstance(node, ast.Import | ast.ImportFrom):
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                assert module is not None
                root = module.split(".")[0]
                assert root in {
                    "__future__",
                    "temporalio",
                    "dataclasses",
                    "datetime",
                    "workflows",
                    "typing",
                    "asyncio",
                    "domain",  # pure rules and names: no database, no I/O
                }, f"{path.name} imports {module} outside pass-through"


async def test_messages_signalled_while_writing_are_written_before_completion(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    batches: list[list[str]] = []
    first_write_started = asyncio.Event()
    release_first_write = asyncio.Event()

    @activity.defn(name="create_ticket")
    async def recording_create_ticket(inp: CreateIntakeTicketInput) -> CreateIntakeTicketResult:
        batches.append([m.content for m in inp.messages])
        if len(batches) == 1:
            first_write_started.set()
            await release_first_write.wait()
        return CreateIntakeTicketResult(ticket_id="t", ticket_number=3, created=len(batches) == 1)

    task_queue = unique_task_queue()
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=[IntakeWorkflow],
        activities=[recording_create_ticket],
    ):
        start = intake_input("agent", "conv")
        start.messages = []
        handle = await time_skipping_env.client.start_workflow(
            IntakeWorkflow.run,
            start,
            id=f"intake:widget:{uuid.uuid4()}",
            task_queue=task_queue,
            start_signal=ADD_MESSAGES_SIGNAL,
            start_signal_args=[[IntakeMessage("visitor", "hello", "2026-11-25T10:00:00+00:00")]],
        )
        await first_write_started.wait()
        await handle.signal(
            ADD_MESSAGES_SIGNAL,
            [IntakeMessage("visitor", "still there?", "2026-11-25T10:05:00+00:00")],
        )
        release_first_write.set()
        result = await handle.result()
    assert batches == [["hello"], ["still there?"]]
    assert result.created and result.ticket_number == 3
