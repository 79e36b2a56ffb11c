"""`create_app(settings, temporal_client)`: the whole HTTP surface, assembled from route lists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from temporalio.client import Client

from api import pages  # the HTML pages: /login, /sources, /tickets (issue 6)
from api.deps import Resources
from api.errors import EXCEPTION_HANDLERS
from api.event_stream import EventHub
from api.limits import BodySizeLimit, limiter_for
from api.metrics_route import routes as metrics_routes
from api.middleware import PublicCors, RejectNul
from api.push_auth import GooglePushVerifier
from api.routes import (
    agent,
    events,
    form_page,
    health,
    mailboxes,
    oauth,
    openapi,
    public,
    push,
    tickets,
    webhooks,
)
from core.settings import Settings
from store.db import make_engine


def create_app(
    settings: Settings, temporal_client: Client, engine: Engine | None = None
) -> Starlette:
    """`engine` is made from settings unless given; one made here is disposed on shutdown."""
    owns_engine = engine is None
    # Every request's connection is tested first: a database restart never answers a 500.
    db_engine = engine or make_engine(settings.effective_database_url, ping_after_idle=0)
    hub = EventHub(db_engine)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await hub.close()
        if owns_engine:
            db_engine.dispose()

    app = Starlette(
        routes=[
            *health.routes,
            *metrics_routes,  # GET /metrics (Prometheus text; docs/operations.md)
            Mount(
                "/api/v1",
                routes=[
                    *tickets.routes,
                    *public.routes,
                    *agent.routes,
                    *mailboxes.routes,
                    *events.routes,  # the feed and its stream (CONTRACT.md §6)
                    *webhooks.routes,
                    *openapi.routes,  # GET /api/v1/openapi.json
                ],
            ),
            *oauth.routes,
            *push.routes,  # /push/gmail, /push/outlook[/lifecycle]: each checks its sender
            *form_page.routes,
            *pages.routes,
            Mount(
                "/static",
                app=StaticFiles(directory=Path(__file__).parent / "static"),
                name="static",
            ),
        ],
        middleware=[
            Middleware(pages.SecurityHeaders, settings=settings),
            Middleware(RejectNul),
            Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
            Middleware(PublicCors, prefix="/api/v1/public/"),
        ],
        # Unknown paths and methods outside /api/ answer a page (api/pages/not_found.py).
        exception_handlers={**EXCEPTION_HANDLERS, HTTPException: pages.page_or_json_http_exception},
        lifespan=lifespan,
    )
    app.state.pages = pages.PagesState(settings)
    if settings.gmail_push_configured:
        app.state.gmail_push_verifier = GooglePushVerifier(settings)
    app.state.event_hub = hub
    app.state.resources = Resources(
        settings=settings,
        engine=db_engine,
        temporal=temporal_client,
        # Shared by every API process on PostgreSQL (api/limits.py).
        form_limiter=limiter_for(db_engine, "form", settings.form_rate_limit_per_minute),
        escalation_limiter=limiter_for(
            db_engine, "escalation", settings.escalation_rate_limit_per_minute
        ),
        public_key_limiter=limiter_for(
            db_engine, "public_key", settings.public_key_rate_limit_per_minute
        ),
    )
    return app
