"""Engine and sessions. Built from Settings by entry points; nothing is created at import time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine.url import make_url
from sqlmodel import Session


def make_engine(url: str, *, pool_size: int = 10, ping_after_idle: float | None = None) -> Engine:
    """`ping_after_idle`: test a pooled connection before use once it has been idle this many
    seconds (default PING_AFTER_IDLE_SECONDS; 0: every time, as the API wants)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    threshold = PING_AFTER_IDLE_SECONDS if ping_after_idle is None else ping_after_idle
    _ping_when_idle(engine, threshold)
    return engine


# A pooled connection unused this long is tested before it is handed out; one used more
# recently is trusted. SQLAlchemy's `pool_pre_ping` tests every checkout, which is a second
# transaction on the server for every one-query unit of work (an idle poll reads one row).
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine, threshold: float) -> None:
    """Pessimistic disconnect handling, only for connections idle long enough to have been
    dropped (a database restart, a proxy's idle timeout): SQLAlchemy's documented recipe,
    with a threshold. A connection that fails the ping is replaced before use."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in_at")
        if idle_since is None or time.monotonic() - idle_since < threshold:
            return  # a new connection, or one in use a moment ago
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.commit()
        except Exception as error:  # the server went away: the pool reconnects and retries
            raise exc.DisconnectionError() from error


def _configure_sqlite(engine: Engine) -> None:
    """WAL so readers never block the writer, and BEGIN IMMEDIATE so two writers queue on
    the busy timeout instead of failing with SQLITE_BUSY when a read lock is upgraded."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module (SQLAlchemy's documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session
