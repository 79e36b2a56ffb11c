"""The pages in a real browser (headless Debian Chromium) against `deskclone dev` and its
emulator: sign in, connect Gmail by clicking, watch a revoked mailbox turn Auth Expired
without a reload, Reconnect, settings errors, the ledger's reasons, the form embedded on
another origin becoming a ticket, the thread, and an injection attempt shown as text.

Each test saves a screenshot of every page it visits under its tmp dir; checks are made on
what is visible, not only on what is in the DOM. Waits are on conditions, never sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Locator,
    Page,
    WebError,
    expect,
)

from tests.fakes import make_email
from tests.pages.conftest import Emulator

ADDRESS = "support@acme.example"
INJECTION = '<script>alert("x")</script><img src=x onerror=alert(1)>'

expect.set_options(timeout=15_000)


@pytest.fixture(autouse=True)
def no_script_errors(context: BrowserContext) -> Iterator[list[str]]:
    """Every browser test also fails on a script error or a Content-Security-Policy refusal."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and ("Content Security Policy" in message.text):
            problems.append(message.text)

    def on_error(error: WebError) -> None:
        problems.append(str(error.error))

    context.on("console", on_console)
    context.on("weberror", on_error)
    yield problems
    context.remove_listener("console", on_console)
    context.remove_listener("weberror", on_error)
    assert problems == []


def shoot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=folder / f"{name}.png", full_page=True)


def eventually(check: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def sign_in(page: Page, dev: dict[str, Any], folder: Path | None = None) -> None:
    page.goto("/tickets")
    if "/login" not in page.url:
        return
    token = page.get_by_label("Admin token")
    expect(token).to_be_visible()
    expect(token).to_be_focused()  # autofocus: the keyboard is ready at once
    if folder is not None:
        shoot(page, folder, "login")
    page.keyboard.type(dev["admin_token"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Tickets", exact=True)).to_be_visible()


def card(page: Page, address: str) -> Locator:
    return page.locator("article.mailbox", has=page.get_by_role("heading", name=address))


def connect_by_api(admin_api: httpx.Client, emulator: Emulator, address: str) -> str:
    """A second mailbox, connected behind the pages' back (what a browser would do)."""
    started = admin_api.post("/api/v1/mailboxes", json={"provider": "gmail", "login_hint": address})
    approved = emulator.client.get(started.json()["authorization_url"])
    assert approved.status_code in (302, 303), approved.text
    assert admin_api.get(approved.headers["location"]).status_code == 303
    items = admin_api.get("/api/v1/mailboxes").json()["items"]
    mailbox_id: str = next(m["id"] for m in items if m["address"] == address)
    return mailbox_id


def test_sources_connect_expire_reconnect_and_settings(
    context: BrowserContext,
    dev: dict[str, Any],
    emulator: Emulator,
    admin_api: httpx.Client,
    tmp_path: Path,
) -> None:
    page = context.new_page()
    page.goto("/sources")
    expect(page).to_have_url(f"{dev['api_url']}/login?next=/sources")
    sign_in(page, dev, tmp_path)

    # Connect by clicking: the emulator's consent screen signs in as the address typed.
    page.goto("/sources")
    expect(page.get_by_text("No mailbox is connected yet.")).to_be_visible()
    page.get_by_label("Account address").fill(ADDRESS)
    page.get_by_role("button", name="Connect Google Account").click()
    expect(page).to_have_url(f"{dev['api_url']}/sources")
    mailbox = card(page, ADDRESS)
    expect(mailbox).to_be_visible()
    expect(mailbox.locator(".badge")).to_have_text("Active")
    expect(mailbox.get_by_role("button", name="Poll now")).to_be_visible()
    expect(mailbox.get_by_role("button", name="Reconnect")).to_be_hidden()
    mailbox_id = mailbox.get_attribute("data-mailbox-id")
    shoot(page, tmp_path, "sources-connected")

    # Where "Connect Outlook Account" leads (Microsoft's sign-in) is checked over HTTP in
    # test_sources_page.py: the sandbox's certificate is not one this browser trusts.
    expect(page.get_by_role("button", name="Connect Outlook Account")).to_be_visible()

    # Settings: one invalid sender is refused with a message, and nothing is saved.
    mailbox = card(page, ADDRESS)
    mailbox.get_by_text("Settings", exact=False).first.click()
    senders = mailbox.get_by_label("Allowed senders")
    expect(senders).to_be_visible()
    senders.fill("@customer.example\nnot an address")
    mailbox.get_by_label("Check for new mail every (seconds)").fill("3600")
    mailbox.get_by_role("button", name="Save settings").click()
    error = card(page, ADDRESS).locator(".field.has-error .error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Line 2: 'not an address' is not an email address")
    shoot(page, tmp_path, "sources-settings-error")
    mailbox = card(page, ADDRESS)
    mailbox.get_by_label("Allowed senders").fill("@customer.example")
    mailbox.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(card(page, ADDRESS).get_by_text("1 hour")).to_be_visible()

    # Mail arrives; "Poll now"; the counts change on the open page, and Activity says why.
    emulator.deliver(ADDRESS, make_email(subject="Printer on fire"))
    emulator.deliver(ADDRESS, make_email(subject="Cheap watches", sender="eve@spam.example"))
    card(page, ADDRESS).get_by_role("button", name="Poll now").click()
    expect(page.get_by_text("Checking for new mail now.")).to_be_visible()
    mailbox = card(page, ADDRESS)
    expect(mailbox.locator('[data-field="count-tickets_created"]')).to_have_text("1")
    expect(mailbox.locator('[data-field="count-skipped"]')).to_have_text("1")
    mailbox.get_by_role("link", name="Activity").click()
    expect(page.get_by_role("heading", name=f"Activity of {ADDRESS}")).to_be_visible()
    reason = page.locator(".ledger-row", has_text="Cheap watches").locator(".ledger-reason")
    expect(reason).to_be_visible()
    expect(reason).to_contain_text("eve@spam.example is not in the allowed senders list")
    expect(
        page.locator(".ledger-row", has_text="Printer on fire").get_by_role("link")
    ).to_be_visible()
    shoot(page, tmp_path, "activity")

    # Revoked at Google: the red badge appears on the open page, without a reload.
    page.goto("/sources")
    page.evaluate("window.__still_this_page = true")
    emulator.revoke(ADDRESS)
    assert admin_api.post(f"/api/v1/mailboxes/{mailbox_id}/poll").status_code == 202
    mailbox = card(page, ADDRESS)
    badge = mailbox.locator(".badge")
    expect(badge).to_have_text("Auth Expired", timeout=25_000)
    expect(badge).to_be_visible()
    expect(badge).to_have_css("background-color", "rgb(180, 35, 24)")
    assert page.evaluate("window.__still_this_page") is True
    expect(mailbox.get_by_role("button", name="Reconnect")).to_be_visible()
    expect(mailbox.get_by_role("button", name="Poll now")).to_be_hidden()
    expect(mailbox.get_by_role("button", name="Connect Google Account")).to_have_count(0)
    expect(mailbox.locator('[data-field="problem"]')).to_contain_text("Reconnect")
    expect(page.locator("#live-status")).to_have_text(f"{ADDRESS}: Auth Expired")
    shoot(page, tmp_path, "sources-auth-expired")

    # Reconnect on the same card: active again, every setting kept, no second card.
    mailbox.get_by_role("button", name="Reconnect").click()
    expect(page).to_have_url(f"{dev['api_url']}/sources")
    mailbox = card(page, ADDRESS)
    expect(mailbox.locator(".badge")).to_have_text("Active")
    expect(page.locator("article.mailbox")).to_have_count(1)
    mailbox.get_by_text("Settings", exact=False).first.click()
    expect(mailbox.get_by_label("Allowed senders")).to_have_value("@customer.example")
    expect(mailbox.get_by_label("Check for new mail every (seconds)")).to_have_value("3600")
    shoot(page, tmp_path, "sources-reconnected")
    page.close()


def test_form_embedded_on_another_site_becomes_a_ticket(
    context: BrowserContext,
    dev: dict[str, Any],
    other_site: tuple[str, Path],
    tmp_path: Path,
) -> None:
    origin, root = other_site
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dev["api_url"])
    page = context.new_page()
    sign_in(page, dev)

    # The Forms tab: the code, a copy button that works, and the form previewed live.
    page.goto("/sources/forms")
    snippet = page.get_by_label("Embed code (recommended)")
    expect(snippet).to_be_visible()
    code = snippet.input_value()
    assert code.startswith(f'<script src="{dev["api_url"]}/static/embed.js"')
    expect(page.get_by_label("Iframe code")).to_be_visible()
    page.get_by_role("button", name="Copy embed code").click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == code
    preview = page.locator("#form-preview")
    expect(preview.get_by_label("Email address")).to_be_visible()
    preview.get_by_role("button", name="Send").click()
    expect(preview.get_by_text("Enter a valid email address")).to_be_visible()
    shoot(page, tmp_path, "forms-tab")

    # Another origin's page with the snippet pasted into it.
    (root / "index.html").write_text(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Acme shop</title>"
        "<link rel='icon' href='data:,'>"
        "</head><body><h1>Acme shop</h1><p>Questions? Write to us.</p>"
        f"{code}</body></html>"
    )
    shop = context.new_page()
    shop.goto(f"{origin}/index.html")
    form = shop.locator(".deskclone-support-form")
    expect(form.get_by_role("heading", name="Contact support")).to_be_visible()
    form.get_by_label("Your name").fill("Ann Lee")
    form.get_by_label("Email address").fill("ann@")
    form.get_by_label("Subject").fill("Embedded form question")
    form.get_by_role("button", name="Send").click()
    email_error = form.get_by_text("Enter a valid email address, like ann@example.com.")
    expect(email_error).to_be_visible()
    expect(form.get_by_label("Email address")).to_be_focused()
    expect(form.get_by_text("Tell us how we can help.")).to_be_visible()
    shoot(shop, tmp_path, "other-site-errors")
    form.get_by_label("Email address").fill("ann@customer.example")
    form.get_by_label("How can we help?").fill("The checkout page keeps spinning.")
    form.get_by_role("button", name="Send").click()
    got_it = form.get_by_role("heading", name="We got it: #")
    expect(got_it).to_be_visible()
    number = got_it.inner_text().rsplit("#", 1)[1]
    shoot(shop, tmp_path, "other-site-sent")
    shop.close()

    # In the queue, then its thread.
    page.goto("/tickets")
    row = page.locator(".queue-item", has_text="Embedded form question")
    expect(row).to_be_visible()
    expect(row.locator(".queue-number")).to_have_text(f"#{number}")
    expect(row.get_by_text("Form", exact=True)).to_be_visible()
    shoot(page, tmp_path, "tickets")
    page.get_by_label("Source").select_option("form")
    page.get_by_label("Search").fill("spinning")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".queue-item")).to_have_count(1)
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name=f"#{number} Embedded form question")).to_be_visible()
    message = page.locator(".message")
    expect(message).to_have_count(1)
    expect(message.get_by_text("The checkout page keeps spinning.")).to_be_visible()
    expect(message.locator(".author")).to_contain_text("Ann Lee")
    expect(message.locator("time")).to_be_visible()
    page.get_by_label("Status").select_option("solved")
    page.get_by_role("button", name="Update status").click()
    expect(page.get_by_text("Status updated.")).to_be_visible()
    shoot(page, tmp_path, "ticket")
    page.close()


def test_a_script_injection_email_renders_as_text(
    context: BrowserContext,
    dev: dict[str, Any],
    emulator: Emulator,
    admin_api: httpx.Client,
    tmp_path: Path,
) -> None:
    address = "injection@acme.example"
    mailbox_id = connect_by_api(admin_api, emulator, address)
    emulator.deliver(address, make_email(to=address, subject=INJECTION, body=INJECTION))
    admin_api.post(f"/api/v1/mailboxes/{mailbox_id}/poll")
    eventually(
        lambda: admin_api.get("/api/v1/tickets", params={"q": "onerror"}).json()["items"],
        "the injection ticket",
    )
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    sign_in(page, dev)
    page.goto("/tickets?q=onerror")
    link = page.locator(".queue-item .queue-title")
    expect(link).to_have_text(INJECTION)
    link.click()
    expect(page.locator("h1 .ticket-title")).to_have_text(INJECTION)
    expect(page.locator(".message-body")).to_contain_text(INJECTION)
    expect(page.locator(".message-body")).to_be_visible()
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("main script").count() == 0
    shoot(page, tmp_path, "ticket-injection")
    assert dialogs == []
    page.close()


@pytest.mark.parametrize("path", ["/tickets", "/sources", "/sources/forms"])
def test_pages_fit_a_phone(
    context: BrowserContext, dev: dict[str, Any], tmp_path: Path, path: str
) -> None:
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, dev)
    page.goto(path)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.locator("h1")).to_be_visible()
    # Nothing sticks out sideways: no horizontal scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The header keeps to one row.
    brand, signout = page.locator(".brand").bounding_box(), page.locator(".signout").bounding_box()
    assert brand is not None and signout is not None and abs(brand["y"] - signout["y"]) < 16
    # The keyboard reaches the skip link first, and it shows when focused.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    expect(page.get_by_role("link", name="Skip to content")).to_be_visible()
    shoot(page, tmp_path, "phone" + path.replace("/", "-"))
    page.close()


def test_a_chat_escalation_reads_as_a_conversation(
    context: BrowserContext, dev: dict[str, Any], tmp_path: Path
) -> None:
    escalated = httpx.post(
        f"{dev['api_url']}/api/v1/public/{dev['agent_public_key']}/escalations",
        json={
            "conversation_id": "browser-test-chat",
            "visitor": {"name": "Bo Visitor", "email": "bo@customer.example"},
            "messages": [
                {"role": "visitor", "content": "Can I get a refund?", "at": "2026-11-25T10:00:00Z"},
                {
                    "role": "assistant",
                    "content": "I cannot issue refunds myself.",
                    "at": "2026-11-25T10:00:05Z",
                },
                {"role": "visitor", "content": "A person, please.", "at": "2026-11-25T10:00:30Z"},
            ],
            "reason": "The visitor asked for a person",
        },
        timeout=15,
    )
    assert escalated.status_code == 200, escalated.text
    number = escalated.json()["ticket_number"]
    page = context.new_page()
    sign_in(page, dev)
    page.goto("/tickets?source=widget")
    page.locator(".queue-item", has_text=f"#{number}").get_by_role("link").click()
    thread = page.locator("ol.thread.conversation")
    expect(thread).to_be_visible()
    visitor, assistant = thread.locator(".role-visitor"), thread.locator(".role-assistant")
    expect(visitor).to_have_count(2)
    expect(assistant).to_have_count(1)
    expect(visitor.first).to_contain_text("Visitor")
    expect(visitor.first).to_contain_text("Can I get a refund?")
    expect(assistant).to_contain_text("Assistant")
    expect(assistant).to_contain_text("I cannot issue refunds myself.")
    expect(page.get_by_text("The visitor asked for a person")).to_be_visible()
    # Visitor on the left, assistant on the right, in the order they spoke.
    left, right = visitor.first.bounding_box(), assistant.bounding_box()
    assert left is not None and right is not None
    assert left["x"] < right["x"] and left["y"] < right["y"]
    shoot(page, tmp_path, "ticket-chat")
    page.close()


def test_the_pages_work_with_javascript_off(
    browser: Browser,
    dev: dict[str, Any],
    emulator: Emulator,
    admin_api: httpx.Client,
    tmp_path: Path,
) -> None:
    address = "no-javascript@acme.example"
    connect_by_api(admin_api, emulator, address)
    made = httpx.post(
        f"{dev['api_url']}/api/v1/public/{dev['agent_public_key']}/form",
        json={"email": "kay@customer.example", "subject": "No script", "description": "Plain"},
        timeout=15,
    )
    assert made.status_code == 201, made.text
    context = browser.new_context(base_url=dev["api_url"], java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/sources")
    page.get_by_label("Admin token").fill(dev["admin_token"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sources", exact=True)).to_be_visible()
    mailbox = card(page, address)
    mailbox.locator("summary", has_text="Settings").click()
    mailbox.get_by_label("Check for new mail every (seconds)").fill("1800")
    mailbox.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(card(page, address).get_by_text("30 minutes")).to_be_visible()
    page.goto("/tickets")
    page.get_by_label("Search").fill("No script")
    page.get_by_role("button", name="Filter").click()
    page.locator(".queue-item").get_by_role("link").click()
    page.get_by_label("Status").select_option("pending")
    page.get_by_role("button", name="Update status").click()
    expect(page.get_by_text("Status updated.")).to_be_visible()
    shoot(page, tmp_path, "ticket-no-javascript")
    context.close()
