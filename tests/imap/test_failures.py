"""A changed password makes the mailbox auth_expired until Reconnect, which keeps every setting
and reads the mail that arrived meanwhile; a stopped server is a transient failure."""

from __future__ import annotations

import asyncio
import secrets

from tests.api.conftest import Api
from tests.fakes import make_email
from tests.imap.conftest import Account
from tests.imap.support import connected, mailbox_now, poll, tickets, until


async def test_a_changed_password_expires_the_mailbox_until_reconnect(
    imap_api: Api, account: Account
) -> None:
    mailbox = await connected(imap_api, account)
    patched = await imap_api.client.patch(
        f"/api/v1/mailboxes/{mailbox['id']}",
        json={"allowed_senders": ["@customer.example"], "poll_interval_seconds": 30},
        headers=imap_api.auth,
    )
    assert patched.status_code == 200, patched.text
    account.deliver(make_email(subject="Before", sender="ann@customer.example"))
    await until(
        lambda: tickets(imap_api, mailbox),
        lambda found: len(found) == 1,
        nudge=lambda: poll(imap_api, mailbox),
    )

    new_password = secrets.token_urlsafe(12)
    account.dovecot.set_password(account.user, new_password)
    account.deliver(make_email(subject="Meanwhile", sender="ann@customer.example"))
    expired = await until(
        lambda: mailbox_now(imap_api, mailbox),
        lambda m: m["status"] == "auth_expired",
        nudge=lambda: _poll_quietly(imap_api, mailbox),
    )
    assert "Reconnect" in (expired["last_error"] or "")
    assert expired["push"]["state"] == "off"
    # Polling an expired mailbox is refused: no further logins until Reconnect.
    refused = await imap_api.client.post(
        f"/api/v1/mailboxes/{mailbox['id']}/poll", headers=imap_api.auth
    )
    assert refused.status_code == 409

    wrong = await imap_api.client.post(
        f"/api/v1/mailboxes/{mailbox['id']}/reconnect",
        json={"password": "still-wrong"},
        headers=imap_api.auth,
    )
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "imap_auth_failed"
    assert (await mailbox_now(imap_api, mailbox))["status"] == "auth_expired"

    answer = await imap_api.client.post(
        f"/api/v1/mailboxes/{mailbox['id']}/reconnect",
        json={"password": new_password},
        headers=imap_api.auth,
    )

    assert answer.status_code == 200, answer.text
    back = answer.json()
    assert back["id"] == mailbox["id"] and back["status"] == "active"
    assert back["imap"] == mailbox["imap"]
    assert back["allowed_senders"] == ["@customer.example"]
    assert back["poll_interval_seconds"] == 30
    assert new_password not in answer.text
    made = await until(
        lambda: tickets(imap_api, mailbox),
        lambda found: len(found) == 2,
        nudge=lambda: poll(imap_api, mailbox),
    )
    assert sorted(t["title"] for t in made) == ["Before", "Meanwhile"]


async def _poll_quietly(api: Api, mailbox: dict[str, object]) -> None:
    # Once expired, /poll answers 409: the nudge must not fail the wait.
    await api.client.post(f"/api/v1/mailboxes/{mailbox['id']}/poll", headers=api.auth)


async def test_a_stopped_server_is_transient_and_the_mailbox_catches_up(
    imap_api: Api, account: Account
) -> None:
    mailbox = await connected(imap_api, account)
    account.deliver(make_email(subject="First"))
    await until(
        lambda: tickets(imap_api, mailbox),
        lambda found: len(found) == 1,
        nudge=lambda: poll(imap_api, mailbox),
    )
    account.deliver(make_email(subject="While down"))
    account.dovecot.stop()
    try:
        await poll(imap_api, mailbox)
        # The fetch is refused a connection and retried with backoff (1 s, 2 s, 4 s, ...):
        # a few attempts fail while the mailbox stays active, never auth_expired.
        await asyncio.sleep(4)
        assert (await mailbox_now(imap_api, mailbox))["status"] == "active"
    finally:
        account.dovecot.start()

    made = await until(
        lambda: tickets(imap_api, mailbox),
        lambda found: len(found) == 2,
        nudge=lambda: poll(imap_api, mailbox),
        timeout=60,
    )
    assert sorted(t["title"] for t in made) == ["First", "While down"]
    assert (await mailbox_now(imap_api, mailbox))["status"] == "active"
