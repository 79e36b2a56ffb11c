"""The `deskclone` command: dev, api, worker, emulator, migrate, agent, doctor."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from core.json_logs import secret_values
from core.logs import configure_logging
from core.settings import Settings

log = logging.getLogger("deskclone")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deskclone", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run everything on this machine")
    dev.add_argument("--data-dir", type=Path, default=Path(".data"))
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--api-port", type=int, default=8000)
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, default=8233)
    dev.add_argument("--emulator-port", type=int, default=8025)
    dev.add_argument("--database-url", default=None)
    dev.add_argument(
        "--no-push",
        dest="push",
        action="store_false",
        help="mailboxes only poll (push is on by default, against the emulator)",
    )

    api = commands.add_parser("api", help="run the HTTP API")
    api.add_argument("--host", default=None)
    api.add_argument("--port", type=int, default=None)

    commands.add_parser("worker", help="run the Temporal worker")

    emulator = commands.add_parser("emulator", help="run the provider emulator")
    emulator.add_argument("--port", type=int, default=8025)
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--data-dir", type=Path, default=Path(".data"))

    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser(
        "rotate-key",
        help="re-encrypt stored tokens under DESKCLONE_SECRET_KEY "
        "(old keys in DESKCLONE_OLD_SECRET_KEYS)",
    )

    workspace = commands.add_parser("workspace", help="manage workspaces (agents)")
    workspace_commands = workspace.add_subparsers(dest="workspace_command", required=True)
    new_workspace = workspace_commands.add_parser(
        "create", help="create a workspace; prints its public key and admin token once"
    )
    new_workspace.add_argument("name")

    agent = commands.add_parser("agent", help="the same as `workspace`, by its older name")
    agent_commands = agent.add_subparsers(dest="agent_command", required=True)
    create = agent_commands.add_parser("create", help="create an agent and print its keys")
    create.add_argument("--name", required=True)

    # --- doctor (docs/operations.md) ---
    doctor = commands.add_parser(
        "doctor", help="check the database, Temporal and provider settings; say what is wrong"
    )
    doctor.add_argument("--timeout", type=float, default=5.0, help="seconds per check")
    return parser


def _load_settings() -> Settings:
    """Settings from the environment; bad ones (e.g. production pointing at the provider
    emulator) stop the command with the reasons in words, never a traceback or a secret."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            where = f"DESKCLONE_{str(problem['loc'][0]).upper()}: " if problem["loc"] else ""
            message = problem["msg"].removeprefix("Value error, ")
            sys.stderr.write(f"deskclone: refusing to start: {where}{message}\n")
        sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "doctor":  # reports bad settings itself, with everything else
        from deskclone.doctor import run_doctor

        configure_logging("WARNING")
        sys.exit(run_doctor(timeout=args.timeout))
    if args.command == "dev":
        # `dev` is development by definition: it and its children use the emulator.
        os.environ["DESKCLONE_ENVIRONMENT"] = "development"
    settings = _load_settings()
    configure_logging(settings.log_level, settings.log_format, secret_values(settings))
    if args.command == "dev":
        from deskclone.dev import DevOptions, run_dev

        sys.exit(
            run_dev(
                DevOptions(
                    data_dir=args.data_dir,
                    host=args.host,
                    api_port=args.api_port,
                    temporal_port=args.temporal_port,
                    ui_port=args.ui_port,
                    emulator_port=args.emulator_port,
                    database_url=args.database_url,
                    push=args.push,
                ),
                settings,
            )
        )
    elif args.command == "api":
        from deskclone.serve import run_api

        if args.host:
            settings.api_host = args.host
        if args.port:
            settings.api_port = args.port
        asyncio.run(run_api(settings))
    elif args.command == "worker":
        import worker

        asyncio.run(worker.run(settings))
    elif args.command == "emulator":
        _run_emulator(args.host, args.port, args.data_dir)
    elif args.command == "migrate":
        migrate(settings)
    elif args.command == "rotate-key":
        rotate_key(settings)
    elif args.command in ("workspace", "agent"):
        create_agent(settings, args.name)


def migrate(settings: Settings) -> None:
    from store.db import make_engine
    from store.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    log.info("database is at the latest migration")


def rotate_key(settings: Settings) -> None:
    """After setting a new DESKCLONE_SECRET_KEY and moving the old one to
    DESKCLONE_OLD_SECRET_KEYS: every stored secret is re-encrypted in one transaction, after
    which the old key can be dropped."""
    from core.crypto import Cipher
    from store import mailboxes, webhooks
    from store.db import make_engine, transaction

    cipher = Cipher.from_settings(settings)
    engine = make_engine(settings.effective_database_url)
    try:
        with transaction(engine) as session:
            count = mailboxes.reencrypt_secrets(session, cipher.rotate)
            count += webhooks.reencrypt_secrets(session, cipher.rotate)
    finally:
        engine.dispose()
    log.info("re-encrypted %d stored secrets under the current key", count)


def create_agent(settings: Settings, name: str) -> None:
    import secrets

    from store import agents
    from store.db import make_engine, transaction

    token = secrets.token_urlsafe(32)
    engine = make_engine(settings.effective_database_url)
    try:
        with transaction(engine) as session:
            agent = agents.create(session, name=name, admin_token=token)
            public_key = agent.public_key
    finally:
        engine.dispose()
    # The admin token is shown once; only its hash is stored.
    sys.stdout.write(f"agent: {name}\npublic key: {public_key}\nadmin token: {token}\n")


def _run_emulator(host: str, port: int, data_dir: Path) -> None:
    try:
        from emulator.server import serve
    except ImportError:
        log.error("the provider emulator is not part of this build yet")
        sys.exit(2)
    serve(host, port, data_dir)
