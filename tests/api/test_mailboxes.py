from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from emulator.server import RunningEmulator
from tests.api.conftest import Api
from tests.conftest import make_agent
from tests.fakes import make_email

ADDRESS = "help@acme.example"


async def authorize(api: Api, emulator: RunningEmulator, url: str) -> httpx.Response:
    """Follow the authorization URL as a browser would, then hand the callback to the app."""
    with httpx.Client(verify=emulator.ssl_context(), timeout=10) as browser:
        approved = browser.get(url)
    assert approved.status_code == 302, approved.text
    callback = httpx.URL(approved.headers["location"])
    return await api.client.get(f"{callback.path}?{callback.query.decode()}")


async def connect(
    api: Api, emulator: RunningEmulator, address: str = ADDRESS, provider: str = "gmail"
) -> dict[str, Any]:
    started = await api.client.post(
        "/api/v1/mailboxes", json={"provider": provider, "login_hint": address}, headers=api.auth
    )
    assert started.status_code == 201, started.text
    done = await authorize(api, emulator, started.json()["authorization_url"])
    assert done.status_code == 303 and done.headers["location"] == "/sources", done.text
    items = (await api.client.get("/api/v1/mailboxes", headers=api.auth)).json()["items"]
    mailbox: dict[str, Any] = next(m for m in items if m["address"] == address)
    return mailbox


async def test_connect_creates_an_active_mailbox_with_defaults(
    api: Api, emulator: RunningEmulator
) -> None:
    mailbox = await connect(api, emulator)
    assert mailbox["status"] == "active" and mailbox["provider"] == "gmail"
    assert mailbox["allowed_senders"] == [] and mailbox["poll_interval_seconds"] == 60
    assert mailbox["counts"] == {"tickets_created": 0, "appended": 0, "skipped": 0, "failed": 0}
    url = (
        await api.client.post("/api/v1/mailboxes", json={"provider": "gmail"}, headers=api.auth)
    ).json()["authorization_url"]
    query = httpx.URL(url).params
    assert query["scope"].split() == [
        "https://www.googleapis.com/auth/gmail.readonly",
        "openid",
        "email",
    ]
    assert query["code_challenge_method"] == "S256" and query["state"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"provider": "yahoo"}, 422, "validation_error"),
        ({"provider": "gmail", "login_hint": "not-an-address"}, 422, "validation_error"),
        ({"provider": "gmail", "extra": 1}, 422, "validation_error"),
        ({}, 422, "validation_error"),
    ],
)
async def test_connect_refuses_bad_requests(api: Api, body: Any, status: int, code: str) -> None:
    response = await api.client.post("/api/v1/mailboxes", json=body, headers=api.auth)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


async def test_a_callback_state_works_once(api: Api, emulator: RunningEmulator) -> None:
    started = await api.client.post(
        "/api/v1/mailboxes", json={"provider": "gmail", "login_hint": ADDRESS}, headers=api.auth
    )
    with httpx.Client(verify=emulator.ssl_context()) as browser:
        location = httpx.URL(browser.get(started.json()["authorization_url"]).headers["location"])
    path = f"{location.path}?{location.query.decode()}"
    assert (await api.client.get(path)).status_code == 303
    replay = await api.client.get(path)
    assert replay.status_code == 400 and "expired" in replay.text


@pytest.mark.parametrize(
    "query",
    ["", "?code=abc", "?state=forged&code=abc", "?state=&code=abc"],
)
async def test_forged_or_incomplete_callbacks_change_nothing(api: Api, query: str) -> None:
    response = await api.client.get(f"/oauth/gmail/callback{query}")
    assert response.status_code == 400
    assert (await api.client.get("/api/v1/mailboxes", headers=api.auth)).json()["items"] == []


async def test_a_denied_consent_is_explained(api: Api) -> None:
    started = await api.client.post(
        "/api/v1/mailboxes", json={"provider": "gmail"}, headers=api.auth
    )
    state = httpx.URL(started.json()["authorization_url"]).params["state"]
    response = await api.client.get(f"/oauth/gmail/callback?state={state}&error=access_denied")
    assert response.status_code == 400 and "access_denied" in response.text


async def test_unknown_provider_callback_is_404(api: Api) -> None:
    assert (await api.client.get("/oauth/yahoo/callback?state=x&code=y")).status_code == 404


async def test_reconnect_as_another_account_changes_nothing(
    api: Api, emulator: RunningEmulator
) -> None:
    mailbox = await connect(api, emulator)
    await api.client.patch(
        f"/api/v1/mailboxes/{mailbox['id']}", json={"poll_interval_seconds": 900}, headers=api.auth
    )
    reconnect = await api.client.post(
        f"/api/v1/mailboxes/{mailbox['id']}/reconnect", headers=api.auth
    )
    url = httpx.URL(reconnect.json()["authorization_url"])
    assert url.params["login_hint"] == ADDRESS
    other = url.copy_set_param("login_hint", "intruder@elsewhere.example")
    response = await authorize(api, emulator, str(other))
    assert response.status_code == 409 and "intruder@elsewhere.example" in response.text
    after = (await api.client.get(f"/api/v1/mailboxes/{mailbox['id']}", headers=api.auth)).json()
    assert after["poll_interval_seconds"] == 900 and after["address"] == ADDRESS
    assert len((await api.client.get("/api/v1/mailboxes", headers=api.auth)).json()["items"]) == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"allowed_senders": ["ann@example.com", "not an address"]}, "not an address"),
        ({"allowed_senders": ["@"]}, "allowed_senders"),
        ({"allowed_senders": "ann@example.com"}, "allowed_senders"),
        ({"poll_interval_seconds": 5}, "poll_interval_seconds"),
        ({"poll_interval_seconds": 86401}, "poll_interval_seconds"),
        ({"poll_interval_seconds": "60"}, "poll_interval_seconds"),
        ({"poll_interval_seconds": 60.5}, "poll_interval_seconds"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_patch_refuses_bad_settings_and_keeps_the_old(
    api: Api, emulator: RunningEmulator, body: Any, fragment: str
) -> None:
    mailbox = await connect(api, emulator)
    url = f"/api/v1/mailboxes/{mailbox['id']}"
    response = await api.client.patch(url, json=body, headers=api.auth)
    assert response.status_code == 422 and fragment in response.json()["error"]["message"]
    after = (await api.client.get(url, headers=api.auth)).json()
    assert (after["allowed_senders"], after["poll_interval_seconds"]) == ([], 60)


async def test_patch_normalises_and_keeps_settings(api: Api, emulator: RunningEmulator) -> None:
    mailbox = await connect(api, emulator)
    url = f"/api/v1/mailboxes/{mailbox['id']}"
    response = await api.client.patch(
        url,
        json={
            "allowed_senders": [" Ann@Example.com ", "@Customer.Example"],
            "poll_interval_seconds": 10,
        },
        headers=api.auth,
    )
    assert response.status_code == 200
    assert response.json()["allowed_senders"] == ["ann@example.com", "@customer.example"]
    assert (await api.client.get(url, headers=api.auth)).json()["poll_interval_seconds"] == 10


async def test_poll_delete_and_ledger_routes(api: Api, emulator: RunningEmulator) -> None:
    mailbox = await connect(api, emulator)
    url = f"/api/v1/mailboxes/{mailbox['id']}"
    assert (await api.client.post(f"{url}/poll", headers=api.auth)).status_code == 202
    ledger = await api.client.get(f"{url}/messages", headers=api.auth)
    assert ledger.status_code == 200 and ledger.json()["next_cursor"] is None
    assert (
        await api.client.get(f"{url}/messages", params={"limit": "0"}, headers=api.auth)
    ).status_code == 422
    assert (
        await api.client.get(f"{url}/messages", params={"cursor": "%%%"}, headers=api.auth)
    ).status_code == 400
    assert (await api.client.delete(url, headers=api.auth)).status_code == 204
    for method, path in (
        ("GET", url),
        ("PATCH", url),
        ("POST", f"{url}/poll"),
        ("DELETE", url),
        ("GET", f"{url}/messages"),
    ):
        response = await api.client.request(
            method, path, json={} if method == "PATCH" else None, headers=api.auth
        )
        assert response.status_code in (404, 422), (method, path, response.status_code)
    assert (await api.client.get(url, headers=api.auth)).status_code == 404


async def test_another_agents_mailbox_is_not_found(api: Api, emulator: RunningEmulator) -> None:
    mailbox = await connect(api, emulator)
    _, token = make_agent(api.engine, "Other")
    other = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/mailboxes/{mailbox['id']}"
    assert (await api.client.get(url, headers=other)).status_code == 404
    assert (
        await api.client.patch(url, json={"poll_interval_seconds": 30}, headers=other)
    ).status_code == 404
    assert (await api.client.delete(url, headers=other)).status_code == 404
    assert (await api.client.get("/api/v1/mailboxes", headers=other)).json()["items"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/mailboxes"),
        ("POST", "/api/v1/mailboxes"),
        ("GET", "/api/v1/mailboxes/x"),
        ("PATCH", "/api/v1/mailboxes/x"),
        ("DELETE", "/api/v1/mailboxes/x"),
        ("POST", "/api/v1/mailboxes/x/poll"),
        ("POST", "/api/v1/mailboxes/x/reconnect"),
        ("GET", "/api/v1/mailboxes/x/messages"),
    ],
)
async def test_mailbox_routes_need_the_admin_token(api: Api, method: str, path: str) -> None:
    assert (await api.client.request(method, path)).status_code == 401


async def test_outlook_mailbox_connects_and_its_mail_becomes_tickets(
    api: Api, emulator: RunningEmulator
) -> None:
    mailbox = await connect(api, emulator, "desk@contoso.example", provider="outlook")
    assert (mailbox["provider"], mailbox["status"]) == ("outlook", "active")
    url = (
        await api.client.post("/api/v1/mailboxes", json={"provider": "outlook"}, headers=api.auth)
    ).json()
    query = httpx.URL(url["authorization_url"]).params
    assert set(query["scope"].split()) == {
        "Mail.Read",
        "User.Read",
        "offline_access",
        "openid",
        "profile",
    }
    with httpx.Client(base_url=emulator.url, verify=emulator.ssl_context()) as control:
        control.post(
            "/_emulator/mailboxes/desk@contoso.example/messages",
            content=make_email(subject="Outlook question"),
            headers={"Content-Type": "message/rfc822"},
        ).raise_for_status()
    await api.client.post(f"/api/v1/mailboxes/{mailbox['id']}/poll", headers=api.auth)
    for _ in range(100):
        listed = (
            await api.client.get("/api/v1/tickets", params={"source": "email"}, headers=api.auth)
        ).json()
        if listed["items"]:
            break
        await asyncio.sleep(0.1)
    assert [t["title"] for t in listed["items"]] == ["Outlook question"]
    assert listed["items"][0]["mailbox_id"] == mailbox["id"]


async def test_the_ledger_answers_mail_whose_from_holds_no_valid_address(
    api: Api, emulator: RunningEmulator
) -> None:
    """Issue 20 §5: no ticket with a requester like `@example.com`; the ledger says why."""
    mailbox = await connect(api, emulator)
    with httpx.Client(base_url=emulator.url, verify=emulator.ssl_context()) as control:
        for sender, subject in (("@example.com", "No one"), ("Big Bug bb@bug.example", "Bug")):
            raw = (
                f"From: {sender}\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
                f"Message-ID: <{subject.replace(' ', '-')}@bug.example>\r\n\r\nHello\r\n"
            )
            control.post(
                f"/_emulator/mailboxes/{ADDRESS}/messages",
                content=raw.encode(),
                headers={"Content-Type": "message/rfc822"},
            ).raise_for_status()
    url = f"/api/v1/mailboxes/{mailbox['id']}"
    await api.client.post(f"{url}/poll", headers=api.auth)
    for _ in range(100):
        items = (await api.client.get(f"{url}/messages", headers=api.auth)).json()["items"]
        if len(items) == 2 and all(item["outcome"] != "pending" for item in items):
            break
        await asyncio.sleep(0.1)
    by_subject = {item["subject"]: item for item in items}
    skipped = by_subject["No one"]
    assert (skipped["outcome"], skipped["skip_reason"], skipped["from"]) == (
        "skipped",
        "sender_not_allowed",
        None,
    )
    assert (
        skipped["reason"]
        == "the email's From header ('@example.com') holds no valid sender address"
    )
    assert (by_subject["Bug"]["outcome"], by_subject["Bug"]["from"]) == (
        "ticket_created",
        "bb@bug.example",
    )
    tickets = (await api.client.get("/api/v1/tickets", headers=api.auth)).json()["items"]
    assert [t["requester"]["email"] for t in tickets if t["mailbox_id"] == mailbox["id"]] == [
        "bb@bug.example"
    ]
