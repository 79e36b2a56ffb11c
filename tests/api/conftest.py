"""API tests: the real app on PostgreSQL, a real Temporal dev server, an in-process worker."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine
from starlette.applications import Starlette
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.settings import Settings
from emulator.server import RunningEmulator, running_emulator
from providers.registry import close_shared_connections
from store.models import Agent
from tests.conftest import make_agent, unique_task_queue
from worker import build_worker


@dataclass
class Api:
    client: httpx.AsyncClient
    app: Starlette
    agent: Agent
    token: str
    engine: Engine
    settings: Settings

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def form_url(self, key: str | None = None) -> str:
        return f"/api/v1/public/{key or self.agent.public_key}/form"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    with running_emulator(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest.fixture(scope="session")
async def api_worker(
    dev_server_env: WorkflowEnvironment, postgres_engine: Engine, emulator: RunningEmulator
) -> AsyncIterator[Settings]:
    settings = Settings(
        task_queue=unique_task_queue(),
        worker_max_concurrent_activities=8,
        secret_key="api-tests-secret",
        gmail_api_url=emulator.url,
        google_auth_uri=f"{emulator.url}/o/oauth2/auth",
        google_token_uri=f"{emulator.url}/token",
        microsoft_authority=f"{emulator.url}/common",
        graph_api_url=f"{emulator.url}/v1.0",
        provider_ca_bundle=emulator.ca_path,
    )
    with ThreadPoolExecutor(8) as pool:
        async with build_worker(dev_server_env.client, settings, postgres_engine, pool):
            yield settings
    # Kept-alive provider connections must not outlive the emulator they talk to.
    close_shared_connections()


def make_api_settings(base: Settings, **overrides: object) -> Settings:
    # A long wait for the ticket number: a loaded CI machine must not turn 201s into 202s
    # (the 202 path has its own test, with a short wait).
    defaults = {"public_url": "https://help.example.com", "intake_wait_seconds": 30.0}
    return base.model_copy(update={**defaults, **overrides})


@pytest.fixture
async def api(
    api_worker: Settings, dev_server_env: WorkflowEnvironment, postgres_engine: Engine
) -> AsyncIterator[Api]:
    async with serving(api_worker, dev_server_env, postgres_engine) as served:
        yield served


@asynccontextmanager
async def serving(
    worker: Settings, dev_server_env: WorkflowEnvironment, postgres_engine: Engine
) -> AsyncIterator[Api]:
    """The app for a new workspace, beside `worker`, and a client that calls it in-process."""
    settings = make_api_settings(worker)
    agent, token = make_agent(postgres_engine)
    app = create_app(settings, dev_server_env.client, engine=postgres_engine)
    # An address of its own per test: on PostgreSQL the rate limits are counted in the
    # database (api/limits.py), so tests sharing one address would share one allowance.
    address = "2001:db8::" + ":".join(secrets.token_hex(2) for _ in range(3))
    transport = httpx.ASGITransport(app=app, client=(address, 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Api(client, app, agent, token, postgres_engine, settings)
