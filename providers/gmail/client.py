"""Gmail as a `MailboxProvider`: read-only incremental sync of the INBOX.

Incremental pages come from `history.list` (messageAdded, INBOX) and raw
messages from the batch endpoint. When the stored history id has expired
(Gmail answers 404), the provider catches up with `messages.list in:inbox
after:...` from a day before the cursor last advanced, then resumes history
from a history id taken *before* that listing: nothing is lost, and what is
listed twice is absorbed by the caller's ledger (unique on message id).

Never retries: `execute(num_retries=0)` everywhere, because Temporal's retry
policy is the only one (DESIGN.md, "The mailbox workflow"). google-auth still
retries a failing token refresh itself (3 attempts); it offers no switch.

An instance may be cached between polls (its access token stays in memory, so
an idle poll is one request) but must not be used by two threads at once. It is
small: the googleapiclient service (its discovery document and method tables)
is built once per process and shared by every mailbox (`GmailApi`), and
connections are borrowed from a process-wide pool for one call at a time
(`providers.gmail.transport.borrowed_http`), so an instance holds no sockets
between calls and dropping it without `close()` leaks nothing. Credentials are
never shared: the shared service has no http of its own (a request sent
through it without its mailbox's `AuthorizedHttp` fails loudly), and every
request, batch part and token refresh goes through the calling mailbox's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
from google.oauth2.credentials import Credentials as GoogleCredentials
from googleapiclient.discovery import build  # type: ignore[import-untyped]
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from core.settings import Settings
from providers.base import (
    AuthExpired,
    BaseProvider,
    Credentials,
    CursorExpired,
    ProviderError,
    PushLease,
    PushRefused,
    PushTarget,
    SyncPage,
    Throttled,
)
from providers.gmail.cursor import CatchUp, GmailCursor
from providers.gmail.errors import classify, http_status
from providers.gmail.fetch import fetch_raw
from providers.gmail.transport import borrowed_http

logger = logging.getLogger(__name__)

#: Gmail caps `maxResults` of history.list and messages.list at 500.
MAX_PAGE_SIZE = 500
#: How far before the cursor's last advance a catch-up listing starts: covers clock
#: skew between us and Gmail's internalDate, and mail Gmail files late.
CATCH_UP_MARGIN_SECONDS = 24 * 60 * 60
INBOX = "INBOX"
# An idle mailbox rewrites its cursor (and so its database row) at most this often.
CURSOR_STAMP_REFRESH_SECONDS = 3600
# How long to wait before re-fetching parts of a batch that failed without a Retry-After.
PARTIAL_FAILURE_PAUSE_SECONDS = 1.0


class _NoMailboxHttp:
    """The shared service's own http: a request must be executed with its mailbox's."""

    def request(self, *_args: object, **_kwargs: object) -> object:
        raise RuntimeError("a Gmail request was sent without its mailbox's credentials")


@dataclass(frozen=True)
class GmailApi:
    """The Gmail v1 service and the resources the provider uses, built once per endpoint.

    Building the service parses the ~450 KiB discovery document, and each
    `service.users().messages()` builds a resource's method table (with docstrings):
    together several times the CPU of the idle poll's own request, so neither is done per
    mailbox or per poll. Resources only make `HttpRequest`s, which may be created from
    several threads at once; each is executed with `http=` its mailbox's AuthorizedHttp.
    """

    users: Any
    history: Any
    messages: Any

    @classmethod
    def build(cls, api_url: str) -> GmailApi:
        service = build(
            "gmail",
            "v1",
            http=_NoMailboxHttp(),
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": api_url},
        )
        users = service.users()
        return cls(users=users, history=users.history(), messages=users.messages())


_apis: dict[str, GmailApi] = {}
_apis_lock = threading.Lock()


def gmail_api(api_url: str) -> GmailApi:
    with _apis_lock:
        api = _apis.get(api_url)
        if api is None:
            api = _apis[api_url] = GmailApi.build(api_url)
        return api


class GmailProvider(BaseProvider):
    def __init__(
        self,
        settings: Settings,
        credentials: Credentials,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._scopes = credentials.scopes
        self._clock = clock
        self._google = _MailboxCredentials(  # type: ignore[no-untyped-call]
            token=credentials.access_token,
            refresh_token=credentials.refresh_token,
            token_uri=settings.google_token_uri,
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret.get_secret_value(),
            expiry=_naive_utc(credentials.expires_at),
        )
        self._api = gmail_api(settings.gmail_api_url)
        self._batch_uri = settings.gmail_api_url.rstrip("/") + "/batch/gmail/v1"
        # Bound for one call (`_connections`): a pooled connection trusting
        # provider_ca_bundle, which serves API calls and the refreshes AuthorizedHttp
        # makes before a request (token invalid) or after a 401, and this mailbox's
        # credentials around it.
        self._raw_http: httplib2.Http | None = None
        self._http: google_auth_httplib2.AuthorizedHttp | None = None

    # -- lifecycle -------------------------------------------------------------

    @contextmanager
    def _connections(self) -> Iterator[None]:
        """A pooled connection for one call, returned to the pool after it (closed instead
        if the call failed); this mailbox's credentials are applied to every request.

        Callers may cache a provider between polls (its access token stays in memory)
        and drop it without closing: it holds no sockets between calls.
        """
        with borrowed_http(self._settings) as raw:
            self._raw_http = raw
            self._http = google_auth_httplib2.AuthorizedHttp(self._google, http=raw)
            self._google.refresh_through = google_auth_httplib2.Request(raw)
            try:
                yield
            finally:
                self._http = self._raw_http = self._google.refresh_through = None

    def _bound(self) -> tuple[google_auth_httplib2.AuthorizedHttp, httplib2.Http]:
        if self._http is None or self._raw_http is None:
            raise RuntimeError("GmailProvider sent a request outside _connections()")
        return self._http, self._raw_http

    # -- MailboxProvider -------------------------------------------------------

    def credentials(self) -> Credentials:
        """Refreshed access token and, when Google rotated it, the new refresh token."""
        expiry = self._google.expiry
        return Credentials(
            refresh_token=str(self._google.refresh_token),
            access_token=self._google.token,
            expires_at=expiry,  # naive UTC, as google-auth keeps it: Credentials reads it so
            scopes=self._scopes,
        )

    def initial_cursor(self, since: datetime) -> str:
        # The history id first: everything after it comes through history, everything
        # before through the catch-up listing, so mail arriving in between is not missed.
        with self._connections():
            started = int(self._clock())
            history_id = self._profile_history_id()
        after = int(since.timestamp())
        return GmailCursor(history_id, started, catch_up=CatchUp(after=after)).encode()

    def fetch_page(self, cursor: str, max_messages: int) -> SyncPage:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        state = GmailCursor.decode(cursor)
        with self._connections():
            if state.pending:
                return self._drain(state, max_messages)
            if state.catch_up is not None:
                return self._catch_up_page(state, max_messages)
            try:
                return self._history_page(state, max_messages)
            except CursorExpired:
                return self._start_catch_up(state, max_messages)

    # -- push (users.watch; research/push.md) -------------------------------------

    def watch(self, target: PushTarget, current: PushLease | None) -> PushLease:  # noqa: ARG002
        """`users.watch` on the INBOX, still read-only; calling it again renews it."""
        if not target.gmail_topic:
            raise PushRefused("Gmail push is not configured (no Pub/Sub topic)")
        body = {
            "topicName": target.gmail_topic,
            "labelIds": [INBOX],
            "labelFilterBehavior": "INCLUDE",
        }
        with self._connections():
            answer = self._refusable(self._api.users.watch(userId="me", body=body), "users.watch")
        expires_ms = int(answer["expiration"])
        return PushLease(id=None, expires_at=datetime.fromtimestamp(expires_ms / 1000, UTC))

    def unwatch(self, current: PushLease) -> None:  # noqa: ARG002
        with self._connections():
            self._execute(self._api.users.stop(userId="me"), "users.stop")

    def _refusable(self, request: Any, what: str) -> Any:
        """A 400 or 404 to a push request names a topic Gmail will not publish to: no
        retry mends that (research/push.md); everything else is classified as usual."""
        http = self._bound()[0]

        def call() -> Any:
            try:
                return request.execute(http=http, num_retries=0)
            except HttpError as error:
                if http_status(error) in (400, 404):
                    raise PushRefused(f"{what}: Gmail refused the Pub/Sub topic") from error
                raise

        return self._run(call, what)

    # -- pages -----------------------------------------------------------------

    def _history_page(self, state: GmailCursor, max_messages: int) -> SyncPage:
        started = int(self._clock())
        request = self._api.history.list(
            userId="me",
            startHistoryId=state.history_id,
            historyTypes=["messageAdded"],
            labelId=INBOX,
            # One record per added message as a rule; a record with several is
            # handled by the pending queue, so max_messages still holds.
            maxResults=min(max_messages, MAX_PAGE_SIZE),
            pageToken=state.page_token,
        )
        response = self._execute(request, "listing new mail", history=True)
        ids = _added_inbox_ids(response)
        token = response.get("nextPageToken")
        if token:
            # Same start id with the page token, until the last page names a new one.
            return self._page(ids, replace(state, page_token=str(token)), max_messages, True)
        history_id = str(response["historyId"])
        if (
            not ids
            and history_id == state.history_id
            and started - state.advanced_at < CURSOR_STAMP_REFRESH_SECONDS
        ):
            # An idle poll: keep the cursor byte for byte, so the caller has nothing to write.
            # The stamp only sets the catch-up window if the history id ever expires (a
            # week, typically), so refreshing it hourly is plenty.
            return self._page([], state, max_messages, False)
        after = GmailCursor(history_id=history_id, advanced_at=started)
        return self._page(ids, after, max_messages, False)

    def _start_catch_up(self, state: GmailCursor, max_messages: int) -> SyncPage:
        started = int(self._clock())
        history_id = self._profile_history_id()
        after = state.advanced_at - CATCH_UP_MARGIN_SECONDS
        logger.info("Gmail history expired; catching up on inbox mail after %s", after)
        catch_up = CatchUp(after=after, expired=True)
        return self._catch_up_page(
            GmailCursor(history_id, started, catch_up=catch_up), max_messages
        )

    def _catch_up_page(self, state: GmailCursor, max_messages: int) -> SyncPage:
        assert state.catch_up is not None
        catch_up = state.catch_up
        request = self._api.messages.list(
            userId="me",
            q=f"in:inbox after:{catch_up.after}",
            maxResults=min(max_messages, MAX_PAGE_SIZE),
            pageToken=catch_up.page_token,
        )
        response = self._execute(request, "listing inbox mail to catch up")
        # Newest first from Gmail; oldest first is the order mail is handled in.
        ids = [str(m["id"]) for m in reversed(response.get("messages", []))]
        token = response.get("nextPageToken")
        if token:
            after = replace(state, catch_up=replace(catch_up, page_token=str(token)))
        else:
            # Listing done: history from the id taken before it began. `more` stays
            # True so mail that arrived during the listing is read at once.
            after = replace(state, catch_up=None)
        return self._page(ids, after, max_messages, True, catching_up=catch_up.expired)

    def _drain(self, state: GmailCursor, max_messages: int) -> SyncPage:
        ids = list(state.pending)
        more = state.page_token is not None or state.catch_up is not None
        return self._page(ids, state.with_pending([]), max_messages, more)

    def _page(
        self,
        ids: list[str],
        after: GmailCursor,
        max_messages: int,
        more: bool,
        *,
        catching_up: bool = False,
    ) -> SyncPage:
        ids = list(dict.fromkeys(ids))  # dedupe, keep order
        now, later = ids[:max_messages], ids[max_messages:]
        if later:
            after, more = after.with_pending(later), True
        if not now:
            return SyncPage([], after.encode(), more, catching_up=catching_up)
        self._ensure_fresh_token()
        fetched = fetch_raw(self._api.messages, self._batch_uri, now, self._run, self._bound()[0])
        retry_after = None
        if fetched.failures:
            worst = fetched.worst()
            if isinstance(worst, AuthExpired) or not fetched.messages:
                raise worst  # nothing gained: the cursor stays, Temporal retries the page
            # Keep what arrived; the failed ids go first in the queue for the next page,
            # which waits as long as the provider asked (or a moment, for other errors).
            after, more = after.with_pending(fetched.failed + later), True
            retry_after = worst.retry_after if isinstance(worst, Throttled) else None
            retry_after = retry_after or PARTIAL_FAILURE_PAUSE_SECONDS
        return SyncPage(
            messages=fetched.messages,
            next_cursor=after.encode(),
            more=more,
            catching_up=catching_up,
            skipped_ids=fetched.skipped,
            retry_after=retry_after,
        )

    # -- plumbing --------------------------------------------------------------

    def _profile_history_id(self) -> str:
        request = self._api.users.getProfile(userId="me")
        return str(self._execute(request, "reading the mailbox profile")["historyId"])

    def _ensure_fresh_token(self) -> None:
        """Refresh before a batch goes out when the token is known to be stale, rather than
        send the batch once for 401 parts and once more. (A token Google ended early still
        comes back as 401 parts; `_MailboxCredentials` refreshes it through our connection.)
        Right after a list call the token is normally fresh and this sends nothing.
        """
        if self._google.valid:
            return
        self._bound()  # inside a call, so the credentials refresh through its connection
        refresh = self._google.refresh
        self._run(lambda: refresh(None), "renewing Google access")

    def _execute(self, request: Any, what: str, *, history: bool = False) -> Any:
        # num_retries=0: Temporal's retry policy is the only one. The shared service's
        # requests carry no http of their own: this mailbox's is named on every execute.
        http = self._bound()[0]
        return self._run(lambda: request.execute(http=http, num_retries=0), what, history=history)

    def _run(self, thunk: Callable[[], Any], what: str, *, history: bool = False) -> Any:
        try:
            return thunk()
        except ProviderError:
            raise  # already classified (a callback or nested call)
        except HttpError as error:
            if history and http_status(error) == 404:
                # Gmail's documented answer to an expired startHistoryId.
                raise CursorExpired("the Gmail history id has expired") from error
            classified = classify(error, what)
            assert classified is not None
            raise classified from error
        except Exception as error:
            classified = classify(error, what)
            if classified is None:
                raise
            raise classified from error


class _MailboxCredentials(GoogleCredentials):
    """A mailbox's Google credentials, refreshed through the connection of the call under way
    whatever request they are handed: after a 401 part, googleapiclient's batch refreshes
    through a bare `httplib2.Http()` (googleapiclient/_auth.py `refresh_credentials`), which
    trusts neither `provider_ca_bundle` nor our timeouts. Seen as a revoked mailbox retrying
    "network error (SSLCertVerificationError)" for ten minutes instead of `auth_expired`."""

    refresh_through: Any = None  # a google_auth_httplib2.Request, set for one call

    def refresh(self, request: Any) -> None:
        super().refresh(self.refresh_through or request)  # type: ignore[no-untyped-call]


def _added_inbox_ids(response: dict[str, Any]) -> list[str]:
    ids: list[str] = []
    for record in response.get("history", []):
        for added in record.get("messagesAdded", []):
            message = added.get("message", {})
            labels = message.get("labelIds")
            # labelId=INBOX selects records; a record can still carry other messages.
            if labels is not None and INBOX not in labels:
                continue
            if message.get("id"):
                ids.append(str(message["id"]))
    return ids


def _naive_utc(value: datetime | None) -> datetime | None:
    # google-auth compares expiry with a naive UTC "now".
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)
