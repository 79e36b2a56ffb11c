"""What every `deskclone doctor` check shares: its findings, and the context checks pass on.

A check is a small function of the `Context` returning its findings (sync, or async for
Temporal). A check may leave something in the context for the checks after it (the database
revisions, the Temporal client); one whose prerequisite failed says nothing, since the
failure was already reported by the check that found it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from temporalio.client import Client

from core.settings import Settings

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    status: Status
    area: str  # "settings", "database", "temporal", "providers"
    text: str


def ok(area: str, text: str) -> Finding:
    return Finding("ok", area, text)


def warn(area: str, text: str) -> Finding:
    return Finding("warn", area, text)


def fail(area: str, text: str) -> Finding:
    return Finding("fail", area, text)


def first_line(error: BaseException) -> str:
    # SQLAlchemy wraps the driver's error; the driver's own words are the useful part.
    cause = getattr(error, "orig", None) or error
    words = str(cause).strip().splitlines()
    return words[0] if words else type(error).__name__


@dataclass(frozen=True)
class Revisions:
    """The database's migration state as the connection check found it."""

    shown: str  # the URL without its password
    current: set[str]
    heads: set[str]
    known: set[str]


@dataclass
class Context:
    settings: Settings
    production: bool
    timeout: float = 5.0
    # Left by earlier checks for later ones; None when that check failed (or did not run).
    database_file_missing: bool = False
    revisions: Revisions | None = None
    temporal: Client | None = None
    namespace_exists: bool = False


Check = Callable[[Context], list[Finding]] | Callable[[Context], Awaitable[list[Finding]]]
