"""HTTP clients for a running `deskclone dev` (from its dev.json facts), and connecting a mailbox
through the real OAuth flow: the API's authorization URL, the emulator's consent redirect, the
API's callback."""

from __future__ import annotations

import ssl
from typing import Any

import httpx


def api_client(facts: dict[str, Any], timeout: float = 60) -> httpx.Client:
    """The admin API, authorised with dev's admin token."""
    return httpx.Client(
        base_url=facts["api_url"],
        headers={"Authorization": f"Bearer {facts['admin_token']}"},
        timeout=timeout,
    )


def emulator_client(facts: dict[str, Any], timeout: float = 60) -> httpx.Client:
    """The provider emulator (its control API and its consent screen), trusting dev's CA."""
    verify: ssl.SSLContext | bool = True
    if facts.get("emulator_ca"):
        verify = ssl.create_default_context(cafile=facts["emulator_ca"])
    return httpx.Client(base_url=facts["emulator_url"], verify=verify, timeout=timeout)


def deliver(emulator: httpx.Client, address: str, raw: bytes) -> None:
    """One raw RFC 822 message arrives in the emulator mailbox's inbox as new mail."""
    answer = emulator.post(
        f"/_emulator/mailboxes/{address}/messages",
        content=raw,
        headers={"Content-Type": "message/rfc822"},
    )
    answer.raise_for_status()


def authorize(api: httpx.Client, emulator: httpx.Client, provider: str, address: str) -> str:
    """ "Connect Google/Outlook Account" and the emulator's consent screen (which approves at
    once as `address`): returns the API callback URL, not yet followed."""
    started = api.post("/api/v1/mailboxes", json={"provider": provider, "login_hint": address})
    started.raise_for_status()
    location: str = emulator.get(started.json()["authorization_url"]).headers["location"]
    return location


def finish_connect(api: httpx.Client, callback_url: str) -> None:
    """Follow the callback: the API connects the mailbox and starts (or signals) its workflow."""
    callback = api.get(callback_url)
    if callback.status_code >= 400:
        raise RuntimeError(f"the OAuth callback failed: HTTP {callback.status_code}")


def connect_mailbox(
    api: httpx.Client, emulator: httpx.Client, provider: str, address: str
) -> dict[str, Any]:
    """The whole OAuth flow for `address`; returns its `Mailbox` as the API shows it."""
    finish_connect(api, authorize(api, emulator, provider, address))
    for mailbox in api.get("/api/v1/mailboxes").json()["items"]:
        if mailbox["address"].lower() == address.lower():
            found: dict[str, Any] = mailbox
            return found
    raise RuntimeError(f"{address} is not among the connected mailboxes")
