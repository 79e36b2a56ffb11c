"""`/login` (the admin token opens a browser session), `/logout`, and `/` (to the queue)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from api.deps import client_ip, db
from api.errors import ApiError
from api.pages.render import render_html
from api.pages.session import BrowserSession, pages_state
from api.pages.web import checked_form, csrf_refused, problem, safe_next, signed_in_agent
from store import agents

NOTICES = {"signed_out": "You are signed out."}


def _login_page(
    request: Request,
    session: BrowserSession,
    *,
    status_code: int = 200,
    error: str | None = None,
    next_path: str = "/tickets",
) -> Response:
    response = render_html(
        "pages/login.html",
        status_code=status_code,
        agent=None,
        csrf_token=session.csrf,
        path=request.url.path,
        error=error,
        notice=NOTICES.get(request.query_params.get("done", "")),
        next_path=next_path,
    )
    response.headers["Cache-Control"] = "no-store"
    if session.fresh:
        pages_state(request).write(request, response, session)
    return response


async def login_form(request: Request) -> Response:
    state = pages_state(request)
    session = state.load(request)
    next_path = safe_next(request.query_params.get("next"))
    if await signed_in_agent(request, state, session) is not None:
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, session, next_path=next_path)


async def login(request: Request) -> Response:
    state = pages_state(request)
    session = state.load(request)
    form = await checked_form(request, state, session)
    if form is None:
        if session.fresh:
            # No session cookie came back: usually cookies are blocked for this site.
            response = problem(
                request,
                state.anonymous(),
                None,
                403,
                "Cookies are needed to sign in",
                "Allow cookies for this site, reload the sign-in page and try again.",
            )
        else:
            response = csrf_refused(request, session, None)
        return response
    next_value = form.get("next")
    next_path = safe_next(next_value if isinstance(next_value, str) else None)
    try:
        state.login_limiter.check(client_ip(request))
    except ApiError as error:
        response = _login_page(
            request, session, status_code=429, error=error.message, next_path=next_path
        )
        response.headers.update(error.headers)
        return response
    token_value = form.get("token")
    token = token_value.strip() if isinstance(token_value, str) else ""
    agent = await db(request, lambda s: agents.get_by_admin_token(s, token)) if token else None
    if agent is None:
        message = "That admin token is not valid." if token else "Enter the admin token."
        return _login_page(request, session, status_code=401, error=message, next_path=next_path)
    response = RedirectResponse(next_path, status_code=303)
    state.write(request, response, state.signed_in(agent.id, agent.admin_token_sha256))
    return response


async def logout_form(request: Request) -> Response:
    state = pages_state(request)
    session = state.load(request)
    if await signed_in_agent(request, state, session) is None:
        return RedirectResponse("/login", status_code=303)
    response = render_html(
        "pages/logout.html", agent=None, csrf_token=session.csrf, path=request.url.path
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def logout(request: Request) -> Response:
    state = pages_state(request)
    session = state.load(request)
    if await checked_form(request, state, session) is None:
        return csrf_refused(request, session, None)
    response = RedirectResponse("/login?done=signed_out", status_code=303)
    state.write(request, response, state.anonymous())
    return response


async def home(_request: Request) -> Response:
    return RedirectResponse("/tickets", status_code=303)


routes = [
    Route("/", home, methods=["GET"]),
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout_form, methods=["GET"]),
    Route("/logout", logout, methods=["POST"]),
]
