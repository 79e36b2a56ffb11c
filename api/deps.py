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
from api.limits import Limiter
from core.settings import Settings
from store import agents
from store.db import transaction
from store.models import Agent

T = TypeVar("T")


@dataclass
class Resources:
    settings: Settings
    engine: Engine
    temporal: Client
    form_limiter: Limiter
    escalation_limiter: Limiter
    public_key_limiter: Limiter


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


async def json_body(request: Request, max_bytes: int | None = None) -> Any:
    """The parsed JSON body; `max_bytes` is a tighter cap than the app-wide one for a route."""
    raw = await _read_capped(request, max_bytes) if max_bytes else await request.body()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {error}") from error
    except RecursionError as error:
        raise ApiError(400, "invalid_json", "The body is nested too deeply.") from error
    if _has_nul(data):
        # PostgreSQL cannot store a NUL; refused here rather than failing in an activity.
        raise ApiError(422, "validation_error", "body: text may not contain NUL characters")
    return data


def _has_nul(data: Any) -> bool:
    stack = [data]
    while stack:  # iterative: json.loads accepts nesting deeper than a recursive walk would
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(
        413, "payload_too_large", f"The request body is larger than the limit of {max_bytes} bytes."
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
