"""The admin's own agent: its public key, escalation behaviour and embed code."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.deps import db, json_body, require_agent, resources
from api.schemas import BehaviourUpdate, agent_json, parse
from store import agents


async def get_agent(request: Request) -> JSONResponse:
    return JSONResponse(agent_json(await require_agent(request)))


async def form_embed(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    base = resources(request).settings.public_url.rstrip("/")
    key = escape(agent.public_key, quote=True)
    snippet = f'<script src="{base}/static/embed.js" data-deskclone-form="{key}" async></script>'
    iframe = (
        f'<iframe src="{base}/forms/{key}" title="Contact support" width="100%" height="720" '
        'style="border:0;max-width:640px" loading="lazy"></iframe>'
    )
    return JSONResponse({"snippet": snippet, "iframe": iframe, "form_url": f"{base}/forms/{key}"})


async def put_behaviour(request: Request) -> JSONResponse:
    agent = await require_agent(request)
    behaviour = parse(BehaviourUpdate, await json_body(request)).escalation
    updated = await db(
        request,
        lambda s: agents.set_escalation(
            s,
            # Re-read inside this transaction: the one from auth belongs to another session.
            agents.get(s, agent.id) or agent,
            mode=behaviour.mode,
            email=behaviour.email,
            phone=behaviour.phone,
            live_chat_url=behaviour.live_chat_url,
        ),
    )
    return JSONResponse(agent_json(updated))


routes = [
    Route("/agent", get_agent, methods=["GET"]),
    Route("/agent/behavior", put_behaviour, methods=["PUT"]),
    Route("/forms/embed", form_embed, methods=["GET"]),
]
