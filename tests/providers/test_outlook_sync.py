"""Outlook sync against the emulator: backlog, incremental rounds, idle polls, resync."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from providers.oauth_common import Grant
from providers.outlook.client import OutlookProvider
from providers.outlook.cursor import Listed, OutlookCursor
from tests.providers.conftest import (
    OLIVE,
    OutlookFactory,
    deliver_to_outlook,
    drain,
    graph_id,
)
from tests.providers.support import (
    deliver,
    make_message,
    request_counts,
    reset_counts,
    since_last_week,
)

DELTA = "GET /v1.0/me/mailFolders/{folder}/messages/delta"
BATCH = "POST /v1.0/$batch"
MIME = "GET /v1.0/me/messages/{id}/$value"
TOKEN = "POST /{tenant}/oauth2/v2.0/token"
OPENID = "GET /{tenant}/v2.0/.well-known/openid-configuration"
BOX = f"/_emulator/mailboxes/{OLIVE}"


def synced_cursor(outlook: OutlookProvider) -> str:
    return drain(outlook, outlook.initial_cursor(since_last_week())).cursor


def test_first_sync_pages_through_the_backlog_once(
    outlook: OutlookProvider, control: httpx.Client
) -> None:
    delivered = deliver_to_outlook(control, 60)
    reset_counts(control)
    cursor = outlook.initial_cursor(since_last_week())
    assert request_counts(control) == {}  # the first query is built, not fetched

    synced = drain(outlook, cursor, max_messages=20)

    assert synced.ids == delivered  # each once, oldest first
    assert [len(p.messages) for p in synced.pages] == [20, 20, 20]
    assert [p.more for p in synced.pages] == [True, True, False]
    assert not any(p.catching_up for p in synced.pages)
    # Three delta pages (maxpagesize=20), one $batch of 20 $value requests per page.
    assert request_counts(control) == {DELTA: 3, BATCH: 3, MIME: 60}


def test_first_sync_skips_mail_from_before_since(
    outlook: OutlookProvider, control: httpx.Client
) -> None:
    deliver_to_outlook(control, 2)
    later = datetime.now(UTC) + timedelta(seconds=2)
    assert drain(outlook, outlook.initial_cursor(later)).ids == []


def test_incremental_sync_returns_new_mail_raw_and_in_order(
    outlook: OutlookProvider, control: httpx.Client
) -> None:
    cursor = synced_cursor(outlook)
    raw = make_message(subject="Café ☕", text="Ünïcode body\n" * 20, to=OLIVE)
    first = graph_id(deliver(control, raw, OLIVE))
    rest = deliver_to_outlook(control, 29)

    synced = drain(outlook, cursor, max_messages=20)

    assert [len(p.messages) for p in synced.pages] == [20, 10]
    assert [p.more for p in synced.pages] == [True, False]
    assert synced.ids == [first, *rest]
    message = synced.messages[0]
    assert message.raw == raw
    assert message.received_at is not None
    assert abs(message.received_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_an_idle_poll_costs_one_request_and_keeps_the_cursor(
    outlook_grant: Grant, make_outlook: OutlookFactory, control: httpx.Client
) -> None:
    first = make_outlook(outlook_grant.credentials)
    deliver_to_outlook(control, 2)
    cursor = drain(first, first.initial_cursor(since_last_week())).cursor
    # As the activity does: a provider built from the stored (still valid) credentials.
    again = make_outlook(first.credentials())
    reset_counts(control)

    page = again.fetch_page(cursor, 50)

    assert request_counts(control) == {DELTA: 1}
    assert page.messages == [] and not page.more and not page.skipped_ids
    # The same cursor and credentials: the caller has nothing to write.
    assert page.next_cursor == cursor
    assert again.credentials() == first.credentials()


def test_replies_keep_the_conversation_id(outlook: OutlookProvider, control: httpx.Client) -> None:
    cursor = synced_cursor(outlook)
    original = deliver(control, make_message(message_id="<q1@example.com>", to=OLIVE), OLIVE)
    other = deliver(control, make_message(subject="Unrelated", to=OLIVE), OLIVE)
    reply = deliver(
        control,
        make_message(subject="Re: Printer on fire", in_reply_to="<q1@example.com>", to=OLIVE),
        OLIVE,
    )

    by_id = {m.provider_message_id: m for m in drain(outlook, cursor).messages}

    thread = by_id[graph_id(original)].provider_thread_id
    assert thread is not None and thread.startswith("AAQk")
    assert by_id[graph_id(reply)].provider_thread_id == thread
    assert by_id[graph_id(other)].provider_thread_id != thread


def test_sent_mail_is_not_returned(outlook: OutlookProvider, control: httpx.Client) -> None:
    deliver_to_outlook(control, 1, folder="sent")
    backlog = deliver_to_outlook(control, 1)
    synced = drain(outlook, outlook.initial_cursor(since_last_week()))
    assert synced.ids == backlog

    deliver_to_outlook(control, 1, folder="sent")
    inbox = deliver_to_outlook(control, 1)
    assert drain(outlook, synced.cursor).ids == inbox


def test_deleted_mail_is_ignored(outlook: OutlookProvider, control: httpx.Client) -> None:
    kept, gone = deliver_to_outlook(control, 2)
    cursor = synced_cursor(outlook)
    assert control.delete(f"{BOX}/messages/{gone}").status_code == 204
    newer = deliver_to_outlook(control, 1)

    synced = drain(outlook, cursor)

    # The round carries an @removed row for `gone`: it fetches and returns nothing for it.
    assert synced.ids == newer
    assert kept not in synced.ids


@pytest.mark.parametrize("status", [410, 400])
def test_an_expired_delta_token_resyncs_without_losing_mail(
    outlook: OutlookProvider, control: httpx.Client, status: int
) -> None:
    before = deliver_to_outlook(control, 3)
    first = drain(outlook, outlook.initial_cursor(since_last_week()))
    assert first.ids == before
    missed = deliver_to_outlook(control, 4)
    expired = control.post(f"{BOX}/expire-delta-tokens", json={"status": status})
    assert expired.status_code == 200
    later = deliver_to_outlook(control, 3)
    reset_counts(control)

    synced = drain(outlook, first.cursor, max_messages=5)

    assert synced.pages[0].catching_up
    assert all(p.catching_up for p in synced.pages)
    # Everything after the cursor arrives; what was seen before may repeat (ledger dedupes).
    assert set(missed + later) <= set(synced.ids)
    assert set(synced.ids) <= set(before + missed + later)
    assert len(synced.ids) == len(set(synced.ids))
    # The expired link, then the new round's pages of at most 5.
    assert request_counts(control)[DELTA] == 1 + len(synced.pages)
    # Back on delta links: the next poll is quiet and cheap.
    reset_counts(control)
    idle = outlook.fetch_page(synced.cursor, 5)
    assert (idle.messages, idle.more, idle.catching_up) == ([], False, False)
    assert request_counts(control) == {DELTA: 1}
    newest = deliver_to_outlook(control, 1)
    assert drain(outlook, idle.next_cursor).ids == newest


def test_a_resync_reaches_back_only_to_the_floor(
    outlook: OutlookProvider, control: httpx.Client
) -> None:
    # The floor starts at `since`: a resync never imports mail from before it.
    deliver_to_outlook(control, 2)
    since = datetime.now(UTC) + timedelta(seconds=2)
    cursor = drain(outlook, outlook.initial_cursor(since)).cursor
    assert OutlookCursor.decode(cursor).floor == int(since.timestamp())
    control.post(f"{BOX}/expire-delta-tokens")

    synced = drain(outlook, cursor)

    assert synced.ids == [] and synced.pages[0].catching_up


def test_a_message_deleted_before_its_fetch_is_skipped(
    outlook: OutlookProvider, control: httpx.Client
) -> None:
    cursor = synced_cursor(outlook)
    gone, *kept = deliver_to_outlook(control, 3)
    # The first $value of the batch answers 404, as Graph does for a deleted message.
    answer = control.post(
        "/_emulator/faults", json={"provider": "outlook", "route": MIME, "status": 404, "count": 1}
    )
    assert answer.status_code == 201

    page = outlook.fetch_page(cursor, 50)

    assert page.skipped_ids == [gone]
    assert [m.provider_message_id for m in page.messages] == kept
    assert not page.more


def test_queued_rows_are_fetched_before_listing_further(
    outlook: OutlookProvider, control: httpx.Client
) -> None:
    # Graph may send more rows than the page size asked for; the surplus waits in the
    # cursor. The emulator keeps to odata.maxpagesize, so the queue is set up directly.
    cursor = OutlookCursor.decode(synced_cursor(outlook))
    ids = deliver_to_outlook(control, 3)
    queued = cursor.with_pending([Listed(i, None, None) for i in ids]).encode()
    reset_counts(control)

    page = outlook.fetch_page(queued, 2)
    assert [m.provider_message_id for m in page.messages] == ids[:2] and page.more
    last = outlook.fetch_page(page.next_cursor, 2)
    assert [m.provider_message_id for m in last.messages] == ids[2:] and not last.more
    assert DELTA not in request_counts(control)
    # The delta link was kept: the same mail comes again from it (ledger dedupes).
    assert drain(outlook, last.next_cursor).ids == ids


def test_the_token_cache_round_trips_through_credentials(
    outlook_grant: Grant, make_outlook: OutlookFactory, control: httpx.Client
) -> None:
    first = make_outlook(outlook_grant.credentials)
    cursor = synced_cursor(first)
    assert control.post(f"{BOX}/expire-access-tokens").json()["expired_tokens"] == 1
    ids = deliver_to_outlook(control, 1)
    reset_counts(control)

    assert [m.provider_message_id for m in first.fetch_page(cursor, 50).messages] == ids

    # 401, then one forced renewal through a fresh MSAL app, then the retry. (Its discovery
    # was fetched once for this process, by the consent's code exchange.)
    assert request_counts(control) == {DELTA: 2, TOKEN: 1, BATCH: 1, MIME: 1}
    renewed = first.credentials()
    assert renewed.refresh_token != outlook_grant.credentials.refresh_token  # a new cache
    assert renewed.access_token != outlook_grant.credentials.access_token
    assert renewed.expires_at is not None and renewed.expires_at > datetime.now(UTC)
    assert renewed.scopes == outlook_grant.scopes
    # A provider built from the saved credentials uses them as they are: no token request.
    reset_counts(control)
    again = make_outlook(renewed)
    assert again.fetch_page(cursor, 50).messages  # the cursor was not advanced above
    assert TOKEN not in request_counts(control)
    # Without an access token in hand, MSAL finds the one in its cache: no token request.
    bare = make_outlook(replace(renewed, access_token=None, expires_at=None))
    reset_counts(control)
    bare.fetch_page(cursor, 50)
    assert TOKEN not in request_counts(control) and OPENID not in request_counts(control)
    assert bare.credentials().access_token == renewed.access_token
