from __future__ import annotations

import pytest

from tests.api.conftest import Api
from tests.api.test_form import FORM


async def submit(api: Api, subject: str, description: str = "details") -> int:
    response = await api.client.post(
        api.form_url(), json={**FORM, "subject": subject, "description": description}
    )
    assert response.status_code == 201
    number: int = response.json()["ticket_number"]
    return number


@pytest.mark.parametrize(
    "route",
    [
        ("GET", "/api/v1/tickets"),
        ("GET", "/api/v1/tickets/x"),
        ("PATCH", "/api/v1/tickets/x"),
        ("GET", "/api/v1/agent"),
        ("GET", "/api/v1/forms/embed"),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic abc", "Bearer "])
async def test_admin_routes_need_the_admin_token(
    api: Api, route: tuple[str, str], header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await api.client.request(route[0], route[1], headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_list_pages_with_a_cursor_newest_first(api: Api) -> None:
    numbers = [await submit(api, f"Ticket {i}") for i in range(5)]
    seen: list[int] = []
    cursor = None
    for _ in range(3):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/api/v1/tickets", params=params, headers=api.auth)).json()
        seen += [t["number"] for t in page["items"]]
        cursor = page["next_cursor"]
    assert seen == sorted(numbers, reverse=True)
    assert cursor is None


async def test_list_filters_by_source_status_and_text(api: Api) -> None:
    await submit(api, "Refund for order 66")
    login = await submit(api, "Login broken", "password reset mail never arrives")
    listed = (await api.client.get("/api/v1/tickets", headers=api.auth)).json()["items"]
    login_id = next(t["id"] for t in listed if t["number"] == login)
    await api.client.patch(
        f"/api/v1/tickets/{login_id}", json={"status": "solved"}, headers=api.auth
    )

    async def numbers(**params: str) -> list[int]:
        body = (await api.client.get("/api/v1/tickets", params=params, headers=api.auth)).json()
        return [t["number"] for t in body["items"]]

    assert await numbers(q="PASSWORD") == [login]
    assert await numbers(status="solved") == [login]
    assert len(await numbers(source="form")) == 2
    assert await numbers(source="email") == []


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"source": "fax"}, 422, "validation_error"),
        ({"status": "closed"}, 422, "validation_error"),
        ({"limit": "0"}, 422, "validation_error"),
        ({"limit": "101"}, 422, "validation_error"),
        ({"limit": "ten"}, 422, "validation_error"),
        ({"cursor": "!!!"}, 400, "invalid_cursor"),
        ({"cursor": "bjp4"}, 400, "invalid_cursor"),
    ],
)
async def test_list_refuses_bad_parameters(
    api: Api, params: dict[str, str], status: int, code: str
) -> None:
    response = await api.client.get("/api/v1/tickets", params=params, headers=api.auth)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_get_and_patch_a_ticket(api: Api) -> None:
    number = await submit(api, "Broken link")
    ticket = (await api.client.get("/api/v1/tickets", headers=api.auth)).json()["items"][0]
    assert (
        ticket["number"] == number and ticket["status"] == "open" and ticket["message_count"] == 1
    )
    patched = await api.client.patch(
        f"/api/v1/tickets/{ticket['id']}", json={"status": "pending"}, headers=api.auth
    )
    assert patched.status_code == 200 and patched.json()["status"] == "pending"
    detail = (await api.client.get(f"/api/v1/tickets/{ticket['id']}", headers=api.auth)).json()
    assert detail["status"] == "pending"
    assert detail["messages"][0]["author"] == {"email": "ann@example.com", "name": "Ann Lee"}
    assert detail["messages"][0]["attachments"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"status": "closed"}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ({"status": "open", "title": "x"}, 422, "validation_error"),
        ("[", 400, "invalid_json"),
    ],
)
async def test_patch_refuses_bad_bodies(api: Api, body: object, status: int, code: str) -> None:
    await submit(api, "Anything")
    ticket = (await api.client.get("/api/v1/tickets", headers=api.auth)).json()["items"][0]
    kwargs = {"content": body} if isinstance(body, str) else {"json": body}
    response = await api.client.patch(f"/api/v1/tickets/{ticket['id']}", headers=api.auth, **kwargs)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_another_agents_ticket_is_not_found(api: Api) -> None:
    from tests.conftest import make_agent

    await submit(api, "Private")
    ticket = (await api.client.get("/api/v1/tickets", headers=api.auth)).json()["items"][0]
    _, other_token = make_agent(api.engine, "Other")
    other = {"Authorization": f"Bearer {other_token}"}
    assert (
        await api.client.get(f"/api/v1/tickets/{ticket['id']}", headers=other)
    ).status_code == 404
    patch = await api.client.patch(
        f"/api/v1/tickets/{ticket['id']}", json={"status": "solved"}, headers=other
    )
    assert patch.status_code == 404
    assert (await api.client.get("/api/v1/tickets", headers=other)).json()["items"] == []


async def test_unknown_routes_and_methods_use_the_error_shape(api: Api) -> None:
    missing = await api.client.get("/api/v1/nothing-here", headers=api.auth)
    wrong_method = await api.client.delete("/api/v1/tickets", headers=api.auth)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert (
        wrong_method.status_code == 405
        and wrong_method.json()["error"]["code"] == "method_not_allowed"
    )
