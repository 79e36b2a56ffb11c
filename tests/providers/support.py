"""Helpers: settings pointing at the emulator, a browser-like consent, mail, paging."""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from core.settings import Settings
from emulator.server import RunningEmulator
from providers.base import RawMessage, SyncPage
from providers.gmail.client import GmailProvider
from providers.gmail.oauth import authorization_url, exchange_code, new_pkce_pair
from providers.oauth_common import Grant
from tests.emulator.support import ANN, deliver, make_message

REDIRECT_URI = "http://127.0.0.1:9/oauth/google/callback"
HISTORY = "GET /gmail/v1/users/{user}/history"
MESSAGES_LIST = "GET /gmail/v1/users/{user}/messages"
MESSAGE_GET = "GET /gmail/v1/users/{user}/messages/{id}"
PROFILE = "GET /gmail/v1/users/{user}/profile"
TOKEN = "POST /token"
BATCH = "POST /batch/gmail/v1"

__all__ = ["ANN", "deliver", "make_message"]


def provider_settings(emulator: RunningEmulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "google_auth_uri": emulator.url + "/o/oauth2/v2/auth",
        "google_token_uri": emulator.url + "/token",
        "gmail_api_url": emulator.url,
        "provider_ca_bundle": emulator.ca_path,
        "provider_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass(frozen=True)
class Callback:
    code: str
    state: str
    verifier: str


def browser_consent(
    control: httpx.Client, settings: Settings, *, login_hint: str = ANN, **overrides: str
) -> Callback:
    """Follow the authorization URL like a browser to the callback redirect.

    `overrides` replace query parameters, as a user unticking a permission (or a
    tampered URL) would change what Google grants.
    """
    verifier, challenge = new_pkce_pair()
    state = secrets.token_urlsafe(16)
    url = httpx.URL(
        authorization_url(
            settings,
            state=state,
            code_challenge=challenge,
            redirect_uri=REDIRECT_URI,
            login_hint=login_hint,
        )
    )
    for name, value in overrides.items():
        url = url.copy_set_param(name, value)
    answer = control.get(url)
    assert answer.status_code == 302, answer.text
    callback = httpx.URL(answer.headers["location"])
    assert str(callback.copy_with(query=None)) == REDIRECT_URI
    assert callback.params["state"] == state
    return Callback(callback.params["code"], state, verifier)


def connect(control: httpx.Client, settings: Settings, *, login_hint: str = ANN) -> Grant:
    back = browser_consent(control, settings, login_hint=login_hint)
    return exchange_code(
        settings, code=back.code, code_verifier=back.verifier, redirect_uri=REDIRECT_URI
    )


def closed_port_url() -> str:
    """An https URL on which nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"https://127.0.0.1:{port}"


def deliver_many(control: httpx.Client, count: int, *, folder: str | None = None) -> list[str]:
    return [
        deliver(control, make_message(subject=f"Ticket {i}"), folder=folder)["id"]
        for i in range(count)
    ]


def since_last_week() -> datetime:
    return datetime.now(UTC) - timedelta(days=7)


@dataclass
class Synced:
    pages: list[SyncPage] = field(default_factory=list)
    cursor: str = ""

    @property
    def messages(self) -> list[RawMessage]:
        return [m for page in self.pages for m in page.messages]

    @property
    def ids(self) -> list[str]:
        return [m.provider_message_id for m in self.messages]


def sync(provider: GmailProvider, cursor: str, max_messages: int = 50, limit: int = 20) -> Synced:
    """fetch_page until `more` is False, as the workflow loops."""
    synced = Synced(cursor=cursor)
    for _ in range(limit):
        page = provider.fetch_page(synced.cursor, max_messages)
        assert len(page.messages) + len(page.skipped_ids) <= max_messages
        synced.pages.append(page)
        synced.cursor = page.next_cursor
        if not page.more:
            return synced
    raise AssertionError(f"still more after {limit} pages")


def request_counts(control: httpx.Client) -> dict[str, int]:
    counts: dict[str, int] = control.get("/_emulator/requests").json()["counts"]
    return counts


def reset_counts(control: httpx.Client) -> None:
    assert control.post("/_emulator/requests/reset").status_code == 204


def add_fault(control: httpx.Client, **fault: Any) -> None:
    answer = control.post("/_emulator/faults", json={"provider": "gmail", **fault})
    assert answer.status_code == 201, answer.text
