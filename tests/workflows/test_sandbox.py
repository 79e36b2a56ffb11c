"""The worker's workflow runner refuses a workflow the calls that would make its replay
differ, even when the workflow module imported them at its top (which a runner passing every
module through would let by), and still does when the module's code is compiled once for
every run (`core/shared_code.py`)."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from types import ModuleType

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import tests.workflows
from core.shared_code import SharedCodeFinder
from tests.conftest import unique_task_queue
from tests.workflows.nondeterministic import NonDeterministicWorkflow
from worker import WORKFLOW_RUNNER
from workflows.registry import WORKFLOWS

SAMPLE = NonDeterministicWorkflow.__module__


@pytest.fixture
def shared_code() -> Iterator[SharedCodeFinder]:
    """The sample workflow's module compiled once, as the worker does for `workflows/`."""
    finder = SharedCodeFinder([SAMPLE])
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)


def import_afresh(finder: SharedCodeFinder) -> ModuleType:
    """What the sandbox does for each workflow run: a new module object, its body run again."""
    spec = finder.find_spec(SAMPLE, tests.workflows.__path__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_modules_imported_again_are_new_modules_running_one_compiled_code(
    shared_code: SharedCodeFinder,
) -> None:
    first, second = import_afresh(shared_code), import_afresh(shared_code)
    assert first is not second
    assert first.NonDeterministicWorkflow is not second.NonDeterministicWorkflow
    run_first = first.NonDeterministicWorkflow.run
    run_second = second.NonDeterministicWorkflow.run
    assert run_first.__code__ is run_second.__code__
    # Each function still reads its own module's globals.
    assert run_first.__globals__ is vars(first) and run_second.__globals__ is vars(second)
    assert list(shared_code.codes) == [SAMPLE]
    assert not shared_code.covers("tests.workflows") and shared_code.covers(SAMPLE)


@pytest.mark.parametrize("compiled_once", [False, True])
@pytest.mark.parametrize("call", ["clock", "random", "uuid"])
async def test_production_runner_refuses_non_deterministic_calls(
    time_skipping_env: WorkflowEnvironment,
    call: str,
    compiled_once: bool,
    request: pytest.FixtureRequest,
) -> None:
    finder = request.getfixturevalue("shared_code") if compiled_once else None
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
    if finder is not None:
        assert list(finder.codes) == [SAMPLE]  # the sandbox imported it through the finder


async def test_the_worker_compiles_its_workflow_modules_once(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    finder = next(
        f for f in sys.meta_path if isinstance(f, SharedCodeFinder) and f.covers("workflows.x")
    )
    # Building a worker validates each workflow in a sandbox of its own: a first import.
    Worker(
        time_skipping_env.client,
        task_queue=unique_task_queue(),
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
    )
    modules = {w.__module__ for w in WORKFLOWS}
    assert modules <= set(finder.codes), (modules, set(finder.codes))
