"""Serving the API with uvicorn once Temporal answers."""

from __future__ import annotations

import asyncio
import logging
import time

import uvicorn
from temporalio.client import Client

from api.app import create_app
from core.settings import Settings
from core.temporal import connect

log = logging.getLogger("deskclone.api")


async def connect_with_retry(settings: Settings, deadline_seconds: float = 60.0) -> Client:
    """Production starts services in any order: wait for Temporal rather than crash-loop."""
    give_up = time.monotonic() + deadline_seconds
    delay = 0.2
    while True:
        try:
            return await connect(settings)
        except RuntimeError as error:
            if time.monotonic() > give_up:
                raise
            log.info("waiting for Temporal at %s: %s", settings.temporal_address, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def run_api(settings: Settings) -> None:
    client = await connect_with_retry(settings)
    app = create_app(settings, client)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        # Behind a reverse proxy the real client IP (for rate limits) is in X-Forwarded-For.
        proxy_headers=True,
        server_header=False,
        # Idle connections stay open longer than clients and proxies keep theirs (httpx 5 s,
        # load balancers about 60 s): with uvicorn's 5 s, a client reusing a connection just
        # as the server closed it got "Server disconnected without sending a response".
        timeout_keep_alive=75,
        # With JSON logs, uvicorn's own loggers go through our handlers, not its text config.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
    )
    await uvicorn.Server(config).serve()
