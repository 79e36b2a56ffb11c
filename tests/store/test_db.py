"""Pooled connections: tested before use only once they have been idle a while, so a
one-query unit of work (an idle poll) is one transaction on the server, not two."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from store.db import make_engine


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return pid


def kill(admin: Engine, pid: int) -> None:
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        connection.commit()


@pytest.fixture
def admin(postgres_database: str) -> Engine:
    return make_engine(postgres_database)


def test_a_connection_idle_past_the_threshold_is_tested_and_replaced(
    postgres_database: str, admin: Engine
) -> None:
    engine = make_engine(postgres_database, pool_size=1, ping_after_idle=0)
    try:
        first = backend_pid(engine)
        kill(admin, first)  # as a database restart would
        assert backend_pid(engine) != first  # the ping found it dead; a new one served
    finally:
        engine.dispose()
        admin.dispose()


def test_a_connection_used_a_moment_ago_is_not_tested_again(
    postgres_database: str, admin: Engine
) -> None:
    engine = make_engine(postgres_database, pool_size=1, ping_after_idle=3600)
    try:
        first = backend_pid(engine)
        kill(admin, first)
        # No ping before this query: it meets the dead connection (a retried activity would
        # get a new one), and the pool replaces it at once.
        with pytest.raises(DBAPIError) as raised:
            backend_pid(engine)
        assert raised.value.connection_invalidated
        assert backend_pid(engine) != first
    finally:
        engine.dispose()
        admin.dispose()
