"""The floor for `bench.ingest`: a mailbox backlog read by a plain loop, no Temporal.

The same work as `MailboxActivities.fetch_new_mail`, `filter_mail` and `create_tickets` in the
same order and with the same transactions: the provider client from
`providers.registry.build_provider` with credentials from the same OAuth code exchange, pages
of 100, header parsing into `store.ledger.insert_new` plus the cursor in one transaction, the
loop guards and sender filter in one transaction per page, and
`activities.mail_tickets.process_message` in one transaction per message.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from activities.mail_tickets import process_message
from deskclone.crypto import Cipher
from deskclone.settings import Settings
from domain.loop_guards import check_loop
from domain.mime import normalise_email
from domain.senders import check_sender
from providers import google_oauth, microsoft_oauth
from providers.base import Credentials
from providers.registry import build_provider
from store import ledger, mailboxes
from store.db import make_engine, transaction
from store.ledger import NewInbound
from store.models import utcnow

PAGE_SIZE = 100  # FetchInput.max_messages
MAX_EMAIL_BYTES = 25 * 1024 * 1024
HEADER_SCAN_BYTES = 256 * 1024
MAX_PENDING_CARRIED = 200
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


def _inbound(
    provider_message_id: str, thread_id: str | None, raw: bytes, received_at: datetime | None
) -> NewInbound:
    email = normalise_email(raw[:HEADER_SCAN_BYTES] if len(raw) > MAX_EMAIL_BYTES else raw)
    return NewInbound(
        provider_message_id=provider_message_id,
        provider_thread_id=thread_id,
        internet_message_id=email.message_id,
        from_address=email.from_address,
        from_name=email.from_name,
        subject=email.subject,
        received_at=received_at or email.date,
        raw=raw,
    )


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
    counts = dict.fromkeys(mailboxes.OUTCOMES, 0)
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
            connected_at = mailbox.updated_at
        provider = build_provider(settings, provider_name, known)
        since = _aware(connected_at) - timedelta(days=settings.initial_import_days)
        cursor = provider.initial_cursor(since)
        while True:
            # fetch_new_mail
            with transaction(engine) as session:
                box = mailboxes.get_for_worker(session, mailbox_id)
                assert box is not None
            page = provider.fetch_page(cursor, PAGE_SIZE)
            rows = [
                _inbound(m.provider_message_id, m.provider_thread_id, m.raw, m.received_at)
                for m in page.messages
            ]
            latest = provider.credentials()
            rotated = latest.refresh_token != known.refresh_token
            ids: list[str] = []
            if rows or page.next_cursor != cursor or rotated:
                with transaction(engine) as session:
                    box = mailboxes.get_for_worker(session, mailbox_id)
                    assert box is not None
                    ids = ledger.insert_new(
                        session, agent_id=agent_id, mailbox_id=mailbox_id, rows=rows
                    )
                    exclude = set(ids)
                    carried = [
                        i
                        for i in ledger.pending_ids(session, mailbox_id, MAX_PENDING_CARRIED)
                        if i not in exclude
                    ]
                    ids = carried + ids
                    mailboxes.record_poll(
                        session,
                        box,
                        cursor=page.next_cursor,
                        credentials_encrypted=(
                            cipher.encrypt_credentials(latest) if rotated else None
                        ),
                        polled_at=utcnow(),
                    )
                if rotated:
                    known = latest
            cursor = page.next_cursor
            # filter_mail
            accepted: list[str] = []
            with transaction(engine) as session:
                box = mailboxes.get_for_worker(session, mailbox_id)
                assert box is not None
                for row in ledger.rows(session, ids, outcome="pending"):
                    if row.size > MAX_EMAIL_BYTES:
                        ledger.mark(session, row, "skipped", "too large")
                        counts["skipped"] += 1
                        continue
                    email = normalise_email(row.raw)
                    loop = check_loop(email, box.address)
                    if not loop.accepted:
                        ledger.mark(session, row, "skipped", loop.reason)
                        counts["skipped"] += 1
                        continue
                    sender = check_sender(email.from_address, box.allowed_senders)
                    if not sender.allowed:
                        ledger.mark(session, row, "skipped", sender.reason)
                        counts["skipped"] += 1
                        continue
                    accepted.append(row.id)
            # create_tickets
            for ledger_id in accepted:
                with transaction(engine) as session:
                    outcome = process_message(
                        session, mailbox_id, ledger_id, flood_limit=settings.flood_limit_per_hour
                    )
                if outcome is not None:
                    counts[outcome] += 1
            if not page.more:
                break
        seconds = time.perf_counter() - clock
    finally:
        engine.dispose()
    if sum(counts.values()) != count:
        raise RuntimeError(f"baseline finished {sum(counts.values())} of {count}: {counts}")
    # Named as the API names them (`GET /api/v1/mailboxes/{id}` counts).
    named = {("tickets_created" if k == "ticket_created" else k): v for k, v in counts.items()}
    return BaselineResult(seconds=seconds, counts=named)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
