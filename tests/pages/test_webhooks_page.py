"""Tickets > Sources > Webhooks over HTTP, and the live parts of the other pages (the row
the queue's script fetches, the stream a signed-in browser follows)."""

from __future__ import annotations

import re

from domain.webhooks import DeliveryStatus, DisabledReason
from store import webhooks
from store.db import transaction
from store.models import WebhookDelivery, utcnow
from tests.pages.conftest import Pages

SECRET = re.compile(r'id="new-secret"[^>]*value="(whsec_[^"]+)"')


async def add(signed_in: Pages, url: str, **extra: str | list[str]) -> str:
    data: dict[str, str | list[str]] = {"url": url, "description": "Team chat", **extra}
    if "events" not in extra:
        data["events"] = ["ticket.created", "mailbox.auth_expired"]
    token = await signed_in.csrf("/sources/webhooks")
    response = await signed_in.client.post("/sources/webhooks", data={**data, "csrf_token": token})
    return response.text if response.status_code in (201, 422) else ""


async def test_an_endpoint_is_added_and_its_secret_shown_once(signed_in: Pages) -> None:
    html = await add(signed_in, "https://hooks.example.com/in")
    found = SECRET.search(html)
    assert found is not None, html[:2000]
    assert "not shown again" in html and "https://hooks.example.com/in" in html
    again = (await signed_in.client.get("/sources/webhooks")).text
    assert found.group(1) not in again and 'id="new-secret"' not in again
    assert "ticket.created, mailbox.auth_expired" in again and "Team chat" in again
    endpoint = re.search(r'data-endpoint-id="([^"]+)"', again)
    assert endpoint is not None
    endpoint_id = endpoint.group(1)
    try:
        # Rotating shows the new one, once.
        rotated = await signed_in.post(
            f"/sources/webhooks/{endpoint_id}/rotate", {}, page="/sources/webhooks"
        )
        new = SECRET.search(rotated.text)
        assert new is not None and new.group(1) != found.group(1)
    finally:
        await stop(signed_in, endpoint_id)


async def stop(signed_in: Pages, endpoint_id: str) -> None:
    response = await signed_in.post(
        f"/sources/webhooks/{endpoint_id}/delete", {}, page="/sources/webhooks"
    )
    assert response.status_code == 303


async def test_a_bad_url_is_explained_and_kept(signed_in: Pages) -> None:
    html = await add(signed_in, "http://hooks.example.com/in")
    assert "The URL must start with https://." in html
    assert 'value="http://hooks.example.com/in"' in html and 'aria-invalid="true"' in html
    none = await add(signed_in, "https://hooks.example.com/in", events=[])
    assert "Choose at least one kind of event." in none
    assert "No endpoint yet." in (await signed_in.client.get("/sources/webhooks")).text


async def test_failed_deliveries_have_retry_and_a_disabled_endpoint_a_warning(
    signed_in: Pages,
) -> None:
    with transaction(signed_in.engine) as session:
        endpoint = webhooks.create(
            session,
            agent_id=signed_in.agent.id,
            url="https://hooks.example.com/in",
            event_types=[],
            description=None,
            secret_encrypted="unused",
        )
    signed_in.ticket("Printer on fire")
    with transaction(signed_in.engine) as session:
        row = webhooks.get(session, signed_in.agent.id, endpoint.id)
        assert row is not None
        webhooks.claim_new(session, row, utcnow(), 10)
        [delivery] = webhooks.deliveries(
            session, signed_in.agent.id, endpoint.id, status=None, limit=5
        )
        delivery.status, delivery.attempts = DeliveryStatus.FAILED, 11
        delivery.last_status_code, delivery.last_error = 503, "answered 503: busy"
        session.add(delivery)
        webhooks.disable(session, row, DisabledReason.FAILING, utcnow(), "x")
    html = (await signed_in.client.get("/sources/webhooks")).text
    assert "No delivery succeeded for a day" in html and ">Switch on<" in html
    assert ">Failed<" in html and "answered 503: busy" in html
    assert 'title="Switch the endpoint on first"' in html  # Retry waits for the switch
    on = await signed_in.post(
        f"/sources/webhooks/{endpoint.id}/enable", {}, page="/sources/webhooks"
    )
    assert on.status_code == 303
    retried = await signed_in.post(
        f"/sources/webhooks/{endpoint.id}/deliveries/{delivery.id}/retry",
        {},
        page="/sources/webhooks",
    )
    assert retried.status_code == 303 and "done=retrying" in retried.headers["location"]
    with transaction(signed_in.engine) as session:
        found = session.get(WebhookDelivery, delivery.id)
        assert found is not None and found.status == DeliveryStatus.PENDING
    await stop(signed_in, endpoint.id)


async def test_the_queue_row_and_the_live_stream_need_a_session(signed_in: Pages) -> None:
    ticket = signed_in.ticket("Printer on fire")
    queue = (await signed_in.client.get("/tickets")).text
    assert 'data-events-url="/live/events?after=' in queue and 'data-prepend="true"' in queue
    filtered = (await signed_in.client.get("/tickets?status=solved")).text
    assert 'data-prepend="true"' not in filtered
    row = await signed_in.client.get(f"/tickets/{ticket.id}/row")
    assert row.status_code == 200 and row.text.strip().startswith('<li class="queue-item"')
    assert f"#{ticket.number}" in row.text
    assert (await signed_in.client.get("/tickets/nope/row")).status_code == 404
    sources = (await signed_in.client.get("/sources")).text
    assert 'data-events-url="/live/events?after=' in sources
    signed_in.client.cookies.clear()
    assert (await signed_in.client.get("/live/events")).status_code == 401
    assert (await signed_in.client.get(f"/tickets/{ticket.id}/row")).status_code == 303
