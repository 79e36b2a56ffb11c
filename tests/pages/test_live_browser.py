"""The live pages and the Webhooks tab in headless Chromium against `deskclone dev`: a new
ticket appears at the top of an open queue and its status change shows, a Sources card goes
Auth Expired and back without a reload, and an endpoint added on the Webhooks tab receives
signed deliveries, is switched off by a 410 with a warning, and a failed delivery is retried
with its button."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect
from standardwebhooks.webhooks import Webhook

from bench.receiver import Receiver, running_receiver
from tests.fakes import make_email
from tests.pages.conftest import Emulator
from tests.pages.test_browser import (
    card,
    connect_by_api,
    eventually,
    no_script_errors,
    shoot,
    sign_in,
)

__all__ = ["no_script_errors"]  # the autouse fixture: script errors fail these tests too

expect.set_options(timeout=15_000)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def submit_form(dev: dict[str, Any], subject: str) -> int:
    made = httpx.post(
        f"{dev['api_url']}/api/v1/public/{dev['agent_public_key']}/form",
        json={"email": "kay@customer.example", "subject": subject, "description": "Help"},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    number: int = made.json()["ticket_number"]
    return number


def still_the_same_page(page: Page) -> None:
    assert page.evaluate("window.__still_this_page") is True


def test_a_new_ticket_and_its_status_change_show_on_the_open_queue(
    context: BrowserContext, dev: dict[str, Any], admin_api: httpx.Client, tmp_path: Path
) -> None:
    page = context.new_page()
    sign_in(page, dev)
    page.goto("/tickets")
    page.evaluate("window.__still_this_page = true")
    number = submit_form(dev, "Live queue question")
    first = page.locator(".queue-item").first
    expect(first.locator(".queue-number")).to_have_text(f"#{number}")
    expect(first.locator(".queue-title")).to_have_text("Live queue question")
    expect(first.locator(".badge-ticket-open")).to_have_text("Open")
    expect(page.locator("#live-status")).to_contain_text(f"New ticket #{number}")
    ticket_id = first.get_attribute("data-ticket-id")
    patched = admin_api.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "solved"})
    assert patched.status_code == 200, patched.text
    row = page.locator(f'.queue-item[data-ticket-id="{ticket_id}"]')
    expect(row.locator(".badge-ticket-solved")).to_have_text("Solved")
    expect(page.locator(f'.queue-item[data-ticket-id="{ticket_id}"]')).to_have_count(1)
    still_the_same_page(page)
    shoot(page, tmp_path, "tickets-live")
    page.close()


def test_a_card_goes_auth_expired_and_back_without_a_reload(
    context: BrowserContext,
    dev: dict[str, Any],
    emulator: Emulator,
    admin_api: httpx.Client,
    tmp_path: Path,
) -> None:
    address = "live-card@acme.example"
    mailbox_id = connect_by_api(admin_api, emulator, address)
    page = context.new_page()
    sign_in(page, dev)
    page.goto("/sources")
    page.evaluate("window.__still_this_page = true")
    badge = card(page, address).locator(".badge")
    expect(badge).to_have_text("Active")
    # Mail that becomes a ticket moves the count, from the event.
    emulator.deliver(address, make_email(to=address, subject="Counted live"))
    assert admin_api.post(f"/api/v1/mailboxes/{mailbox_id}/poll").status_code == 202
    expect(card(page, address).locator('[data-field="count-tickets_created"]')).to_have_text("1")
    emulator.revoke(address)
    assert admin_api.post(f"/api/v1/mailboxes/{mailbox_id}/poll").status_code == 202
    expect(badge).to_have_text("Auth Expired")
    expect(card(page, address).get_by_role("button", name="Reconnect")).to_be_visible()
    shoot(page, tmp_path, "card-expired-live")
    # Reconnected elsewhere (another tab, a colleague): this page sees it come back.
    started = admin_api.post(f"/api/v1/mailboxes/{mailbox_id}/reconnect")
    approved = emulator.client.get(started.json()["authorization_url"])
    assert admin_api.get(approved.headers["location"]).status_code == 303
    expect(badge).to_have_text("Active")
    expect(card(page, address).get_by_role("button", name="Poll now")).to_be_visible()
    still_the_same_page(page)
    shoot(page, tmp_path, "card-back-live")
    page.close()


def test_the_webhooks_tab_end_to_end(
    context: BrowserContext, dev: dict[str, Any], receiver: Receiver, tmp_path: Path
) -> None:
    page = context.new_page()
    sign_in(page, dev)
    page.goto("/sources/webhooks")
    expect(page.get_by_text("No endpoint yet.")).to_be_visible()
    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_label("Description").fill("Team chat")
    page.get_by_role("button", name="Add endpoint").click()
    secret_box = page.get_by_label("Secret", exact=True)
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    assert secret.startswith("whsec_")
    expect(page.get_by_text("not shown again")).to_be_visible()
    shoot(page, tmp_path, "webhooks-secret-once")

    number = submit_form(dev, "Webhook question")
    [request] = receiver.wait_for(1, seconds=30)
    event = Webhook(secret).verify(request.body, request.headers)
    assert event["type"] == "ticket.created"
    assert event["data"]["ticket"]["number"] == number

    page.goto("/sources/webhooks")
    expect(page.get_by_label("Secret", exact=True)).to_have_count(0)  # never again
    endpoint = page.locator("article.webhook", has_text=receiver.url)
    delivered = endpoint.locator("tr.delivery").first
    expect(delivered.locator(".badge")).to_have_text("Succeeded")
    expect(delivered.locator(".attempts")).to_have_text("1")

    # The receiver says it is gone: the endpoint is switched off, with a warning.
    receiver.status = 410
    submit_form(dev, "Nobody there")
    receiver.wait_for(2, seconds=30)

    def warned() -> bool:
        page.goto("/sources/webhooks")
        return page.get_by_text("answered 410 Gone").count() > 0

    eventually(warned, "the 410 warning")
    endpoint = page.locator("article.webhook", has_text=receiver.url)
    failed = endpoint.locator("tr.delivery-failed")
    expect(failed).to_have_count(1)
    expect(failed.get_by_role("button", name="Retry")).to_be_disabled()
    shoot(page, tmp_path, "webhooks-gone")

    # Fixed and switched on again; Retry delivers the failed one.
    receiver.status = 200
    endpoint.get_by_role("button", name="Switch on").click()
    expect(page.get_by_text("Switched on.")).to_be_visible()
    page.locator("tr.delivery-failed").get_by_role("button", name="Retry").click()
    expect(page.get_by_text("Delivering it again now.")).to_be_visible()
    receiver.wait_for(3, seconds=30)

    def all_succeeded() -> bool:
        page.goto("/sources/webhooks")
        rows = page.locator("article.webhook tr.delivery")
        return rows.count() == 2 and page.locator("tr.delivery-succeeded").count() == 2

    eventually(all_succeeded, "the retried delivery to succeed")
    assert receiver.event_ids()[1] == receiver.event_ids()[2]  # the same event, again
    shoot(page, tmp_path, "webhooks-retried")
    page.close()
