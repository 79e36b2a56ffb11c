"""OAuth tokens never leave the encrypted column: not in the database in clear, not in
workflow histories, search attributes or memos, not in logs."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from emulator.server import RunningEmulator
from tests.api.conftest import Api
from tests.api.test_mailboxes import connect
from tests.fakes import make_email
from workflows.mailbox import mailbox_workflow_id


def readable(node: Any) -> str:
    """A history's JSON with every payload's `data` decoded: payloads travel base64-encoded,
    so a token inside an activity's input or a local activity's marker would not show in the
    JSON text itself."""
    if isinstance(node, dict):
        parts = [readable(value) for value in node.values()]
        data = node.get("data")
        if isinstance(data, str):
            try:
                parts.append(base64.b64decode(data, validate=True).decode("utf-8", "replace"))
            except binascii.Error:
                pass
        return "\n".join(parts)
    if isinstance(node, list):
        return "\n".join(readable(item) for item in node)
    return str(node)


async def test_tokens_appear_nowhere_in_clear(
    api: Api,
    emulator: RunningEmulator,
    dev_server_env: WorkflowEnvironment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    address = "secrets@acme.example"
    mailbox = await connect(api, emulator, address)
    with httpx.Client(base_url=emulator.url, verify=emulator.ssl_context()) as control:
        for subject in ("One", "Two"):
            control.post(
                f"/_emulator/mailboxes/{address}/messages",
                content=make_email(subject=subject),
                headers={"Content-Type": "message/rfc822"},
            ).raise_for_status()
    await api.client.post(f"/api/v1/mailboxes/{mailbox['id']}/poll", headers=api.auth)
    for _ in range(100):
        listed = (
            await api.client.get("/api/v1/tickets", params={"source": "email"}, headers=api.auth)
        ).json()
        if len(listed["items"]) == 2:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the mail did not become tickets")

    store = emulator.state.tokens
    secrets = [*store._access, *store._refresh]  # every token the emulator ever issued
    assert len(secrets) >= 2

    with api.engine.connect() as conn:
        rows = [
            *conn.execute(sa.text("SELECT * FROM mailboxes")).all(),
            *conn.execute(sa.text("SELECT * FROM oauth_states")).all(),
        ]
    database = repr(rows)
    handle = dev_server_env.client.get_workflow_handle(mailbox_workflow_id(mailbox["id"]))
    history = readable(json.loads((await handle.fetch_history()).to_json()))
    described = await handle.describe()
    temporal = history + repr(described.typed_search_attributes) + repr(await described.memo())
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert "fetch_new_mail" in history  # the history is the real one, payloads decoded
    for secret in secrets:
        assert secret not in database
        assert secret not in temporal
        assert secret not in logs
