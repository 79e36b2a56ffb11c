"""Webhook endpoints over the API: create (secret once), list, change, disable, delete,
rotate; deliveries and retry; bad input; one workspace never sees another's."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from core.crypto import Cipher
from domain.events import EVENT_TYPES
from store import webhooks
from store.db import transaction
from tests.api.conftest import Api
from tests.api.test_events import make_tickets
from tests.conftest import make_agent
from workflows.webhooks import dispatcher_workflow_id

URL = "https://hooks.example.com/deskclone"


async def create(api: Api, **body: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/api/v1/webhooks", json={"url": URL, **body}, headers=api.auth
    )
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


async def stop_dispatcher(api: Api, endpoint_id: str) -> None:
    """No delivery worker serves these tests: the dispatcher the API started waits for one."""
    temporal = api.app.state.resources.temporal
    handle = temporal.get_workflow_handle(dispatcher_workflow_id(endpoint_id))
    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await handle.terminate("test over")


async def test_create_shows_the_secret_once_and_stores_it_encrypted(api: Api) -> None:
    made = await create(api, events=["ticket.created"], description="Team chat")
    try:
        assert made["secret"].startswith("whsec_") and len(made["secret"]) > 30
        assert (made["url"], made["events"], made["description"]) == (
            URL,
            ["ticket.created"],
            "Team chat",
        )
        assert made["enabled"] is True and made["all_events"] is False
        fetched = await api.client.get(f"/api/v1/webhooks/{made['id']}", headers=api.auth)
        listed = await api.client.get("/api/v1/webhooks", headers=api.auth)
        assert "secret" not in fetched.json() and made["secret"] not in listed.text
        assert [e["id"] for e in listed.json()["items"]] == [made["id"]]
        with transaction(api.engine) as session:
            row = webhooks.get(session, api.agent.id, made["id"])
            assert row is not None and made["secret"] not in row.secret_encrypted
            key = api.settings.secret_key
            assert key is not None
            plain = Cipher(key.get_secret_value()).decrypt(row.secret_encrypted).decode()
            assert plain == made["secret"]
        # Its dispatcher was started at once.
        temporal = api.app.state.resources.temporal
        handle = temporal.get_workflow_handle(dispatcher_workflow_id(made["id"]))
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    finally:
        await stop_dispatcher(api, made["id"])


async def test_change_disable_rotate_and_delete(api: Api) -> None:
    made = await create(api)
    endpoint = f"/api/v1/webhooks/{made['id']}"
    try:
        assert made["all_events"] is True and made["events"] == list(EVENT_TYPES)
        changed = await api.client.patch(
            endpoint,
            json={"url": "https://other.example.com/h", "events": ["mailbox.auth_expired"]},
            headers=api.auth,
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["url"] == "https://other.example.com/h"
        assert changed.json()["events"] == ["mailbox.auth_expired"]
        off = await api.client.patch(endpoint, json={"enabled": False}, headers=api.auth)
        assert off.json()["enabled"] is False and off.json()["disabled_reason"] == "manual"
        on = await api.client.patch(endpoint, json={"enabled": True}, headers=api.auth)
        assert on.json()["enabled"] is True and on.json()["disabled_reason"] is None
        rotated = await api.client.post(f"{endpoint}/rotate-secret", headers=api.auth)
        assert rotated.status_code == 200 and rotated.json()["secret"] != made["secret"]
        with transaction(api.engine) as session:
            row = webhooks.get(session, api.agent.id, made["id"])
            assert row is not None and row.previous_secret_expires_at is not None
    finally:
        await stop_dispatcher(api, made["id"])
    deleted = await api.client.delete(endpoint, headers=api.auth)
    assert deleted.status_code == 204
    assert (await api.client.get(endpoint, headers=api.auth)).status_code == 404
    assert (await api.client.delete(endpoint, headers=api.auth)).status_code == 404


async def test_deliveries_are_listed_and_retried_with_one_call(api: Api) -> None:
    made = await create(api)
    try:
        make_tickets(api, 2)
        with transaction(api.engine) as session:
            row = webhooks.get(session, api.agent.id, made["id"])
            assert row is not None
            webhooks.claim_new(session, row, row.created_at, 10)
        base = f"/api/v1/webhooks/{made['id']}/deliveries"
        listed = await api.client.get(base, headers=api.auth)
        items = listed.json()["items"]
        assert len(items) == 2 and {d["status"] for d in items} == {"pending"}
        assert set(items[0]) >= {
            "id",
            "event_id",
            "type",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "created_at",
        }
        assert (await api.client.get(f"{base}?status=failed", headers=api.auth)).json() == {
            "items": []
        }
        retried = await api.client.post(f"{base}/{items[0]['id']}/retry", headers=api.auth)
        assert retried.status_code == 202 and retried.json()["status"] == "pending"
        unknown = await api.client.post(f"{base}/nope/retry", headers=api.auth)
        assert unknown.status_code == 404
        await api.client.patch(
            f"/api/v1/webhooks/{made['id']}", json={"enabled": False}, headers=api.auth
        )
        off = await api.client.post(f"{base}/{items[0]['id']}/retry", headers=api.auth)
        assert off.status_code == 409 and off.json()["error"]["code"] == "endpoint_disabled"
    finally:
        await stop_dispatcher(api, made["id"])


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"url": "http://hooks.example.com/h"}, "invalid_url", "url"),
        ({"url": "https://127.0.0.1/h"}, "invalid_url", "url"),
        ({"url": "https://[::1]/h"}, "invalid_url", "url"),
        ({"url": "https://10.1.2.3/h"}, "invalid_url", "url"),
        ({"url": "https://169.254.169.254/latest"}, "invalid_url", "url"),
        ({"url": "https://localhost/h"}, "invalid_url", "url"),
        ({"url": "https://user:pw@hooks.example.com/h"}, "invalid_url", "url"),
        ({"url": "not a url"}, "invalid_url", "url"),
        ({"url": "https://hooks.example.com:99999/h"}, "invalid_url", "url"),
        ({"url": URL, "events": ["ticket.exploded"]}, "validation_error", "events.0"),
        ({"url": URL, "events": "ticket.created"}, "validation_error", "events"),
        ({"url": URL, "description": "x" * 501}, "validation_error", "description"),
        ({"url": URL, "secret": "mine"}, "validation_error", "secret"),
        ({}, "validation_error", "url"),
    ],
)
async def test_bad_endpoints_get_the_contract_errors(
    api: Api, body: dict[str, Any], code: str, field: str
) -> None:
    response = await api.client.post("/api/v1/webhooks", json=body, headers=api.auth)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert field in [f["field"] for f in error["fields"]]


async def test_bad_delivery_filters_and_unknown_ids(api: Api) -> None:
    made = await create(api)
    try:
        base = f"/api/v1/webhooks/{made['id']}/deliveries"
        bad = await api.client.get(f"{base}?status=lost", headers=api.auth)
        assert bad.status_code == 422
        huge = await api.client.get(f"{base}?limit=100000", headers=api.auth)
        assert huge.status_code == 422
        patch = await api.client.patch(
            f"/api/v1/webhooks/{made['id']}", json={"enabled": "maybe"}, headers=api.auth
        )
        assert patch.status_code == 422
    finally:
        await stop_dispatcher(api, made["id"])
    for method, path in [
        ("GET", "/api/v1/webhooks/nope"),
        ("PATCH", "/api/v1/webhooks/nope"),
        ("DELETE", "/api/v1/webhooks/nope"),
        ("POST", "/api/v1/webhooks/nope/rotate-secret"),
        ("GET", "/api/v1/webhooks/nope/deliveries"),
    ]:
        response = await api.client.request(method, path, headers=api.auth, json={})
        assert response.status_code == 404, (method, path, response.text)


async def test_workspace_b_never_sees_a_s_endpoints(api: Api) -> None:
    made = await create(api)
    try:
        _other, token = make_agent(api.engine, "Other")
        them = {"Authorization": f"Bearer {token}"}
        assert (await api.client.get("/api/v1/webhooks", headers=them)).json() == {"items": []}
        for method, path in [
            ("GET", f"/api/v1/webhooks/{made['id']}"),
            ("PATCH", f"/api/v1/webhooks/{made['id']}"),
            ("DELETE", f"/api/v1/webhooks/{made['id']}"),
            ("POST", f"/api/v1/webhooks/{made['id']}/rotate-secret"),
            ("GET", f"/api/v1/webhooks/{made['id']}/deliveries"),
        ]:
            response = await api.client.request(method, path, headers=them, json={})
            assert response.status_code == 404, (method, path)
        assert (await api.client.get(f"/api/v1/webhooks/{made['id']}", headers=api.auth)).json()
        assert (await api.client.post("/api/v1/webhooks", json={"url": URL})).status_code == 401
    finally:
        await stop_dispatcher(api, made["id"])
