"""A workflow that makes the calls the sandbox must refuse, in a module of its own that imports
only Temporal and the standard library, as the sandbox re-imports it (tests/workflows/
test_sandbox.py)."""

from __future__ import annotations

import random
import uuid
from datetime import datetime

from temporalio import workflow
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError


@workflow.defn(
    name="TestNonDeterministicWorkflow",
    # Fail the workflow, not only its task, so the test sees the refusal at once.
    failure_exception_types=[RestrictedWorkflowAccessError],
)
class NonDeterministicWorkflow:
    @workflow.run
    async def run(self, call: str) -> str:
        if call == "clock":
            return datetime.now().isoformat()
        if call == "random":
            return str(random.random())
        if call == "uuid":
            return str(uuid.uuid4())
        return workflow.now().isoformat()  # the deterministic way, for contrast
