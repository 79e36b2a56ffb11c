"""Outlook (Microsoft 365) as a `MailboxProvider`: read-only incremental sync of the Inbox.

New mail comes from Graph's delta query on the Inbox
(`/me/mailFolders('inbox')/messages/delta`, `changeType=created`, ids requested
as immutable so a message keeps its id if it is moved out and back), and raw MIME
for each new message through JSON batching (`$batch`, 20 `$value` requests each),
so Outlook mail goes through the same MIME normalisation as Gmail's.
`conversationId` is the provider thread id and `receivedDateTime` the received time.

The cursor (`providers.outlook.cursor`) holds Graph's link verbatim. The first
round (`initial_cursor`, which sends nothing) lists inbox mail received since
`since` (`$filter=receivedDateTime ge ...`); its deltaLink then continues
incrementally, and mail arriving in between is in that first round. When Graph
answers 410 or `syncStateNotFound` (or a stored link points at another host), a
new round starts inside `fetch_page`, listing inbox mail received since the
cursor's floor: nothing is lost, and what was seen before comes again only for
the caller's ledger (unique on message id) to absorb; those pages are
`catching_up`.

An idle poll with a valid access token costs one request (the delta GET), and
returns the very same cursor, so the caller has nothing to write. Tokens: see
`providers.outlook.auth`; a Graph 401 gets one forced renewal, then
`AuthExpired`. Never retries otherwise: Temporal's retry policy is the only one.

An instance may be cached between polls but must not be used by two threads at
once; it holds no open connections between calls.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from core.settings import Settings
from providers.base import (
    BaseProvider,
    Credentials,
    CursorExpired,
    PushLease,
    PushTarget,
    SyncPage,
    Transient,
)
from providers.outlook import push
from providers.outlook.auth import MicrosoftTokens
from providers.outlook.cursor import Listed, OutlookCursor
from providers.outlook.errors import is_sync_reset, response_body
from providers.outlook.fetch import fetch_raw
from providers.outlook.graph import GraphClient

logger = logging.getLogger(__name__)

#: What a delta row needs to carry; the message itself comes as MIME.
DELTA_SELECT = "id,conversationId,receivedDateTime"
#: Graph pages of at most this many rows, whatever `max_messages` asks.
MAX_PAGE_SIZE = 1000
#: How far before a finished round's start the floor is set: covers clock skew between
#: us and Graph's receivedDateTime, and mail Exchange files late.
FLOOR_MARGIN_SECONDS = 24 * 60 * 60


class OutlookProvider(BaseProvider):
    def __init__(
        self,
        settings: Settings,
        credentials: Credentials,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._tokens = MicrosoftTokens(settings, credentials, clock)
        self._graph = GraphClient(settings, self._tokens)
        api = urlsplit(self._graph.api_url)
        self._origin = (api.scheme, api.netloc.lower(), api.path.rstrip("/") + "/")

    # -- lifecycle -------------------------------------------------------------

    # -- MailboxProvider -------------------------------------------------------

    def credentials(self) -> Credentials:
        """The MSAL cache (new refresh token after a renewal) and the access token in hand."""
        return self._tokens.credentials()

    def initial_cursor(self, since: datetime) -> str:
        floor = int(since.timestamp())
        return OutlookCursor(link=self._first_query(floor), floor=floor, in_round=True).encode()

    def fetch_page(self, cursor: str, max_messages: int) -> SyncPage:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        state = OutlookCursor.decode(cursor)
        with self._graph.session():
            if state.pending:
                return self._drain(state, max_messages)
            try:
                page = self._delta_page(state, max_messages)
            except CursorExpired:
                return self._resync(state, max_messages)
        return page if page is not None else SyncPage([], cursor, more=False)

    # -- push (Graph subscriptions) ---------------------------------------------

    def watch(self, target: PushTarget, current: PushLease | None) -> PushLease:
        now = datetime.fromtimestamp(self._clock(), UTC)
        with self._graph.session():
            if current is not None and current.id:
                renewed = push.renew(self._graph, current, now)
                if renewed is not None:
                    return renewed
            return push.subscribe(self._graph, target, now)

    def unwatch(self, current: PushLease) -> None:
        if current.id:
            with self._graph.session():
                push.unsubscribe(self._graph, current)

    # -- pages -----------------------------------------------------------------

    def _delta_page(self, state: OutlookCursor, max_messages: int) -> SyncPage | None:
        """The next page from `state.link`; None for an idle round (keep the cursor as is)."""
        started = int(self._clock())
        body = self._delta(state.link, max_messages)
        rows = body.get("value")
        if not isinstance(rows, list):
            raise Transient("listing new mail: Microsoft Graph sent a delta page without rows.")
        listed = [_listed(row) for row in rows if isinstance(row, dict) and "@removed" not in row]
        next_link, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
        round_started = state.round_started if state.in_round else None
        if round_started is None:
            round_started = started
        if isinstance(next_link, str) and next_link:
            after = replace(state, link=next_link, in_round=True, round_started=round_started)
            return self._page(listed, after, max_messages, True, catching_up=state.resync)
        if not isinstance(delta_link, str) or not delta_link:
            raise Transient("listing new mail: Microsoft Graph sent a delta page without links.")
        if not rows and not state.in_round:
            # Nothing changed since the stored deltaLink, which stays as good as the new one.
            return None
        floor = max(state.floor, round_started - FLOOR_MARGIN_SECONDS)
        after = OutlookCursor(link=delta_link, floor=floor)
        return self._page(listed, after, max_messages, False, catching_up=state.resync)

    def _resync(self, state: OutlookCursor, max_messages: int) -> SyncPage:
        logger.info("Outlook delta token expired; listing inbox mail again from %s", state.floor)
        fresh = OutlookCursor(
            link=self._first_query(state.floor), floor=state.floor, in_round=True, resync=True
        )
        try:
            page = self._delta_page(fresh, max_messages)
        except CursorExpired as error:
            raise Transient(
                "listing new mail: Microsoft Graph refused a new delta query."
            ) from error
        assert page is not None  # a first query is never idle
        return page

    def _drain(self, state: OutlookCursor, max_messages: int) -> SyncPage:
        # Once the queue is empty and the round is over, the next page is a normal round.
        after = replace(state, pending=(), resync=state.resync and state.in_round)
        return self._page(
            list(state.pending), after, max_messages, state.in_round, catching_up=state.resync
        )

    def _page(
        self,
        listed: list[Listed],
        after: OutlookCursor,
        max_messages: int,
        more: bool,
        *,
        catching_up: bool,
    ) -> SyncPage:
        listed = list({m.id: m for m in listed}.values())  # dedupe, keep order
        now, later = listed[:max_messages], listed[max_messages:]
        if later:
            # Graph sent more rows than asked for: the rest waits in the cursor.
            after, more = replace(after, pending=tuple(later), resync=catching_up), True
        messages, skipped = fetch_raw(self._graph, now) if now else ([], [])
        return SyncPage(
            messages=messages,
            next_cursor=after.encode(),
            more=more,
            catching_up=catching_up,
            skipped_ids=skipped,
        )

    # -- plumbing --------------------------------------------------------------

    def _first_query(self, floor: int) -> str:
        """The first request of a round: inbox mail received from `floor`, new mail only."""
        since = datetime.fromtimestamp(floor, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        params = {
            "$select": DELTA_SELECT,
            "$filter": f"receivedDateTime ge {since}",
            "changeType": "created",
        }
        query = urlencode(params, safe="$,:", quote_via=quote)
        return f"{self._graph.api_url}/me/mailFolders('inbox')/messages/delta?{query}"

    def _delta(self, link: str, max_messages: int) -> dict[str, Any]:
        what = "listing new mail"
        target = urlsplit(link)
        if (target.scheme, target.netloc.lower()) != self._origin[:2] or not (
            target.path + "/"
        ).startswith(self._origin[2]):
            # A link from another Graph host (settings changed): never send it our token.
            raise CursorExpired("the stored delta link is for another Graph endpoint")
        size = min(max_messages, MAX_PAGE_SIZE)
        headers = {"Prefer": f'odata.maxpagesize={size}, IdType="ImmutableId"'}
        response = self._graph.send("GET", link, what, headers=headers)
        if is_sync_reset(response.status_code, response_body(response)):
            raise CursorExpired(f"Graph answered HTTP {response.status_code} to the delta link")
        body = self._graph.expect_ok(response, what)
        if not isinstance(body, dict):
            raise Transient(f"{what}: Microsoft Graph sent a delta page that is not an object.")
        return body


def _listed(row: dict[str, Any]) -> Listed:
    message_id = row.get("id")
    if not isinstance(message_id, str) or not message_id:
        raise Transient("listing new mail: Microsoft Graph sent a delta row without an id.")
    conversation = row.get("conversationId")
    received = row.get("receivedDateTime")
    return Listed(
        message_id,
        conversation if isinstance(conversation, str) and conversation else None,
        received if isinstance(received, str) and received else None,
    )
