"""Gmail sync against the emulator: backlog, incremental pages, idle polls, catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from providers.gmail.client import GmailProvider
from providers.gmail.cursor import GmailCursor
from providers.oauth_common import Grant
from tests.providers.conftest import ProviderFactory
from tests.providers.support import (
    HISTORY,
    MESSAGE_GET,
    add_fault,
    deliver,
    deliver_many,
    make_message,
    request_counts,
    reset_counts,
    since_last_week,
    sync,
)


def synced_cursor(gmail: GmailProvider) -> str:
    return sync(gmail, gmail.initial_cursor(since_last_week())).cursor


def test_first_sync_pages_through_the_backlog_once(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    delivered = deliver_many(control, 120)

    synced = sync(gmail, gmail.initial_cursor(since_last_week()), max_messages=50)

    assert sorted(synced.ids) == sorted(delivered)
    assert len(set(synced.ids)) == 120
    # Three catch-up listing pages, then one history page from the id taken first.
    assert [len(p.messages) for p in synced.pages] == [50, 50, 20, 0]
    assert not any(p.catching_up for p in synced.pages)
    # Within a listing page the oldest comes first.
    first_page = [m.provider_message_id for m in synced.pages[0].messages]
    assert first_page == sorted(first_page)


def test_first_sync_skips_mail_from_before_since(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    deliver_many(control, 2)
    synced = sync(gmail, gmail.initial_cursor(datetime.now(UTC) + timedelta(seconds=2)))
    assert synced.ids == []


def test_incremental_sync_returns_new_mail_raw_and_in_order(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    cursor = synced_cursor(gmail)
    raw = make_message(subject="Café ☕", text="Ünïcode body\n" * 20)
    first = deliver(control, raw)["id"]
    rest = deliver_many(control, 69)

    synced = sync(gmail, cursor, max_messages=50)

    assert [len(p.messages) for p in synced.pages] == [50, 20]
    assert [p.more for p in synced.pages] == [True, False]
    assert synced.ids == [first, *rest]
    message = synced.messages[0]
    assert message.raw == raw
    assert message.received_at is not None
    assert abs(message.received_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_an_idle_poll_costs_one_request(
    grant: Grant, make_provider: ProviderFactory, control: httpx.Client
) -> None:
    first = make_provider(grant.credentials)
    cursor = synced_cursor(first)
    # As the activity does: a provider built from the stored (still valid) credentials.
    again = make_provider(first.credentials())
    reset_counts(control)

    page = again.fetch_page(cursor, 50)

    assert request_counts(control) == {HISTORY: 1}
    assert page.messages == [] and not page.more and not page.skipped_ids
    assert again.credentials() == first.credentials()
    # The same cursor, byte for byte: the caller then writes nothing to the database.
    assert page.next_cursor == cursor


def test_replies_keep_gmails_thread_id(gmail: GmailProvider, control: httpx.Client) -> None:
    cursor = synced_cursor(gmail)
    original = deliver(control, make_message(message_id="<q1@example.com>"))
    other = deliver(control, make_message(subject="Unrelated"))
    reply = deliver(
        control,
        make_message(subject="Re: Printer on fire", in_reply_to="<q1@example.com>"),
    )

    by_id = {m.provider_message_id: m for m in sync(gmail, cursor).messages}

    assert by_id[original["id"]].provider_thread_id == original["thread_id"]
    assert by_id[reply["id"]].provider_thread_id == original["thread_id"]
    assert by_id[other["id"]].provider_thread_id != original["thread_id"]


def test_sent_mail_is_not_returned(gmail: GmailProvider, control: httpx.Client) -> None:
    deliver(control, make_message(subject="old sent"), folder="sent")
    backlog = deliver(control, make_message())["id"]
    synced = sync(gmail, gmail.initial_cursor(since_last_week()))
    assert synced.ids == [backlog]

    deliver(control, make_message(subject="new sent"), folder="sent")
    inbox = deliver(control, make_message())["id"]
    assert sync(gmail, synced.cursor).ids == [inbox]


def test_expired_history_catches_up_without_losing_mail(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    before = deliver_many(control, 3)
    first = sync(gmail, gmail.initial_cursor(since_last_week()))
    assert sorted(first.ids) == sorted(before)
    missed = deliver_many(control, 4)
    expired = control.post("/_emulator/mailboxes/ann@example.com/expire-history")
    assert expired.status_code == 200
    later = deliver_many(control, 3)

    synced = sync(gmail, first.cursor, max_messages=5)

    assert synced.pages[0].catching_up
    # Everything after the cursor arrives; what was seen before may repeat (ledger dedupes).
    assert set(missed + later) <= set(synced.ids)
    assert set(synced.ids) <= set(before + missed + later)
    # Back on history: the next poll is quiet and cheap.
    reset_counts(control)
    idle = gmail.fetch_page(synced.cursor, 5)
    assert (idle.messages, idle.more, idle.catching_up) == ([], False, False)
    assert request_counts(control) == {HISTORY: 1}
    newest = deliver(control, make_message())["id"]
    assert sync(gmail, idle.next_cursor).ids == [newest]


def test_a_message_deleted_before_its_fetch_is_skipped(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    cursor = synced_cursor(gmail)
    gone, *kept = deliver_many(control, 3)
    # The first part of the batch answers 404, as Gmail does for a deleted message.
    add_fault(control, route=MESSAGE_GET, status=404, count=1)

    page = gmail.fetch_page(cursor, 50)

    assert page.skipped_ids == [gone]
    assert [m.provider_message_id for m in page.messages] == kept
    assert not page.more


def test_queued_ids_are_fetched_before_listing_further(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    # A history page can hold more added messages than max_messages (several per
    # record); the surplus waits in the cursor. The emulator writes one per record,
    # so the queue is set up directly.
    cursor = GmailCursor.decode(synced_cursor(gmail))
    ids = deliver_many(control, 3)
    queued = cursor.with_pending(ids).encode()
    reset_counts(control)

    page = gmail.fetch_page(queued, 2)
    assert [m.provider_message_id for m in page.messages] == ids[:2] and page.more
    last = gmail.fetch_page(page.next_cursor, 2)
    assert [m.provider_message_id for m in last.messages] == ids[2:] and not last.more
    assert HISTORY not in request_counts(control)
    # The history id was kept: the same mail comes again from history (ledger dedupes).
    assert sync(gmail, last.next_cursor).ids == ids
