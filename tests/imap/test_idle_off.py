"""`DESKCLONE_IMAP_IDLE=0`: the worker holds no IDLE connection, and no mailbox may go on
saying `live` from an earlier worker's watch (it would poll only at the safety interval with
nobody watching): the supervisor turns each such row `off` and tells its workflow."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.idle_supervisor import idle_watching
from core.crypto import Cipher
from core.settings import Settings
from domain.credentials import Credentials
from domain.outcomes import PushState
from store import mailboxes
from store.db import transaction
from store.models import Mailbox
from tests.conftest import make_mailbox

SECRET = "imap-idle-off-secret"


def push_state(engine: Engine, mailbox_id: str) -> PushState:
    with transaction(engine) as session:
        found = session.get(Mailbox, mailbox_id)
        assert found is not None
        return found.push_state


async def test_watching_turned_off_holds_nothing_and_says_off(
    sqlite_engine: Engine, time_skipping_env: WorkflowEnvironment
) -> None:
    token = Cipher(SECRET).encrypt_credentials(Credentials("", password="secret"))
    left_live = make_mailbox(sqlite_engine, token, "imap")
    with transaction(sqlite_engine) as session:
        # As a worker that watched it, then stopped, left it.
        assert mailboxes.record_watch(session, left_live.id, token, PushState.LIVE, None)

    settings = Settings(secret_key=SECRET, imap_idle=False)
    async with idle_watching(time_skipping_env.client, settings, sqlite_engine) as supervisor:
        for _ in range(100):
            if push_state(sqlite_engine, left_live.id) == PushState.OFF:
                break
            await asyncio.sleep(0.1)
        assert push_state(sqlite_engine, left_live.id) == PushState.OFF
        assert supervisor.watched() == {}
        assert supervisor.connections() == 0
