"""JSON logs: every line parses, carries mailbox and workflow ids where known, and never a
secret (configured ones, bearer tokens, OAuth tokens and codes, URL passwords)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from core.json_logs import REDACTED, JsonFormatter, secret_values
from core.logs import configure_logging
from core.settings import Settings

SECRETS = {
    "admin": "admin-token-0123456789",
    "key": "secret-key-abcdefghij",
    "google": "GOCSPX-client-secret-xyz",
    "db": "db-password-771",
}


def formatted(record: logging.LogRecord, secrets: list[str] | None = None) -> dict[str, object]:
    line = JsonFormatter(secrets or []).format(record)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("deskclone.test", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_a_line_is_one_json_object_with_the_basics() -> None:
    entry = formatted(record("polled %s", "mailbox", mailbox_id="mb_1", count=3))
    assert entry["message"] == "polled mailbox"
    assert entry["level"] == "info" and entry["logger"] == "deskclone.test"
    assert entry["mailbox_id"] == "mb_1" and entry["count"] == 3
    assert str(entry["ts"]).endswith("+00:00")


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOi.abc-def_ghi", "eyJhbGciOi.abc-def_ghi"),
        ("GET /oauth/gmail/callback?code=4/0AbCdEf&state=xyz", "4/0AbCdEf"),
        ('{"access_token": "ya29.a0Af", "expires_in": 3599}', "ya29.a0Af"),
        ("refresh_token=1//0gLr-xyz&grant_type=refresh_token", "1//0gLr-xyz"),
        ("{'client_secret': 'GOCSPX-zzz'}", "GOCSPX-zzz"),
        ("connecting to postgresql://deskclone:s3cr3t@db:5432/deskclone", "s3cr3t"),
    ],
)
def test_token_shapes_are_redacted(message: str, secret: str) -> None:
    entry = formatted(record(message))
    assert secret not in json.dumps(entry)
    assert REDACTED in str(entry["message"])


def test_configured_secrets_are_redacted_everywhere() -> None:
    settings = Settings(
        admin_token=SECRETS["admin"],
        secret_key=SECRETS["key"],
        google_client_secret=SECRETS["google"],
        database_url=f"postgresql://u:{SECRETS['db']}@h/d",
    )
    found = secret_values(settings)
    assert set(SECRETS.values()) <= set(found)
    try:
        raise RuntimeError(f"could not use {SECRETS['key']}")
    except RuntimeError:
        failing = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "%s and %s",
            (SECRETS["admin"], SECRETS["google"]),
            sys.exc_info(),
        )
    failing.__dict__["note"] = f"db {SECRETS['db']}"
    failing.__dict__["access_token"] = "anything"
    line = JsonFormatter(found).format(failing)
    for secret in [*SECRETS.values(), "anything"]:
        assert secret not in line
    entry = json.loads(line)
    assert "RuntimeError" in entry["error"] and entry["access_token"] == REDACTED


def test_activity_logs_carry_workflow_and_mailbox_ids() -> None:
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            lines.append(self.format(rec))

    handler = Capture()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("deskclone.activities.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    @activity.defn(name="fetch_new_mail")
    def fetch() -> None:
        logger.info("fetched %d messages", 2)

    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, workflow_id="mailbox:mb_42", activity_type="fetch_new_mail"
    )
    try:
        env.run(fetch)
    finally:
        logger.removeHandler(handler)
    entry = json.loads(lines[0])
    assert entry["message"] == "fetched 2 messages"
    assert entry["workflow_id"] == "mailbox:mb_42"
    assert entry["mailbox_id"] == "mb_42"
    assert entry["activity_type"] == "fetch_new_mail"


@pytest.mark.usefixtures("restore_logging")
def test_oauth_codes_stay_out_of_uvicorns_access_log() -> None:
    configure_logging("INFO", "json", [])
    # uvicorn configures its loggers when the server is set up; our filter survives that.
    uvicorn.Config(Starlette(), log_level="info")
    access = logging.getLogger("uvicorn.access")
    rec = access.makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/oauth/gmail/callback?code=4/0SECRET&state=s", "1.1", 303),
        None,
    )
    assert access.filter(rec)
    assert "4/0SECRET" not in rec.getMessage()


def test_a_real_command_logs_json_without_secrets(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKCLONE_")}
    env.update(
        DESKCLONE_DATA_DIR=str(tmp_path),
        DESKCLONE_LOG_FORMAT="json",
        DESKCLONE_SECRET_KEY=SECRETS["key"],
        DESKCLONE_ADMIN_TOKEN=SECRETS["admin"],
    )
    done = subprocess.run(
        [sys.executable, "-m", "deskclone", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines
    entries = [json.loads(line) for line in lines]
    assert entries[-1]["message"] == "database is at the latest migration"
    assert SECRETS["key"] not in done.stderr and SECRETS["admin"] not in done.stderr
