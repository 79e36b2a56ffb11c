"""The worker's lists are the only registries: every defined workflow and activity is in them."""

from __future__ import annotations

import importlib
import pkgutil
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

from sqlalchemy import Engine
from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment

import activities
import workflows
from activities import build_activities, build_webhook_activities
from core.settings import Settings
from worker import build_worker
from workflows.registry import WORKFLOWS


def _modules(package: ModuleType) -> list[ModuleType]:
    names = [m.name for m in pkgutil.iter_modules(package.__path__)]
    return [importlib.import_module(f"{package.__name__}.{name}") for name in names]


def test_every_workflow_is_registered() -> None:
    defined = {
        obj
        for module in _modules(workflows)
        for obj in vars(module).values()
        if isinstance(obj, type) and workflow._Definition.from_class(obj) is not None
    }
    assert defined == set(WORKFLOWS)


def test_every_activity_is_registered(sqlite_engine: Engine) -> None:
    defined = set()
    for module in _modules(activities):
        for obj in vars(module).values():
            if isinstance(obj, type):
                for attr in vars(obj).values():
                    if activity._Definition.from_callable(attr) is not None:
                        defined.add(activity._Definition.must_from_callable(attr).name)
    # The delivery activity runs on the worker's second `Worker` (worker.delivering).
    deliveries = build_webhook_activities(sqlite_engine, Settings())
    registered = {
        activity._Definition.must_from_callable(a).name
        for a in [*build_activities(sqlite_engine, Settings()), deliveries.deliver]
    }
    assert defined == registered


async def test_the_worker_builds_with_the_real_lists(
    time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine
) -> None:
    with ThreadPoolExecutor(1) as pool:
        worker = build_worker(
            time_skipping_env.client,
            Settings(task_queue="registry", worker_max_concurrent_activities=1),
            sqlite_engine,
            pool,
        )
        assert worker.task_queue == "registry"
