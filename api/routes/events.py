"""The event feed (CONTRACT.md §6): an ordered page with a cursor, and the same as a stream."""

from __future__ import annotations

import json

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.deps import db, require_agent
from api.errors import ApiError
from api.event_stream import encode_cursor, event_json, position, start_position, stream_response
from store import events

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(
            422, "validation_error", f"limit: must be a whole number from 1 to {MAX_LIMIT}"
        )
    return int(raw)


async def list_events(request: Request) -> Response:
    """Oldest first from `after` (a cursor, or an event id); `next_cursor` is where the page
    ended, the same as `after` when nothing is new: keep it and ask again later."""
    agent = await require_agent(request)
    limit = _limit(request)
    after = (request.query_params.get("after") or "").strip()

    def page(session: Session) -> tuple[str, list[str]]:
        start = position(session, agent.id, after) if after else 0
        found = events.after(session, agent.id, start, limit=limit)
        end = found[-1].seq if found else start
        return encode_cursor(end), [event_json(e) for e in found]

    next_cursor, items = await db(request, page)
    # The items are the exact text webhooks send: spliced in, not parsed and dumped again.
    body = '{"items":[' + ",".join(items) + '],"next_cursor":' + json.dumps(next_cursor) + "}"
    return Response(body, media_type="application/json")


async def stream_events(request: Request) -> Response:
    agent = await require_agent(request)
    return stream_response(request, agent.id, await start_position(request, agent.id))


routes = [
    Route("/events", list_events, methods=["GET"]),
    Route("/events/stream", stream_events, methods=["GET"]),
]
