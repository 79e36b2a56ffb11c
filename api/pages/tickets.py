"""The one ticket queue (`/tickets`) and a ticket's thread (`/tickets/{id}`)."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlencode

from sqlmodel import Session
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from api.deps import db
from api.pages.live import live_url
from api.pages.present import SOURCES, TICKET_STATUSES
from api.pages.queries import mailbox_addresses, ticket_thread
from api.pages.web import Page, page
from domain.outcomes import TicketStatus
from store import tickets
from store.models import Ticket
from store.tickets import TicketFilter

PAGE_SIZE = 25
NOTICES = {"status": "Status updated."}


def _choice(value: str | None, allowed: Collection[str]) -> str | None:
    return value if value in allowed else None


@page
async def queue(p: Page) -> Response:
    params = p.request.query_params
    filters = TicketFilter(
        source=_choice(params.get("source"), SOURCES),
        status=_choice(params.get("status"), TICKET_STATUSES),
        text=(params.get("q") or "").strip()[:200] or None,
    )
    raw_before = params.get("before", "")
    before = int(raw_before) if raw_before.isdigit() and len(raw_before) < 10 else None

    def load(session: Session) -> tuple[list[Ticket], dict[str, str]]:
        rows = list(
            tickets.list_page(
                session,
                p.agent.id,
                filters,
                limit=PAGE_SIZE + 1,
                before_number=before,
            )
        )
        return rows, mailbox_addresses(session, p.agent.id, (t.mailbox_id for t in rows))

    # The feed's position first, then the rows: a ticket the rows miss comes after it.
    follow = await live_url(p.request, p.agent.id)
    rows, addresses = await db(p.request, load)
    page_rows = rows[:PAGE_SIZE]
    older = page_rows[-1].number if len(rows) > PAGE_SIZE else None
    filtered = bool(filters.text or filters.source or filters.status)
    return p.render(
        "pages/tickets.html",
        section="tickets",
        live_url=follow,
        # New tickets go on top of the newest page unfiltered; elsewhere a notice says so.
        live_prepend=not filtered and before is None,
        tickets=page_rows,
        addresses=addresses,
        filters=filters,
        older=older,
        paged=before is not None,
        query_without_before=urlencode(
            [
                (k, v)
                for k, v in (
                    ("q", filters.text),
                    ("source", filters.source),
                    ("status", filters.status),
                )
                if v
            ]
        ),
        sources=SOURCES,
        statuses=TICKET_STATUSES,
    )


async def _thread_page(p: Page, *, status_code: int = 200, error: str | None = None) -> Response:
    ticket_id = p.request.path_params["ticket_id"]
    thread = await db(p.request, lambda s: ticket_thread(s, p.agent.id, ticket_id))
    if thread is None:
        return p.render(
            "pages/problem.html",
            status_code=404,
            title="Ticket not found",
            detail="No ticket has that link. It may belong to another workspace.",
        )
    return p.render(
        "pages/ticket.html",
        status_code=status_code,
        section="tickets",
        thread=thread,
        ticket=thread.ticket,
        sources=SOURCES,
        statuses=TICKET_STATUSES,
        notice=NOTICES.get(p.request.query_params.get("done", "")),
        error=error,
    )


@page
async def ticket(p: Page) -> Response:
    return await _thread_page(p)


@page
async def queue_row(p: Page) -> Response:
    """One ticket's row of the queue, for the page's script to put in place live."""
    ticket_id = p.request.path_params["ticket_id"]

    def load(session: Session) -> tuple[Ticket, dict[str, str]] | None:
        found = tickets.get(session, p.agent.id, ticket_id)
        if found is None:
            return None
        return found, mailbox_addresses(session, p.agent.id, [found.mailbox_id])

    loaded = await db(p.request, load)
    if loaded is None:
        return Response(status_code=404)
    row, addresses = loaded
    return p.render(
        "pages/_ticket_row.html",
        t=row,
        addresses=addresses,
        sources=SOURCES,
        statuses=TICKET_STATUSES,
    )


@page
async def set_status(p: Page) -> Response:
    ticket_id = p.request.path_params["ticket_id"]
    status = p.field("status")
    if status not in TICKET_STATUSES:
        return await _thread_page(p, status_code=422, error="Choose Open, Pending or Solved.")

    def update(session: Session) -> bool:
        found = tickets.get(session, p.agent.id, ticket_id)
        if found is None:
            return False
        tickets.set_status(session, found, TicketStatus(status))
        return True

    if not await db(p.request, update):
        return await _thread_page(p)  # the 404 page
    return RedirectResponse(f"/tickets/{ticket_id}?done=status", status_code=303)


routes = [
    Route("/tickets", queue, methods=["GET"]),
    Route("/tickets/{ticket_id}", ticket, methods=["GET"]),
    Route("/tickets/{ticket_id}/row", queue_row, methods=["GET"]),
    Route("/tickets/{ticket_id}/status", set_status, methods=["POST"]),
]
