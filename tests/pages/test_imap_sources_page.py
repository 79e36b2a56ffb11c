"""Tickets > Sources over HTTP, the IMAP part: the link beside the OAuth buttons, the form
without JavaScript, its checks, CSRF; and against the session's real Dovecot (over TLS with
its CA): each refused connection test at the field it concerns with nothing stored, the card,
and Reconnect with a new password."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from domain.outcomes import MailboxStatus, PushState
from emulator.dovecot import Dovecot
from store import mailboxes
from store.db import transaction
from store.models import Mailbox
from tests.conftest import make_agent
from tests.devstack import free_port
from tests.pages.conftest import Pages, page_settings


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


@pytest.fixture
async def imap_pages(
    dev_server_env: WorkflowEnvironment, postgres_engine: Engine, dovecot: Dovecot
) -> AsyncIterator[Pages]:
    """Signed in, with an app that trusts the test Dovecot's CA (no worker: the page's work
    ends at the database and a signal)."""
    settings = page_settings(imap_ca_file=dovecot.ca_file, imap_timeout_seconds=5)
    agent, token = make_agent(postgres_engine)
    app = create_app(settings, dev_server_env.client, engine=postgres_engine)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        pages = Pages(client, agent, token, postgres_engine, settings)
        await pages.login()
        yield pages


def server_form(dovecot: Dovecot, user: str, secret: str, **changes: str) -> dict[str, str]:
    form = {
        "preset": "other",
        "address": f"{user}@imap.example",
        "host": "localhost",  # the name on the test certificate
        "port": str(dovecot.tls_port),
        "security": "tls",
        "username": user,
        "password": secret,
        "folder": "INBOX",
    }
    form.update(changes)
    return form


def stored(pages: Pages) -> list[Mailbox]:
    with transaction(pages.engine) as session:
        return list(mailboxes.list_for_agent(session, pages.agent.id))


@pytest.mark.parametrize(
    ("changes", "at", "marked"),
    [
        ({"password": "Not-the-passw0rd"}, "password", {"password", "username"}),
        ({"port": "PORT"}, "host", {"host", "port"}),
        ({"host": "127.0.0.1"}, "security", {"security", "port"}),  # not on the certificate
        ({"security": "none", "port": "PLAIN"}, "security", {"security"}),
        ({"folder": "No such folder"}, "folder", {"folder"}),
    ],
    ids=["auth", "unreachable", "tls", "plaintext", "folder"],
)
async def test_a_refused_connection_test_is_shown_at_its_field_and_nothing_is_stored(
    imap_pages: Pages,
    dovecot: Dovecot,
    dovecot_user: tuple[str, str],
    changes: dict[str, str],
    at: str,
    marked: set[str],
) -> None:
    user, password = dovecot_user
    values = {k: v.replace("PORT", str(free_port())) for k, v in changes.items()}
    values = {k: v.replace("PLAIN", str(dovecot.port)) for k, v in values.items()}
    form = server_form(dovecot, user, password, **values)
    response = await imap_pages.post("/sources/imap", form)
    assert response.status_code == 422
    html = response.text
    assert re.search(rf'<p class="error" id="imap-{at}-error">[^<]+</p>', html), html
    assert invalid_fields(html) == marked
    assert f'aria-describedby="imap-{at}-hint imap-{at}-error"' in html
    assert form["password"] not in html and 'name="password" type="password"' in html
    assert f'value="{user}@imap.example"' in section(html)
    assert "the test connection to the server failed, and nothing was saved" in html
    assert stored(imap_pages) == []


async def test_a_connected_mailbox_gets_an_imap_card(
    imap_pages: Pages, dovecot: Dovecot, dovecot_user: tuple[str, str]
) -> None:
    user, password = dovecot_user
    response = await imap_pages.post("/sources/imap", server_form(dovecot, user, password))
    assert response.status_code == 303
    [mailbox] = stored(imap_pages)
    assert response.headers["location"] == f"/sources?done=connected#mailbox-{mailbox.id}"
    assert mailbox.provider == "imap" and mailbox.address == f"{user}@imap.example"
    assert password not in (mailbox.credentials_encrypted or "")
    html = (await imap_pages.client.get(response.headers["location"])).text
    assert "Mailbox connected." in html
    card = html[html.index(f'id="mailbox-{mailbox.id}"') :]
    assert '<p class="provider provider-imap">IMAP</p>' in card
    assert f"localhost:{dovecot.tls_port} (TLS), folder INBOX, as {user}" in card
    assert "Checks every 1 minute" in card
    # Reconnect asks for a password (hidden while active), never the OAuth consent.
    assert re.search(
        rf'action="/sources/{mailbox.id}/reconnect" class="reconnect-password stack" novalidate'
        r'\s+data-show-when="auth_expired" hidden>',
        card,
    )
    assert card.count(f'action="/sources/{mailbox.id}/reconnect"') == 1

    # IDLE holding: the card says it is live, with the safety net's interval.
    with transaction(imap_pages.engine) as session:
        row = mailboxes.get(session, imap_pages.agent.id, mailbox.id)
        assert row is not None
        mailboxes.record_push(
            session,
            row,
            state=PushState.LIVE,
            push_id=None,
            expires_at=None,
            secret_encrypted=None,
            error=None,
        )
    live = (await imap_pages.client.get("/sources")).text
    live_card = live[live.index(f'id="mailbox-{mailbox.id}"') :]
    assert re.search(r'data-field="new-mail" data-push="live">Live \(and checks every', live_card)


async def test_reconnect_asks_for_the_new_password_and_keeps_every_setting(
    imap_pages: Pages, dovecot: Dovecot, dovecot_user: tuple[str, str]
) -> None:
    user, password = dovecot_user
    assert (
        await imap_pages.post("/sources/imap", server_form(dovecot, user, password))
    ).status_code == 303
    [mailbox] = stored(imap_pages)
    with transaction(imap_pages.engine) as session:
        row = mailboxes.get(session, imap_pages.agent.id, mailbox.id)
        assert row is not None
        mailboxes.update_settings(
            session, row, allowed_senders=["@customer.example"], poll_interval_seconds=300
        )
        mailboxes.set_status(session, row, MailboxStatus.AUTH_EXPIRED, None)
    new_password = password + "-new"
    dovecot.set_password(user, new_password)
    path = f"/sources/{mailbox.id}/reconnect"

    html = (await imap_pages.client.get("/sources")).text
    assert f'<label for="reconnect-password-{mailbox.id}">New password for' in html
    assert "refused the password. Click Reconnect and enter the current one." in html

    empty = await imap_pages.post(path, {"password": ""})
    assert empty.status_code == 422
    assert "Enter the mailbox&#39;s new password or app password." in empty.text
    old = await imap_pages.post(path, {"password": password})
    assert old.status_code == 422
    error = re.search(rf'<p class="error" id="reconnect-error-{mailbox.id}">([^<]+)</p>', old.text)
    assert error is not None and "refused" in error.group(1)
    assert f'id="reconnect-password-{mailbox.id}" name="password" type="password"' in old.text
    assert password not in old.text
    assert stored(imap_pages)[0].status == MailboxStatus.AUTH_EXPIRED

    done = await imap_pages.post(path, {"password": new_password})
    assert done.status_code == 303
    assert done.headers["location"] == f"/sources?done=reconnected#mailbox-{mailbox.id}"
    [after] = stored(imap_pages)
    assert after.id == mailbox.id and after.status == MailboxStatus.ACTIVE
    assert after.allowed_senders == ["@customer.example"] and after.poll_interval_seconds == 300
    assert "Reconnected." in (await imap_pages.client.get(done.headers["location"])).text
