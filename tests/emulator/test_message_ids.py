"""The control API's delivery answer names each message as the provider's own API does.

Delivered through `POST /_emulator/mailboxes/{address}/messages`, then fetched by the
product's real fetch activity (real provider clients against the emulator) into the
ledger: the ledger's provider ids must be exactly the ids the control route answered
(Gmail: message id and threadId; Outlook: Graph message id and conversationId).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.testing import ActivityEnvironment

from activities.mailbox import MailboxActivities
from activities.mailbox_types import FetchInput
from core.crypto import Cipher
from core.settings import Settings
from emulator.server import RunningEmulator
from providers.base import Credentials
from providers.registry import build_provider, close_shared_connections
from store import ledger, mailboxes
from store.db import transaction
from tests.conftest import make_agent
from tests.emulator.support import ANN, deliver, make_message
from tests.providers.conftest import OLIVE, connect_outlook, outlook_settings
from tests.providers.support import connect


@pytest.fixture
def settings(emulator: RunningEmulator) -> Iterator[Settings]:
    yield outlook_settings(emulator)
    # The providers keep connections alive between polls; none may outlive the test.
    close_shared_connections()


def fetch_into_ledger(
    engine: Engine, settings: Settings, provider: str, address: str, credentials: Credentials
) -> dict[str, tuple[str, str | None]]:
    """Run the fetch activity once for a new mailbox: {subject: (message id, thread id)}."""
    agent, _ = make_agent(engine)
    cipher = Cipher("message-ids")
    with transaction(engine) as session:
        mailbox, _ = mailboxes.connect(
            session,
            agent_id=agent.id,
            provider=provider,
            address=address,
            credentials_encrypted=cipher.encrypt_credentials(credentials),
        )
    activities = MailboxActivities(engine, settings, cipher, build_provider)
    fetched = ActivityEnvironment().run(activities.fetch_new_mail, FetchInput(mailbox.id))
    with transaction(engine) as session:
        rows = ledger.rows(session, fetched.ledger_ids)
        return {str(row.subject): (row.provider_message_id, row.provider_thread_id) for row in rows}


def deliver_thread(control: httpx.Client, address: str) -> dict[str, dict[str, Any]]:
    """A question and a reply to it (one thread), and an unrelated message."""
    return {
        "Question": deliver(
            control, make_message(subject="Question", to=address, message_id="<q@x.io>"), address
        ),
        "Re: Question": deliver(
            control,
            make_message(subject="Re: Question", to=address, in_reply_to="<q@x.io>"),
            address,
        ),
        "Other": deliver(control, make_message(subject="Other", to=address), address),
    }


def answered_ids(delivered: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {subject: (d["id"], d["thread_id"]) for subject, d in delivered.items()}


def test_gmail_delivery_answers_the_ids_the_ledger_stores(
    sqlite_engine: Engine, control: httpx.Client, settings: Settings
) -> None:
    grant = connect(control, settings)
    delivered = deliver_thread(control, ANN)

    stored = fetch_into_ledger(sqlite_engine, settings, "gmail", ANN, grant.credentials)

    assert stored == answered_ids(delivered)
    assert delivered["Re: Question"]["thread_id"] == delivered["Question"]["thread_id"]
    assert delivered["Other"]["thread_id"] != delivered["Question"]["thread_id"]


def test_outlook_delivery_answers_graph_ids_the_ledger_stores(
    sqlite_engine: Engine, control: httpx.Client, settings: Settings
) -> None:
    grant = connect_outlook(control, settings)
    delivered = deliver_thread(control, OLIVE)

    stored = fetch_into_ledger(sqlite_engine, settings, "outlook", OLIVE, grant.credentials)

    assert stored == answered_ids(delivered)
    assert all(d["id"].startswith("AAMk") for d in delivered.values())  # Graph's, not hex
    assert delivered["Re: Question"]["thread_id"] == delivered["Question"]["thread_id"]
    assert delivered["Other"]["thread_id"] != delivered["Question"]["thread_id"]
