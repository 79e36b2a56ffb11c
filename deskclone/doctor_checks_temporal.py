"""Temporal checks: it answers, the namespace exists, every search attribute of CONTRACT.md §3
is registered with its type, a worker polls the task queue."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.temporal import SEARCH_ATTRIBUTES
from deskclone.doctor_checks import Check, Context, Finding, fail, ok, warn

AREA = "temporal"

_TYPE_NAMES = {
    value: name.removeprefix("INDEXED_VALUE_TYPE_").title().replace("_", "")
    for name, value in IndexedValueType.items()
}


def _short_connect_error(error: RuntimeError) -> str:
    message = str(error)
    for marker in ("Connection refused", "dns error", "timed out", "No route to host"):
        if marker.lower() in message.lower():
            return marker.lower()
    return message[:200]


async def temporal_answers(ctx: Context) -> list[Finding]:
    address = ctx.settings.temporal_address
    try:
        ctx.temporal = await asyncio.wait_for(
            Client.connect(address, namespace=ctx.settings.temporal_namespace), ctx.timeout
        )
    except TimeoutError:
        return [
            fail(
                AREA,
                f"Temporal at {address} did not answer within {ctx.timeout:g} s. Is the server "
                "running, and is DESKCLONE_TEMPORAL_ADDRESS right?",
            )
        ]
    except RuntimeError as error:
        return [
            fail(
                AREA,
                f"cannot reach Temporal at {address}: {_short_connect_error(error)}. Is the "
                "server running, and is DESKCLONE_TEMPORAL_ADDRESS right?",
            )
        ]
    return [ok(AREA, f"Temporal answers at {address}")]


async def namespace_exists(ctx: Context) -> list[Finding]:
    if ctx.temporal is None:
        return []
    address, namespace = ctx.settings.temporal_address, ctx.settings.temporal_namespace
    try:
        await asyncio.wait_for(
            ctx.temporal.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=namespace)
            ),
            ctx.timeout,
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return [
                fail(
                    AREA,
                    f"the namespace '{namespace}' does not exist on Temporal at {address}: "
                    f"create it with `temporal operator namespace create --namespace "
                    f"{namespace}` (docker-compose.yml's temporal-create-namespace job does), "
                    "or fix DESKCLONE_TEMPORAL_NAMESPACE",
                )
            ]
        return [fail(AREA, f"cannot describe the namespace '{namespace}': {error.message}")]
    ctx.namespace_exists = True
    return [ok(AREA, f"namespace '{namespace}' exists")]


async def search_attributes_registered(ctx: Context) -> list[Finding]:
    if ctx.temporal is None or not ctx.namespace_exists:
        return []
    namespace = ctx.settings.temporal_namespace
    try:
        listed = await asyncio.wait_for(
            ctx.temporal.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            ),
            ctx.timeout,
        )
    except RPCError as error:
        return [fail(AREA, f"cannot list the search attributes: {error.message}")]
    registered = dict(listed.custom_attributes)
    findings: list[Finding] = []
    for name, wanted in SEARCH_ATTRIBUTES.items():
        wanted_name = _TYPE_NAMES.get(wanted, str(wanted))
        found = registered.get(name)
        if found is None:
            findings.append(
                fail(
                    AREA,
                    f"the search attribute {name} is not registered in namespace '{namespace}'; "
                    "mailbox workflows cannot start or be found without it. Register it: "
                    f"`temporal operator search-attribute create --namespace {namespace} "
                    f"--name {name} --type {wanted_name}`",
                )
            )
        elif found != wanted:
            findings.append(
                fail(
                    AREA,
                    f"the search attribute {name} is a {_TYPE_NAMES.get(found, str(found))} "
                    f"in namespace '{namespace}' but must be a {wanted_name}: remove it "
                    "(`temporal operator search-attribute remove`) and create it again",
                )
            )
    if not findings:
        names = ", ".join(SEARCH_ATTRIBUTES)
        findings.append(ok(AREA, f"search attributes registered as Keyword: {names}"))
    return findings


async def worker_polling(ctx: Context) -> list[Finding]:
    if ctx.temporal is None or not ctx.namespace_exists:
        return []
    task_queue = ctx.settings.task_queue
    try:
        described = await asyncio.wait_for(
            ctx.temporal.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=ctx.settings.temporal_namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
            ),
            ctx.timeout,
        )
    except (RPCError, TimeoutError) as error:
        return [warn(AREA, f"cannot tell whether a worker is running: {error}")]
    if not described.pollers:
        return [
            warn(
                AREA,
                f"no worker is polling the task queue '{task_queue}' now: nothing will be "
                "processed until `deskclone worker` runs",
            )
        ]
    return [ok(AREA, f"{len(described.pollers)} worker(s) polling the task queue '{task_queue}'")]


CHECKS: list[Check] = [
    temporal_answers,
    namespace_exists,
    search_attributes_registered,
    worker_polling,
]
