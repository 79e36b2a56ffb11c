"""`bench.push --provider imap`: the mailboxes are users of a real Dovecot started for the run,
connected as the API's IMAP connect stores them, their push the worker's IDLE supervisor."""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlmodel import func, select
from temporalio.client import Client

from bench.ingest_baseline import start_until_ready, worker_settings
from core.crypto import Cipher
from domain.credentials import Credentials
from domain.outcomes import PushState
from emulator.dovecot import Dovecot
from providers.imap.server import ImapServer
from store import mailboxes
from store.db import make_engine, transaction
from store.models import Agent, Mailbox

PASSWORD = "bench-password"
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")


@contextmanager
def running_dovecot(count: int) -> Iterator[Dovecot]:
    """Dovecot with `count` users (b0, b1, ...), written at once (one reread, not `count`)."""
    _raise_inotify_limit(count + 200)
    root = Path(tempfile.mkdtemp(prefix="deskclone-bench-dovecot-"))
    server = Dovecot(root)
    server.start()
    try:
        server._write_passwd([f"b{i}:{{PLAIN}}{PASSWORD}" for i in range(count)])
        server._await_login(f"b{count - 1}", PASSWORD, timeout=30)
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _raise_inotify_limit(needed: int) -> None:
    """Dovecot's imap processes watch their folder with inotify; past the per-user instance
    limit (128 by default) they check every 30 s instead (docs/scaling.md, IMAP IDLE)."""
    try:
        if int(INOTIFY_LIMIT.read_text()) < needed:
            INOTIFY_LIMIT.write_text(str(needed))
    except OSError:
        pass  # not root, or a container that forbids it: the figures will show it


async def connect_all(facts: dict[str, Any], dovecot: Dovecot, count: int) -> list[Mailbox]:
    """M IMAP mailboxes stored as `connect_with_password` stores them, workflows started;
    returns once every IDLE is live."""
    settings = worker_settings(facts)
    engine = make_engine(settings.effective_database_url)
    cipher = Cipher.from_settings(settings)
    rows: list[Mailbox] = []
    with transaction(engine) as session:
        agent = session.exec(select(Agent)).first()
        assert agent is not None
        agent_id = agent.id
    for i in range(count):
        server = ImapServer(dovecot.host, dovecot.port, "none", f"b{i}").as_dict()
        credentials = Credentials(refresh_token="", password=PASSWORD, server=server)
        with transaction(engine) as session:
            mailbox, _ = mailboxes.connect(
                session,
                agent_id=agent_id,
                provider="imap",
                address=f"b{i}@imap.example",
                credentials_encrypted=cipher.encrypt_credentials(credentials),
                server=server,
            )
            rows.append(mailbox)
    engine.dispose()
    # Ready is not the Gmail runs' `last_polled_at` (an idle IMAP poll writes nothing): the
    # rows say live once the supervisor's watches are, then every workflow must say so too
    # (it may still be queued behind its first poll, and a delivery then would time that
    # queue, not push).
    await start_until_ready(
        facts,
        rows,
        ready=lambda m: m.push_state == PushState.LIVE,
        failed=lambda m: m.push_state != PushState.LIVE and m.push_error is not None,
    )
    await _workflows_live(facts, len(rows))
    await _settled(dovecot)
    return rows


async def _workflows_live(facts: dict[str, Any], count: int, most: float = 600.0) -> None:
    """Until `count` mailbox workflows show `MailboxPush` live (each has heard or read it)."""
    client = await Client.connect(facts["temporal_address"])
    query = 'WorkflowType = "MailboxWorkflow" AND MailboxPush = "live"'
    deadline = time.monotonic() + most
    while (live := (await client.count_workflows(query)).count) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{live} of {count} mailbox workflows know their IDLE is live")
        await asyncio.sleep(1)


async def _settled(dovecot: Dovecot, quiet_seconds: float = 10.0, most: float = 300.0) -> None:
    """Until the polls that connecting set off are done (each poll is a login: none for
    `quiet_seconds`), as the Gmail and Outlook runs wait for every first poll."""
    deadline = time.monotonic() + most
    seen = logins(dovecot)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet_seconds)
        now = logins(dovecot)
        if now == seen:
            return
        seen = now


def deliver_spread(
    dovecot: Dovecot, rows: list[Mailbox], count: int, rate: float
) -> dict[str, float]:
    """Subject -> when Dovecot accepted the APPEND (Unix seconds), at `rate` per second."""
    sent: dict[str, float] = {}
    rng = random.Random(7)
    started = time.monotonic()
    for i in range(count):
        pause = started + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        subject = f"Push bench {i} {uuid.uuid4().hex[:8]}"
        user = rng.choice(rows).address.split("@")[0]
        dovecot.append(user, _mail(subject))
        sent[subject] = time.time()
    return sent


def _mail(subject: str) -> bytes:
    """As bench.push's `mail` (a module run as `__main__` is not importable as itself)."""
    sender = f"c{uuid.uuid4().hex[:10]}@customer.example"
    return (
        f"From: {sender}\r\nTo: support@acme.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@customer.example>\r\n\r\nPlease help.\r\n"
    ).encode()


# Dovecot's login line, with or without the level its log_path format adds ("Info: ").
LOGIN_LINE = re.compile(r"imap-login: (?:Info: )?Login:")


def logins(dovecot: Dovecot) -> int:
    """IMAP logins so far (polls' connections, IDLE connections and the bench's APPENDs)."""
    try:
        return len(LOGIN_LINE.findall(dovecot.log_file.read_text(errors="replace")))
    except OSError:
        return 0


def figures(dovecot: Dovecot, worker_pid: int, database_url: str) -> dict[str, Any]:
    engine = make_engine(database_url)
    try:
        with transaction(engine) as session:
            live = session.exec(
                select(func.count()).where(
                    Mailbox.provider == "imap", Mailbox.push_state == PushState.LIVE
                )
            ).one()
    finally:
        engine.dispose()
    return {
        "imap_connections": _connections(worker_pid, dovecot.port),
        "dovecot_processes": dovecot.process_count(),
        "imap_logins": logins(dovecot),  # the whole run's: watches, polls, the APPENDs
        "imap_idle_live": int(live),
        "inotify_max_user_instances": int(INOTIFY_LIMIT.read_text()),
    }


def _connections(pid: int, port: int) -> int:
    """The worker's established TCP connections to Dovecot's port."""
    listed = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return sum(1 for line in listed.splitlines() if f"pid={pid}," in line)
