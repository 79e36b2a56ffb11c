"""Page tests. Two kinds:

- HTTP: the real app over ASGI (PostgreSQL, the real Temporal dev server, no worker), rows
  made directly through `store/`, a cookie-keeping client that signs in like a browser.
- Browser: headless Chromium from Debian (never a Playwright download) driven by Playwright's
  sync API in plain `def` tests, against `deskclone dev` run as a subprocess with its emulator.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.settings import Settings
from domain.outcomes import MailboxStatus, Outcome, TicketSource
from store import ledger, mailboxes, tickets
from store.db import transaction
from store.models import Agent, Mailbox, Ticket
from tests.conftest import make_agent, unique_task_queue
from tests.devstack import free_port, running_dev

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# HTTP-level ---------------------------------------------------------------------------------


@dataclass
class Pages:
    client: httpx.AsyncClient
    agent: Agent
    token: str
    engine: Engine
    settings: Settings

    async def csrf(self, path: str = "/login") -> str:
        page = await self.client.get(path)
        found = CSRF.search(page.text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    async def login(self) -> None:
        response = await self.client.post(
            "/login", data={"token": self.token, "csrf_token": await self.csrf("/login")}
        )
        assert response.status_code == 303, response.text

    async def post(self, path: str, data: dict[str, str], page: str = "/sources") -> httpx.Response:
        """A form post as the page makes it: with the session's CSRF token."""
        return await self.client.post(path, data={**data, "csrf_token": await self.csrf(page)})

    def mailbox(
        self,
        address: str,
        *,
        status: str = "active",
        last_error: str | None = None,
        allowed: list[str] | None = None,
    ) -> Mailbox:
        with transaction(self.engine) as session:
            mailbox, _ = mailboxes.connect(
                session,
                agent_id=self.agent.id,
                provider="gmail",
                address=address,
                credentials_encrypted="not-used",
            )
            if allowed is not None:
                mailboxes.update_settings(
                    session, mailbox, allowed_senders=allowed, poll_interval_seconds=None
                )
            if status != "active" or last_error:
                mailboxes.set_status(session, mailbox, MailboxStatus(status), last_error)
            return mailbox

    def ticket(
        self,
        title: str,
        body: str = "Smoke from tray 2.",
        *,
        source: str = "email",
        mailbox_id: str | None = None,
        messages: list[tickets.NewMessage] | None = None,
        requester: str = "ann@customer.example",
    ) -> Ticket:
        ref = f"{title}-{datetime.now(UTC).timestamp()}"
        new = tickets.NewTicket(
            agent_id=self.agent.id,
            source=TicketSource(source),
            source_ref=ref,
            title=title,
            description=body,
            requester_email=requester,
            requester_name="Ann Lee",
            mailbox_id=mailbox_id,
            messages=messages
            or [
                tickets.NewMessage(
                    source_ref=f"{ref}-1",
                    body_text=body,
                    sent_at=datetime.now(UTC),
                    author_email=requester,
                    author_name="Ann Lee",
                )
            ],
        )
        with transaction(self.engine) as session:
            return tickets.create_ticket(session, new).ticket

    def ledger_row(
        self,
        mailbox: Mailbox,
        subject: str,
        *,
        outcome: str,
        reason: str | None = None,
        ticket_id: str | None = None,
        sender: str = "eve@elsewhere.example",
    ) -> None:
        with transaction(self.engine) as session:
            [row_id] = ledger.insert_new(
                session,
                agent_id=self.agent.id,
                mailbox_id=mailbox.id,
                rows=[
                    ledger.NewInbound(
                        provider_message_id=f"{subject}-{datetime.now(UTC).timestamp()}",
                        provider_thread_id=None,
                        internet_message_id=None,
                        from_address=sender,
                        from_name=None,
                        subject=subject,
                        received_at=datetime.now(UTC),
                        raw=b"",
                    )
                ],
            )
            [row] = ledger.rows(session, [row_id])
            ledger.mark(session, row, Outcome(outcome), reason, ticket_id)


def page_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "task_queue": unique_task_queue(),
        "secret_key": "pages-tests-secret",
        "public_url": "http://testserver",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def pages(
    dev_server_env: WorkflowEnvironment, postgres_engine: Engine
) -> AsyncIterator[Pages]:
    settings = page_settings()
    agent, token = make_agent(postgres_engine)
    app = create_app(settings, dev_server_env.client, engine=postgres_engine)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield Pages(client, agent, token, postgres_engine, settings)


@pytest.fixture
async def signed_in(pages: Pages) -> Pages:
    await pages.login()
    return pages


# Browser-level ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`deskclone dev` on free ports with its emulator, as in tests/e2e."""
    with running_dev(tmp_path_factory.mktemp("dev")) as facts:
        yield facts


@dataclass
class Emulator:
    """The emulator's control API (CONTRACT.md §4)."""

    client: httpx.Client

    def deliver(self, address: str, raw: bytes) -> None:
        sent = self.client.post(
            f"/_emulator/mailboxes/{address}/messages",
            content=raw,
            headers={"Content-Type": "message/rfc822"},
        )
        assert sent.status_code == 201, sent.text

    def revoke(self, address: str) -> None:
        response = self.client.post(f"/_emulator/mailboxes/{address}/revoke")
        assert response.status_code in (200, 201, 204), response.text


@pytest.fixture(scope="module")
def emulator(dev: dict[str, Any]) -> Iterator[Emulator]:
    verify = ssl.create_default_context(cafile=dev["emulator_ca"])
    with httpx.Client(base_url=dev["emulator_url"], verify=verify, timeout=15) as client:
        yield Emulator(client)


@pytest.fixture(scope="module")
def admin_api(dev: dict[str, Any]) -> Iterator[httpx.Client]:
    """The JSON API, for what a test does behind the page's back (never what it checks)."""
    auth = {"Authorization": f"Bearer {dev['admin_token']}"}
    with httpx.Client(base_url=dev["api_url"], headers=auth, timeout=15) as client:
        yield client


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def context(browser: Browser, dev: dict[str, Any]) -> Iterator[BrowserContext]:
    """One signed-in browser profile for the module, like one support person's browser."""
    # The emulator's consent screen is HTTPS under its own test CA.
    context = browser.new_context(
        base_url=dev["api_url"],
        ignore_https_errors=True,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def other_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A second origin: a tiny static web server; the test writes pages into its folder."""
    root = tmp_path_factory.mktemp("other-site")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # "localhost", not 127.0.0.1: another host and port, so surely another origin.
        yield f"http://localhost:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
