"""How Gmail failures reach the workflow: AuthExpired, Throttled or Transient."""

from __future__ import annotations

import gc
import time
import warnings
from dataclasses import replace

import httpx
import pytest

from core.settings import Settings
from emulator.server import RunningEmulator
from providers.base import AuthExpired, ProviderError, Throttled, Transient, retry_after_seconds
from providers.gmail.client import GmailProvider
from providers.gmail.cursor import GmailCursor
from providers.oauth_common import Grant
from tests.providers.conftest import ProviderFactory
from tests.providers.support import (
    BATCH,
    HISTORY,
    MESSAGE_GET,
    TOKEN,
    add_fault,
    deliver_many,
    provider_settings,
    request_counts,
    reset_counts,
    since_last_week,
    sync,
)

BOX = "/_emulator/mailboxes/ann@example.com"


def synced_cursor(gmail: GmailProvider) -> str:
    return sync(gmail, gmail.initial_cursor(since_last_week())).cursor


def messages_of(error: BaseException) -> str:
    """The error's text and every chained cause's, as a log or Temporal failure shows them."""
    texts = []
    seen: BaseException | None = error
    while seen is not None:
        texts.append(f"{seen!s} {seen!r}")
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


def test_revoked_access_is_auth_expired_without_leaking_tokens(
    gmail: GmailProvider, grant: Grant, control: httpx.Client
) -> None:
    cursor = synced_cursor(gmail)
    assert control.post(BOX + "/revoke").status_code == 200

    with pytest.raises(AuthExpired) as raised:
        gmail.fetch_page(cursor, 50)

    assert "reconnected" in str(raised.value)
    text = messages_of(raised.value)
    assert grant.credentials.refresh_token not in text
    assert str(grant.credentials.access_token) not in text


def test_rotated_refresh_token_is_kept_and_works(
    grant: Grant, make_provider: ProviderFactory, control: httpx.Client
) -> None:
    rotation = control.post(BOX + "/refresh-token-rotation", json={"enabled": True})
    assert rotation.status_code == 200
    assert control.post(BOX + "/expire-access-tokens").json()["expired_tokens"] == 1
    gmail = make_provider(grant.credentials)
    cursor = gmail.initial_cursor(since_last_week())  # 401, refresh (rotates), retry

    rotated = gmail.credentials()
    assert rotated.refresh_token != grant.credentials.refresh_token
    assert rotated.access_token != grant.credentials.access_token
    assert rotated.expires_at is not None and rotated.scopes == grant.scopes

    # The new refresh token works on its own (no access token: refresh first)...
    fresh = make_provider(replace(rotated, access_token=None, expires_at=None))
    assert fresh.fetch_page(cursor, 50).messages == []
    assert fresh.credentials().refresh_token != rotated.refresh_token
    # ...and the old one is dead, as Google kills a rotated-out token.
    stale = make_provider(replace(grant.credentials, access_token=None, expires_at=None))
    with pytest.raises(AuthExpired):
        stale.fetch_page(cursor, 50)


def test_expired_access_token_is_refreshed_once(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    cursor = synced_cursor(gmail)
    before = gmail.credentials()
    control.post(BOX + "/expire-access-tokens")
    ids = deliver_many(control, 2)
    reset_counts(control)

    assert [m.provider_message_id for m in gmail.fetch_page(cursor, 50).messages] == ids

    assert request_counts(control) == {HISTORY: 2, TOKEN: 1, BATCH: 1, MESSAGE_GET: 2}
    assert gmail.credentials().access_token != before.access_token
    assert gmail.credentials().refresh_token == before.refresh_token


def test_queued_ids_with_a_token_google_expired_refresh_through_our_transport(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    # Ids waiting in the cursor go straight to the batch endpoint, with no list call to
    # notice the expired token first. The batch's 401 parts make googleapiclient refresh
    # through a bare httplib2.Http(), which does not trust the emulator's CA (nor a
    # self-hosted proxy's): the refresh must go through this mailbox's own connection.
    cursor = GmailCursor.decode(synced_cursor(gmail))
    ids = deliver_many(control, 2)
    before = gmail.credentials()
    control.post(BOX + "/expire-access-tokens")
    page = gmail.fetch_page(cursor.with_pending(ids).encode(), 50)
    assert [m.provider_message_id for m in page.messages] == ids
    assert gmail.credentials().access_token != before.access_token


def test_queued_ids_after_a_revoke_are_auth_expired(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    cursor = GmailCursor.decode(synced_cursor(gmail))
    ids = deliver_many(control, 2)
    control.post(BOX + "/revoke")
    with pytest.raises(AuthExpired):
        gmail.fetch_page(cursor.with_pending(ids).encode(), 50)


def test_429_is_throttled_with_retry_after(gmail: GmailProvider, control: httpx.Client) -> None:
    cursor = synced_cursor(gmail)
    add_fault(control, status=429, retry_after=7, count=1)
    with pytest.raises(Throttled) as raised:
        gmail.fetch_page(cursor, 50)
    assert raised.value.retry_after == 7.0


def test_a_throttled_batch_part_keeps_the_rest_and_queues_itself_first(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    cursor = synced_cursor(gmail)
    ids = deliver_many(control, 3)
    add_fault(control, route=MESSAGE_GET, status=429, retry_after=3, count=1)

    page = gmail.fetch_page(cursor, 50)
    got = [m.provider_message_id for m in page.messages]
    assert len(got) == 2 and set(got) < set(ids)
    assert page.more and page.retry_after == 3.0

    # The next page fetches just the part that failed, and the mailbox is caught up.
    retried = gmail.fetch_page(page.next_cursor, 50)
    assert [m.provider_message_id for m in retried.messages] == sorted(set(ids) - set(got))
    assert retried.retry_after is None


def test_a_page_whose_every_part_fails_raises_and_keeps_the_cursor(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    cursor = synced_cursor(gmail)
    ids = deliver_many(control, 2)
    add_fault(control, route=MESSAGE_GET, status=429, retry_after=4, count=2)

    with pytest.raises(Throttled) as raised:
        gmail.fetch_page(cursor, 50)
    assert raised.value.retry_after == 4.0
    assert [m.provider_message_id for m in gmail.fetch_page(cursor, 50).messages] == ids


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (500, None, Transient),
        (503, None, Transient),
        (400, "badRequest", Transient),
        (403, "insufficientPermissions", AuthExpired),
        (403, "forbidden", AuthExpired),
        (403, "rateLimitExceeded", Throttled),
        (403, "userRateLimitExceeded", Throttled),
        (401, None, AuthExpired),
    ],
)
def test_http_errors_are_classified(
    gmail: GmailProvider,
    control: httpx.Client,
    status: int,
    reason: str | None,
    expected: type[ProviderError],
) -> None:
    cursor = synced_cursor(gmail)
    # No count: a 401 stays a 401 through AuthorizedHttp's two refresh-and-retry rounds.
    add_fault(control, status=status, **({"reason": reason} if reason else {}))
    with pytest.raises(ProviderError) as raised:
        gmail.fetch_page(cursor, 50)
    assert type(raised.value) is expected
    assert f"HTTP {status}" in str(raised.value)


def test_a_failing_batch_request_is_transient(gmail: GmailProvider, control: httpx.Client) -> None:
    cursor = synced_cursor(gmail)
    deliver_many(control, 2)
    add_fault(control, route=BATCH, status=502, count=1)
    with pytest.raises(Transient):
        gmail.fetch_page(cursor, 50)


def test_a_batch_failing_late_in_a_page_keeps_the_batches_before_it(
    gmail: GmailProvider, control: httpx.Client
) -> None:
    cursor = synced_cursor(gmail)
    ids = deliver_many(control, 70)  # two batches: 50, then 20
    add_fault(control, route=BATCH, status=503, count=1, skip=1)

    page = gmail.fetch_page(cursor, 100)
    assert [m.provider_message_id for m in page.messages] == ids[:50]
    assert page.more and page.retry_after is not None  # a short pause, then the rest

    rest = gmail.fetch_page(page.next_cursor, 100)
    assert [m.provider_message_id for m in rest.messages] == ids[50:]
    assert request_counts(control)[MESSAGE_GET] == 70  # nothing fetched twice


def test_a_failing_token_endpoint_is_transient(gmail: GmailProvider, control: httpx.Client) -> None:
    cursor = synced_cursor(gmail)
    control.post(BOX + "/expire-access-tokens")
    # google-auth retries a 5xx refresh itself (3 attempts, ~1-3 s of backoff; no switch).
    add_fault(control, route=TOKEN, status=503)
    with pytest.raises(Transient):
        gmail.fetch_page(cursor, 50)


def test_a_slow_answer_is_transient(
    emulator: RunningEmulator,
    grant: Grant,
    make_provider: ProviderFactory,
    control: httpx.Client,
) -> None:
    timeout = 0.3
    gmail = make_provider(
        grant.credentials, provider_settings(emulator, provider_timeout_seconds=timeout)
    )
    cursor = synced_cursor(gmail)
    add_fault(control, delay=timeout + 0.5, count=1)

    started = time.monotonic()
    with pytest.raises(Transient) as raised:
        gmail.fetch_page(cursor, 50)
    assert time.monotonic() - started < timeout + 0.4
    assert "in time" in str(raised.value)
    # Let the emulator finish the abandoned request before the next test resets it.
    time.sleep(timeout + 0.5 - (time.monotonic() - started))


def test_an_unreachable_server_is_transient(
    grant: Grant, make_provider: ProviderFactory, emulator_down_settings: Settings
) -> None:
    gmail = make_provider(grant.credentials, emulator_down_settings)
    with pytest.raises(Transient) as raised:
        gmail.initial_cursor(since_last_week())
    assert "network error" in str(raised.value)
    del raised  # its traceback holds the leaked socket below
    # httplib2 0.32 leaks the raw socket when connect() is refused (it closes only
    # `self.sock`, still None; httplib2/__init__.py HTTPSConnectionWithTimeout.connect).
    # Collect it here, ignoring just that ResourceWarning, so it cannot fail a later test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds({"retry-after": "12"}) == 12.0
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 <= (retry_after_seconds({"retry-after": later}) or 0) <= 60
    earlier = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 60))
    assert retry_after_seconds({"retry-after": earlier}) == 0.0
