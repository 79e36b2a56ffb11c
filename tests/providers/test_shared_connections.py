"""Providers share one Gmail service and kept-alive connections across mailboxes, never
credentials: every request, and every part of a batch, carries its own mailbox's token."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httplib2  # type: ignore[import-untyped]
import httpx
import pytest

from emulator.server import RunningEmulator
from providers.base import Transient
from providers.gmail import GmailProvider, gmail_api
from providers.google_oauth import GoogleGrant
from providers.google_transport import HttpPool, http_pool
from providers.outlook import OutlookProvider
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

BEN = "ben@example.com"
PAUL = "paul@example.org"
BEARER = re.compile(r"^authorization: Bearer (\S+)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass
class Sent:
    transport: int  # id() of the connection pool / client that sent it
    url: str
    bearer: str | None
    body: str


@pytest.fixture
def gmail_wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sent]]:
    """Every request the Gmail provider puts on the wire (below AuthorizedHttp)."""
    sent: list[Sent] = []
    real = httplib2.Http.request

    def spy(self: httplib2.Http, uri: str, *args: Any, **kwargs: Any) -> Any:
        headers = kwargs.get("headers") or (args[2] if len(args) > 2 else None) or {}
        body = kwargs.get("body") or (args[1] if len(args) > 1 else None) or ""
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization")
        bearer = auth.removeprefix("Bearer ") if auth else None
        text = body.decode() if isinstance(body, bytes) else str(body)
        sent.append(Sent(id(self), uri, bearer, text))
        return real(self, uri, *args, **kwargs)

    monkeypatch.setattr(httplib2.Http, "request", spy)
    yield sent


def part_bearers(sent: Sent) -> list[str]:
    """The bearer tokens inside a batch body, one per part."""
    return BEARER.findall(sent.body)


def test_two_gmail_mailboxes_share_a_connection_but_send_their_own_tokens(
    make_provider: ProviderFactory,
    grant: GoogleGrant,
    control: httpx.Client,
    settings: Any,
    gmail_wire: list[Sent],
) -> None:
    ben = connect(control, settings, login_hint=BEN)
    ann_gmail, ben_gmail = make_provider(grant.credentials), make_provider(ben.credentials)
    ann_tokens = {grant.credentials.access_token}
    ben_tokens = {ben.credentials.access_token}
    assert ann_tokens != ben_tokens
    ann_cursor = ann_gmail.initial_cursor(since_last_week())
    ben_cursor = ben_gmail.initial_cursor(since_last_week())
    ann_mail = deliver(control, make_message(subject="Ann's printer"), ANN)["id"]
    ben_mail = deliver(control, make_message(subject="Ben's printer", to=BEN), BEN)["id"]

    ann_mark = len(gmail_wire)
    ann_synced = sync(ann_gmail, ann_cursor)
    ben_mark = len(gmail_wire)
    ben_synced = sync(ben_gmail, ben_cursor)

    # The emulator answered each with its own mailbox: the tokens were each one's own.
    assert set(ann_synced.ids) == {ann_mail}  # listed, and in history: the ledger dedupes
    assert set(ben_synced.ids) == {ben_mail}
    for mark, end, tokens in (
        (ann_mark, ben_mark, ann_tokens),
        (ben_mark, len(gmail_wire), ben_tokens),
    ):
        calls = gmail_wire[mark:end]
        assert calls, "no request on the wire"
        assert {c.bearer for c in calls} == tokens
        batches = [c for c in calls if "/batch/" in c.url]
        assert batches, "the new message came through a batch"
        assert {b for c in batches for b in part_bearers(c)} == tokens
    # ... over the one kept-alive pooled connection, not one per mailbox.
    assert len({c.transport for c in gmail_wire}) == 1


def test_a_failed_call_does_not_pass_its_connection_to_the_next_mailbox(
    emulator: RunningEmulator,
    make_provider: ProviderFactory,
    grant: GoogleGrant,
    control: httpx.Client,
    gmail_wire: list[Sent],
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
    settings: Any, gmail_wire: list[Sent]
) -> None:
    request = gmail_api(settings.gmail_api_url).users.getProfile(userId="me")
    with pytest.raises(RuntimeError, match="without its mailbox's credentials"):
        request.execute()
    assert gmail_wire == []


def test_a_gmail_provider_gives_its_connection_back_after_each_call(
    gmail: GmailProvider, settings: Any, gmail_wire: list[Sent]
) -> None:
    gmail.initial_cursor(since_last_week())

    # Kept alive in the shared pool for the next call (any mailbox's), not in the provider.
    pool = http_pool(settings)
    http = pool.borrow()
    assert id(http) == gmail_wire[-1].transport
    pool.give_back(http)


# -- Outlook ----------------------------------------------------------------------------


@pytest.fixture
def graph_wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sent]]:
    """Every request the Outlook provider sends to Graph (the token endpoint uses MSAL's
    own requests session, one per renewal)."""
    sent: list[Sent] = []
    real = httpx.Client.send

    def spy(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        auth = request.headers.get("authorization")
        bearer = auth.removeprefix("Bearer ") if auth else None
        sent.append(Sent(id(self), str(request.url), bearer, request.content.decode()))
        return real(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", spy)
    yield sent


def test_two_outlook_mailboxes_share_a_client_but_send_their_own_tokens(
    make_outlook: OutlookFactory,
    control: httpx.Client,
    ms_settings: Any,
    graph_wire: list[Sent],
) -> None:
    olive = connect_outlook(control, ms_settings, login_hint=OLIVE)
    paul = connect_outlook(control, ms_settings, login_hint=PAUL)
    olive_outlook: OutlookProvider = make_outlook(olive.credentials)
    paul_outlook: OutlookProvider = make_outlook(paul.credentials)
    olive_cursor = drain(olive_outlook, olive_outlook.initial_cursor(since_last_week())).cursor
    paul_cursor = drain(paul_outlook, paul_outlook.initial_cursor(since_last_week())).cursor
    olive_mail = graph_id(deliver(control, make_message(subject="Olive's", to=OLIVE), OLIVE))
    paul_mail = graph_id(deliver(control, make_message(subject="Paul's", to=PAUL), PAUL))

    olive_mark = len(graph_wire)
    olive_synced = drain(olive_outlook, olive_cursor)
    paul_mark = len(graph_wire)
    paul_synced = drain(paul_outlook, paul_cursor)

    assert olive_synced.ids == [olive_mail]
    assert paul_synced.ids == [paul_mail]
    olive_calls, paul_calls = graph_wire[olive_mark:paul_mark], graph_wire[paul_mark:]
    assert any("$batch" in c.url for c in olive_calls + paul_calls)
    olive_tokens, paul_tokens = {c.bearer for c in olive_calls}, {c.bearer for c in paul_calls}
    assert olive_tokens == {olive.credentials.access_token}
    assert paul_tokens == {paul.credentials.access_token}
    assert olive_tokens != paul_tokens
    # ... through the one shared Graph client.
    assert len({c.transport for c in olive_calls + paul_calls}) == 1


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
