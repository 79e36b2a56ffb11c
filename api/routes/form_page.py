"""The hosted support form: plain HTML that works with JavaScript off (what the embed shows)."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from api import intake
from api.deps import client_ip, db, resources
from api.errors import ApiError
from api.schemas import FormSubmission
from api.templating import render
from store import agents
from store.models import Agent

FIELDS = ("name", "email", "subject", "description")


async def _agent(request: Request) -> Agent | None:
    key = request.path_params["public_key"]
    return await db(request, lambda s: agents.get_by_public_key(s, key))


def _page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("values", {})
    context.setdefault("errors", {})
    context.setdefault("submission_id", secrets.token_urlsafe(16))
    return render(request, "form.html", status_code=status, **context)


async def show_form(request: Request) -> Response:
    agent = await _agent(request)
    if agent is None:
        return render(request, "not_found.html", status_code=404)
    return _page(request, agent_name=agent.name)


async def post_form(request: Request) -> Response:
    agent = await _agent(request)
    if agent is None:
        return render(request, "not_found.html", status_code=404)
    posted = await request.form()
    values = {name: str(posted.get(name) or "") for name in (*FIELDS, "submission_id", "website")}
    context: dict[str, Any] = {
        "agent_name": agent.name,
        "values": values,
        "submission_id": values["submission_id"] or secrets.token_urlsafe(16),
    }
    res = resources(request)
    try:
        await res.form_limiter.hit(client_ip(request))
    except ApiError as error:
        page = _page(request, error.status, form_error=error.message, **context)
        page.headers.update(error.headers)
        return page
    try:
        form = FormSubmission.model_validate(
            {**values, "submission_id": values["submission_id"] or None}
        )
    except ValidationError as error:
        errors = {str(e["loc"][0]): e["msg"] for e in error.errors(include_url=False)}
        return _page(request, 422, errors=errors, **context)
    if form.website.strip():
        return _page(request, 400, form_error="This submission looks automated.", **context)
    outcome = await intake.submit_form(res.temporal, res.settings, agent, form)
    return render(
        request,
        "form_done.html",
        status_code=201 if outcome.ticket_number else 202,
        agent_name=agent.name,
        ticket_number=outcome.ticket_number,
        reference=outcome.reference,
    )


routes = [
    Route("/forms/{public_key}", show_form, methods=["GET"]),
    Route("/forms/{public_key}", post_form, methods=["POST"]),
]
