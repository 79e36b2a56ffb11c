"""`deskclone dev`: everything on one machine, supervised, stopped cleanly on Ctrl-C/SIGTERM.

Children run in their own sessions (so a terminal's Ctrl-C reaches only us and we stop them
in order) and with a parent-death signal (so even a SIGKILLed supervisor leaves no orphans).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from core.settings import Settings
from core.temporal import (
    connect,
    dev_server_search_attribute_flags,
    register_search_attributes,
    temporal_cli_path,
)

log = logging.getLogger("deskclone.dev")

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class DevOptions:
    data_dir: Path
    host: str
    api_port: int
    temporal_port: int
    ui_port: int
    emulator_port: int
    database_url: str | None


class _Stop(Exception):
    pass


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when the supervisor dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_file: Path | None = None
    restart: bool = False
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> None:
        out: Any = None
        if self.log_file is not None:
            if self._log is not None:
                self._log.close()  # from the run before a restart
            self._log = self.log_file.open("ab")
            out = self._log
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.info("started %s (pid %d)", self.name, self.process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, grace: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0fs; killing it", self.name, grace)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self._log is not None:
            self._log.close()


def _load_secrets(data_dir: Path, settings: Settings) -> tuple[str, str]:
    """Admin token and secret key: from the environment if set, else made once and kept."""
    path = data_dir / "secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    admin = settings.admin_token.get_secret_value() if settings.admin_token else None
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    stored["admin_token"] = admin or stored.get("admin_token") or secrets.token_urlsafe(24)
    stored["secret_key"] = secret or stored.get("secret_key") or secrets.token_urlsafe(32)
    path.write_text(json.dumps(stored, indent=2))
    path.chmod(0o600)
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


def _wait_for_http(
    url: str, deadline: float, children: list[Child], ca_file: Path | None = None
) -> None:
    while True:
        for child in children:
            if child.exited() is not None:
                raise RuntimeError(f"{child.name} exited with code {child.exited()} while starting")
        try:
            context = None
            if ca_file is not None:
                if not ca_file.exists():
                    raise FileNotFoundError(ca_file)
                context = ssl.create_default_context(cafile=str(ca_file))
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within the start-up deadline")
        time.sleep(0.2)


def run_dev(options: DevOptions, base: Settings) -> int:
    data_dir = options.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
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
    emulator_ca.unlink(missing_ok=True)  # made anew at each emulator start
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
    }
    child_env = {**os.environ, **worker_env}
    python = sys.executable
    temporal = Child(
        "temporal",
        [
            str(temporal_cli_path()),
            "server",
            "start-dev",
            "--ip",
            options.host,
            "--port",
            str(options.temporal_port),
            "--ui-port",
            str(options.ui_port),
            "--db-filename",
            str(data_dir / "temporal.db"),
            "--ui-disable-news-fetch",
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
            python,
            "-m",
            "emulator",
            "--host",
            options.host,
            "--port",
            str(options.emulator_port),
            "--data-dir",
            str(data_dir),
        ],
        child_env,
        log_file=data_dir / "emulator.log",
    )
    worker = Child("worker", [python, "-m", "deskclone", "worker"], child_env, restart=True)
    api = Child(
        "api",
        [python, "-m", "deskclone", "api", "--host", options.host, "--port", str(options.api_port)],
        child_env,
        restart=True,
    )
    children = [temporal, emulator, worker, api]
    dev_json = data_dir / "dev.json"

    def on_signal(signum: int, _frame: Any) -> None:
        raise _Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        public_key = _prepare_database(settings, admin_token)
        temporal.start()
        emulator.start()
        _wait_for_temporal(settings, time.monotonic() + 60)
        _wait_for_http(
            f"{emulator_url}/_emulator/health", time.monotonic() + 30, [emulator], emulator_ca
        )
        worker.start()
        api.start()
        _wait_for_http(f"{settings.public_url}/healthz", time.monotonic() + 60, children)
        facts = {
            "api_url": settings.public_url,
            "temporal_address": settings.temporal_address,
            "temporal_ui_url": f"http://{options.host}:{options.ui_port}",
            "emulator_url": emulator_url,
            "emulator_ca": str(emulator_ca),
            "admin_token": admin_token,
            "agent_public_key": public_key,
            "pids": {
                "temporal": temporal.pid,
                "worker": worker.pid,
                "api": api.pid,
                "emulator": emulator.pid,
            },
            "worker_env": worker_env,
        }
        dev_json.write_text(json.dumps(facts, indent=2))
        dev_json.chmod(0o600)
        _banner(facts, time.monotonic() - started)
        _supervise(children, dev_json)
    except _Stop as stop:
        log.info("received %s; stopping", stop)
    except Exception:
        log.exception("deskclone dev failed")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Reverse start order: nothing new comes in, the worker finishes its activities,
        # then the server they talk to goes.
        api.stop(grace=10)
        worker.stop(grace=25)
        emulator.stop(grace=10)
        temporal.stop(grace=15)
        dev_json.unlink(missing_ok=True)
        log.info("stopped")
    return code


def _supervise(children: list[Child], dev_json: Path) -> None:
    """Restart any child that dies (the system must survive a killed worker or server)."""
    while True:
        time.sleep(0.5)
        for child in children:
            code = child.exited()
            if code is None:
                continue
            if not child.restart:
                raise RuntimeError(f"{child.name} exited with code {code}")
            log.warning("%s exited with code %s; restarting it", child.name, code)
            time.sleep(1)
            child.start()
            facts = json.loads(dev_json.read_text())
            facts["pids"][child.name] = child.pid
            dev_json.write_text(json.dumps(facts, indent=2))


def _banner(facts: dict[str, Any], seconds: float) -> None:
    lines = [
        f"DeskClone Sources is ready ({seconds:.1f}s)",
        f"  API             {facts['api_url']}",
        f"  Support form    {facts['api_url']}/forms/{facts['agent_public_key']}",
        f"  Temporal UI     {facts['temporal_ui_url']}",
        f"  Temporal        {facts['temporal_address']}",
        f"  Emulator        {facts['emulator_url']} (Gmail and Outlook sandbox)",
        f"  Admin token     {facts['admin_token']}",
        "  Details in dev.json; Ctrl-C stops everything.",
    ]
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
