"""Several workers share the IMAP mailboxes by PostgreSQL advisory lock (docs/scaling.md): no
mailbox is watched twice, a worker takes no more than its cap, and when a worker goes its
mailboxes are taken by the others. Real PostgreSQL (a database of its own, so no other
supervisor of the session takes part) and the session's real Dovecot."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.idle_supervisor import IdleSupervisor, account_reader
from core.crypto import Cipher
from core.settings import Settings
from domain.credentials import Credentials
from domain.outcomes import PushState
from emulator.dovecot import Dovecot
from providers.imap.server import ImapServer
from store import mailboxes
from store.db import make_engine, transaction
from store.migrate import upgrade
from store.models import Mailbox
from tests.conftest import PG_ADMIN_URL, _pg_url, make_agent
from tests.imap.support import until

MAILBOXES = 6


@pytest.fixture
def own_engine() -> Iterator[Engine]:
    name = f"deskclone_idle_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(_pg_url(name))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings_for(cap: int) -> Settings:
    return Settings(
        secret_key="idle-workers-secret",
        imap_allow_plaintext=True,
        imap_idle_renew_seconds=5,
        imap_idle_rescan_seconds=0.5,
        imap_idle_backoff_max_seconds=1,
        imap_idle_max_per_worker=cap,
    )


@pytest.fixture
def stored(own_engine: Engine, dovecot: Dovecot) -> list[str]:
    """IMAP mailboxes as the API's connect stores them, one Dovecot user each."""
    agent, _token = make_agent(own_engine)
    cipher = Cipher.from_settings(settings_for(1))
    ids = []
    for n in range(MAILBOXES):
        user, password = f"w{secrets.token_hex(5)}", secrets.token_urlsafe(10)
        dovecot.add_user(user, password)
        server = ImapServer(dovecot.host, dovecot.port, "none", user).as_dict()
        credentials = Credentials(refresh_token="", password=password, server=server)
        with transaction(own_engine) as session:
            mailbox, _ = mailboxes.connect(
                session,
                agent_id=agent.id,
                provider="imap",
                address=f"{user}-{n}@imap.example",
                credentials_encrypted=cipher.encrypt_credentials(credentials),
                server=server,
            )
            ids.append(mailbox.id)
    return ids


class Running:
    def __init__(self, supervisor: IdleSupervisor) -> None:
        self.supervisor = supervisor
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(supervisor.run(self.stop))

    def live(self) -> set[str]:
        return {key for key, s in self.supervisor.watched().items() if s == PushState.LIVE}

    async def end(self) -> None:
        self.stop.set()
        await self.task


async def live_of(running: Running) -> set[str]:
    return running.live()


async def live_in_database(engine: Engine, ids: list[str]) -> int:
    with transaction(engine) as session:
        return sum(
            1
            for key in ids
            if (row := session.get(Mailbox, key)) and row.push_state == PushState.LIVE
        )


async def test_workers_share_mailboxes_by_lock_and_take_over_when_one_goes(
    own_engine: Engine, dev_server_env: WorkflowEnvironment, stored: list[str]
) -> None:
    def start(cap: int) -> Running:
        settings = settings_for(cap)
        return Running(
            IdleSupervisor(dev_server_env.client, settings, own_engine, account_reader(settings))
        )

    first = start(cap=4)
    try:
        await until(lambda: live_of(first), lambda live: len(live) == 4)
        second = start(cap=100)
        try:
            await until(lambda: live_of(second), lambda live: len(live) == 2)
            assert not first.live() & second.live()  # no mailbox watched twice
            assert first.live() | second.live() == set(stored)

            # The first worker goes (its database session, and so its locks, with it): the
            # second takes its mailboxes at its next read.
            await first.end()
            await until(lambda: live_of(second), lambda live: live == set(stored))
            await until(
                lambda: live_in_database(own_engine, stored), lambda live: live == MAILBOXES
            )
        finally:
            await second.end()
    finally:
        if not first.stop.is_set():
            await first.end()
