"""Connecting an IMAP mailbox in headless Debian Chromium against `deskclone dev` and its
sandbox Dovecot (a real one, emulator/dovecot.py; over TLS with the certificate dev trusts):
a wrong password refused at its field with nothing stored, the card once connected, and
Reconnect with a new password after the server's password changed."""

from __future__ import annotations

import imaplib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from emulator.dovecot import Dovecot
from tests.devstack import running_dev
from tests.fakes import make_email
from tests.pages.test_browser import card, eventually, no_script_errors, shoot, sign_in

__all__ = ["no_script_errors"]  # the autouse fixture: script errors fail these tests too


@pytest.fixture(scope="module")
def dev() -> Iterator[dict[str, Any]]:
    """`deskclone dev` in a data dir Dovecot's unprivileged processes can reach (pytest's own
    temp dirs are closed to other users), so it runs its sandbox Dovecot."""
    data_dir = Path(tempfile.mkdtemp(prefix="deskclone-pages-imap-"))
    data_dir.chmod(0o755)
    try:
        with running_dev(data_dir) as facts:
            yield facts
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def sandbox(dev: dict[str, Any]) -> Dovecot:
    """`deskclone dev`'s own sandbox Dovecot (deskclone/dev_imap.py), run by dev."""
    facts = dev["imap"]
    assert facts is not None, dev["imap_note"]
    root = Path(facts["ca_file"]).parent
    return Dovecot(root, port=facts["port"], tls_port=facts["tls_port"])


def change_password(server: Dovecot, user: str, password: str) -> None:
    """On the server, and wait until Dovecot has reread its passwd file (within a second)."""
    server.set_password(user, password)

    def accepted() -> bool:
        try:
            with server.session(user):
                return True
        except imaplib.IMAP4.error:
            return False

    eventually(accepted, "the new password to count")


def open_form(page: Page) -> None:
    page.goto("/sources")
    page.get_by_role("link", name="Connect another mail server (IMAP)").click()
    expect(page.locator("#imap-connect")).to_be_visible()


def fill_server(page: Page, server: Dovecot, user: str, password: str) -> None:
    page.get_by_label("Mail provider").select_option("other")
    page.get_by_label("Email address").fill(user)
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
    sandbox: Dovecot,
    tmp_path: Path,
) -> None:
    user, password = dev["imap"]["username"], dev["imap"]["password"]
    address = dev["imap"]["address"]
    page = context.new_page()
    sign_in(page, dev)

    # A wrong password: the server's refusal at the password field, nothing stored.
    open_form(page)
    fill_server(page, sandbox, user, "not-the-password")
    page.get_by_role("button", name="Test and connect").click()
    error = page.locator("#imap-password-error")
    expect(error).to_be_visible()
    expect(page.get_by_label("App password")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("App password")).to_have_value("")
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email address")).to_have_value(address)
    expect(page.get_by_label("Port")).to_have_value(str(sandbox.tls_port))
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
    expect(mailbox.locator(".server")).to_contain_text(f"localhost:{sandbox.tls_port} (TLS)")
    expect(mailbox.get_by_role("button", name="Poll now")).to_be_visible()
    expect(page.locator("#imap-connect")).to_be_hidden()
    assert addresses(admin_api).count(address) == 1

    # Mail delivered to the server: "Poll now", and the card's count changes on the open page.
    sandbox.append(user, make_email(subject="Printer on fire"))
    mailbox.get_by_role("button", name="Poll now").click()
    mailbox = card(page, address)
    expect(mailbox.locator('[data-field="count-tickets_created"]')).to_have_text("1")
    shoot(page, tmp_path, "imap-connected")

    # The password changes on the server: the card turns Auth Expired and asks for the new one.
    mailbox_id = mailbox.get_attribute("data-mailbox-id")
    new_password = password + "-new"
    change_password(sandbox, user, new_password)
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
