"""Helpers for the end-to-end IMAP tests: connect through the API, poll, wait for outcomes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tests.api.conftest import Api
from tests.imap.conftest import Account

T = TypeVar("T")


async def connected(api: Api, account: Account, **changes: Any) -> dict[str, Any]:
    answer = await api.client.post(
        "/api/v1/mailboxes", json=account.body(**changes), headers=api.auth
    )
    assert answer.status_code == 201, answer.text
    mailbox: dict[str, Any] = answer.json()
    return mailbox


async def poll(api: Api, mailbox: dict[str, Any]) -> None:
    answer = await api.client.post(f"/api/v1/mailboxes/{mailbox['id']}/poll", headers=api.auth)
    assert answer.status_code == 202, answer.text


async def mailbox_now(api: Api, mailbox: dict[str, Any]) -> dict[str, Any]:
    answer = await api.client.get(f"/api/v1/mailboxes/{mailbox['id']}", headers=api.auth)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def tickets(api: Api, mailbox: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"source": "email", "limit": "100", **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/api/v1/tickets", params=params, headers=api.auth)).json()
        items += [t for t in page["items"] if t["mailbox_id"] == mailbox["id"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def ledger(api: Api, mailbox: dict[str, Any]) -> list[dict[str, Any]]:
    url = f"/api/v1/mailboxes/{mailbox['id']}/messages"
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get(url, params=params, headers=api.auth)).json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


async def until(
    check: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float = 30.0,
    nudge: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """`check()` until `done` says so; `nudge` (a poll) every second meanwhile."""
    deadline = time.monotonic() + timeout
    last_nudge = 0.0
    while True:
        value = await check()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not done in {timeout}s: {value!r}")
        if nudge is not None and time.monotonic() - last_nudge > 1.0:
            last_nudge = time.monotonic()
            await nudge()
        await asyncio.sleep(0.1)
