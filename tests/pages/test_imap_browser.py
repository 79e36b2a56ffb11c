"""The IMAP part of the Sources page in headless Debian Chromium against `deskclone dev`:
the form opens in place, presets fill the server, and without JavaScript it is a plain form.
Against a real Dovecot: test_imap_dovecot_browser.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, expect

from tests.pages.test_browser import no_script_errors, shoot, sign_in

__all__ = ["no_script_errors"]  # the autouse fixture: script errors fail these tests too

ADDRESS = "help@imap.example"


def test_the_form_opens_in_place_and_a_preset_fills_the_server(
    context: BrowserContext, dev: dict[str, Any], tmp_path: Path
) -> None:
    page = context.new_page()
    sign_in(page, dev)
    page.goto("/sources")
    form = page.locator("#imap-connect")
    expect(form).to_be_hidden()
    page.get_by_label("Account address").fill("help@gmx.com")  # typed above, then IMAP
    opener = page.get_by_role("link", name="Connect another mail server (IMAP)")
    expect(opener).to_have_attribute("aria-expanded", "false")
    opener.click()
    expect(form).to_be_visible()
    expect(page).to_have_url(f"{dev['api_url']}/sources")  # opened in place
    expect(opener).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_label("Mail provider")).to_be_focused()
    expect(page.get_by_label("Email address")).to_have_value("help@gmx.com")
    expect(page.get_by_label("IMAP server")).to_have_value("imap.gmx.com")

    page.get_by_label("Mail provider").select_option(label="Fastmail (imap.fastmail.com)")
    expect(page.get_by_label("IMAP server")).to_have_value("imap.fastmail.com")
    expect(page.get_by_label("Port")).to_have_value("993")
    expect(page.get_by_label("Security")).to_have_value("tls")
    page.get_by_label("Mail provider").select_option(label="Yahoo Mail (imap.mail.yahoo.com)")
    expect(page.get_by_label("IMAP server")).to_have_value("imap.mail.yahoo.com")
    page.get_by_label("Mail provider").select_option(label="Other mail server")
    expect(page.get_by_label("IMAP server")).to_have_value("")  # no preset's host left over
    expect(page.get_by_label("IMAP server")).to_be_focused()

    page.get_by_label("Email address").fill(ADDRESS)
    expect(page.get_by_label("Username")).to_have_attribute("placeholder", ADDRESS)
    expect(page.get_by_label("IMAP server")).to_have_value("")  # an unknown domain

    # An address at a known host's domain picks its preset as it is typed.
    page.get_by_label("Email address").fill("help@icloud.com")
    expect(page.get_by_label("Mail provider")).to_have_value("icloud")
    expect(page.get_by_label("IMAP server")).to_have_value("imap.mail.me.com")
    page.get_by_label("Email address").fill("help@fastmail.com")
    expect(page.get_by_label("IMAP server")).to_have_value("imap.fastmail.com")
    page.get_by_label("IMAP server").fill("mail.acme.example")  # a server of one's own
    page.get_by_label("Email address").fill("help@zoho.com")
    expect(page.get_by_label("IMAP server")).to_have_value("mail.acme.example")
    shoot(page, tmp_path, "imap-form")
    page.get_by_role("link", name="Cancel").click()
    expect(form).to_be_hidden()
    expect(opener).to_be_focused()
    page.close()


def test_without_javascript_it_is_a_plain_form(
    browser: Browser, dev: dict[str, Any], tmp_path: Path
) -> None:
    context = browser.new_context(base_url=dev["api_url"], java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    sign_in(page, dev)
    page.goto("/sources")
    page.get_by_role("link", name="Connect another mail server (IMAP)").click()
    expect(page).to_have_url(f"{dev['api_url']}/sources/imap#imap-connect")
    expect(page.locator("#imap-connect")).to_be_visible()
    page.get_by_label("Mail provider").select_option(label="Zoho Mail (imap.zoho.com)")
    page.get_by_label("Email address").fill(ADDRESS)
    page.get_by_role("button", name="Test and connect").click()

    # The server filled the preset's server, kept the address, and asks for the password.
    expect(page.get_by_role("alert")).to_contain_text("Not connected")
    expect(page.get_by_label("IMAP server")).to_have_value("imap.zoho.com")
    expect(page.get_by_label("Email address")).to_have_value(ADDRESS)
    password = page.get_by_label("App password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_be_focused()  # the first refused field has the keyboard
    expect(page.locator("#imap-password-error")).to_have_text(
        "Enter the mailbox's password or app password."
    )
    shoot(page, tmp_path, "imap-form-no-js")
    context.close()
