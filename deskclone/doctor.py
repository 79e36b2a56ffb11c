"""`deskclone doctor`: checks what a running DeskClone needs and says in words what is wrong.

Settings, the database (reachable, migrations at head), Temporal (reachable, the namespace,
every search attribute of CONTRACT.md §3 with its type, a worker polling) and the provider
settings (real endpoints and OAuth clients in production, a readable CA bundle). Exit status 0
when nothing failed (warnings allowed), 1 otherwise. Nothing is changed anywhere.

Each check is a small function in `CHECKS` (deskclone/doctor_checks_*.py), run in order.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Sequence
from typing import IO

from pydantic import ValidationError

from core.settings import Settings
from deskclone import doctor_checks_database, doctor_checks_providers, doctor_checks_temporal
from deskclone.doctor_checks import Check, Context, Finding, fail

CHECKS: list[Check] = [
    *doctor_checks_database.CHECKS,
    *doctor_checks_temporal.CHECKS,
    *doctor_checks_providers.CHECKS,
]

__all__ = ["CHECKS", "Finding", "load_settings", "report", "run_check", "run_checks", "run_doctor"]


def _setting_name(loc: Sequence[int | str]) -> str:
    return f"DESKCLONE_{str(loc[0]).upper()}" if loc else "the settings"


def load_settings() -> tuple[Settings | None, bool, list[Finding]]:
    """The settings to check with, whether they are meant for production, and what was wrong.

    Production settings that point at the emulator are refused at start-up; here they are
    loaded as development settings instead, so every other problem is reported too."""
    try:
        settings = Settings()
        return settings, settings.environment == "production", []
    except ValidationError as error:
        first = error
    try:
        # Only the production check can fail here and not below: checked again in providers.
        return Settings(environment="development"), True, []
    except ValidationError:
        pass
    findings = [
        fail("settings", f"{_setting_name(e['loc'])}: {e['msg'].removeprefix('Value error, ')}")
        for e in first.errors()
    ]
    return None, False, findings


async def run_check(check: Check, ctx: Context) -> list[Finding]:
    """One check; a blocking one (the database's) runs on a thread."""
    if inspect.iscoroutinefunction(check):
        found: list[Finding] = await check(ctx)
        return found
    result = await asyncio.to_thread(check, ctx)
    assert isinstance(result, list)
    return result


async def run_checks(settings: Settings, production: bool, timeout: float = 5.0) -> list[Finding]:
    ctx = Context(settings, production, timeout)
    findings: list[Finding] = []
    for check in CHECKS:
        findings += await run_check(check, ctx)
    return findings


_MARK = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


def report(findings: list[Finding], production: bool, out: IO[str]) -> int:
    out.write(f"deskclone doctor ({'production' if production else 'development'} settings)\n")
    for finding in findings:
        out.write(f"  {_MARK[finding.status]}  {finding.area:<9}  {finding.text}\n")
    failed = sum(f.status == "fail" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    if failed:
        out.write(
            f"{failed} problem(s), {warned} warning(s): fix the FAIL lines and run "
            "`deskclone doctor` again.\n"
        )
        return 1
    out.write(f"No problems found ({warned} warning(s)).\n")
    return 0


def run_doctor(timeout: float = 5.0, out: IO[str] | None = None) -> int:
    stream = out if out is not None else sys.stdout
    settings, production, findings = load_settings()
    if settings is not None:
        findings += asyncio.run(run_checks(settings, production, timeout))
    return report(findings, production, stream)
