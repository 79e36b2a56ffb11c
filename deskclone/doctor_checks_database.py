"""Database checks: the SQLite file exists, the database answers, migrations are at head."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine.url import make_url
from sqlalchemy.pool import NullPool

from deskclone.doctor_checks import Check, Context, Finding, Revisions, fail, first_line, ok

AREA = "database"


def sqlite_file_exists(ctx: Context) -> list[Finding]:
    """Connecting would create a missing SQLite file: the doctor changes nothing, so it asks."""
    url = make_url(ctx.settings.effective_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return []
    if Path(url.database).exists():
        return []
    ctx.database_file_missing = True
    return [
        fail(
            AREA,
            f"the SQLite database file {url.database} does not exist: "
            "run `deskclone migrate` (or set DESKCLONE_DATABASE_URL)",
        )
    ]


def database_answers(ctx: Context) -> list[Finding]:
    """Connects and reads the applied and the known migrations for the next check."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from store.migrate import alembic_config

    if ctx.database_file_missing:
        return []
    url = make_url(ctx.settings.effective_database_url)
    shown = url.render_as_string(hide_password=True)
    connect_args: dict[str, object] = (
        {"timeout": ctx.timeout}
        if url.get_backend_name() == "sqlite"
        else {"connect_timeout": max(1, round(ctx.timeout))}
    )
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                current = set(MigrationContext.configure(connection).get_current_heads())
        except Exception as error:
            return [
                fail(
                    AREA,
                    f"cannot connect to the database {shown}: {first_line(error)}. "
                    "Is it running, and are DESKCLONE_DATABASE_URL and its password right?",
                )
            ]
        script = ScriptDirectory.from_config(alembic_config(engine))
        heads = set(script.get_heads())
        known = {rev.revision for rev in script.walk_revisions()}
    finally:
        engine.dispose()
    ctx.revisions = Revisions(shown, current, heads, known)
    return []  # said with the migrations, in one line


def migrations_at_head(ctx: Context) -> list[Finding]:
    found = ctx.revisions
    if found is None:
        return []
    shown, current, heads = found.shown, found.current, found.heads
    if current == heads:
        return [ok(AREA, f"{shown} answers; migrations at head ({', '.join(sorted(heads))})")]
    if not current:
        return [
            fail(
                AREA,
                f"{shown} answers but has no DeskClone tables yet (no migration applied): "
                "run `deskclone migrate`",
            )
        ]
    unknown = current - found.known
    if unknown:
        return [
            fail(
                AREA,
                f"{shown} is at migration {', '.join(sorted(unknown))}, which this release does "
                "not know: it was migrated by a newer DeskClone. Run that release, not this one.",
            )
        ]
    return [
        fail(
            AREA,
            f"{shown} is at migration {', '.join(sorted(current))} but this release needs "
            f"{', '.join(sorted(heads))}: run `deskclone migrate`",
        )
    ]


CHECKS: list[Check] = [sqlite_file_exists, database_answers, migrations_at_head]
