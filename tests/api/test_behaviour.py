from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api


async def put(api: Api, escalation: Any) -> Any:
    return await api.client.put(
        "/api/v1/agent/behavior", json={"escalation": escalation}, headers=api.auth
    )


@pytest.mark.parametrize(
    "escalation",
    [
        {"mode": "ticket"},
        {"mode": "email", "email": "help@acme.example"},
        {"mode": "phone", "phone": "+44 20 7946 0958"},
        {"mode": "live_chat", "live_chat_url": "https://chat.acme.example/start"},
        {"mode": "live_chat"},
    ],
)
async def test_behaviour_round_trips(api: Api, escalation: dict[str, str]) -> None:
    response = await put(api, escalation)
    assert response.status_code == 200, response.text
    assert response.json()["escalation"] == escalation
    assert (await api.client.get("/api/v1/agent", headers=api.auth)).json()[
        "escalation"
    ] == escalation


async def test_put_replaces_the_whole_behaviour(api: Api) -> None:
    await put(api, {"mode": "email", "email": "help@acme.example"})
    response = await put(api, {"mode": "ticket"})
    assert response.json()["escalation"] == {"mode": "ticket"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"escalation": {"mode": "email"}}, "email address is required"),
        ({"escalation": {"mode": "email", "email": "not an address"}}, "escalation.email"),
        ({"escalation": {"mode": "phone"}}, "phone number is required"),
        ({"escalation": {"mode": "phone", "phone": "call me"}}, "escalation.phone"),
        (
            {"escalation": {"mode": "live_chat", "live_chat_url": "javascript:alert(1)"}},
            "http(s) URL",
        ),
        ({"escalation": {"mode": "live_chat", "live_chat_url": "chat.example"}}, "http(s) URL"),
        ({"escalation": {"mode": "pigeon"}}, "escalation.mode"),
        ({"escalation": {"mode": "ticket", "colour": "red"}}, "escalation.colour"),
        ({"mode": "ticket"}, "escalation"),
        ({}, "escalation"),
    ],
)
async def test_bad_behaviour_is_422_and_changes_nothing(api: Api, body: Any, fragment: str) -> None:
    await put(api, {"mode": "phone", "phone": "+1 555 0100"})
    response = await api.client.put("/api/v1/agent/behavior", json=body, headers=api.auth)
    assert response.status_code == 422
    assert fragment in response.json()["error"]["message"]
    current = (await api.client.get("/api/v1/agent", headers=api.auth)).json()["escalation"]
    assert current == {"mode": "phone", "phone": "+1 555 0100"}


async def test_behaviour_needs_the_admin_token(api: Api) -> None:
    response = await api.client.put(
        "/api/v1/agent/behavior", json={"escalation": {"mode": "ticket"}}
    )
    assert response.status_code == 401
