"""`deskclone doctor`: checks what a running DeskClone needs and says in words what is wrong.

Settings, the database (reachable, migrations at head), Temporal (reachable, the namespace,
every search attribute of CONTRACT.md §3 with its type, a worker polling) and the provider
settings (real endpoints and OAuth clients in production, a readable CA bundle). Exit status 0
when nothing failed (warnings allowed), 1 otherwise. Nothing is changed anywhere.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError
from sqlalchemy import create_engine, text
from sqlalchemy.engine.url import make_url
from sqlalchemy.pool import NullPool
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings, emulator_problems, is_emulator_host
from core.temporal import SEARCH_ATTRIBUTES

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    status: Status
    area: str  # "settings", "database", "temporal", "providers"
    text: str


def _ok(area: str, text: str) -> Finding:
    return Finding("ok", area, text)


def _warn(area: str, text: str) -> Finding:
    return Finding("warn", area, text)


def _fail(area: str, text: str) -> Finding:
    return Finding("fail", area, text)


def _first_line(error: BaseException) -> str:
    # SQLAlchemy wraps the driver's error; the driver's own words are the useful part.
    cause = getattr(error, "orig", None) or error
    words = str(cause).strip().splitlines()
    return words[0] if words else type(error).__name__


# --- Settings ---


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
        _fail("settings", f"{_setting_name(e['loc'])}: {e['msg'].removeprefix('Value error, ')}")
        for e in first.errors()
    ]
    return None, False, findings


# --- Database ---


def check_database(settings: Settings, timeout: float) -> list[Finding]:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from store.migrate import alembic_config

    url = make_url(settings.effective_database_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:" and not Path(url.database).exists():
            return [
                _fail(
                    "database",
                    f"the SQLite database file {url.database} does not exist: "
                    "run `deskclone migrate` (or set DESKCLONE_DATABASE_URL)",
                )
            ]
        connect_args: dict[str, object] = {"timeout": timeout}
    else:
        connect_args = {"connect_timeout": max(1, round(timeout))}
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                current = set(MigrationContext.configure(connection).get_current_heads())
        except Exception as error:
            return [
                _fail(
                    "database",
                    f"cannot connect to the database {shown}: {_first_line(error)}. "
                    "Is it running, and are DESKCLONE_DATABASE_URL and its password right?",
                )
            ]
        script = ScriptDirectory.from_config(alembic_config(engine))
        heads = set(script.get_heads())
        known = {rev.revision for rev in script.walk_revisions()}
    finally:
        engine.dispose()
    if current == heads:
        return [_ok("database", f"{shown} answers; migrations at head ({', '.join(heads)})")]
    if not current:
        return [
            _fail(
                "database",
                f"{shown} answers but has no DeskClone tables yet (no migration applied): "
                "run `deskclone migrate`",
            )
        ]
    unknown = current - known
    if unknown:
        return [
            _fail(
                "database",
                f"{shown} is at migration {', '.join(sorted(unknown))}, which this release does "
                "not know: it was migrated by a newer DeskClone. Run that release, not this one.",
            )
        ]
    return [
        _fail(
            "database",
            f"{shown} is at migration {', '.join(sorted(current))} but this release needs "
            f"{', '.join(sorted(heads))}: run `deskclone migrate`",
        )
    ]


# --- Temporal ---

_TYPE_NAMES = {
    value: name.removeprefix("INDEXED_VALUE_TYPE_").title().replace("_", "")
    for name, value in IndexedValueType.items()
}


async def check_temporal(settings: Settings, timeout: float) -> list[Finding]:
    address, namespace = settings.temporal_address, settings.temporal_namespace
    try:
        client = await asyncio.wait_for(
            Client.connect(address, namespace=namespace), timeout=timeout
        )
    except TimeoutError:
        return [
            _fail(
                "temporal",
                f"Temporal at {address} did not answer within {timeout:g} s. Is the server "
                "running, and is DESKCLONE_TEMPORAL_ADDRESS right?",
            )
        ]
    except RuntimeError as error:
        return [
            _fail(
                "temporal",
                f"cannot reach Temporal at {address}: {_short_connect_error(error)}. Is the "
                "server running, and is DESKCLONE_TEMPORAL_ADDRESS right?",
            )
        ]
    findings = [_ok("temporal", f"Temporal answers at {address}")]
    try:
        await asyncio.wait_for(
            client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=namespace)
            ),
            timeout,
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            findings.append(
                _fail(
                    "temporal",
                    f"the namespace '{namespace}' does not exist on Temporal at {address}: "
                    f"create it with `temporal operator namespace create --namespace "
                    f"{namespace}` (docker-compose.yml's temporal-create-namespace job does), "
                    "or fix DESKCLONE_TEMPORAL_NAMESPACE",
                )
            )
            return findings
        findings.append(
            _fail("temporal", f"cannot describe the namespace '{namespace}': {error.message}")
        )
        return findings
    findings.append(_ok("temporal", f"namespace '{namespace}' exists"))
    findings += await _check_search_attributes(client, namespace, timeout)
    findings += await _check_pollers(client, namespace, settings.task_queue, timeout)
    return findings


def _short_connect_error(error: RuntimeError) -> str:
    message = str(error)
    for marker in ("Connection refused", "dns error", "timed out", "No route to host"):
        if marker.lower() in message.lower():
            return marker.lower()
    return message[:200]


async def _check_search_attributes(client: Client, namespace: str, timeout: float) -> list[Finding]:
    try:
        listed = await asyncio.wait_for(
            client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            ),
            timeout,
        )
    except RPCError as error:
        return [_fail("temporal", f"cannot list the search attributes: {error.message}")]
    registered = dict(listed.custom_attributes)
    findings: list[Finding] = []
    good: list[str] = []
    for name, wanted in SEARCH_ATTRIBUTES.items():
        wanted_name = _TYPE_NAMES.get(wanted, str(wanted))
        found = registered.get(name)
        if found is None:
            findings.append(
                _fail(
                    "temporal",
                    f"the search attribute {name} is not registered in namespace '{namespace}'; "
                    "mailbox workflows cannot start or be found without it. Register it: "
                    f"`temporal operator search-attribute create --namespace {namespace} "
                    f"--name {name} --type {wanted_name}`",
                )
            )
        elif found != wanted:
            findings.append(
                _fail(
                    "temporal",
                    f"the search attribute {name} is a {_TYPE_NAMES.get(found, str(found))} "
                    f"in namespace '{namespace}' but must be a {wanted_name}: remove it "
                    "(`temporal operator search-attribute remove`) and create it again",
                )
            )
        else:
            good.append(name)
    if len(good) == len(SEARCH_ATTRIBUTES):
        findings.append(
            _ok("temporal", f"search attributes registered as Keyword: {', '.join(good)}")
        )
    return findings


async def _check_pollers(
    client: Client, namespace: str, task_queue: str, timeout: float
) -> list[Finding]:
    try:
        described = await asyncio.wait_for(
            client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
            ),
            timeout,
        )
    except (RPCError, TimeoutError) as error:
        return [_warn("temporal", f"cannot tell whether a worker is running: {error}")]
    if not described.pollers:
        return [
            _warn(
                "temporal",
                f"no worker is polling the task queue '{task_queue}' now: nothing will be "
                "processed until `deskclone worker` runs",
            )
        ]
    return [
        _ok("temporal", f"{len(described.pollers)} worker(s) polling the task queue '{task_queue}'")
    ]


# --- Providers ---


def _unset(value: str | SecretStr | None) -> bool:
    plain = value.get_secret_value() if isinstance(value, SecretStr) else value
    return not plain or "deskclone-emulator" in plain


def check_providers(settings: Settings, production: bool) -> list[Finding]:
    findings: list[Finding] = []
    bundle = settings.provider_ca_bundle
    if bundle is not None:
        if not bundle.is_file():
            findings.append(
                _fail("providers", f"DESKCLONE_PROVIDER_CA_BUNDLE={bundle} does not exist")
            )
        else:
            try:
                ssl.create_default_context(cafile=str(bundle))
                findings.append(_ok("providers", f"CA bundle {bundle} is readable"))
            except (OSError, ssl.SSLError) as error:
                findings.append(
                    _fail(
                        "providers",
                        f"DESKCLONE_PROVIDER_CA_BUNDLE={bundle} is not a readable PEM CA "
                        f"bundle: {_first_line(error)}",
                    )
                )
    emulated = emulator_problems(settings)
    if not production:
        where = "the provider emulator" if emulated else "the real Google and Microsoft endpoints"
        findings.append(_ok("providers", f"development settings; providers are {where}"))
        return findings
    for problem in emulated:
        findings.append(
            _fail(
                "providers",
                f"{problem}: production refuses the provider emulator. Unset it (the default "
                "is the real endpoint) or set the provider's real URL",
            )
        )
    public_url = settings.public_url.rstrip("/")
    configured = 0
    for label, provider, client_id, secret, id_var in (
        ("Gmail", "gmail", settings.google_client_id, settings.google_client_secret, "GOOGLE"),
        (
            "Outlook",
            "outlook",
            settings.microsoft_client_id,
            settings.microsoft_client_secret,
            "MICROSOFT",
        ),
    ):
        id_unset, secret_unset = _unset(client_id), _unset(secret)
        if id_unset and secret_unset:
            findings.append(_ok("providers", f"{label}: not configured (optional)"))
            continue
        if id_unset or secret_unset:
            missing = f"DESKCLONE_{id_var}_CLIENT_{'ID' if id_unset else 'SECRET'}"
            findings.append(
                _fail(
                    "providers",
                    f"{label}: {missing} is not set, so connecting a mailbox will fail; "
                    "see docs/providers.md",
                )
            )
            continue
        configured += 1
        findings.append(
            _ok(
                "providers",
                f"{label}: OAuth client set; its redirect URI must be "
                f"{public_url}/oauth/{provider}/callback",
            )
        )
    if configured == 0:
        findings.append(
            _warn(
                "providers",
                "no mail provider is configured: only the form and the widget make tickets "
                "(docs/providers.md sets up Google and Microsoft)",
            )
        )
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        findings.append(
            _fail(
                "providers",
                "DESKCLONE_SECRET_KEY is not set: mailbox tokens cannot be stored or read",
            )
        )
    parts = urlsplit(public_url)
    if parts.scheme != "https" or is_emulator_host(parts.hostname or ""):
        findings.append(
            _warn(
                "providers",
                f"DESKCLONE_PUBLIC_URL={public_url} is not a public https URL; Google and "
                "Microsoft accept such redirect URIs only for local development",
            )
        )
    return findings


# --- Report ---

_MARK = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


async def run_checks(settings: Settings, production: bool, timeout: float = 5.0) -> list[Finding]:
    findings = await asyncio.to_thread(check_database, settings, timeout)
    findings += await check_temporal(settings, timeout)
    findings += check_providers(settings, production)
    return findings


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
