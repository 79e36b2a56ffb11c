"""PostgreSQL NOTIFY for the store's writers and LISTEN for the workers that wait on them.

A writer asks for a notification inside its transaction (`notify_at_commit`); it is sent once
per channel and payload in the commit's `before_commit` hook, so PostgreSQL delivers it when
(and only if) the commit succeeds. A statement per call would also make the session flush
everything pending first: a batch of 25 emails would write row by row. SQLite has no NOTIFY;
there the listeners read on a timer instead."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session

_PENDING = "deskclone_notify_at_commit"


def notify_at_commit(session: Session, channel: str, payload: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.info.setdefault(_PENDING, set()).add((channel, payload))


@sa.event.listens_for(Session, "before_commit")
def _send(session: Session) -> None:
    for channel, payload in sorted(session.info.pop(_PENDING, ())):
        session.connection().execute(
            sa.text("SELECT pg_notify(:channel, :payload)"),
            {"channel": channel, "payload": payload},
        )


@sa.event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


@asynccontextmanager
async def listening(engine: Engine, channel: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of its own (autocommit, as LISTEN needs), listening on `channel`."""
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute(f"LISTEN {channel}")
        yield connection


async def drain(connection: psycopg.AsyncConnection[Any]) -> None:
    """Forget the notifications that came meanwhile: the caller reads what they meant."""
    async for _ in connection.notifies(timeout=0):
        pass
