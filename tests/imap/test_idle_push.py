"""IDLE is IMAP's push (issue 20 §3): the worker's supervisor holds one IDLE connection per
IMAP mailbox on a real Dovecot and signals the real workflow (Temporal dev server) on new mail.

Every mailbox here polls once an hour, and the safety net is an hour too: a ticket that appears
within seconds of delivery came through IDLE. IDLE is re-issued every 2 s here (the setting a
deployment leaves at 25 minutes), so each test runs across several renewals.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.idle_supervisor import IdleSupervisor, idle_watching
from core.settings import Settings
from domain.outcomes import PushState
from emulator.dovecot import Dovecot
from tests.api.conftest import Api, serving
from tests.conftest import unique_task_queue
from tests.fakes import make_email
from tests.imap.conftest import Account
from tests.imap.support import connected, mailbox_now, tickets, until
from worker import build_worker
from workflows.mailbox import MAILBOX_PUSH, MailboxWorkflow, mailbox_workflow_id

HOUR = 3600
# Delivery to ticket through IDLE: Dovecot announces within about half a second, then one
# poll. Far below the hour any poll would otherwise take.
PROMPT = 15.0


@pytest.fixture(scope="session")
async def idle_worker(
    dev_server_env: WorkflowEnvironment, postgres_engine: Engine, dovecot: Dovecot
) -> AsyncIterator[tuple[Settings, IdleSupervisor]]:
    settings = Settings(
        task_queue=unique_task_queue(),
        worker_max_concurrent_activities=8,
        secret_key="imap-tests-secret",
        imap_ca_file=dovecot.ca_file,
        imap_timeout_seconds=5,
        imap_idle_renew_seconds=2,
        imap_idle_rescan_seconds=1,
        imap_idle_backoff_max_seconds=2,
        push_safety_poll_seconds=HOUR,
    )
    with ThreadPoolExecutor(8) as pool:
        async with (
            build_worker(dev_server_env.client, settings, postgres_engine, pool),
            idle_watching(dev_server_env.client, settings, postgres_engine) as supervisor,
        ):
            yield settings, supervisor


@pytest.fixture
def supervisor(idle_worker: tuple[Settings, IdleSupervisor]) -> IdleSupervisor:
    return idle_worker[1]


@pytest.fixture
async def idle_api(
    idle_worker: tuple[Settings, IdleSupervisor],
    dev_server_env: WorkflowEnvironment,
    postgres_engine: Engine,
) -> AsyncIterator[Api]:
    async with serving(idle_worker[0], dev_server_env, postgres_engine) as served:
        yield served


async def hourly(api: Api, account: Account, **changes: Any) -> dict[str, Any]:
    mailbox = await connected(api, account, **changes)
    patched = await api.client.patch(
        f"/api/v1/mailboxes/{mailbox['id']}", json={"poll_interval_seconds": HOUR}, headers=api.auth
    )
    assert patched.status_code == 200, patched.text
    return mailbox


async def push_state(api: Api, mailbox: dict[str, Any], state: str) -> dict[str, Any]:
    return await until(
        lambda: mailbox_now(api, mailbox), lambda m: m["push"]["state"] == state, timeout=PROMPT
    )


async def workflow_push(env: WorkflowEnvironment, mailbox: dict[str, Any]) -> tuple[str, str]:
    """What the workflow's `state` query and its `MailboxPush` search attribute say."""
    handle = env.client.get_workflow_handle(mailbox_workflow_id(mailbox["id"]))
    state = await handle.query(MailboxWorkflow.state)
    attribute = (await handle.describe()).typed_search_attributes.get(MAILBOX_PUSH)
    return str(state.push.state), str(attribute)


async def workflow_says(env: WorkflowEnvironment, mailbox: dict[str, Any], state: str) -> None:
    await until(lambda: workflow_push(env, mailbox), lambda seen: seen == (state, state))


async def renewed(supervisor: IdleSupervisor, mailbox: dict[str, Any], times: int) -> None:
    async def count() -> int:
        watcher = supervisor.watcher(mailbox["id"])
        return watcher.renewals if watcher else 0

    await until(count, lambda n: n >= times, timeout=PROMPT)


async def test_idle_delivers_with_an_hour_long_interval(
    idle_api: Api, account: Account, supervisor: IdleSupervisor, dev_server_env: WorkflowEnvironment
) -> None:
    mailbox = await hourly(idle_api, account)
    await push_state(idle_api, mailbox, "live")
    await workflow_says(dev_server_env, mailbox, "live")
    await renewed(supervisor, mailbox, 2)  # IDLE ended and issued again, still listening

    account.deliver(make_email(subject="Printer on fire", sender="ann@customer.example"))
    made = await until(lambda: tickets(idle_api, mailbox), lambda found: len(found) == 1)
    assert made[0]["title"] == "Printer on fire"
    await until(
        lambda: mailbox_now(idle_api, mailbox),
        lambda m: m["push"]["last_notification_at"] is not None,
    )

    account.deliver(make_email(subject="Second one"))
    await until(lambda: tickets(idle_api, mailbox), lambda found: len(found) == 2)
    assert not any("\\Seen" in flags for flags in account.dovecot.flags(account.user).values())


async def test_a_dropped_idle_connection_reconnects_and_loses_nothing(
    idle_api: Api, account: Account, supervisor: IdleSupervisor
) -> None:
    mailbox = await hourly(idle_api, account)
    await push_state(idle_api, mailbox, "live")
    watcher = supervisor.watcher(mailbox["id"])
    assert watcher is not None and watcher.connections == 1

    # The server drops the IDLE connection, and mail arrives while it is gone.
    account.dovecot.doveadm("kick", account.user)
    account.deliver(make_email(subject="Came during the drop"))
    await until(lambda: tickets(idle_api, mailbox), lambda found: len(found) == 1)
    assert watcher.connections >= 2

    account.deliver(make_email(subject="After the drop"))
    made = await until(lambda: tickets(idle_api, mailbox), lambda found: len(found) == 2)
    assert sorted(t["title"] for t in made) == ["After the drop", "Came during the drop"]
    assert (await mailbox_now(idle_api, mailbox))["push"]["state"] == "live"


def crash(server: Dovecot) -> None:
    """The server dies at once, as in a power cut: SIGKILL its master and every process of its
    instance (a graceful stop answers logins oddly while it shuts down, and leaves sessions)."""
    master = server.pid
    assert master is not None
    os.kill(master, signal.SIGKILL)
    title = f"dovecot-deskclone-{server.port}/".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if command.startswith(title):
            with suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
    server.stop()  # reaps the master; the ports are closed with their processes


@contextmanager
def private_dovecot(shared: Dovecot, extra_config: str = "") -> Iterator[Dovecot]:
    """A Dovecot of its own (to stop, or to configure apart), with the shared one's
    certificate, so the worker's CA setting verifies it too."""
    root = Path(tempfile.mkdtemp(prefix="deskclone-dovecot-idle-"))
    for name in ("cert.pem", "key.pem"):
        shutil.copy(shared.root / name, root / name)

    class Configured(Dovecot):
        def _config(self) -> str:
            return super()._config() + extra_config

    server = Configured(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_push_state_goes_failed_while_the_server_is_down_and_live_again(
    idle_api: Api, dovecot: Dovecot, dev_server_env: WorkflowEnvironment
) -> None:
    with private_dovecot(dovecot) as server:
        server.add_user("down", "pw-down")
        account = Account("down", "pw-down", "down@imap.example", server)
        mailbox = await hourly(idle_api, account)
        await push_state(idle_api, mailbox, "live")

        crash(server)
        await push_state(idle_api, mailbox, "failed")
        await workflow_says(dev_server_env, mailbox, "failed")
        assert (await mailbox_now(idle_api, mailbox))["status"] == "active"  # transient

        server.start()
        await push_state(idle_api, mailbox, "live")
        await workflow_says(dev_server_env, mailbox, "live")
        account.deliver(make_email(subject="Back again"))
        await until(lambda: tickets(idle_api, mailbox), lambda found: len(found) == 1)


async def test_a_server_without_idle_is_off_and_polled(
    idle_api: Api, dovecot: Dovecot, supervisor: IdleSupervisor, dev_server_env: WorkflowEnvironment
) -> None:
    no_idle = "\nimap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+\n"
    with private_dovecot(dovecot, no_idle) as server:
        server.add_user("plain", "pw-plain")
        account = Account("plain", "pw-plain", "plain@imap.example", server)
        mailbox = await connected(idle_api, account)

        async def reported() -> PushState | None:
            return supervisor.watched().get(mailbox["id"]) or _parked(supervisor, mailbox)

        assert await until(reported, lambda state: state is not None) == PushState.OFF
        assert (await mailbox_now(idle_api, mailbox))["push"]["state"] == "off"
        assert (await workflow_push(dev_server_env, mailbox)) == ("off", "off")


def _parked(supervisor: IdleSupervisor, mailbox: dict[str, Any]) -> PushState | None:
    watcher = supervisor.watcher(mailbox["id"])
    return watcher.state if watcher is not None and watcher.task.done() else None


async def test_the_watcher_stops_when_the_mailbox_is_disconnected(
    idle_api: Api, account: Account, supervisor: IdleSupervisor
) -> None:
    mailbox = await hourly(idle_api, account)
    await push_state(idle_api, mailbox, "live")
    assert account.user in account.dovecot.doveadm("who", account.user)

    deleted = await idle_api.client.delete(
        f"/api/v1/mailboxes/{mailbox['id']}", headers=idle_api.auth
    )
    assert deleted.status_code in (200, 204), deleted.text

    async def watching() -> bool:
        return mailbox["id"] in supervisor.watched()

    await until(watching, lambda still: not still, timeout=5)
    # It logged out: the server holds no connection for the account any more.
    await until(lambda: _who(account), lambda seen: account.user not in seen, timeout=5)


async def _who(account: Account) -> str:
    return account.dovecot.doveadm("who", account.user)


def refused_logins(account: Account) -> int:
    log = account.dovecot.log_file.read_text(errors="replace")
    return sum(
        1 for line in log.splitlines() if "auth failed" in line and f"<{account.user}>" in line
    )


async def test_a_refused_idle_login_stops_the_watch_until_reconnect(
    idle_api: Api, account: Account, supervisor: IdleSupervisor, dev_server_env: WorkflowEnvironment
) -> None:
    mailbox = await hourly(idle_api, account)
    await push_state(idle_api, mailbox, "live")

    # The password changes on the server and the IDLE session is cut: the watch's login is
    # refused, its `failed` wakes a poll, and the poll's refused login expires the mailbox.
    account.dovecot.set_password(account.user, "changed-on-the-server")
    account.dovecot.doveadm("kick", account.user)
    expired = await until(
        lambda: mailbox_now(idle_api, mailbox),
        lambda m: m["status"] == "auth_expired",
        timeout=PROMPT,
    )
    assert expired["push"]["state"] == "off"
    await workflow_says(dev_server_env, mailbox, "off")

    async def watching() -> bool:
        return mailbox["id"] in supervisor.watched()

    await until(watching, lambda still: not still, timeout=5)
    refused = refused_logins(account)
    assert refused >= 1
    account.deliver(make_email(subject="Sent while expired"))
    supervisor.rescan()
    await until(watching, lambda still: not still, timeout=5)
    assert refused_logins(account) == refused  # no login again with the old password

    answer = await idle_api.client.post(
        f"/api/v1/mailboxes/{mailbox['id']}/reconnect",
        json={"password": "changed-on-the-server"},
        headers=idle_api.auth,
    )
    assert answer.status_code == 200, answer.text
    await push_state(idle_api, mailbox, "live")
    made = await until(lambda: tickets(idle_api, mailbox), lambda found: len(found) == 1)
    assert made[0]["title"] == "Sent while expired"
