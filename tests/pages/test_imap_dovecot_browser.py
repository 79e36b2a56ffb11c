"""Connecting an IMAP mailbox in headless Debian Chromium against `deskclone dev` and a real
Dovecot (emulator/dovecot.py): a wrong password refused at its field with nothing stored, the
card once connected, and Reconnect with a new password after the server's password changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from emulator.dovecot import Dovecot
from tests.devstack import dev_env, running_dev
from tests.pages.test_browser import card, no_script_errors, shoot, sign_in

__all__ = ["no_script_errors"]  # the autouse fixture: script errors fail these tests too


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory, dovecot: Dovecot) -> Iterator[dict[str, Any]]:
    """`deskclone dev` trusting the test Dovecot's own CA, as a self-hosted server's is given."""
    env = dev_env(DESKCLONE_IMAP_CA_FILE=str(dovecot.ca_file))
    with running_dev(tmp_path_factory.mktemp("dev"), env=env) as facts:
        yield facts


def open_form(page: Page) -> None:
    page.goto("/sources")
    page.get_by_role("link", name="Connect another mail server (IMAP)").click()
    expect(page.locator("#imap-connect")).to_be_visible()


def fill_server(page: Page, server: Dovecot, user: str, password: str) -> None:
    page.get_by_label("Mail provider").select_option("other")
    page.get_by_label("Email address").fill(f"{user}@imap.example")
    page.get_by_label("IMAP server").fill("localhost")  # the name on the test certificate
    page.get_by_label("Port").fill(str(server.tls_port))
    page.get_by_label("Security").select_option("tls")
    page.get_by_label("Username").fill(user)
    page.get_by_label("App password").fill(password)


def addresses(admin_api: httpx.Client) -> list[str]:
    return [m["address"] for m in admin_api.get("/api/v1/mailboxes").json()["items"]]


def test_connect_refused_then_connected_then_reconnected_with_a_new_password(
    context: BrowserContext,
    dev: dict[str, Any],
    admin_api: httpx.Client,
    dovecot: Dovecot,
    dovecot_user: tuple[str, str],
    tmp_path: Path,
) -> None:
    user, password = dovecot_user
    address = f"{user}@imap.example"
    page = context.new_page()
    sign_in(page, dev)

    # A wrong password: the server's refusal at the password field, nothing stored.
    open_form(page)
    fill_server(page, dovecot, user, "not-the-password")
    page.get_by_role("button", name="Test and connect").click()
    error = page.locator("#imap-password-error")
    expect(error).to_be_visible()
    expect(page.get_by_label("App password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("App password")).to_have_value("")
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email address")).to_have_value(address)
    expect(page.get_by_label("Port")).to_have_value(str(dovecot.tls_port))
    expect(page.get_by_label("Security")).to_have_value("tls")
    shoot(page, tmp_path, "imap-wrong-password")
    assert address not in addresses(admin_api)

    # The right one: the card appears, active, saying where it reads.
    page.get_by_label("App password").fill(password)
    page.get_by_role("button", name="Test and connect").click()
    expect(page.get_by_text("Mailbox connected.")).to_be_visible()
    mailbox = card(page, address)
    expect(mailbox).to_be_visible()
    expect(mailbox.locator(".badge")).to_have_text("Active")
    expect(mailbox.locator(".server")).to_contain_text(f"localhost:{dovecot.tls_port} (TLS)")
    expect(mailbox.get_by_role("button", name="Poll now")).to_be_visible()
    expect(page.locator("#imap-connect")).to_be_hidden()
    assert addresses(admin_api).count(address) == 1
    shoot(page, tmp_path, "imap-connected")

    # The password changes on the server: the card turns Auth Expired and asks for the new one.
    mailbox_id = mailbox.get_attribute("data-mailbox-id")
    new_password = password + "-new"
    dovecot.set_password(user, new_password)
    assert admin_api.post(f"/api/v1/mailboxes/{mailbox_id}/poll").status_code == 202
    expect(mailbox.locator(".badge")).to_have_text("Auth Expired", timeout=25_000)
    field = mailbox.get_by_label(f"New password for {address}")
    expect(field).to_be_visible()
    expect(mailbox.get_by_role("button", name="Poll now")).to_be_hidden()
    field.fill("still-wrong")
    mailbox.get_by_role("button", name="Reconnect").click()
    mailbox = card(page, address)
    expect(mailbox.locator(f"#reconnect-error-{mailbox_id}")).to_be_visible()
    expect(mailbox.get_by_label(f"New password for {address}")).to_have_value("")
    shoot(page, tmp_path, "imap-reconnect-refused")
    mailbox.get_by_label(f"New password for {address}").fill(new_password)
    mailbox.get_by_role("button", name="Reconnect").click()
    expect(page.get_by_text("Reconnected.")).to_be_visible()
    mailbox = card(page, address)
    expect(mailbox.locator(".badge")).to_have_text("Active")
    expect(page.locator("article.mailbox", has_text=address)).to_have_count(1)
    shoot(page, tmp_path, "imap-reconnected")
    page.close()
