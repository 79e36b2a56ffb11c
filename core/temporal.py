"""Temporal plumbing shared by the API, the worker, `dev` and the tests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings

# CONTRACT.md §3. Upserting an attribute the server does not know wedges the workflow task,
# so every place that starts a server registers all of these first.
SEARCH_ATTRIBUTES: dict[str, IndexedValueType.ValueType] = {
    "MailboxId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "MailboxAddress": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "MailboxProvider": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "MailboxStatus": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "MailboxPush": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "AgentId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
}

AGENT_ID = SearchAttributeKey.for_keyword("AgentId")


def dev_server_search_attribute_flags() -> list[str]:
    flags: list[str] = []
    for name in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{name}=Keyword"]
    return flags


async def connect(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)


async def register_search_attributes(client: Client, namespace: str) -> None:
    """Idempotent: attributes that already exist are left alone."""
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=SEARCH_ATTRIBUTES, namespace=namespace)
        )
    except RPCError as error:
        if error.status != RPCStatusCode.ALREADY_EXISTS:
            raise


def _installed_binary(name: str) -> Path:
    """A server binary from our own PyPI packages; the SDK is never allowed to download one."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return beside_python
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"`{name}` was not found next to {sys.executable} or on PATH; run `make install`."
        )
    return Path(found)


def temporal_cli_path() -> Path:
    return _installed_binary("temporal")


def test_server_path() -> Path:
    return _installed_binary("temporal-test-server")
