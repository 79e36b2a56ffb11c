"""`deskclone doctor` against a healthy system (a real Temporal dev server with a worker, a
migrated PostgreSQL) and broken ones, reading what it says."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from google.protobuf.duration_pb2 import Duration
from sqlalchemy import Engine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    RegisterNamespaceRequest,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from core.temporal import SEARCH_ATTRIBUTES
from deskclone import doctor_checks_database as database
from deskclone import doctor_checks_providers as providers
from deskclone import doctor_checks_temporal as temporal
from deskclone.doctor import CHECKS, Finding, report, run_check, run_checks
from deskclone.doctor_checks import Check, Context
from store.db import make_engine
from store.migrate import MIGRATIONS_DIR, upgrade

#: The latest migration, as this release's doctor wants the database to be.
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def texts(findings: list[Finding], status: str) -> list[str]:
    return [f.text for f in findings if f.status == status]


async def checked(
    checks: list[Check], settings: Settings, production: bool = False, timeout: float = 3
) -> list[Finding]:
    """What `checks` find, run in order on one context as `deskclone doctor` runs them."""
    ctx = Context(settings, production, timeout)
    findings: list[Finding] = []
    for check in checks:
        findings += await run_check(check, ctx)
    return findings


#: Each check and the tests below that make it fail (or warn) and read its words.
FAILURE_TESTS = {
    "sqlite_file_exists": ("test_a_missing_sqlite_file",),
    "database_answers": ("test_unreachable_database",),
    "migrations_at_head": ("test_unmigrated_databases",),  # none, behind, newer
    "temporal_answers": ("test_unreachable_temporal", "test_silent_temporal"),
    "namespace_exists": ("test_missing_namespace", "test_namespace_that_cannot_be_described"),
    "search_attributes_registered": (
        "test_missing_and_mistyped_search_attributes",
        "test_search_attributes_that_cannot_be_listed",
    ),
    "worker_polling": (
        "test_missing_and_mistyped_search_attributes",  # nobody polls
        "test_search_attributes_that_cannot_be_listed",  # cannot tell
    ),
    "ca_bundle_readable": (
        "test_production_provider_settings",  # missing
        "test_production_provider_settings_in_order",  # not PEM
    ),
    "real_endpoints": ("test_production_provider_settings",),
    "oauth_clients": ("test_production_provider_settings",),  # half a client, none at all
    "secret_key_set": ("test_production_provider_settings",),
    "public_https_url": ("test_production_provider_settings",),
    "imap_settings": ("test_imap_settings",),
    "push_settings": ("test_production_push_settings",),
}


def test_every_check_has_a_failing_case_below() -> None:
    assert [check.__name__ for check in CHECKS] == list(FAILURE_TESTS)
    tests = {name for names in FAILURE_TESTS.values() for name in names}
    assert tests <= set(globals()), tests - set(globals())


@pytest.fixture
def healthy(
    api_worker: Settings, dev_server_env: WorkflowEnvironment, postgres_database: str
) -> Settings:
    """The API tests' system: a worker polls its task queue, the database is migrated."""
    return api_worker.model_copy(
        update={
            "temporal_address": address(dev_server_env),
            "temporal_namespace": dev_server_env.client.namespace,
            "database_url": postgres_database,
        }
    )


async def test_healthy_system_has_no_problem(healthy: Settings, postgres_engine: Engine) -> None:
    findings = await run_checks(healthy, production=False)
    assert texts(findings, "fail") == [] and texts(findings, "warn") == []
    said = "\n".join(texts(findings, "ok"))
    assert f"answers; migrations at head ({HEAD})" in said
    assert "postgresql+psycopg://postgres@127.0.0.1" in said
    assert f"Temporal answers at {healthy.temporal_address}" in said
    assert "namespace 'default' exists" in said
    assert "search attributes registered as Keyword: " + ", ".join(SEARCH_ATTRIBUTES) in said
    assert f"worker(s) polling the task queue '{healthy.task_queue}'" in said
    out = io.StringIO()
    assert report(findings, False, out) == 0
    assert out.getvalue().splitlines()[-1] == "No problems found (0 warning(s))."


def run_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DESKCLONE_")}
    return subprocess.run(
        [sys.executable, "-m", "deskclone", "doctor", "--timeout", "10"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_command_on_a_healthy_and_a_broken_system(
    healthy: Settings, postgres_engine: Engine, tmp_path: Path
) -> None:
    env = {
        "DESKCLONE_DATABASE_URL": str(healthy.database_url),
        "DESKCLONE_TEMPORAL_ADDRESS": healthy.temporal_address,
        "DESKCLONE_TASK_QUEUE": healthy.task_queue,
    }
    good = await asyncio.to_thread(run_cli, env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("deskclone doctor (development settings)\n")
    assert "FAIL" not in good.stdout

    broken = await asyncio.to_thread(
        run_cli,
        {
            "DESKCLONE_DATA_DIR": str(tmp_path),
            "DESKCLONE_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        },
    )
    assert broken.returncode == 1
    lines = broken.stdout.splitlines()
    assert lines[1] == (
        f"  FAIL  database   the SQLite database file {tmp_path}/deskclone.db does not exist: "
        "run `deskclone migrate` (or set DESKCLONE_DATABASE_URL)"
    )
    assert lines[2].startswith("  FAIL  temporal   cannot reach Temporal at 127.0.0.1:")
    assert lines[2].endswith(
        ": connection refused. Is the server running, and is DESKCLONE_TEMPORAL_ADDRESS right?"
    )
    assert lines[-1] == (
        "2 problem(s), 0 warning(s): fix the FAIL lines and run `deskclone doctor` again."
    )
    assert not (tmp_path / "deskclone.db").exists()  # the doctor changes nothing


async def test_unreachable_temporal(healthy: Settings) -> None:
    port = free_port()
    settings = healthy.model_copy(update={"temporal_address": f"127.0.0.1:{port}"})
    findings = await run_checks(settings, production=False, timeout=10)
    assert texts(findings, "fail") == [
        f"cannot reach Temporal at 127.0.0.1:{port}: connection refused. Is the server "
        "running, and is DESKCLONE_TEMPORAL_ADDRESS right?"
    ]


async def test_silent_temporal(healthy: Settings) -> None:
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        settings = healthy.model_copy(update={"temporal_address": address})
        findings = await checked(temporal.CHECKS, settings, timeout=1)
    assert texts(findings, "fail") == [
        f"Temporal at {address} did not answer within 1 s. Is the server running, and is "
        "DESKCLONE_TEMPORAL_ADDRESS right?"
    ]
    assert texts(findings, "ok") == texts(findings, "warn") == []  # nothing more was asked


async def make_namespace(env: WorkflowEnvironment, attributes: dict[str, int]) -> str:
    name = f"doctor-{uuid.uuid4().hex[:8]}"
    service = env.client.workflow_service
    await service.register_namespace(
        RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    for _ in range(100):  # the namespace registry refreshes within moments
        try:
            await service.describe_namespace(DescribeNamespaceRequest(namespace=name))
            break
        except RPCError:
            await asyncio.sleep(0.1)
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(search_attributes=attributes, namespace=name)  # type: ignore[arg-type]
    )
    return name


async def test_missing_and_mistyped_search_attributes(
    healthy: Settings, dev_server_env: WorkflowEnvironment
) -> None:
    attributes = {k: v for k, v in SEARCH_ATTRIBUTES.items() if k != "MailboxStatus"}
    attributes["MailboxAddress"] = IndexedValueType.INDEXED_VALUE_TYPE_TEXT
    namespace = await make_namespace(dev_server_env, dict(attributes))
    settings = healthy.model_copy(update={"temporal_namespace": namespace})
    findings = await run_checks(settings, production=False)
    assert texts(findings, "fail") == [
        f"the search attribute MailboxAddress is a Text in namespace '{namespace}' but must be "
        "a Keyword: remove it (`temporal operator search-attribute remove`) and create it again",
        f"the search attribute MailboxStatus is not registered in namespace '{namespace}'; "
        "mailbox workflows cannot start or be found without it. Register it: "
        f"`temporal operator search-attribute create --namespace {namespace} "
        "--name MailboxStatus --type Keyword`",
    ]
    # Nobody polls the task queue in that namespace.
    assert texts(findings, "warn") == [
        f"no worker is polling the task queue '{settings.task_queue}' now: nothing will be "
        "processed until `deskclone worker` runs"
    ]


async def test_missing_namespace(healthy: Settings) -> None:
    settings = healthy.model_copy(update={"temporal_namespace": "no-such-namespace"})
    findings = await run_checks(settings, production=False)
    assert texts(findings, "fail") == [
        f"the namespace 'no-such-namespace' does not exist on Temporal at "
        f"{settings.temporal_address}: create it with `temporal operator namespace create "
        "--namespace no-such-namespace` (docker-compose.yml's temporal-create-namespace job "
        "does), or fix DESKCLONE_TEMPORAL_NAMESPACE"
    ]


async def test_namespace_that_cannot_be_described(healthy: Settings) -> None:
    settings = healthy.model_copy(update={"temporal_namespace": ""})
    findings = await checked(temporal.CHECKS, settings)
    assert texts(findings, "fail") == [
        "cannot describe the namespace '': Namespace not set on request."
    ]


async def test_search_attributes_that_cannot_be_listed(healthy: Settings) -> None:
    # As if the namespace went away between its check and these two.
    settings = healthy.model_copy(update={"temporal_namespace": "gone-meanwhile"})
    ctx = Context(settings, production=False, timeout=3)
    await run_check(temporal.temporal_answers, ctx)
    ctx.namespace_exists = True
    listed = await run_check(temporal.search_attributes_registered, ctx)
    polled = await run_check(temporal.worker_polling, ctx)
    assert texts(listed, "fail") == [
        "cannot list the search attributes: Namespace gone-meanwhile is not found."
    ]
    assert texts(polled, "warn") == [
        "cannot tell whether a worker is running: Namespace gone-meanwhile is not found."
    ]


async def test_a_missing_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    findings = await checked(database.CHECKS, settings)
    assert findings == [
        Finding(
            "fail",
            "database",
            f"the SQLite database file {tmp_path}/deskclone.db does not exist: "
            "run `deskclone migrate` (or set DESKCLONE_DATABASE_URL)",
        )
    ]
    assert not (tmp_path / "deskclone.db").exists()  # not created by looking


async def test_unmigrated_databases(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    settings = Settings(database_url=f"sqlite:///{empty}")
    assert texts(await checked(database.CHECKS, settings), "fail") == [
        f"sqlite:///{empty} answers but has no DeskClone tables yet (no migration applied): "
        "run `deskclone migrate`"
    ]

    behind = tmp_path / "behind.db"
    engine = make_engine(f"sqlite:///{behind}")
    upgrade(engine, "0001")
    engine.dispose()
    settings = Settings(database_url=f"sqlite:///{behind}")
    assert texts(await checked(database.CHECKS, settings), "fail") == [
        f"sqlite:///{behind} is at migration 0001 but this release needs {HEAD}: "
        "run `deskclone migrate`"
    ]

    newer = tmp_path / "newer.db"
    engine = make_engine(f"sqlite:///{newer}")
    upgrade(engine)
    with engine.begin() as connection:  # as a later release's migration would leave it
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9001'"))
    engine.dispose()
    settings = Settings(database_url=f"sqlite:///{newer}")
    assert texts(await checked(database.CHECKS, settings), "fail") == [
        f"sqlite:///{newer} is at migration 9001, which this release does not know: it was "
        "migrated by a newer DeskClone. Run that release, not this one."
    ]


async def test_unreachable_database() -> None:
    port = free_port()
    url = f"postgresql://deskclone:hunter2-password@127.0.0.1:{port}/deskclone"
    [finding] = await checked(database.CHECKS, Settings(database_url=url))
    assert finding.status == "fail"
    assert finding.text.startswith(
        f"cannot connect to the database postgresql+psycopg://deskclone:***@127.0.0.1:{port}"
        "/deskclone: "
    )
    assert finding.text.endswith(
        "Is it running, and are DESKCLONE_DATABASE_URL and its password right?"
    )
    assert "hunter2" not in finding.text


async def test_production_provider_settings(tmp_path: Path) -> None:
    settings = Settings(
        environment="development",  # as `load_settings` falls back to, to report everything
        gmail_api_url="https://127.0.0.1:8025",
        provider_ca_bundle=tmp_path / "missing.pem",
        google_client_id="123-abc.apps.googleusercontent.com",
        public_url="http://127.0.0.1:8000",
    )
    findings = await checked(providers.CHECKS, settings, production=True)
    assert texts(findings, "fail") == [
        f"DESKCLONE_PROVIDER_CA_BUNDLE={tmp_path}/missing.pem does not exist",
        "DESKCLONE_GMAIL_API_URL=https://127.0.0.1:8025 points at 127.0.0.1: production "
        "refuses the provider emulator. Unset it (the default is the real endpoint) or set "
        "the provider's real URL",
        "Gmail: DESKCLONE_GOOGLE_CLIENT_SECRET is not set, so connecting a mailbox will fail; "
        "see docs/providers.md",
        "DESKCLONE_SECRET_KEY is not set: mailbox tokens cannot be stored or read",
    ]
    assert texts(findings, "warn") == [
        "no OAuth provider is configured: Gmail and Outlook mailboxes cannot be connected, "
        "IMAP mailboxes can (docs/providers.md sets up Google and Microsoft)",
        "DESKCLONE_PUBLIC_URL=http://127.0.0.1:8000 is not a public https URL; Google and "
        "Microsoft accept such redirect URIs only for local development",
    ]


async def test_imap_settings(tmp_path: Path) -> None:
    missing = tmp_path / "imap-ca.pem"
    settings = Settings(imap_ca_file=missing, imap_allow_plaintext=True)
    findings = await checked([providers.imap_settings], settings, production=True)
    assert [f.status for f in findings] == ["fail", "warn"]
    assert texts(findings, "fail")[0].startswith(f"DESKCLONE_IMAP_CA_FILE={missing} is not")
    assert "in the clear" in texts(findings, "warn")[0]
    assert await checked([providers.imap_settings], Settings(), production=True) == []


async def test_production_provider_settings_in_order(tmp_path: Path) -> None:
    bundle = tmp_path / "corporate.pem"
    bundle.write_text("not a certificate\n")
    settings = Settings(
        environment="production",
        provider_ca_bundle=bundle,
        google_client_id="123-abc.apps.googleusercontent.com",
        google_client_secret="GOCSPX-example",
        secret_key="k" * 32,
        public_url="https://help.example.com",
    )
    findings = await checked(providers.CHECKS, settings, production=True)
    assert texts(findings, "fail") == [
        f"DESKCLONE_PROVIDER_CA_BUNDLE={bundle} is not a readable PEM CA bundle: "
        + texts(findings, "fail")[0].split("bundle: ", 1)[1]
    ]
    assert texts(findings, "ok") == [
        "Gmail: OAuth client set; its redirect URI must be "
        "https://help.example.com/oauth/gmail/callback",
        "Outlook: not configured (optional)",
        "push: not configured; mailboxes poll (docs/push.md)",
    ]
    assert texts(findings, "warn") == []


@pytest.mark.parametrize(
    ("push", "words"),
    [
        (
            {"gmail_push_topic": "projects/acme/topics/gmail"},
            "Gmail push: DESKCLONE_GMAIL_PUSH_SERVICE_ACCOUNT is not set, so Gmail mailboxes "
            "only poll; set both (docs/push.md)",
        ),
        (
            {"gmail_push_topic": "gmail", "gmail_push_service_account": "push@acme.example"},
            "DESKCLONE_GMAIL_PUSH_TOPIC=gmail is not projects/PROJECT/topics/TOPIC",
        ),
        (
            {"push_url": "http://help.example.com"},
            "push: DESKCLONE_PUSH_URL=http://help.example.com is not a public https URL; "
            "Pub/Sub and Graph deliver notifications only to one",
        ),
    ],
)
async def test_production_push_settings(push: dict[str, str], words: str) -> None:
    settings = Settings(environment="production", public_url="https://help.example.com")
    settings = settings.model_copy(update=push)
    findings = await checked([providers.push_settings], settings, production=True)
    assert texts(findings, "fail") == [words]
    fine = Settings(
        environment="production",
        public_url="https://help.example.com",
        gmail_push_topic="projects/acme/topics/gmail",
        gmail_push_service_account="push@acme.iam.gserviceaccount.com",
    )
    findings = await checked([providers.push_settings], fine, production=True)
    assert texts(findings, "ok") == [
        "push: notifications arrive at https://help.example.com/push/…"
    ]


def test_production_emulator_settings_are_reported_not_crashed_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deskclone.doctor import load_settings

    monkeypatch.setenv("DESKCLONE_ENVIRONMENT", "production")
    monkeypatch.setenv("DESKCLONE_GMAIL_API_URL", "https://127.0.0.1:8025")
    settings, production, findings = load_settings()
    assert settings is not None and production and findings == []
    monkeypatch.setenv("DESKCLONE_FORM_RATE_LIMIT_PER_MINUTE", "0")
    settings, production, findings = load_settings()
    assert settings is None
    assert [f.text for f in findings] == [
        "DESKCLONE_FORM_RATE_LIMIT_PER_MINUTE: Input should be greater than or equal to 1"
    ]
