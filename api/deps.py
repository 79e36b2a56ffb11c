"""What route handlers share: the app's resources, database work off the event loop, auth."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from temporalio.client import Client

from api.errors import ApiError
from api.limits import RateLimiter
from deskclone.settings import Settings
from store import agents
from store.db import transaction
from store.models import Agent

T = TypeVar("T")


@dataclass
class Resources:
    settings: Settings
    engine: Engine
    temporal: Client
    form_limiter: RateLimiter


def resources(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


async def db(request: Request, work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction on a worker thread: sessions are synchronous."""
    engine = resources(request).engine

    def run() -> T:
        with transaction(engine) as session:
            return work(session)

    return await run_in_threadpool(run)


async def require_agent(request: Request) -> Agent:
    """The agent (workspace) the admin bearer token opens; every admin query is scoped by it."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "Send the admin token as `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    agent = await db(request, lambda s: agents.get_by_admin_token(s, token.strip()))
    if agent is None:
        raise ApiError(
            401,
            "unauthorized",
            "The admin token is not valid.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return agent


async def json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {error}") from error


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
