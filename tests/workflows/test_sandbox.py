"""The worker's workflow runner refuses a workflow the calls that would make its replay
differ, even when the workflow module imported them at its top (which a runner passing every
module through would let by)."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.conftest import unique_task_queue
from tests.workflows.nondeterministic import NonDeterministicWorkflow
from worker import WORKFLOW_RUNNER


@pytest.mark.parametrize("call", ["clock", "random", "uuid"])
async def test_production_runner_refuses_non_deterministic_calls(
    time_skipping_env: WorkflowEnvironment, call: str
) -> None:
    client = time_skipping_env.client
    task_queue = unique_task_queue()
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[NonDeterministicWorkflow],
        workflow_runner=WORKFLOW_RUNNER,
    ):
        with pytest.raises(WorkflowFailureError) as failure:
            await client.execute_workflow(
                NonDeterministicWorkflow.run,
                call,
                id=f"sandbox-{call}-{uuid.uuid4()}",
                task_queue=task_queue,
            )
        assert "RestrictedWorkflowAccessError" in str(failure.value.cause)
        # The same runner runs the deterministic call.
        await client.execute_workflow(
            NonDeterministicWorkflow.run,
            "workflow.now",
            id=f"sandbox-ok-{uuid.uuid4()}",
            task_queue=task_queue,
        )
