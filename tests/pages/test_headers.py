"""Security headers: no inline scripts, no framing, except the hosted form which is embedded."""

from __future__ import annotations

import re

import httpx
import pytest

from api.app import create_app
from tests.pages.conftest import Pages, page_settings


@pytest.mark.parametrize("path", ["/login", "/sources", "/sources/forms", "/tickets"])
async def test_pages_forbid_inline_scripts_and_framing(pages: Pages, path: str) -> None:
    if path != "/login":
        await pages.login()
    response = await pages.client.get(path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    # The Connect form is redirected to the provider's consent screen.
    assert "form-action 'self' https://accounts.google.com" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert not re.search(r"<script(?![^>]*\ssrc=)", response.text)  # every script is a file
    assert ' style="' not in response.text
    assert not re.search(r"\son[a-z]+=", response.text)  # no inline event handlers


async def test_the_hosted_form_stays_frameable(pages: Pages) -> None:
    response = await pages.client.get(f"/forms/{pages.agent.public_key}")
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors" not in csp and "x-frame-options" not in response.headers
    assert "script-src 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_json_and_static_answers_are_nosniff(pages: Pages) -> None:
    for path in ("/healthz", "/static/embed.js", "/static/app.css"):
        response = await pages.client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path


async def test_the_session_cookie_is_secure_behind_https(pages: Pages) -> None:
    settings = page_settings(public_url="https://help.example.com")
    app = create_app(settings, None, engine=pages.engine)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://help.example.com") as c:
        response = await c.get("/login")
    assert "Secure" in response.headers["set-cookie"]
