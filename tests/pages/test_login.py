"""Signing in and out, redirects to /login, and CSRF refusal."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from api.pages.session import COOKIE
from store import agents
from tests.pages.conftest import Pages


@pytest.mark.parametrize(
    "path", ["/sources", "/sources/forms", "/tickets", "/tickets/some-id", "/sources/x/activity"]
)
async def test_pages_send_strangers_to_login_and_back(pages: Pages, path: str) -> None:
    response = await pages.client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=" + path.split("?")[0])


async def test_login_sets_a_signed_httponly_lax_cookie_and_returns_to_the_page(
    pages: Pages,
) -> None:
    form = await pages.client.get("/login?next=/sources")
    assert form.status_code == 200 and 'name="next" value="/sources"' in form.text
    assert '<label for="token">Admin token</label>' in form.text
    token = await pages.csrf("/login?next=/sources")
    response = await pages.client.post(
        "/login", data={"token": pages.token, "csrf_token": token, "next": "/sources"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/sources"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert pages.token not in cookie
    sources = await pages.client.get("/sources")
    assert sources.status_code == 200 and "Connect Google Account" in sources.text
    # Signed in, /login goes straight on.
    again = await pages.client.get("/login?next=/tickets")
    assert again.status_code == 303 and again.headers["location"] == "/tickets"


async def test_a_wrong_token_is_refused_with_a_message(pages: Pages) -> None:
    token = await pages.csrf()
    response = await pages.client.post("/login", data={"token": "nope", "csrf_token": token})
    assert response.status_code == 401 and "That admin token is not valid." in response.text
    assert (await pages.client.get("/tickets")).status_code == 303


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
async def test_next_never_leaves_the_site(pages: Pages, target: str) -> None:
    token = await pages.csrf()
    response = await pages.client.post(
        "/login", data={"token": pages.token, "csrf_token": token, "next": target}
    )
    assert response.status_code == 303 and response.headers["location"] == "/tickets"


async def test_login_without_the_csrf_token_or_cookie_is_refused(pages: Pages) -> None:
    await pages.csrf()  # the session cookie exists, but the form lacks its token
    response = await pages.client.post("/login", data={"token": pages.token})
    assert response.status_code == 403 and "This form has expired" in response.text
    wrong = await pages.client.post("/login", data={"token": pages.token, "csrf_token": "x"})
    assert wrong.status_code == 403
    pages.client.cookies.clear()
    no_cookie = await pages.client.post("/login", data={"token": pages.token, "csrf_token": "x"})
    assert no_cookie.status_code == 403 and "Cookies are needed" in no_cookie.text


async def test_a_forged_cookie_is_not_a_session(pages: Pages) -> None:
    await pages.login()
    value = pages.client.cookies[COOKIE]
    pages.client.cookies.set(COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert (await pages.client.get("/tickets")).status_code == 303


async def test_state_changing_posts_need_the_sessions_csrf_token(signed_in: Pages) -> None:
    mailbox = signed_in.mailbox("csrf@acme.example")
    for path in (
        "/sources/connect",
        f"/sources/{mailbox.id}/settings",
        f"/sources/{mailbox.id}/poll",
        f"/sources/{mailbox.id}/disconnect",
        "/tickets/x/status",
        "/logout",
    ):
        response = await signed_in.client.post(path, data={"provider": "gmail"})
        assert response.status_code == 403, path
        assert "This form has expired" in response.text
    # Nothing happened: still connected.
    assert "csrf@acme.example" in (await signed_in.client.get("/sources")).text


async def test_logout_ends_the_session(signed_in: Pages) -> None:
    response = await signed_in.post("/logout", {}, page="/tickets")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert (await signed_in.client.get("/tickets")).status_code == 303
    assert "You are signed out." in (await signed_in.client.get("/login?done=signed_out")).text


async def test_sessions_end_when_the_admin_token_changes(
    signed_in: Pages,
) -> None:
    with Session(signed_in.engine) as session, session.begin():
        agent = agents.get(session, signed_in.agent.id)
        assert agent is not None
        agent.admin_token_sha256 = agents.token_digest("rotated-token")
        session.add(agent)
    assert (await signed_in.client.get("/tickets")).status_code == 303


async def test_root_goes_to_the_queue(signed_in: Pages) -> None:
    response = await signed_in.client.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/tickets"
