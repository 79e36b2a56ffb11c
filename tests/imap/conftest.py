"""IMAP end to end: the real app and worker (PostgreSQL, the Temporal dev server) against the
session's real Dovecot (tests/conftest.py `dovecot`), reached over TLS verified with its CA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.settings import Settings
from emulator.dovecot import Dovecot
from tests.api.conftest import Api, serving
from tests.conftest import unique_task_queue
from worker import build_worker


@dataclass
class Account:
    """A Dovecot user and the connect body that reaches it."""

    user: str
    password: str
    address: str
    dovecot: Dovecot

    def body(self, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "provider": "imap",
            "address": self.address,
            "host": "localhost",  # the name on the test certificate
            "port": self.dovecot.tls_port,
            "security": "tls",
            "username": self.user,
            "password": self.password,
        }
        body.update(changes)
        return body

    def deliver(self, raw: bytes) -> int:
        return self.dovecot.append(self.user, raw)


@pytest.fixture(scope="session")
async def imap_worker(
    dev_server_env: WorkflowEnvironment, postgres_engine: Engine, dovecot: Dovecot
) -> AsyncIterator[Settings]:
    settings = Settings(
        task_queue=unique_task_queue(),
        worker_max_concurrent_activities=8,
        secret_key="imap-tests-secret",
        imap_ca_file=dovecot.ca_file,
        imap_timeout_seconds=5,
    )
    with ThreadPoolExecutor(8) as pool:
        async with build_worker(dev_server_env.client, settings, postgres_engine, pool):
            yield settings


@pytest.fixture
async def imap_api(
    imap_worker: Settings, dev_server_env: WorkflowEnvironment, postgres_engine: Engine
) -> AsyncIterator[Api]:
    async with serving(imap_worker, dev_server_env, postgres_engine) as served:
        yield served


@asynccontextmanager
async def api_with(api: Api, **overrides: Any) -> AsyncIterator[Api]:
    """The same workspace and Temporal, through an app with other settings."""
    settings = api.settings.model_copy(update=overrides)
    app = create_app(settings, api.app.state.resources.temporal, engine=api.engine)
    transport = httpx.ASGITransport(app=app, client=("2001:db8::1", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Api(client, app, api.agent, api.token, api.engine, settings)


@pytest.fixture
def account(dovecot: Dovecot, dovecot_user: tuple[str, str]) -> Account:
    user, password = dovecot_user
    return Account(user, password, f"{user}@imap.example", dovecot)
