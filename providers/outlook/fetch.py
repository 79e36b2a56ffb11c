"""Fetching raw MIME by message id through Graph JSON batching, 20 requests per batch.

Each part is `GET /me/messages/{id}/$value`; Graph answers a non-JSON body
inside a batch as base64 text. A part that answers 404 was deleted since it was
listed and is skipped; any other failing part fails the whole call, so the
caller's cursor does not advance and the page is retried as a whole (the ledger
absorbs what repeats).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any
from urllib.parse import quote

from providers.base import ProviderError, RawMessage, Transient, most_severe
from providers.outlook.cursor import Listed
from providers.outlook.errors import classify_status
from providers.outlook.graph import GraphClient

#: Graph's limit on requests per JSON batch.
BATCH_SIZE = 20
WHAT = "fetching new messages"


def fetch_raw(graph: GraphClient, listed: list[Listed]) -> tuple[list[RawMessage], list[str]]:
    """(messages, skipped ids) for `listed`, in its order."""
    messages: list[RawMessage] = []
    skipped: list[str] = []
    for start in range(0, len(listed), BATCH_SIZE):
        got, lost = _fetch_chunk(graph, listed[start : start + BATCH_SIZE])
        messages += got
        skipped += lost
    return messages, skipped


def _post_batch(graph: GraphClient, chunk: list[Listed]) -> dict[str, dict[str, Any]]:
    requests = [
        # Positional ids: short, and unique within the batch by construction.
        {"id": str(index), "method": "GET", "url": f"/me/messages/{quote(m.id, safe='=')}/$value"}
        for index, m in enumerate(chunk)
    ]
    response = graph.send("POST", graph.api_url + "/$batch", WHAT, json={"requests": requests})
    body = graph.expect_ok(response, WHAT)
    answers = body.get("responses") if isinstance(body, dict) else None
    if not isinstance(answers, list):
        raise Transient(f"{WHAT}: Microsoft Graph sent a batch answer without responses.")
    return {str(a.get("id")): a for a in answers if isinstance(a, dict)}


def _fetch_chunk(graph: GraphClient, chunk: list[Listed]) -> tuple[list[RawMessage], list[str]]:
    answers = _post_batch(graph, chunk)
    if any(a.get("status") == 401 for a in answers.values()):
        # The batch's token was accepted but a part's was not: renew once and ask again.
        graph.renew()
        answers = _post_batch(graph, chunk)
    messages: list[RawMessage] = []
    skipped: list[str] = []
    failures: list[ProviderError] = []
    for index, listed in enumerate(chunk):
        answer = answers.get(str(index))
        if answer is None:
            failures.append(Transient(f"{WHAT}: Microsoft Graph left a batch request unanswered."))
            continue
        status = answer.get("status")
        if status == 404:
            skipped.append(listed.id)
        elif status == 200:
            messages.append(_raw_message(listed, answer.get("body")))
        else:
            headers = answer.get("headers")
            failures.append(
                classify_status(
                    status if isinstance(status, int) else 500,
                    answer.get("body"),
                    headers if isinstance(headers, dict) else None,
                    "fetching a new message",
                )
            )
    if failures:
        raise most_severe(failures)
    return messages, skipped


def _raw_message(listed: Listed, body: object) -> RawMessage:
    if not isinstance(body, str):
        raise Transient(f"{WHAT}: Microsoft Graph sent a message's MIME in an unknown shape.")
    try:
        raw = base64.b64decode(body, validate=False)
    except (binascii.Error, ValueError):
        raise Transient(f"{WHAT}: Microsoft Graph sent a message's MIME badly encoded.") from None
    return RawMessage(
        provider_message_id=listed.id,
        provider_thread_id=listed.conversation_id,
        raw=raw,
        received_at=parse_graph_time(listed.received),
    )


def parse_graph_time(value: str | None) -> datetime | None:
    """Graph's `2024-05-01T10:00:00Z` (fractions allowed) as an aware datetime."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
