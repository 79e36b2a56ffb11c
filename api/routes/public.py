"""Public routes keyed by the agent's public key: the support form (and, later, the widget)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api import intake
from api.deps import client_ip, db, json_body, resources
from api.errors import ApiError
from api.schemas import MAX_ESCALATION_BYTES, Escalation, FormSubmission, parse
from store import agents
from store.models import Agent


async def agent_for_key(request: Request) -> Agent:
    public_key = request.path_params["public_key"]
    # Per key as well as per address: many addresses flooding one form are limited too.
    await resources(request).public_key_limiter.hit(f"key:{public_key}")
    agent = await db(request, lambda s: agents.get_by_public_key(s, public_key))
    if agent is None:
        raise ApiError(404, "unknown_public_key", "No agent has that public key.")
    return agent


def check_honeypot(form: FormSubmission) -> None:
    if form.website.strip():
        raise ApiError(400, "rejected", "This submission looks automated and was not accepted.")


async def submit_form(request: Request) -> Response:
    res = resources(request)
    # Counted before anything else, so a flood of bad requests is limited too.
    await res.form_limiter.hit(client_ip(request))
    agent = await agent_for_key(request)
    form = parse(FormSubmission, await json_body(request))
    check_honeypot(form)
    outcome = await intake.submit_form(res.temporal, res.settings, agent, form)
    if outcome.ticket_number is None:
        return JSONResponse({"reference": outcome.reference}, status_code=202)
    return JSONResponse({"ticket_number": outcome.ticket_number}, status_code=201)


async def form_status(request: Request) -> Response:
    agent = await agent_for_key(request)
    reference = request.path_params["reference"]
    if not (len(reference) == 32 and all(c in "0123456789abcdef" for c in reference)):
        raise ApiError(404, "not_found", "No submission has that reference.")
    number = await intake.pending_form_number(resources(request).temporal, agent, reference)
    if number is None:
        return JSONResponse({"reference": reference, "status": "pending"}, status_code=202)
    return JSONResponse({"reference": reference, "ticket_number": number})


async def escalate(request: Request) -> Response:
    """What the widget must do when the assistant gives up, as the agent's behaviour says."""
    res = resources(request)
    await res.escalation_limiter.hit(client_ip(request))
    agent = await agent_for_key(request)
    escalation = parse(Escalation, await json_body(request, max_bytes=MAX_ESCALATION_BYTES))
    mode = agent.escalation_mode
    if mode == "email" and agent.escalation_email:
        return JSONResponse({"action": "email", "email": agent.escalation_email})
    if mode == "phone" and agent.escalation_phone:
        return JSONResponse({"action": "phone", "phone": agent.escalation_phone})
    if mode == "live_chat" and agent.escalation_live_chat_url:
        return JSONResponse({"action": "live_chat", "url": agent.escalation_live_chat_url})
    # "ticket", and "live_chat" with no URL configured, which falls back to a ticket.
    number = await intake.escalate_to_ticket(res.temporal, res.settings, agent, escalation)
    if number is None:
        body = {"action": "ticket", "ticket_number": None, "reference": escalation.conversation_id}
        return JSONResponse(body, status_code=202)
    return JSONResponse({"action": "ticket", "ticket_number": number})


routes = [
    Route("/public/{public_key}/escalations", escalate, methods=["POST"]),
    Route("/public/{public_key}/form", submit_form, methods=["POST"]),
    Route("/public/{public_key}/form/{reference}", form_status, methods=["GET"]),
]
