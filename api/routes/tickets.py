"""Admin ticket routes: the one queue for every source."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api import cursors
from api.deps import db, json_body, require_agent
from api.errors import ApiError
from api.schemas import TicketPatch, message_json, parse, ticket_json
from domain.outcomes import TicketSource, TicketStatus
from store import tickets
from store.tickets import TicketFilter

SOURCES = tuple(TicketSource)
STATUSES = tuple(TicketStatus)
MAX_LIMIT = 100
# Ticket numbers are 32-bit integers in the database.
MAX_TICKET_NUMBER = 2**31 - 1


def _encode_cursor(number: int) -> str:
    return cursors.encode("n", str(number), sep=":")


def _decode_cursor(cursor: str) -> int:
    prefix, number = cursors.decode(cursor, 2, sep=":")
    if prefix != "n" or not number.isdigit() or int(number) > MAX_TICKET_NUMBER:
        raise cursors.invalid()
    return int(number)


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if value not in allowed:
        raise ApiError(422, "validation_error", f"{name}: must be one of {', '.join(allowed)}")
    return value


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "25")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(
            422, "validation_error", f"limit: must be a whole number from 1 to {MAX_LIMIT}"
        )
    return int(raw)


async def list_tickets(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    filters = TicketFilter(
        source=_choice(request, "source", SOURCES),
        status=_choice(request, "status", STATUSES),
        text=(request.query_params.get("q") or "").strip() or None,
    )
    limit = _limit(request)
    cursor = request.query_params.get("cursor")
    before = _decode_cursor(cursor) if cursor else None
    rows = await db(
        request,
        lambda s: tickets.list_page(s, agent.id, filters, limit=limit + 1, before_number=before),
    )
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1].number) if len(rows) > limit else None
    return JSONResponse({"items": [ticket_json(t) for t in page], "next_cursor": next_cursor})


async def get_ticket(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    ticket_id = request.path_params["ticket_id"]

    def load(session: Any) -> dict[str, Any] | None:
        ticket = tickets.get(session, agent.id, ticket_id)
        if ticket is None:
            return None
        body = ticket_json(ticket)
        body["messages"] = [message_json(m) for m in tickets.messages_of(session, ticket)]
        return body

    found = await db(request, load)
    if found is None:
        raise ApiError(404, "not_found", "No ticket has that id.")
    return JSONResponse(found)


async def patch_ticket(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    patch = parse(TicketPatch, await json_body(request))
    ticket_id = request.path_params["ticket_id"]

    def update(session: Any) -> dict[str, Any] | None:
        ticket = tickets.get(session, agent.id, ticket_id)
        if ticket is None:
            return None
        return ticket_json(tickets.set_status(session, ticket, TicketStatus(patch.status)))

    found = await db(request, update)
    if found is None:
        raise ApiError(404, "not_found", "No ticket has that id.")
    return JSONResponse(found)


routes = [
    Route("/tickets", list_tickets, methods=["GET"]),
    Route("/tickets/{ticket_id}", get_ticket, methods=["GET"]),
    Route("/tickets/{ticket_id}", patch_ticket, methods=["PATCH"]),
]
