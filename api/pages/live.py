"""The pages' live feed: the workspace's event stream for a signed-in browser (the session
cookie instead of the bearer token; `EventSource` cannot send headers). The Tickets and
Sources pages follow it to change without a reload."""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.deps import db
from api.event_stream import encode_cursor, start_position, stream_response
from api.pages.web import Page, json_endpoint
from store import events

LIVE_EVENTS = "/live/events"


async def live_url(request: Request, agent_id: str) -> str:
    """Where a page rendered now follows on from: nothing that happens after it is missed."""
    head = await db(request, lambda s: _head(s, agent_id))
    return f"{LIVE_EVENTS}?after={encode_cursor(head)}"


def _head(session: Session, agent_id: str) -> int:
    return events.head(session, agent_id)


@json_endpoint
async def live_events(p: Page) -> Response:
    start = await start_position(p.request, p.agent.id)
    return stream_response(p.request, p.agent.id, start)


routes = [Route(LIVE_EVENTS, live_events, methods=["GET"])]
