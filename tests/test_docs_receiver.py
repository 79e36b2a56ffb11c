"""The receiver that docs/events.md shows, run as written against our own signer: a delivery
signed with its secret is accepted, one signed with another is refused."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from activities.webhook_sender import Sender
from api.webhook_service import new_secret
from bench.receiver import free_port
from domain import events

DOC = Path(__file__).resolve().parent.parent / "docs" / "events.md"


def receiver_code() -> str:
    blocks: list[str] = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    [code] = [b for b in blocks if "class Receiver" in b]
    return code


async def test_the_documented_receiver_verifies_our_deliveries(tmp_path: Path) -> None:
    code = receiver_code()
    assert len([line for line in code.splitlines() if line.strip()]) <= 20
    script = tmp_path / "receiver.py"
    script.write_text(code)
    secret, port = new_secret(), free_port()
    env = {"WEBHOOK_SECRET": secret, "PORT": str(port), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    sender = Sender(allow_private=True)
    try:
        event = events.envelope("evt_doc", "ticket.created", datetime.now(UTC), {"ticket": {}})
        body = events.body(event)
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 15
        while True:
            attempt = await sender.post(url, [secret], "evt_doc", body)
            if attempt.status_code is not None or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)  # the receiver is still starting
        assert attempt.status_code == 204, attempt
        refused = await sender.post(url, [new_secret()], "evt_doc", body)
        assert refused.status_code == 400
        # Rotated: the old and the new secret both sign; a receiver holding either accepts.
        both = await sender.post(url, [new_secret(), secret], "evt_doc", body)
        assert both.status_code == 204
    finally:
        await sender.aclose()
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert out.splitlines() == ["ticket.created evt_doc", "ticket.created evt_doc"]
