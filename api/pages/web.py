"""What every page handler shares: the signed-in agent, CSRF-checked forms, rendering.

`page(handler)` wraps a handler for a page that needs a signed-in agent: without one the
browser is sent to /login (and back afterwards); a POST must carry the session's CSRF token
or gets the 403 page; an `ApiError` from the shared API code becomes a readable error page.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.deps import db
from api.errors import ApiError, error_response
from api.pages.render import render_html
from api.pages.session import CSRF_FIELD, BrowserSession, PagesState, pages_state
from store import agents
from store.models import Agent


@dataclass
class Page:
    request: Request
    session: BrowserSession
    agent: Agent
    form: FormData | None = None

    def field(self, name: str) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""

    def render(self, template: str, *, status_code: int = 200, **context: Any) -> Response:
        return render_html(
            template,
            status_code=status_code,
            agent=self.agent,
            csrf_token=self.session.csrf,
            path=self.request.url.path,
            **context,
        )


Handler = Callable[[Page], Awaitable[Response]]


def safe_next(target: str | None) -> str:
    """Only a path on this site: never `//elsewhere`, a scheme, or a backslash trick."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/tickets"
    if any(ord(c) < 0x20 for c in target):
        return "/tickets"
    return target


def login_redirect(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='/')}", status_code=303)


async def signed_in_agent(
    request: Request, state: PagesState, session: BrowserSession
) -> Agent | None:
    if session.agent_id is None or session.mark is None:
        return None
    agent_id = session.agent_id
    agent = await db(request, lambda s: agents.get(s, agent_id))
    if agent is None or state.token_mark(agent.admin_token_sha256) != session.mark:
        return None
    return agent


def problem(
    request: Request,
    session: BrowserSession,
    agent: Agent | None,
    status: int,
    title: str,
    detail: str,
) -> Response:
    return render_html(
        "pages/problem.html",
        status_code=status,
        agent=agent,
        csrf_token=session.csrf,
        path=request.url.path,
        title=title,
        detail=detail,
    )


TITLES = {
    400: "That did not work",
    403: "Not allowed",
    404: "Not found",
    409: "That did not work",
    422: "Please check what you entered",
    429: "Too many attempts",
    503: "Temporarily unavailable",
}


def csrf_refused(request: Request, session: BrowserSession, agent: Agent | None) -> Response:
    return problem(
        request,
        session,
        agent,
        403,
        "This form has expired",
        "For your safety the form could not be accepted. Go back, reload the page and try again.",
    )


async def checked_form(
    request: Request, state: PagesState, session: BrowserSession
) -> FormData | None:
    """The posted form if it carries this session's CSRF token, else None."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if session.fresh or not state.csrf_ok(session, token if isinstance(token, str) else None):
        return None
    return form


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        state = pages_state(request)
        session = state.load(request)
        agent = await signed_in_agent(request, state, session)
        if agent is None:
            if request.method != "GET":
                return csrf_refused(request, session, None)
            return login_redirect(request)
        form = None
        if request.method == "POST":
            form = await checked_form(request, state, session)
            if form is None:
                response = csrf_refused(request, session, agent)
                response.headers["Cache-Control"] = "no-store"
                return response
        current = Page(request, session, agent, form)
        try:
            response = await handler(current)
        except ApiError as error:
            title = TITLES.get(error.status, "Something went wrong")
            response = problem(request, session, agent, error.status, title, error.message)
            response.headers.update(error.headers)
        # Pages show tickets and mailboxes: never kept by a shared cache or the back button.
        response.headers["Cache-Control"] = "no-store"
        return response

    return endpoint


def json_endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """For the pages' own small JSON reads: the session instead of the bearer token."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        state = pages_state(request)
        session = state.load(request)
        agent = await signed_in_agent(request, state, session)
        if agent is None:
            return error_response(401, "unauthorized", "Sign in again at /login.")
        response = await handler(Page(request, session, agent))
        response.headers["Cache-Control"] = "no-store"
        return response

    return endpoint
