"""/tickets and /tickets/{id} over HTTP: filters, search, paging, the thread, escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from store.tickets import NewMessage
from tests.pages.conftest import Pages

INJECTION = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<span class="queue-number">#(\d+)</span>', html)]


async def test_the_queue_lists_every_source_newest_first(signed_in: Pages) -> None:
    mailbox = signed_in.mailbox("help@acme.example")
    email = signed_in.ticket("Printer on fire", mailbox_id=mailbox.id)
    form = signed_in.ticket("Invoice question", source="form")
    chat = signed_in.ticket("Chat: refund", source="widget")
    html = (await signed_in.client.get("/tickets")).text
    assert numbers(html) == [chat.number, form.number, email.number]
    assert "Email · help@acme.example" in html
    by_source = (await signed_in.client.get("/tickets?source=form")).text
    assert numbers(by_source) == [form.number]
    assert '<option value="form" selected>' in by_source


async def test_search_and_status_filter(signed_in: Pages) -> None:
    first = signed_in.ticket("Printer on fire", "Smoke from tray 2.")
    signed_in.ticket("Invoice question", "Where is my invoice?")
    found = (await signed_in.client.get("/tickets?q=tray")).text
    assert numbers(found) == [first.number]
    response = await signed_in.post(
        f"/tickets/{first.id}/status", {"status": "solved"}, page=f"/tickets/{first.id}"
    )
    assert response.status_code == 303
    solved = (await signed_in.client.get("/tickets?status=solved")).text
    assert numbers(solved) == [first.number]
    nothing = (await signed_in.client.get("/tickets?q=nothing-like-this")).text
    assert "No ticket matches these filters." in nothing
    # Values that are not choices are ignored rather than failing.
    assert (
        await signed_in.client.get("/tickets?source=fax&status=x&before=abc")
    ).status_code == 200


async def test_paging_goes_back_through_older_tickets(signed_in: Pages) -> None:
    made = [signed_in.ticket(f"Ticket {n}", source="form") for n in range(27)]
    first = (await signed_in.client.get("/tickets?source=form")).text
    assert len(numbers(first)) == 25
    older = re.search(r'href="/tickets\?([^"]+)">Older tickets', first)
    assert older is not None and "source=form" in older.group(1)
    second = (await signed_in.client.get("/tickets?" + older.group(1).replace("&amp;", "&"))).text
    assert numbers(first) + numbers(second) == sorted((t.number for t in made), reverse=True)
    assert ">Newest</a>" in second


async def test_a_ticket_shows_its_thread_oldest_first_with_attachments(signed_in: Pages) -> None:
    start = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    ticket = signed_in.ticket(
        "Printer on fire",
        messages=[
            NewMessage(
                source_ref="m2",
                body_text="Still smoking.",
                sent_at=start + timedelta(hours=1),
                author_email="ann@customer.example",
                author_name="Ann Lee",
            ),
            NewMessage(
                source_ref="m1",
                body_text="Smoke from tray 2.\nPlease help.",
                sent_at=start,
                author_email="ann@customer.example",
                author_name="Ann Lee",
                attachments=[
                    {"filename": "photo.jpg", "content_type": "image/jpeg", "size": 204800}
                ],
            ),
        ],
    )
    html = (await signed_in.client.get(f"/tickets/{ticket.id}")).text
    assert html.index("Smoke from tray 2.") < html.index("Still smoking.")
    assert "Smoke from tray 2.\nPlease help." in html  # shown as written (pre-wrap)
    assert "Ann Lee" in html and "&lt;ann@customer.example&gt;" in html
    assert "25 Nov 2026, 10:00 UTC" in html and "25 Nov 2026, 11:00 UTC" in html
    assert '<span class="filename">photo.jpg</span>' in html and "200 KB" in html
    assert '<option value="open" selected>' in html


async def test_a_chat_ticket_reads_as_a_conversation(signed_in: Pages) -> None:
    start = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    ticket = signed_in.ticket(
        "Chat: refund",
        "The visitor asked for a person",
        source="widget",
        messages=[
            NewMessage("v1", "I want a refund", start, None, "Bo", "visitor"),
            NewMessage(
                "a1", "I can't do refunds.", start + timedelta(seconds=5), None, None, "assistant"
            ),
        ],
    )
    html = (await signed_in.client.get(f"/tickets/{ticket.id}")).text
    assert '<ol class="thread conversation">' in html
    assert 'class="message role-visitor"' in html and 'class="message role-assistant"' in html
    assert '<span class="role">Visitor</span> Bo' in html
    assert '<span class="role">Assistant</span>' in html
    assert "Why the chat was escalated:</strong> The visitor asked for a person" in html


async def test_script_injection_in_subject_and_body_is_text(signed_in: Pages) -> None:
    ticket = signed_in.ticket(INJECTION, INJECTION)
    for path in ("/tickets", f"/tickets/{ticket.id}"):
        html = (await signed_in.client.get(path)).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


async def test_status_change_is_validated(signed_in: Pages) -> None:
    ticket = signed_in.ticket("Printer on fire")
    page = f"/tickets/{ticket.id}"
    bad = await signed_in.post(f"{page}/status", {"status": "closed"}, page=page)
    assert bad.status_code == 422 and "Choose Open, Pending or Solved." in bad.text
    good = await signed_in.post(f"{page}/status", {"status": "pending"}, page=page)
    assert good.status_code == 303 and good.headers["location"] == f"{page}?done=status"
    html = (await signed_in.client.get(good.headers["location"])).text
    assert "Status updated." in html and '<option value="pending" selected>' in html


async def test_an_unknown_or_foreign_ticket_is_a_404_page(signed_in: Pages) -> None:
    response = await signed_in.client.get("/tickets/not-a-ticket")
    assert response.status_code == 404 and "Ticket not found" in response.text
