"""Fetching raw messages by id through Gmail's batch endpoint, 50 per batch."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from googleapiclient.errors import HttpError  # type: ignore[import-untyped]
from googleapiclient.http import BatchHttpRequest  # type: ignore[import-untyped]

from providers.base import AuthExpired, ProviderError, RawMessage, most_severe
from providers.gmail.errors import classify_http_error, http_status

#: Gmail allows 100 calls per batch but advises against more than 50 (it throttles bigger ones).
BATCH_SIZE = 50


@dataclass
class Fetched:
    messages: list[RawMessage] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # 404: deleted since they were listed
    failed: list[str] = field(default_factory=list)  # to fetch again on the next page
    failures: list[ProviderError] = field(default_factory=list)

    def worst(self) -> ProviderError:
        return most_severe(self.failures)


def fetch_raw(
    messages_api: Any,
    batch_uri: str,
    ids: list[str],
    run: Callable[[Callable[[], object], str], object],
    http: Any,
) -> Fetched:
    """Raw messages for `ids`, in their order, with the ids whose part failed.

    `messages_api` is the (shared) `users().messages()` resource; `http` the mailbox's
    AuthorizedHttp, which sends the batch and whose credentials every part carries.
    `run(thunk, what)` executes one HTTP exchange and classifies what it raises (a failed
    batch POST fails the call). A failed part does not throw away its neighbours: under
    Gmail's per-part throttling a batch of 50 rarely succeeds whole, and keeping what did
    is what lets a throttled mailbox make progress.
    """
    fetched = Fetched()
    for start in range(0, len(ids), BATCH_SIZE):
        try:
            chunk = ids[start : start + BATCH_SIZE]
            _fetch_chunk(messages_api, batch_uri, chunk, run, http, fetched)
        except AuthExpired:
            raise
        except ProviderError as error:
            if not fetched.messages:
                raise  # nothing gained yet: the caller's retry fetches the page again
            # A batch that failed whole (a timeout, a 5xx) late in a page must not throw
            # away the batches before it: they are kept, the rest wait for the next page.
            fetched.failed.extend(ids[start:])
            fetched.failures.append(error)
            break
    return fetched


def _fetch_chunk(
    messages_api: Any,
    batch_uri: str,
    ids: list[str],
    run: Callable[[Callable[[], object], str], object],
    http: Any,
    fetched: Fetched,
) -> None:
    answers: dict[str, Any] = {}
    errors: dict[str, HttpError] = {}

    def collect(request_id: str, response: Any, exception: Exception | None) -> None:
        if exception is None:
            answers[request_id] = response
        elif isinstance(exception, HttpError):
            errors[request_id] = exception
        else:  # the library only hands HttpErrors to callbacks; be loud if that changes
            raise exception

    # Never service.new_batch_http_request(): it posts to the discovery document's
    # rootUrl (gmail.googleapis.com) whatever api_endpoint says (research §1.3).
    batch = BatchHttpRequest(callback=collect, batch_uri=batch_uri)
    for index, message_id in enumerate(ids):
        part = messages_api.get(userId="me", id=message_id, format="raw")
        # Each part's Authorization comes from its own http's credentials (and a 401 part
        # is refreshed through them): the mailbox's, never the shared service's.
        part.http = http
        # Positional ids: Content-IDs stay short and need no quoting.
        batch.add(part, request_id=str(index))
    run(lambda: batch.execute(http=http), "fetching new messages")

    for index, message_id in enumerate(ids):
        key = str(index)
        if key in errors:
            error = errors[key]
            if http_status(error) == 404:
                fetched.skipped.append(message_id)
            else:
                fetched.failed.append(message_id)
                fetched.failures.append(classify_http_error(error, "fetching a new message"))
            continue
        fetched.messages.append(_raw_message(answers[key]))


def _raw_message(body: dict[str, Any]) -> RawMessage:
    raw = str(body["raw"])
    internal_date = body.get("internalDate")
    received_at = (
        datetime.fromtimestamp(int(internal_date) / 1000, UTC)
        if isinstance(internal_date, str) and internal_date.isdigit()
        else None
    )
    return RawMessage(
        provider_message_id=str(body["id"]),
        provider_thread_id=str(body["threadId"]) if body.get("threadId") else None,
        # Gmail's `raw` is base64url, and may come without padding.
        raw=base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)),
        received_at=received_at,
    )
