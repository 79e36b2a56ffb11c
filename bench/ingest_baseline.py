"""The floor for `bench.ingest`: a mailbox backlog read by a plain loop, no Temporal.

The same work as `MailboxActivities.fetch_new_mail` and `create_tickets` in the same order:
the provider client from `providers.registry.build_provider` (through the same cache) with
credentials from the same OAuth code exchange, the workflow's page size, and the very
functions the activities wrap (`ingest.fetch.fetch_into_ledger`, `ingest.tickets.make_tickets`),
with the same transactions. What is left out is Temporal: no workflow, no activity tasks, no
heartbeats.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlmodel import col, select
from temporalio.client import Client

from activities.mailbox_types import FetchInput
from api.mailbox_control import signal
from core.crypto import Cipher
from core.settings import Settings
from ingest.fetch import fetch_into_ledger
from ingest.tickets import make_tickets
from providers.base import Credentials
from providers.cache import ProviderCache
from providers.gmail import oauth as google_oauth
from providers.outlook import oauth as microsoft_oauth
from providers.registry import build_provider
from store import mailboxes
from store.db import make_engine, transaction
from store.models import Agent, Mailbox

PAGE_SIZE = FetchInput.max_messages  # what the workflow asks for
REDIRECT_URI = "http://127.0.0.1:9/bench/callback"


@dataclass
class BaselineResult:
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)


def worker_settings(facts: dict[str, Any]) -> Settings:
    """The worker's settings, as `deskclone dev` gives them to its children."""
    os.environ.update(facts["worker_env"])
    return Settings()


def oauth_credentials(
    settings: Settings, emulator: httpx.Client, provider: str, address: str
) -> Credentials:
    """The consent redirect from the emulator, then the product's own code exchange."""
    verifier, challenge = google_oauth.new_pkce_pair()
    state = secrets.token_urlsafe(16)
    module = google_oauth if provider == "gmail" else microsoft_oauth
    url = module.authorization_url(
        settings,
        state=state,
        code_challenge=challenge,
        redirect_uri=REDIRECT_URI,
        login_hint=address,
    )
    location = emulator.get(url).headers["location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    if provider == "gmail":
        google = google_oauth.exchange_code(
            settings, code=code, code_verifier=verifier, redirect_uri=REDIRECT_URI
        )
        return google.credentials
    microsoft = microsoft_oauth.exchange_code(
        settings, code=code, code_verifier=verifier, redirect_uri=REDIRECT_URI
    )
    return microsoft.credentials


async def connect_mailboxes(
    facts: dict[str, Any],
    emulator: httpx.Client,
    provider: str,
    addresses: list[str],
    *,
    interval: int | None = None,
) -> list[Mailbox]:
    """Empty emulator mailboxes, each with credentials from the product's own code exchange
    and a mailbox row written as the OAuth callback writes it (workflows not started)."""
    settings = worker_settings(facts)
    engine = make_engine(settings.effective_database_url)
    cipher = Cipher.from_settings(settings)
    with transaction(engine) as session:
        agent = session.exec(select(Agent)).first()
        assert agent is not None
        agent_id = agent.id
    rows: list[Mailbox] = []
    for address in addresses:
        emulator.post(
            "/_emulator/mailboxes", json={"provider": provider, "address": address}
        ).raise_for_status()
        credentials = await asyncio.to_thread(
            oauth_credentials, settings, emulator, provider, address
        )
        with transaction(engine) as session:
            mailbox, _ = mailboxes.connect(
                session,
                agent_id=agent_id,
                provider=provider,
                address=address,
                credentials_encrypted=cipher.encrypt_credentials(credentials),
            )
            if interval is not None:
                mailboxes.update_settings(
                    session, mailbox, allowed_senders=None, poll_interval_seconds=interval
                )
            rows.append(mailbox)
    engine.dispose()
    return rows


async def start_until_ready(
    facts: dict[str, Any],
    rows: list[Mailbox],
    ready: Callable[[Mailbox], bool],
    failed: Callable[[Mailbox], bool],
) -> None:
    """Start each mailbox's workflow as the OAuth callback does, then wait until `ready`
    holds for every row; a row that `failed` ends the wait with an error."""
    settings = worker_settings(facts)
    client = await Client.connect(facts["temporal_address"])
    gate = asyncio.Semaphore(16)

    async def start(row: Mailbox) -> None:
        async with gate:
            await signal(client, settings, row, "reconnect")

    await asyncio.gather(*(start(row) for row in rows))
    engine = make_engine(settings.effective_database_url)
    ids = [row.id for row in rows]
    try:
        while True:
            with transaction(engine) as session:
                found = session.exec(select(Mailbox).where(col(Mailbox.id).in_(ids))).all()
                broken = sum(1 for m in found if failed(m))
                done = sum(1 for m in found if ready(m))
            if broken:
                raise RuntimeError(f"{broken} mailboxes could not set push up")
            if done == len(ids):
                return
            await asyncio.sleep(1)
    finally:
        engine.dispose()


def run_baseline(
    facts: dict[str, Any],
    emulator: httpx.Client,
    provider_name: str,
    address: str,
    like_mailbox_id: str,
    count: int,
) -> BaselineResult:
    """Connect `address` (same agent as `like_mailbox_id`) and drain it; timed like the
    pipeline, from the OAuth code exchange to the last message's outcome."""
    settings = worker_settings(facts)
    engine = make_engine(settings.effective_database_url)
    cipher = Cipher.from_settings(settings)
    # Named as the API names them (`GET /api/v1/mailboxes/{id}` counts).
    counts = dict.fromkeys(["tickets_created", "appended", "skipped", "failed"], 0)
    try:
        with transaction(engine) as session:
            like = mailboxes.get_for_worker(session, like_mailbox_id)
            assert like is not None
            agent_id = like.agent_id
        clock = time.perf_counter()
        known = oauth_credentials(settings, emulator, provider_name, address)
        with transaction(engine) as session:
            mailbox, _ = mailboxes.connect(
                session,
                agent_id=agent_id,
                provider=provider_name,
                address=address,
                credentials_encrypted=cipher.encrypt_credentials(known),
            )
            mailbox_id = mailbox.id
        providers = ProviderCache(settings, lambda: cipher, build_provider)
        while True:
            # fetch_new_mail
            page = fetch_into_ledger(
                engine, settings, providers, lambda: cipher, mailbox_id, PAGE_SIZE
            )
            # create_tickets
            made = make_tickets(
                engine,
                mailbox_id,
                page.ledger_ids,
                flood_limit=settings.flood_limit_per_hour,
                heartbeat=_no_heartbeat,
            )
            counts["skipped"] += made.skipped
            counts["tickets_created"] += made.tickets_created
            counts["appended"] += made.appended
            counts["failed"] += made.failed
            if not page.more:
                break
        seconds = time.perf_counter() - clock
    finally:
        engine.dispose()
    if sum(counts.values()) != count:
        raise RuntimeError(f"baseline finished {sum(counts.values())} of {count}: {counts}")
    return BaselineResult(seconds=seconds, counts=counts)


def _no_heartbeat() -> None:
    pass
