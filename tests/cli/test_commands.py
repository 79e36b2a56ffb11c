"""The `deskclone` commands that need no running services, run as a user would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from store import agents
from store.db import make_engine, transaction


def deskclone(
    *args: str, data_dir: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKCLONE_")}
    env["DESKCLONE_DATA_DIR"] = str(data_dir)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "deskclone", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrate_creates_the_tables_in_the_default_sqlite_file(tmp_path: Path) -> None:
    done = deskclone("migrate", data_dir=tmp_path / "data")
    assert done.returncode == 0, done.stderr
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'deskclone.db'}")
    assert "tickets" in inspect(engine).get_table_names()
    engine.dispose()


@pytest.mark.parametrize(
    "command", [("workspace", "create", "Acme"), ("agent", "create", "--name", "Acme")]
)
def test_workspace_create_prints_keys_that_work(tmp_path: Path, command: tuple[str, ...]) -> None:
    assert deskclone("migrate", data_dir=tmp_path).returncode == 0
    made = deskclone(*command, data_dir=tmp_path)
    assert made.returncode == 0, made.stderr
    token = re.search(r"admin token: (\S+)", made.stdout)
    key = re.search(r"public key: (pk_\S+)", made.stdout)
    assert token and key
    engine = make_engine(f"sqlite:///{tmp_path / 'deskclone.db'}")
    with transaction(engine) as session:
        agent = agents.get_by_admin_token(session, token.group(1))
        assert agent is not None and agent.public_key == key.group(1)
    engine.dispose()


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    done = deskclone("frobnicate", data_dir=tmp_path)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_rotate_key_re_encrypts_stored_tokens(tmp_path: Path) -> None:
    from core.crypto import Cipher
    from providers.base import Credentials
    from store import mailboxes
    from store.db import make_engine, transaction

    assert deskclone("migrate", data_dir=tmp_path).returncode == 0
    made = deskclone("workspace", "create", "Acme", data_dir=tmp_path)
    token = re.search(r"admin token: (\S+)", made.stdout)
    assert token
    engine = make_engine(f"sqlite:///{tmp_path / 'deskclone.db'}")
    with transaction(engine) as session:
        agent = agents.get_by_admin_token(session, token.group(1))
        assert agent is not None
        box, _ = mailboxes.connect(
            session,
            agent_id=agent.id,
            provider="gmail",
            address="a@acme.example",
            credentials_encrypted=Cipher("old-key").encrypt_credentials(Credentials("refresh-1")),
        )
    env = {"DESKCLONE_SECRET_KEY": "new-key", "DESKCLONE_OLD_SECRET_KEYS": "old-key"}
    done = deskclone("rotate-key", data_dir=tmp_path, extra_env=env)
    assert done.returncode == 0, done.stderr
    with transaction(engine) as session:
        stored = mailboxes.get_for_worker(session, box.id)
        assert stored is not None and stored.credentials_encrypted is not None
        # Readable with the new key alone: the old one can now be dropped.
        assert (
            Cipher("new-key").decrypt_credentials(stored.credentials_encrypted).refresh_token
            == "refresh-1"
        )
    engine.dispose()
