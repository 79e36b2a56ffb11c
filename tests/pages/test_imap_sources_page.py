"""Tickets > Sources over HTTP, the IMAP part: the link beside the OAuth buttons, the form
without JavaScript, its checks, CSRF, and errors at the field they concern."""

from __future__ import annotations

import re

from store import mailboxes
from store.db import transaction
from tests.pages.conftest import Pages


def section(html: str) -> str:
    start = html.index('<section class="panel imap-connect"')
    return html[start : html.index("</section>", start)]


def invalid_fields(html: str) -> set[str]:
    return set(re.findall(r'id="imap-(\w+)"[^>]*aria-invalid="true"', section(html)))


def stored_addresses(pages: Pages) -> list[str]:
    with transaction(pages.engine) as session:
        return [m.address for m in mailboxes.list_for_agent(session, pages.agent.id)]


async def test_the_imap_link_sits_beside_the_oauth_buttons_and_opens_the_form(
    signed_in: Pages,
) -> None:
    html = (await signed_in.client.get("/sources")).text
    buttons = html[html.index('<div class="actions">') :]
    buttons = buttons[: buttons.index("</div>")]
    assert "Connect Google Account" in buttons and "Connect Outlook Account" in buttons
    assert 'href="/sources/imap#imap-connect"' in buttons
    assert "Connect another mail server (IMAP)" in buttons
    assert 'name="provider" value="imap"' not in html  # IMAP is a form, not a consent screen
    assert 'id="imap-connect" aria-labelledby="imap-title" hidden>' in html
    opened = (await signed_in.client.get("/sources/imap")).text
    form = section(opened)
    assert 'aria-labelledby="imap-title">' in form and " hidden>" not in form[:200]
    assert 'name="csrf_token"' in form and 'action="/sources/imap"' in form
    assert 'data-host="imap.fastmail.com" data-port="993" data-security="tls"' in form
    assert 'value="INBOX"' in form and 'value="993"' in form
    for control in re.findall(r'<(?:input|select) id="([^"]+)"', form):
        assert f'<label for="{control}"' in form, control


async def test_without_javascript_a_preset_fills_the_server_and_bad_fields_are_explained(
    signed_in: Pages,
) -> None:
    response = await signed_in.post(
        "/sources/imap",
        {
            "preset": "icloud",
            "address": "not an address",
            "host": "",
            "port": "",
            "security": "tls",
            "username": "",
            "password": "",
            "folder": "",
        },
    )
    assert response.status_code == 422
    form = section(response.text)
    assert 'value="imap.mail.me.com"' in form and 'value="993"' in form
    assert '<option value="icloud" data-host' in form and "selected>iCloud" in form
    assert 'value="not an address"' in form and 'value="INBOX"' in form
    assert "Enter the mailbox&#39;s whole email address" in form
    assert "Enter the mailbox&#39;s password or app password." in form
    assert invalid_fields(response.text) == {"address", "password"}
    assert 'role="alert" id="imap-alert"' in form
    assert stored_addresses(signed_in) == []


async def test_the_password_is_never_shown_back(signed_in: Pages) -> None:
    response = await signed_in.post(
        "/sources/imap",
        {
            "preset": "other",
            "address": "help@acme.example",
            "host": "imap.acme.example",
            "port": "0",
            "security": "tls",
            "password": "Sup3r-s3cret",
            "folder": "Support",
        },
    )
    assert response.status_code == 422
    assert "Sup3r-s3cret" not in response.text
    form = section(response.text)
    assert 'value="help@acme.example"' in form and 'value="Support"' in form
    assert invalid_fields(response.text) == {"port"}
    assert 'id="imap-password" name="password" type="password" autocomplete="off"' in form


async def test_a_post_without_the_csrf_token_is_refused(signed_in: Pages) -> None:
    response = await signed_in.client.post(
        "/sources/imap", data={"address": "help@acme.example", "password": "x"}
    )
    assert response.status_code == 403 and "This form has expired" in response.text
    assert stored_addresses(signed_in) == []


async def test_signed_out_the_form_sends_to_sign_in(pages: Pages) -> None:
    response = await pages.client.get("/sources/imap")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/sources/imap")
