"""The event feed and its Server-Sent Events stream, over the real app (the stream through a
real uvicorn server on a free port, since only a socket streams)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn

from api import event_stream
from domain.outcomes import TicketStatus
from store import tickets
from store.db import transaction
from tests.api.conftest import Api
from tests.conftest import make_agent
from tests.devstack import free_port
from tests.event_support import form_ticket


def make_tickets(api: Api, count: int, agent_id: str | None = None) -> list[str]:
    """`count` tickets in one transaction: one `ticket.created` event each."""
    owner = agent_id or api.agent.id
    made: list[str] = []
    stamp = datetime.now(UTC).timestamp()
    with transaction(api.engine) as session:
        for i in range(count):
            new = form_ticket(owner, f"feed-{stamp}-{i}", title=f"Question {i}")
            made.append(tickets.create_ticket(session, new).ticket.id)
    return made


async def test_the_feed_pages_through_1000_events_with_its_cursor(api: Api) -> None:
    made = make_tickets(api, 1000)
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(20):
        params = {"limit": "150", **({"after": cursor} if cursor else {})}
        page = await api.client.get("/api/v1/events", params=params, headers=api.auth)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += body["items"]
        if not body["items"]:
            assert body["next_cursor"] == cursor  # nothing new: keep it, ask again later
            break
        cursor = body["next_cursor"]
    assert len(seen) == 1000 and len({e["id"] for e in seen}) == 1000
    assert [e["data"]["ticket"]["id"] for e in seen] == made  # the order they were written
    first = seen[0]
    assert set(first) == {"id", "type", "created_at", "data"}
    assert first["id"].startswith("evt_") and first["type"] == "ticket.created"
    assert first["data"]["ticket"]["number"] >= 1 and first["data"]["ticket"]["source"] == "form"
    assert first["created_at"].endswith("Z")
    # One more event, and the kept cursor finds exactly it; an event id works as a cursor too.
    [later] = make_tickets(api, 1)
    page = await api.client.get("/api/v1/events", params={"after": cursor}, headers=api.auth)
    assert [e["data"]["ticket"]["id"] for e in page.json()["items"]] == [later]
    by_id = await api.client.get(
        "/api/v1/events", params={"after": seen[-2]["id"]}, headers=api.auth
    )
    assert [e["id"] for e in by_id.json()["items"]][:1] == [seen[-1]["id"]]


async def test_a_workspace_never_sees_another_ones_events(api: Api) -> None:
    other, other_token = make_agent(api.engine, "Other")
    make_tickets(api, 2, agent_id=other.id)
    mine = make_tickets(api, 1)
    page = await api.client.get("/api/v1/events", headers=api.auth)
    assert [e["data"]["ticket"]["id"] for e in page.json()["items"]] == mine
    theirs = await api.client.get(
        "/api/v1/events", headers={"Authorization": f"Bearer {other_token}"}
    )
    assert len(theirs.json()["items"]) == 2
    # Their event id is no place in my feed.
    foreign = theirs.json()["items"][0]["id"]
    refused = await api.client.get("/api/v1/events", params={"after": foreign}, headers=api.auth)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("limit=0", 422, "validation_error"),
        ("limit=1001", 422, "validation_error"),
        ("limit=x", 422, "validation_error"),
        ("after=not-a-cursor", 400, "invalid_cursor"),
        ("after=evt_0000", 400, "invalid_cursor"),
    ],
)
async def test_bad_feed_parameters_get_the_contract_errors(
    api: Api, query: str, status: int, code: str
) -> None:
    response = await api.client.get(f"/api/v1/events?{query}", headers=api.auth)
    assert response.status_code == status and response.json()["error"]["code"] == code


async def test_the_feed_and_stream_need_the_admin_token(api: Api) -> None:
    for path in ("/api/v1/events", "/api/v1/events/stream"):
        response = await api.client.get(path)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


@pytest.fixture
async def served(api: Api) -> AsyncIterator[str]:
    """The app on a real socket (uvicorn in this event loop)."""
    port = free_port()
    config = uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def read_stream(
    url: str, headers: dict[str, str], count: int, *, comments: bool = False, seconds: float = 15
) -> list[dict[str, str]]:
    """The first `count` SSE messages (event, id, data), or with `comments` the first
    `count` comment lines (heartbeats)."""
    found: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=seconds) as client:
        async with client.stream("GET", url, headers=headers) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async with asyncio.timeout(seconds):
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        if comments:
                            found.append({"comment": line})
                    elif line:
                        name, _, value = line.partition(":")
                        current[name] = value.strip()
                        continue
                    elif current and not comments:
                        found.append(current)
                    current = {}
                    if len(found) == count:
                        return found
    return found


async def test_the_stream_resumes_with_last_event_id_without_gaps(api: Api, served: str) -> None:
    url = f"{served}/api/v1/events/stream?after=" + event_stream.encode_cursor(0)
    before = make_tickets(api, 3)
    first = await read_stream(url, api.auth, 3)
    assert [json.loads(m["data"])["data"]["ticket"]["id"] for m in first] == before
    assert all(m["event"] == "ticket.created" and m["id"].startswith("evt_") for m in first)
    assert [json.loads(m["data"])["id"] for m in first] == [m["id"] for m in first]
    # The client held the second when it lost the connection; more happened meanwhile.
    # Resuming with that id gives the third and the new ones, in order, none twice.
    later = make_tickets(api, 4)
    resume = {**api.auth, "Last-Event-ID": first[1]["id"]}
    resumed = await read_stream(f"{served}/api/v1/events/stream", resume, 5)
    ids = [json.loads(m["data"])["data"]["ticket"]["id"] for m in resumed]
    assert ids == [before[2], *later]


async def test_the_stream_delivers_what_happens_while_it_is_open(api: Api, served: str) -> None:
    listening = asyncio.create_task(read_stream(f"{served}/api/v1/events/stream", api.auth, 2))
    await asyncio.sleep(0.5)  # it starts at "now": only what comes after
    ticket_id = make_tickets(api, 1)[0]

    def solve() -> None:
        with transaction(api.engine) as session:
            found = tickets.get(session, api.agent.id, ticket_id)
            assert found is not None
            tickets.set_status(session, found, TicketStatus.SOLVED)

    await asyncio.to_thread(solve)
    created, solved = await listening
    assert created["event"] == "ticket.created"
    status = json.loads(solved["data"])
    assert status["type"] == "ticket.status_changed"
    assert status["data"]["previous_status"] == "open"
    assert status["data"]["ticket"]["status"] == "solved"


async def test_a_quiet_stream_sends_heartbeats(
    api: Api, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(event_stream, "HEARTBEAT_SECONDS", 1)
    beats = await read_stream(
        f"{served}/api/v1/events/stream", api.auth, 2, comments=True, seconds=10
    )
    assert len(beats) == 2 and all(b["comment"].startswith(":") for b in beats)
