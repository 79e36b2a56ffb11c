"""Tickets > Sources over HTTP: cards, connect, settings validation, activity, status JSON."""

from __future__ import annotations

import re

import httpx
from markupsafe import escape

from api.pages.forms_tab import embed_code
from tests.conftest import make_agent
from tests.pages.conftest import Pages


async def test_each_mailbox_has_a_card_with_its_badge_and_buttons(signed_in: Pages) -> None:
    signed_in.mailbox("help@acme.example", allowed=["@customer.example"])
    expired = signed_in.mailbox(
        "billing@acme.example",
        status="auth_expired",
        last_error="Google no longer accepts this connection. Click Reconnect to sign in again.",
    )
    html = (await signed_in.client.get("/sources")).text
    assert html.count('class="card mailbox') == 2
    card = html[html.index(f'id="mailbox-{expired.id}"') :]
    assert '<span class="badge badge-auth_expired" data-field="status">Auth Expired</span>' in card
    assert "Google no longer accepts this connection" in card
    reconnect = re.search(
        rf'action="/sources/{expired.id}/reconnect" data-show-when="auth_expired"(\s*hidden)?>',
        card,
    )
    assert reconnect is not None and reconnect.group(1) is None  # shown on the expired card
    assert 'badge badge-active" data-field="status">Active<' in html
    assert "Connect Google Account" in html and "Connect Outlook Account" in html
    assert "1 allowed sender" in html
    # Labelled controls.
    for control in re.findall(r'<(?:input|textarea|select) id="([^"]+)"', html):
        assert f'<label for="{control}"' in html, control


async def test_connect_redirects_to_the_consent_screen_with_the_login_hint(
    signed_in: Pages,
) -> None:
    response = await signed_in.post(
        "/sources/connect", {"provider": "gmail", "login_hint": "help@acme.example"}
    )
    assert response.status_code == 303
    url = httpx.URL(response.headers["location"])
    assert str(url).startswith(signed_in.settings.google_auth_uri)
    assert url.params["login_hint"] == "help@acme.example" and url.params["state"]


async def test_outlook_goes_to_microsoft_and_bad_addresses_are_explained(signed_in: Pages) -> None:
    outlook = await signed_in.post("/sources/connect", {"provider": "outlook", "login_hint": ""})
    assert outlook.status_code == 303
    assert outlook.headers["location"].startswith(signed_in.settings.microsoft_authority)
    bad = await signed_in.post(
        "/sources/connect", {"provider": "gmail", "login_hint": "not an address"}
    )
    assert bad.status_code == 422 and "Enter the whole email address" in bad.text
    assert 'value="not an address"' in bad.text  # what was typed stays
    assert 'aria-describedby="login_hint-hint connect-error"' in bad.text
    assert 'aria-invalid="true"' in bad.text


async def test_settings_with_an_invalid_sender_show_the_error_and_keep_the_input(
    signed_in: Pages,
) -> None:
    mailbox = signed_in.mailbox("help@acme.example")
    typed = "ann@customer.example\nnot an address\n@partner.example"
    response = await signed_in.post(
        f"/sources/{mailbox.id}/settings",
        {"allowed_senders": typed, "poll_interval_seconds": "5"},
    )
    assert response.status_code == 422
    html = response.text
    assert "Line 2: &#39;not an address&#39; is not an email address" in html
    assert "Enter a whole number of seconds from 10 to 86400." in html
    assert typed.replace("\n", "\n") in html and 'value="5"' in html
    assert '<details class="settings" open>' in html
    assert 'aria-invalid="true"' in html
    after = (await signed_in.client.get("/sources")).text
    assert "everyone" in after  # nothing was saved


async def test_valid_settings_are_saved_normalised(signed_in: Pages) -> None:
    mailbox = signed_in.mailbox("help@acme.example")
    response = await signed_in.post(
        f"/sources/{mailbox.id}/settings",
        {
            "allowed_senders": " Ann@Customer.example \n\n@Partner.example",
            "poll_interval_seconds": "120",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/sources?done=saved#mailbox-{mailbox.id}"
    html = (await signed_in.client.get("/sources?done=saved")).text
    assert "Settings saved." in html
    assert "ann@customer.example\n@partner.example</textarea>" in html
    assert "2 minutes" in html


async def test_poll_on_an_expired_mailbox_says_reconnect(signed_in: Pages) -> None:
    mailbox = signed_in.mailbox("help@acme.example", status="auth_expired")
    response = await signed_in.post(f"/sources/{mailbox.id}/poll", {})
    assert response.status_code == 409 and "must be reconnected" in response.text


async def test_reconnect_goes_to_consent_as_the_cards_own_address(signed_in: Pages) -> None:
    mailbox = signed_in.mailbox("help@acme.example", status="auth_expired")
    response = await signed_in.post(f"/sources/{mailbox.id}/reconnect", {})
    assert response.status_code == 303
    assert httpx.URL(response.headers["location"]).params["login_hint"] == "help@acme.example"


async def test_disconnect_removes_the_card(signed_in: Pages) -> None:
    mailbox = signed_in.mailbox("help@acme.example")
    response = await signed_in.post(f"/sources/{mailbox.id}/disconnect", {})
    assert response.status_code == 303
    html = (await signed_in.client.get(response.headers["location"])).text
    assert "Mailbox disconnected. Its tickets stay in the queue." in html
    assert "help@acme.example" not in html
    again = await signed_in.post(f"/sources/{mailbox.id}/disconnect", {})
    assert again.status_code == 404


async def test_another_workspaces_mailbox_is_not_found(signed_in: Pages) -> None:
    other, _ = make_agent(signed_in.engine, "Other")
    saved = signed_in.agent
    signed_in.agent = other
    foreign = signed_in.mailbox("theirs@elsewhere.example")
    signed_in.agent = saved
    assert (await signed_in.client.get(f"/sources/{foreign.id}/activity")).status_code == 404
    response = await signed_in.post(
        f"/sources/{foreign.id}/settings", {"allowed_senders": "", "poll_interval_seconds": "60"}
    )
    assert response.status_code == 404
    assert "theirs@elsewhere.example" not in (await signed_in.client.get("/sources")).text


async def test_activity_answers_why_an_email_is_not_a_ticket(signed_in: Pages) -> None:
    mailbox = signed_in.mailbox("help@acme.example", allowed=["@customer.example"])
    ticket = signed_in.ticket("Printer on fire", mailbox_id=mailbox.id)
    signed_in.ledger_row(
        mailbox,
        "Printer on fire",
        outcome="ticket_created",
        ticket_id=ticket.id,
        sender="ann@customer.example",
    )
    signed_in.ledger_row(
        mailbox,
        "Buy cheap watches",
        outcome="skipped",
        reason="sender eve@elsewhere.example is not in the allowed senders list",
    )
    html = (await signed_in.client.get(f"/sources/{mailbox.id}/activity")).text
    assert "Buy cheap watches" in html
    assert "Why:</span> Sender eve@elsewhere.example is not in the allowed senders list." in html
    assert f'<a href="/tickets/{ticket.id}">Ticket #{ticket.number}</a>' in html
    skipped = (await signed_in.client.get(f"/sources/{mailbox.id}/activity?outcome=skipped")).text
    assert "Buy cheap watches" in skipped and "Printer on fire" not in skipped
    cards = (await signed_in.client.get("/sources")).text
    assert '<span class="count" data-field="count-skipped">1</span>' in cards


async def test_activity_pages_through_older_email(signed_in: Pages) -> None:
    mailbox = signed_in.mailbox("help@acme.example")
    for n in range(52):
        signed_in.ledger_row(mailbox, f"Mail {n:02d}", outcome="skipped", reason="a test")
    first = (await signed_in.client.get(f"/sources/{mailbox.id}/activity")).text
    older = re.search(r'href="\?before=([^"]+)">Older email', first)
    assert older is not None
    second = (
        await signed_in.client.get(f"/sources/{mailbox.id}/activity?before={older.group(1)}")
    ).text
    subjects = re.findall(r"Mail \d\d", first) + re.findall(r"Mail \d\d", second)
    assert sorted(subjects) == [f"Mail {n:02d}" for n in range(52)]


async def test_status_json_is_the_cards_state(signed_in: Pages) -> None:
    mailbox = signed_in.mailbox("help@acme.example", status="auth_expired")
    body = (await signed_in.client.get("/sources/status.json")).json()
    [item] = body["items"]
    assert item["id"] == mailbox.id and item["status"] == "auth_expired"
    assert item["status_label"] == "Auth Expired" and "Reconnect" in item["problem"]
    assert item["counts"] == {"tickets_created": 0, "appended": 0, "skipped": 0, "failed": 0}
    signed_in.client.cookies.clear()
    assert (await signed_in.client.get("/sources/status.json")).status_code == 401


async def test_forms_tab_shows_the_same_embed_code_as_the_api(signed_in: Pages) -> None:
    html = (await signed_in.client.get("/sources/forms")).text
    code = embed_code(signed_in.settings.public_url, signed_in.agent.public_key)
    assert str(escape(code["snippet"])) in html
    assert str(escape(code["iframe"])) in html
    assert 'data-copy="snippet"' in html and 'data-copy="iframe"' in html
    assert f'src="/static/embed.js" data-deskclone-form="{signed_in.agent.public_key}"' in html
    api = await signed_in.client.get(
        "/api/v1/forms/embed", headers={"Authorization": f"Bearer {signed_in.token}"}
    )
    assert api.json() == code
