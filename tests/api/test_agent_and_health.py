from __future__ import annotations

import httpx
from temporalio.client import Client

from api.app import create_app
from store.db import make_engine
from tests.api.conftest import Api


async def test_agent_shows_public_key_and_escalation(api: Api) -> None:
    body = (await api.client.get("/api/v1/agent", headers=api.auth)).json()
    assert body["id"] == api.agent.id
    assert body["public_key"] == api.agent.public_key
    assert body["escalation"] == {"mode": "ticket"}


async def test_embed_code_points_at_the_hosted_form(api: Api) -> None:
    body = (await api.client.get("/api/v1/forms/embed", headers=api.auth)).json()
    key = api.agent.public_key
    script_url = "https://help.example.com/static/embed.js"
    assert body["snippet"] == (
        f'<script src="{script_url}" data-deskclone-form="{key}" async></script>'
    )
    assert f'src="https://help.example.com/forms/{key}"' in body["iframe"]
    script = await api.client.get("/static/embed.js")
    assert script.status_code == 200 and "data-deskclone-form" in script.text


async def test_healthz_is_ok_when_database_and_temporal_answer(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_healthz_is_503_when_temporal_or_database_is_down(api: Api) -> None:
    # A lazy client to a port nobody listens on: every call fails.
    dead_temporal = await Client.connect("127.0.0.1:1", lazy=True)
    dead_database = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    app = create_app(api.settings, dead_temporal, engine=dead_database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        response = await client.get("/healthz")
    dead_database.dispose()
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "unavailable", "temporal": "unavailable"}
