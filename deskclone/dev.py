"""`deskclone dev`: everything on one machine, supervised, stopped cleanly on Ctrl-C/SIGTERM.

`run_dev` reads as its steps: the data dir and its secrets, the settings every child shares
(`DevEnvironment`), the children (`DevChildren`), the database, then the children in order,
`dev.json` and the banner, supervision until a signal, and the stop in reverse order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings
from core.temporal import (
    connect,
    dev_server_search_attribute_flags,
    register_search_attributes,
    temporal_cli_path,
)
from deskclone.children import Child, supervise, wait_for_http, write_private_json
from deskclone.dev_imap import ImapSandbox, banner_line, prepare_sandbox, sandbox_ca

log = logging.getLogger("deskclone.dev")


@dataclass(frozen=True)
class DevOptions:
    data_dir: Path
    host: str
    api_port: int
    temporal_port: int
    ui_port: int
    emulator_port: int
    database_url: str | None
    push: bool = True


class _Stop(Exception):
    pass


# The sandbox's Gmail push: one Pub/Sub topic, its push subscription pointing at the API.
DEV_PUSH_PROJECT = "deskclone-dev"
DEV_PUSH_TOPIC = f"projects/{DEV_PUSH_PROJECT}/topics/gmail-push"
DEV_PUSH_ACCOUNT = f"gmail-push@{DEV_PUSH_PROJECT}.iam.gserviceaccount.com"


def wire_gmail_push(emulator_url: str, emulator_ca: Path, api_url: str) -> None:
    """What an operator does once in Google Cloud (docs/push.md), done in the emulator's
    Pub/Sub: the topic Gmail publishes to and a push subscription with OIDC to our API."""
    endpoint = f"{api_url}/push/gmail"
    subscription = {
        "topic": DEV_PUSH_TOPIC,
        "pushConfig": {
            "pushEndpoint": endpoint,
            "oidcToken": {"serviceAccountEmail": DEV_PUSH_ACCOUNT, "audience": endpoint},
        },
    }
    context = ssl.create_default_context(cafile=str(emulator_ca))
    base = f"{emulator_url}/v1/projects/{DEV_PUSH_PROJECT}"
    for path, body in (("/topics/gmail-push", {}), ("/subscriptions/deskclone-api", subscription)):
        request = urllib.request.Request(
            base + path,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=context):
                pass
        except urllib.error.HTTPError as error:
            if error.code != 409:  # 409: made by an earlier start of this emulator
                raise


@dataclass(frozen=True)
class DevEnvironment:
    """What every child is told: the settings, and the same as `DESKCLONE_*` variables."""

    settings: Settings
    admin_token: str
    emulator_url: str
    emulator_ca: Path
    worker_env: dict[str, str]

    @classmethod
    def make(cls, options: DevOptions, base: Settings, data_dir: Path) -> DevEnvironment:
        admin_token, secret_key = _load_secrets(data_dir, base)
        database_url = options.database_url or base.database_url
        settings = base.model_copy(
            update={
                "data_dir": data_dir,
                "database_url": Settings(database_url=database_url).database_url,
                "temporal_address": f"{options.host}:{options.temporal_port}",
                "public_url": f"http://{options.host}:{options.api_port}",
            }
        )
        emulator_url = f"https://{options.host}:{options.emulator_port}"
        emulator_ca = data_dir / "emulator-ca.pem"
        worker_env = {
            "DESKCLONE_DATA_DIR": str(data_dir),
            "DESKCLONE_DATABASE_URL": settings.effective_database_url,
            "DESKCLONE_TEMPORAL_ADDRESS": settings.temporal_address,
            "DESKCLONE_TEMPORAL_NAMESPACE": settings.temporal_namespace,
            "DESKCLONE_ADMIN_TOKEN": admin_token,
            "DESKCLONE_SECRET_KEY": secret_key,
            "DESKCLONE_PUBLIC_URL": settings.public_url,
            # Providers: the emulator, trusted through its own CA, never the system's.
            "DESKCLONE_GMAIL_API_URL": emulator_url,
            "DESKCLONE_GOOGLE_AUTH_URI": f"{emulator_url}/o/oauth2/auth",
            "DESKCLONE_GOOGLE_TOKEN_URI": f"{emulator_url}/token",
            "DESKCLONE_MICROSOFT_AUTHORITY": f"{emulator_url}/common",
            "DESKCLONE_GRAPH_API_URL": f"{emulator_url}/v1.0",
            "DESKCLONE_PROVIDER_CA_BUNDLE": str(emulator_ca),
            # Push, on unless --no-push: the emulator's Pub/Sub and Graph call this API.
            "DESKCLONE_PUSH_URL": settings.public_url if options.push else "",
            "DESKCLONE_GMAIL_PUSH_TOPIC": DEV_PUSH_TOPIC if options.push else "",
            "DESKCLONE_GMAIL_PUSH_SERVICE_ACCOUNT": DEV_PUSH_ACCOUNT,
            "DESKCLONE_GMAIL_PUSH_AUDIENCE": f"{settings.public_url}/push/gmail",
            "DESKCLONE_GMAIL_PUSH_CERTS_URL": f"{emulator_url}/oauth2/v1/certs",
            # Webhooks may go to a receiver on this machine (http, loopback): docs/events.md.
            "DESKCLONE_WEBHOOK_ALLOW_PRIVATE": "1",
            # IMAP: the sandbox Dovecot may be reached in the clear, or over TLS with its own
            # certificate (deskclone/dev_imap.py).
            "DESKCLONE_IMAP_ALLOW_PLAINTEXT": "1",
            **sandbox_ca(data_dir),
        }
        return cls(settings, admin_token, emulator_url, emulator_ca, worker_env)


@dataclass
class DevChildren:
    temporal: Child
    emulator: Child
    worker: Child
    api: Child
    # The sandbox Dovecot, or why there is none (words for the banner); set to why when it
    # fails to start.
    imap: ImapSandbox | str

    @classmethod
    def make(cls, options: DevOptions, env: DevEnvironment, data_dir: Path) -> DevChildren:
        child_env = {**os.environ, **env.worker_env}
        python = sys.executable
        host = options.host
        temporal = Child(
            "temporal",
            [
                str(temporal_cli_path()),
                *("server", "start-dev", "--ip", host, "--port", str(options.temporal_port)),
                *("--ui-port", str(options.ui_port)),
                *("--db-filename", str(data_dir / "temporal.db"), "--ui-disable-news-fetch"),
                *dev_server_search_attribute_flags(),
            ],
            child_env,
            log_file=data_dir / "temporal.log",
            # Its state is on disk: a crashed server comes back with every workflow, and the
            # worker and API reconnect by themselves.
            restart=True,
        )
        emulator = Child(
            "emulator",
            [
                *(python, "-m", "emulator", "--host", host, "--port", str(options.emulator_port)),
                *("--data-dir", str(data_dir)),
            ],
            child_env,
            log_file=data_dir / "emulator.log",
        )
        worker = Child("worker", [python, "-m", "deskclone", "worker"], child_env, restart=True)
        api = Child(
            "api",
            [python, "-m", "deskclone", "api", "--host", host, "--port", str(options.api_port)],
            child_env,
            restart=True,
        )
        imap = prepare_sandbox(data_dir, child_env, env.settings.imap_ca_file)
        return cls(temporal, emulator, worker, api, imap)

    @property
    def all(self) -> list[Child]:
        sandbox = [self.imap.child] if isinstance(self.imap, ImapSandbox) else []
        return [self.temporal, self.emulator, *sandbox, self.worker, self.api]

    def start(self, env: DevEnvironment) -> None:
        """In order, each waited for before what needs it starts."""
        self.temporal.start()
        self.emulator.start()
        self._start_sandbox()
        _wait_for_temporal(env.settings, time.monotonic() + 60)
        health = f"{env.emulator_url}/_emulator/health"
        wait_for_http(health, time.monotonic() + 30, [self.emulator], env.emulator_ca)
        wire_gmail_push(env.emulator_url, env.emulator_ca, env.settings.public_url)
        self.worker.start()
        self.api.start()
        wait_for_http(f"{env.settings.public_url}/healthz", time.monotonic() + 60, self.all)

    def _start_sandbox(self) -> None:
        """The sandbox mail server is a convenience: one that does not come up (its port taken
        since it was chosen, a broken install) is reported in the banner, and the rest of the
        system starts without it, as where Dovecot is not installed."""
        sandbox = self.imap
        if not isinstance(sandbox, ImapSandbox):
            return
        sandbox.child.start()
        try:
            sandbox.server.wait_listening(30, exited=lambda: sandbox.child.exited() is not None)
        except RuntimeError as error:
            log.warning("IMAP sandbox not started: %s", error)
            sandbox.child.stop(grace=5)
            self.imap = f"not started: {error}"

    def stop(self) -> None:
        """Reverse start order: nothing new comes in, the worker finishes its activities,
        then the server they talk to goes."""
        self.api.stop(grace=10)
        self.worker.stop(grace=25)
        if isinstance(self.imap, ImapSandbox):
            self.imap.child.stop(grace=10)
        self.emulator.stop(grace=10)
        self.temporal.stop(grace=15)


def run_dev(options: DevOptions, base: Settings) -> int:
    started = time.monotonic()
    data_dir = options.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = DevEnvironment.make(options, base, data_dir)
    env.emulator_ca.unlink(missing_ok=True)  # made anew at each emulator start
    children = DevChildren.make(options, env, data_dir)
    dev_json = data_dir / "dev.json"
    _stop_on_signals()
    code = 0
    try:
        public_key = _prepare_database(env.settings, env.admin_token)
        children.start(env)
        facts = _facts(options, env, children, public_key)
        write_private_json(dev_json, facts)
        _banner(facts, time.monotonic() - started, banner_line(children.imap))
        supervise(children.all, dev_json)
    except _Stop as stop:
        log.info("received %s; stopping", stop)
    except Exception:
        log.exception("deskclone dev failed")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        children.stop()
        dev_json.unlink(missing_ok=True)
        log.info("stopped")
    return code


def _stop_on_signals() -> None:
    def on_signal(signum: int, _frame: Any) -> None:
        raise _Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def _load_secrets(data_dir: Path, settings: Settings) -> tuple[str, str]:
    """Admin token and secret key: from the environment if set, else made once and kept."""
    path = data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    stored["admin_token"] = admin or stored.get("admin_token") or secrets.token_urlsafe(24)
    stored["secret_key"] = secret or stored.get("secret_key") or secrets.token_urlsafe(32)
    write_private_json(path, stored)
    return stored["admin_token"], stored["secret_key"]


def _prepare_database(settings: Settings, admin_token: str) -> str:
    from store import agents
    from store.db import make_engine, transaction
    from store.migrate import upgrade

    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine)
        with transaction(engine) as session:
            return agents.ensure_for_token(session, name="Demo", admin_token=admin_token).public_key
    finally:
        engine.dispose()


def _wait_for_temporal(settings: Settings, deadline: float) -> None:
    async def probe() -> None:
        while True:
            try:
                client = await connect(settings)
                await register_search_attributes(client, settings.temporal_namespace)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    asyncio.run(probe())


def _facts(
    options: DevOptions, env: DevEnvironment, children: DevChildren, public_key: str
) -> dict[str, Any]:
    """What dev.json says (CONTRACT.md §1)."""
    return {
        "api_url": env.settings.public_url,
        "temporal_address": env.settings.temporal_address,
        "temporal_ui_url": f"http://{options.host}:{options.ui_port}",
        "emulator_url": env.emulator_url,
        "emulator_ca": str(env.emulator_ca),
        "admin_token": env.admin_token,
        "agent_public_key": public_key,
        "pids": {child.name: child.pid for child in children.all},
        "worker_env": env.worker_env,
        # The sandbox IMAP account (None without dovecot; `imap_note` says why).
        "imap": children.imap.facts() if isinstance(children.imap, ImapSandbox) else None,
        "imap_note": children.imap if isinstance(children.imap, str) else None,
    }


def _banner(facts: dict[str, Any], seconds: float, imap_line: str) -> None:
    lines = [
        f"DeskClone Sources is ready ({seconds:.1f}s)",
        f"  API             {facts['api_url']}",
        f"  Support form    {facts['api_url']}/forms/{facts['agent_public_key']}",
        f"  Temporal UI     {facts['temporal_ui_url']}",
        f"  Temporal        {facts['temporal_address']}",
        f"  Emulator        {facts['emulator_url']} (Gmail and Outlook sandbox)",
        imap_line,
        f"  Admin token     {facts['admin_token']}",
        "  Details in dev.json; Ctrl-C stops everything.",
    ]
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
