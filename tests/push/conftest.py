"""Push end to end: `deskclone dev` (push on, as `make run` has it) on a database of its own."""

from __future__ import annotations

import uuid
from typing import Any

from tests.faults.conftest import System, eventually, system

__all__ = ["connected", "eventually", "mail", "system", "wait_live"]


def mail(subject: str, sender: str = "ann@customer.example") -> bytes:
    return (
        f"From: {sender}\r\nTo: support@acme.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@customer.example>\r\n\r\n{subject}, please.\r\n"
    ).encode()


def wait_live(system: System, mailbox_id: str) -> dict[str, Any]:
    def live() -> dict[str, Any] | None:
        mailbox = system.mailbox(mailbox_id)
        return mailbox if mailbox["push"]["state"] == "live" else None

    found: dict[str, Any] = eventually(live, "push to go live", 20)
    return found


def connected(system: System, provider: str, interval: int = 3600) -> tuple[str, str]:
    """A new mailbox of `provider` with push live and polling only every `interval` s."""
    address = system.new_address()
    system.emulator.post("/_emulator/mailboxes", json={"provider": provider, "address": address})
    mailbox_id = system.connect(address, provider)
    patched = system.api.patch(
        f"/api/v1/mailboxes/{mailbox_id}", json={"poll_interval_seconds": interval}
    )
    assert patched.status_code == 200, patched.text
    wait_live(system, mailbox_id)
    eventually(lambda: system.mailbox(mailbox_id)["last_polled_at"], "the first poll", 20)
    return address, mailbox_id
