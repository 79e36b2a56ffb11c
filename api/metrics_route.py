"""`GET /metrics`: Prometheus text for this API process and the state in the database.

Serves `core.metrics.REGISTRY` (process metrics, and the event counters of anything that
counts in this process) plus `DatabaseCollector` (mailboxes by status, tickets by source),
read at each scrape. With `DESKCLONE_METRICS_TOKEN` set it wants that bearer token.
"""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.deps import resources
from api.errors import ApiError
from core.metrics import REGISTRY, DatabaseCollector


def _exposition(collector: DatabaseCollector) -> bytes:
    state = CollectorRegistry(auto_describe=False)
    state.register(collector)
    return generate_latest(REGISTRY) + generate_latest(state)


async def metrics(request: Request) -> Response:
    res = resources(request)
    expected = res.settings.metrics_token
    if expected is not None and expected.get_secret_value():  # empty: no token wanted
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), expected.get_secret_value().encode()
        ):
            raise ApiError(401, "unauthorized", "/metrics wants the metrics bearer token")
    body = await run_in_threadpool(_exposition, DatabaseCollector(res.engine))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics, methods=["GET"])]
