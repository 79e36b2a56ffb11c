"""Unknown paths and methods: a page with the app's layout outside /api/, the JSON error shape
(CONTRACT.md §2) under /api/ and for the probes' endpoints."""

from __future__ import annotations

import re

import httpx

from tests.api.conftest import Api

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def assert_page(response: httpx.Response, status: int, home: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert '<header class="topbar">' in response.text  # the app's layout
    assert f'<a href="{home}">' in response.text  # and a way back


def allowed(response: httpx.Response) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


def assert_json_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]


async def test_an_unknown_page_is_a_404_page(api: Api) -> None:
    response = await api.client.get("/tikets/42")
    assert_page(response, 404, "/login")
    assert "<h1>Page not found</h1>" in response.text
    assert "There is no page at /tikets/42." in response.text


async def test_a_wrong_method_on_a_page_is_a_405_page(api: Api) -> None:
    response = await api.client.delete("/sources")
    assert_page(response, 405, "/sources")
    assert "The page at /sources cannot take a DELETE request." in response.text
    assert allowed(response) == {"GET", "HEAD"}
    # A page that only takes POST says so too.
    assert allowed(await api.client.get("/sources/x/poll")) == {"POST"}


async def test_a_signed_in_agent_keeps_the_navigation(api: Api) -> None:
    transport = httpx.ASGITransport(app=api.app, client=("203.0.113.8", 5555))
    # https: the session cookie is Secure since the public URL is https.
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as browser:
        found = CSRF.search((await browser.get("/login")).text)
        assert found
        signed_in = await browser.post(
            "/login", data={"token": api.token, "csrf_token": found.group(1)}
        )
        assert signed_in.status_code == 303
        response = await browser.get("/no/such/page")
    assert_page(response, 404, "/tickets")
    assert 'aria-label="Main"' in response.text and api.agent.name in response.text


async def test_the_api_keeps_json_errors(api: Api) -> None:
    assert_json_error(
        await api.client.get("/api/v1/no-such-route", headers=api.auth), 404, "not_found"
    )
    assert_json_error(await api.client.get("/api/nothing"), 404, "not_found")
    assert_json_error(await api.client.get("/api"), 404, "not_found")
    wrong = await api.client.delete("/api/v1/tickets", headers=api.auth)
    assert_json_error(wrong, 405, "method_not_allowed")
    assert allowed(wrong) == {"GET", "HEAD"}
    assert_json_error(await api.client.post("/healthz"), 405, "method_not_allowed")
    assert_json_error(await api.client.delete("/metrics"), 405, "method_not_allowed")
