"""`/healthz`: 200 once the database and Temporal both answer."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.deps import db, resources

log = logging.getLogger("deskclone.api")


async def healthz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(db(request, lambda s: s.exec(sa.text("SELECT 1")).one()), 5)  # type: ignore[call-overload]
        checks["database"] = "ok"
    except Exception as error:  # any failure means "not healthy", reported, never raised
        log.warning("health: database check failed: %s", error)
        checks["database"] = "unavailable"
    try:
        await asyncio.wait_for(resources(request).temporal.service_client.check_health(), 5)
        checks["temporal"] = "ok"
    except Exception as error:
        log.warning("health: temporal check failed: %s", error)
        checks["temporal"] = "unavailable"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )


routes = [Route("/healthz", healthz, methods=["GET"])]
