"""Two workspaces on one service: neither can see or change the other's data, and one's public
key never files anything in the other. Foreign ids answer 404, never 403, so ids don't leak."""

from __future__ import annotations

import httpx
import pytest

from emulator.server import RunningEmulator
from tests.api.conftest import Api
from tests.api.test_form import FORM
from tests.api.test_mailboxes import connect
from tests.conftest import make_agent


@pytest.fixture
def other(api: Api) -> dict[str, str]:
    agent, token = make_agent(api.engine, "Globex")
    return {"Authorization": f"Bearer {token}", "public_key": agent.public_key}


async def test_a_public_key_files_only_in_its_own_workspace(
    api: Api, other: dict[str, str]
) -> None:
    made = await api.client.post(api.form_url(), json=FORM)
    assert made.status_code == 201
    mine = (await api.client.get("/api/v1/tickets", headers=api.auth)).json()["items"]
    theirs = (
        await api.client.get("/api/v1/tickets", headers={"Authorization": other["Authorization"]})
    ).json()
    assert [t["number"] for t in mine] == [made.json()["ticket_number"]]
    assert theirs["items"] == []


async def test_behaviour_belongs_to_one_workspace(api: Api, other: dict[str, str]) -> None:
    headers = {"Authorization": other["Authorization"]}
    changed = await api.client.put(
        "/api/v1/agent/behavior",
        json={"escalation": {"mode": "phone", "phone": "+1 555 0100"}},
        headers=headers,
    )
    assert changed.status_code == 200
    mine = (await api.client.get("/api/v1/agent", headers=api.auth)).json()
    assert mine["escalation"] == {"mode": "ticket"}
    escalated = await api.client.post(
        f"/api/v1/public/{api.agent.public_key}/escalations",
        json={
            "conversation_id": "ws-1",
            "messages": [{"role": "visitor", "content": "hi", "at": "2026-11-25T10:00:00Z"}],
        },
    )
    assert escalated.json()["action"] == "ticket"


async def test_mailboxes_and_ledgers_are_invisible_across_workspaces(
    api: Api, emulator: RunningEmulator, other: dict[str, str]
) -> None:
    mailbox = await connect(api, emulator, "isolated@acme.example")
    headers = {"Authorization": other["Authorization"]}
    base = f"/api/v1/mailboxes/{mailbox['id']}"
    for method, path in (
        ("GET", base),
        ("GET", f"{base}/messages"),
        ("PATCH", base),
        ("POST", f"{base}/poll"),
        ("POST", f"{base}/reconnect"),
        ("DELETE", base),
    ):
        body = {"poll_interval_seconds": 30} if method == "PATCH" else None
        response = await api.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 404, (method, path, response.text)
    after = (await api.client.get(base, headers=api.auth)).json()
    assert after["status"] == "active" and after["poll_interval_seconds"] == 60


async def test_a_reconnect_state_from_one_workspace_cannot_touch_another(
    api: Api, emulator: RunningEmulator, other: dict[str, str]
) -> None:
    """The OAuth state binds the consent to the workspace that asked for it."""
    mine = await connect(api, emulator, "bound@acme.example")
    started = await api.client.post(
        "/api/v1/mailboxes",
        json={"provider": "gmail", "login_hint": "bound@acme.example"},
        headers={"Authorization": other["Authorization"]},
    )
    with httpx.Client(verify=emulator.ssl_context()) as browser:
        location = httpx.URL(browser.get(started.json()["authorization_url"]).headers["location"])
    await api.client.get(f"{location.path}?{location.query.decode()}")
    theirs = (
        await api.client.get("/api/v1/mailboxes", headers={"Authorization": other["Authorization"]})
    ).json()
    assert [m["address"] for m in theirs["items"]] == ["bound@acme.example"]
    assert theirs["items"][0]["id"] != mine["id"]  # their own mailbox, not a handle on mine
    assert (await api.client.get(f"/api/v1/mailboxes/{mine['id']}", headers=api.auth)).json()[
        "status"
    ] == "active"
