from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import store.models  # noqa: F401
from store.migrate import upgrade


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_migrations_are_rerunnable(engine: Engine) -> None:
    upgrade(engine)  # already at head: a no-op, not an error
    assert {"agents", "tickets", "ticket_messages", "events", "webhook_endpoints"} <= set(
        inspect(engine).get_table_names()
    )
