"""The contract every mail provider keeps, run once per driver in tests/providers/contract.py.

Each case speaks only `providers.base.MailboxProvider` (`initial_cursor`, `fetch_page`,
`credentials`) on a provider built by `providers.registry.build_provider`, as the worker
builds it; the driver sets up the world around it.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

import pytest

from providers import registry
from providers.base import (
    AuthExpired,
    Credentials,
    MailboxProvider,
    ProviderError,
    Throttled,
    Transient,
)
from tests.providers.conftest import drain
from tests.providers.contract import DRIVERS, ProviderDriver
from tests.providers.support import Synced, since_last_week
from tests.providers.test_gmail_errors import messages_of

Build = Callable[[Credentials], MailboxProvider]


@runtime_checkable
class Closable(Protocol):
    def close(self) -> None: ...


@pytest.fixture(params=DRIVERS, ids=lambda driver: driver.name)
def driver(request: pytest.FixtureRequest) -> ProviderDriver:
    made: ProviderDriver = request.param.create(request)
    return made


@pytest.fixture
def credentials(driver: ProviderDriver) -> Credentials:
    return driver.connect()


@pytest.fixture
def build(driver: ProviderDriver) -> Iterator[Build]:
    """Providers built as the worker builds them, closed at teardown."""
    made: list[MailboxProvider] = []

    def make(credentials: Credentials) -> MailboxProvider:
        provider = registry.build_provider(driver.settings, driver.name, credentials)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        if isinstance(provider, Closable):
            provider.close()


@pytest.fixture
def provider(build: Build, credentials: Credentials) -> MailboxProvider:
    return build(credentials)


def deliver(driver: ProviderDriver, count: int, subject: str = "Case") -> list[str]:
    """`count` new messages; their provider ids in delivery order."""
    return [
        driver.deliver(driver.message(subject=f"{subject} {i}")).message_id for i in range(count)
    ]


def caught_up(provider: MailboxProvider) -> str:
    """A cursor past everything in the mailbox so far."""
    return drain(provider, provider.initial_cursor(since_last_week())).cursor


def a_second_from_now() -> datetime:
    """The next whole second, once the clock has passed it: mail delivered before the call
    is older, mail delivered after is not (providers filter on whole seconds)."""
    boundary = math.floor(time.time()) + 1
    time.sleep(boundary - time.time() + 0.01)
    return datetime.fromtimestamp(boundary, UTC)


def assert_once_each(synced: Synced, expected: list[str]) -> None:
    assert Counter(synced.ids) == Counter(expected)


def assert_nothing_lost(
    driver: ProviderDriver,
    provider: MailboxProvider,
    synced: Synced,
    expected: list[str],
    seen_before: Sequence[str] = (),
) -> None:
    """Every expected message came, and nothing else; a message seen before, or one
    twice, only where the provider tells its caller that may happen."""
    assert set(expected) <= set(synced.ids)  # nothing lost
    assert set(synced.ids) <= {*expected, *seen_before}  # nothing from elsewhere
    if driver.listing_may_repeat:
        # The caller's ledger (unique on provider message id) absorbs what repeats.
        assert "caller's ledger" in (sys.modules[type(provider).__module__].__doc__ or "")
    else:
        assert_once_each(synced, expected)


def test_every_provider_has_a_driver() -> None:
    # A provider added to the registry without a driver would go untested here.
    assert sorted(d.name for d in DRIVERS) == sorted(registry.PROVIDERS)


# -- listing ----------------------------------------------------------------------------


def test_the_initial_cursor_lists_mail_since_since_and_nothing_older(
    driver: ProviderDriver, provider: MailboxProvider
) -> None:
    deliver(driver, 2, "Old")
    since = a_second_from_now()
    recent = deliver(driver, 3, "Recent")

    synced = drain(provider, provider.initial_cursor(since))

    assert_once_each(synced, recent)
    # Then it goes on incrementally: the next message comes once, and only it.
    (newest,) = deliver(driver, 1, "Newest")
    assert drain(provider, synced.cursor).ids == [newest]


def test_mail_arriving_before_the_first_fetch_is_not_missed(
    driver: ProviderDriver, provider: MailboxProvider
) -> None:
    backlog = deliver(driver, 2, "Backlog")
    cursor = provider.initial_cursor(since_last_week())
    between = deliver(driver, 2, "Between")

    synced = drain(provider, cursor)

    assert_nothing_lost(driver, provider, synced, backlog + between)
    (newest,) = deliver(driver, 1, "Newest")
    assert drain(provider, synced.cursor).ids == [newest]


def test_a_delivered_message_comes_back_raw_with_its_provider_ids(
    driver: ProviderDriver, provider: MailboxProvider
) -> None:
    cursor = caught_up(provider)
    # CRLF line ends, 8-bit text and a binary attachment: every byte must survive.
    raw = driver.message(
        subject="Café ☕",
        message_id="<contract-1@example.com>",
        text="Ünïcode body\n" * 20,
        attachments=(("scan.bin", "application/octet-stream", bytes(range(256)) * 4),),
    ).replace(b"\n", b"\r\n")
    original = driver.deliver(raw)
    other = driver.deliver(driver.message(subject="Unrelated"))
    reply = driver.deliver(
        driver.message(subject="Re: Café ☕", in_reply_to="<contract-1@example.com>")
    )

    page = provider.fetch_page(cursor, 50)

    by_id = {m.provider_message_id: m for m in page.messages}
    assert list(by_id) == [original.message_id, other.message_id, reply.message_id]
    fetched = by_id[original.message_id]
    assert fetched.raw == raw
    if driver.has_thread_ids:
        assert fetched.provider_thread_id == original.thread_id
        assert by_id[reply.message_id].provider_thread_id == original.thread_id
        assert by_id[other.message_id].provider_thread_id == other.thread_id != original.thread_id
    else:  # ingest threads the reply by its In-Reply-To
        assert {m.provider_thread_id for m in page.messages} == {None}
    assert fetched.received_at is not None and fetched.received_at.utcoffset() == timedelta(0)
    assert abs(fetched.received_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert not page.more and not page.skipped_ids


def test_a_saved_cursor_resumes_without_losing_or_repeating(
    driver: ProviderDriver, provider: MailboxProvider, build: Build
) -> None:
    cursor = caught_up(provider)
    first = deliver(driver, 2, "First")
    synced = drain(provider, cursor)
    assert synced.ids == first
    saved = synced.cursor  # as the workflow stores it
    later = deliver(driver, 3, "Later")

    # The next poll builds a provider from the saved credentials, as the worker does.
    again = build(provider.credentials())
    resumed = drain(again, saved)

    assert resumed.ids == later
    # A cursor is a value: a retried poll from the same saved cursor gets the same mail.
    assert drain(build(again.credentials()), saved).ids == later
    idle = again.fetch_page(resumed.cursor, 50)
    assert (idle.messages, idle.more) == ([], False)


@pytest.mark.parametrize("phase", ["backlog", "incremental"])
def test_small_pages_return_everything_once_with_more_set(
    driver: ProviderDriver, provider: MailboxProvider, phase: str
) -> None:
    if phase == "backlog":
        delivered = deliver(driver, 7)
        cursor = provider.initial_cursor(since_last_week())
    else:
        cursor = caught_up(provider)
        delivered = deliver(driver, 7)

    synced = drain(provider, cursor, max_messages=3)  # at most 3 per page, checked there

    assert_once_each(synced, delivered)
    if phase == "incremental":
        assert synced.ids == delivered  # new mail comes in the order it arrived
    # More while there is more to ask for; then caught up, and the cursor says so.
    assert [p.more for p in synced.pages] == [True] * (len(synced.pages) - 1) + [False]
    assert len(synced.pages) >= 3
    last = provider.fetch_page(synced.cursor, 3)
    assert (last.messages, last.more) == ([], False)


def test_an_expired_cursor_catches_up_without_losing_mail(
    driver: ProviderDriver, provider: MailboxProvider
) -> None:
    before = deliver(driver, 3, "Before")
    first = drain(provider, provider.initial_cursor(since_last_week()))
    assert_once_each(first, before)
    missed = deliver(driver, 4, "Missed")
    driver.expire_cursor()
    later = deliver(driver, 3, "Later")

    synced = drain(provider, first.cursor, max_messages=5)

    assert synced.pages[0].catching_up
    assert_nothing_lost(driver, provider, synced, missed + later, seen_before=before)
    # Back to incremental sync: the next message comes once, and only it.
    (newest,) = deliver(driver, 1, "Newest")
    resumed = drain(provider, synced.cursor)
    assert resumed.ids == [newest]
    assert not any(p.catching_up for p in resumed.pages)


# -- failures ---------------------------------------------------------------------------


def test_revoked_access_raises_auth_expired(
    driver: ProviderDriver, provider: MailboxProvider, credentials: Credentials, build: Build
) -> None:
    cursor = caught_up(provider)
    deliver(driver, 1)
    driver.revoke_access()

    with pytest.raises(AuthExpired) as raised:
        provider.fetch_page(cursor, 50)

    # The error reaches logs and Temporal: no token or password in it or its causes.
    text = messages_of(raised.value)
    held = [credentials.refresh_token, credentials.access_token, credentials.password]
    kept = [secret for secret in held if secret]
    assert kept and not [secret for secret in kept if secret in text]
    # The next poll, built from the stored credentials, is refused the same way.
    with pytest.raises(AuthExpired):
        build(provider.credentials()).fetch_page(cursor, 50)


def test_a_429_raises_throttled_with_its_retry_after(
    driver: ProviderDriver, provider: MailboxProvider
) -> None:
    cursor = caught_up(provider)
    waiting = deliver(driver, 2)
    driver.throttle_next_request(retry_after=7)

    with pytest.raises(Throttled) as raised:
        provider.fetch_page(cursor, 50)

    if driver.tells_retry_after:
        assert raised.value.retry_after == 7.0
    else:  # the provider waits a pause of its own rather than none
        assert raised.value.retry_after is not None and raised.value.retry_after > 0
    driver.end_faults()
    assert_retry_gets_everything(provider, cursor, waiting)


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_raises_transient(
    driver: ProviderDriver, provider: MailboxProvider, status: int
) -> None:
    cursor = caught_up(provider)
    waiting = deliver(driver, 2)
    driver.fail_next_request(status)

    with pytest.raises(ProviderError) as raised:
        provider.fetch_page(cursor, 50)

    assert type(raised.value) is Transient
    driver.end_faults()
    assert_retry_gets_everything(provider, cursor, waiting)


def assert_retry_gets_everything(
    provider: MailboxProvider, cursor: str, waiting: list[str]
) -> None:
    """The failed page moved nothing: the workflow retries the same cursor and loses nothing."""
    assert drain(provider, cursor).ids == waiting
