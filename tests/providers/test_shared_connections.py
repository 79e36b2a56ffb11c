"""Providers share one Gmail service and kept-alive connections across mailboxes, never
credentials: every request, and every part of a batch, carries its own mailbox's token."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httplib2  # type: ignore[import-untyped]
import httpx
import pytest

from emulator.server import RunningEmulator
from providers.base import Transient
from providers.gmail.client import GmailProvider, gmail_api
from providers.gmail.transport import HttpPool, http_pool
from providers.oauth_common import Grant
from providers.outlook.client import OutlookProvider
from tests.providers.conftest import (
    OLIVE,
    OutlookFactory,
    ProviderFactory,
    connect_outlook,
    drain,
    graph_id,
)
from tests.providers.support import (
    ANN,
    HISTORY,
    add_fault,
    connect,
    deliver,
    make_message,
    provider_settings,
    since_last_week,
    sync,
)

T = TypeVar("T")

BEN = "ben@example.com"
PAUL = "paul@example.org"


@dataclass
class Seen:
    """One API request as the emulator saw it: the mailbox its token signed in as (None for a
    Gmail batch envelope, whose parts sign in one by one) and the client connection."""

    route: str
    account: str | None
    peer: str | None


def seen(control: httpx.Client) -> list[Seen]:
    items = control.get("/_emulator/requests/log").json()["items"]
    return [Seen(i["route"], i["account"], i["peer"]) for i in items]


def seen_during(control: httpx.Client, action: Callable[[], T]) -> tuple[T, list[Seen]]:
    """What `action` returned, and the API requests the emulator saw while it ran."""
    control.post("/_emulator/requests/reset")
    result = action()
    return result, seen(control)


def test_two_gmail_mailboxes_share_a_connection_but_send_their_own_tokens(
    make_provider: ProviderFactory,
    grant: Grant,
    control: httpx.Client,
    settings: Any,
) -> None:
    ben = connect(control, settings, login_hint=BEN)
    ann_gmail, ben_gmail = make_provider(grant.credentials), make_provider(ben.credentials)
    ann_cursor = ann_gmail.initial_cursor(since_last_week())
    ben_cursor = ben_gmail.initial_cursor(since_last_week())
    ann_mail = deliver(control, make_message(subject="Ann's printer"), ANN)["id"]
    ben_mail = deliver(control, make_message(subject="Ben's printer", to=BEN), BEN)["id"]

    ann_synced, ann_seen = seen_during(control, lambda: sync(ann_gmail, ann_cursor))
    ben_synced, ben_seen = seen_during(control, lambda: sync(ben_gmail, ben_cursor))

    # The emulator answered each with its own mailbox: the tokens were each one's own.
    assert set(ann_synced.ids) == {ann_mail}  # listed, and in history: the ledger dedupes
    assert set(ben_synced.ids) == {ben_mail}
    for calls, address in ((ann_seen, ANN), (ben_seen, BEN)):
        assert {c.account for c in calls if c.account} == {address}
        parts = [c for c in calls if c.route.endswith("/messages/{id}")]
        assert parts and all(c.peer is None for c in parts), "the mail came through a batch"
        assert all(c.account == address for c in parts)
    # ... over the one kept-alive pooled connection, not one per mailbox.
    assert len({c.peer for c in ann_seen + ben_seen if c.peer}) == 1


def test_a_failed_call_does_not_pass_its_connection_to_the_next_mailbox(
    emulator: RunningEmulator,
    make_provider: ProviderFactory,
    grant: Grant,
    control: httpx.Client,
) -> None:
    # The late answer to Ann's request is still coming on that connection: it must never be
    # read as the answer to the next request, which is Ben's.
    delay = 0.3
    on = provider_settings(emulator, provider_timeout_seconds=delay)
    ben = connect(control, on, login_hint=BEN)
    ann_gmail, ben_gmail = make_provider(grant.credentials, on), make_provider(ben.credentials, on)
    ann_cursor = sync(ann_gmail, ann_gmail.initial_cursor(since_last_week())).cursor
    ben_cursor = sync(ben_gmail, ben_gmail.initial_cursor(since_last_week())).cursor
    ben_mail = deliver(control, make_message(subject="Ben's printer", to=BEN), BEN)["id"]
    add_fault(control, route=HISTORY, delay=delay + 0.5, count=1)

    started = time.monotonic()
    with pytest.raises(Transient):
        ann_gmail.fetch_page(ann_cursor, 50)
    page = ben_gmail.fetch_page(ben_cursor, 50)

    assert [m.provider_message_id for m in page.messages] == [ben_mail]
    # Let the emulator finish the abandoned request before the next test resets it.
    time.sleep(max(0.0, delay + 0.6 - (time.monotonic() - started)))


def test_the_shared_gmail_service_sends_nothing_without_a_mailbox(
    settings: Any, control: httpx.Client
) -> None:
    control.post("/_emulator/requests/reset")
    request = gmail_api(settings.gmail_api_url).users.getProfile(userId="me")
    with pytest.raises(RuntimeError, match="without its mailbox's credentials"):
        request.execute()
    assert control.get("/_emulator/requests").json()["counts"] == {}


def test_a_gmail_provider_gives_its_connection_back_after_each_call(
    gmail: GmailProvider, settings: Any, control: httpx.Client
) -> None:
    _, [profile] = seen_during(control, lambda: gmail.initial_cursor(since_last_week()))

    # Kept alive in the shared pool for the next call (any mailbox's), not in the provider:
    # the pooled connection is the one the emulator saw the call on.
    pool = http_pool(settings)
    http = pool.borrow()
    ports = {c.sock.getsockname()[1] for c in http.connections.values() if c.sock}
    assert profile.peer is not None and int(profile.peer.rsplit(":", 1)[1]) in ports
    pool.give_back(http)


# -- Outlook ----------------------------------------------------------------------------


def test_two_outlook_mailboxes_share_a_client_but_send_their_own_tokens(
    make_outlook: OutlookFactory,
    control: httpx.Client,
    ms_settings: Any,
) -> None:
    olive = connect_outlook(control, ms_settings, login_hint=OLIVE)
    paul = connect_outlook(control, ms_settings, login_hint=PAUL)
    olive_outlook: OutlookProvider = make_outlook(olive.credentials)
    paul_outlook: OutlookProvider = make_outlook(paul.credentials)
    olive_cursor = drain(olive_outlook, olive_outlook.initial_cursor(since_last_week())).cursor
    paul_cursor = drain(paul_outlook, paul_outlook.initial_cursor(since_last_week())).cursor
    olive_mail = graph_id(deliver(control, make_message(subject="Olive's", to=OLIVE), OLIVE))
    paul_mail = graph_id(deliver(control, make_message(subject="Paul's", to=PAUL), PAUL))

    olive_synced, olive_seen = seen_during(control, lambda: drain(olive_outlook, olive_cursor))
    paul_synced, paul_seen = seen_during(control, lambda: drain(paul_outlook, paul_cursor))

    assert olive_synced.ids == [olive_mail]
    assert paul_synced.ids == [paul_mail]
    assert any("$batch" in c.route for c in olive_seen + paul_seen)
    assert {c.account for c in olive_seen} == {OLIVE}
    assert {c.account for c in paul_seen} == {PAUL}
    # ... through the one shared Graph client.
    assert len({c.peer for c in olive_seen + paul_seen if c.peer}) == 1


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock

    def close(self) -> None:
        assert self.sock is not None
        self.sock.close()
        self.sock = None


def test_a_pooled_connection_the_server_hung_up_on_is_not_reused() -> None:
    quiet_ours, quiet_theirs = socket.socketpair()
    hung_ours, hung_theirs = socket.socketpair()
    hung_theirs.close()  # the server closed this idle keep-alive connection
    http = httplib2.Http()
    quiet, hung = _Conn(quiet_ours), _Conn(hung_ours)
    http.connections = {"https:quiet": quiet, "https:hung": hung}
    pool = HttpPool(None, 5.0, max_idle=1)
    pool.give_back(http)

    assert pool.borrow() is http
    assert hung.sock is None
    assert quiet.sock is quiet_ours
    quiet_ours.close()
    quiet_theirs.close()
