from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from tests.api.conftest import Api, make_api_settings
from tests.api.test_form import ticket_count

CONVERSATION = [
    {"role": "visitor", "content": "My order #991 never arrived", "at": "2026-11-25T10:00:00Z"},
    {
        "role": "assistant",
        "content": "I can check that. What is your postcode?",
        "at": "2026-11-25T10:00:05Z",
    },
    {"role": "visitor", "content": "SW1A 1AA", "at": "2026-11-25T10:00:20+00:00"},
]


def escalation(
    conversation_id: str, messages: list[Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "visitor": {"name": "Sam", "email": "sam@example.com"},
        "messages": CONVERSATION if messages is None else messages,
        "reason": "assistant could not find the order",
        **extra,
    }


def url(api: Api, key: str | None = None) -> str:
    return f"/api/v1/public/{key or api.agent.public_key}/escalations"


async def ticket_detail(api: Api, number: int) -> dict[str, Any]:
    listed = (
        await api.client.get("/api/v1/tickets", params={"source": "widget"}, headers=api.auth)
    ).json()
    ticket = next(t for t in listed["items"] if t["number"] == number)
    detail: dict[str, Any] = (
        await api.client.get(f"/api/v1/tickets/{ticket['id']}", headers=api.auth)
    ).json()
    return detail


async def test_ticket_mode_makes_a_ticket_with_the_whole_conversation(api: Api) -> None:
    response = await api.client.post(url(api), json=escalation("conv-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["action"] == "ticket" and isinstance(body["ticket_number"], int)
    ticket = await ticket_detail(api, body["ticket_number"])
    assert ticket["title"] == "Chat: My order #991 never arrived"
    assert ticket["description"] == "assistant could not find the order"
    assert ticket["source"] == "widget"
    assert ticket["requester"] == {
        "email": "sam@example.com",
        "name": "Sam",
        "reachable_by_email": True,
    }
    assert [(m["role"], m["body_text"], m["sent_at"]) for m in ticket["messages"]] == [
        ("visitor", "My order #991 never arrived", "2026-11-25T10:00:00Z"),
        ("assistant", "I can check that. What is your postcode?", "2026-11-25T10:00:05Z"),
        ("visitor", "SW1A 1AA", "2026-11-25T10:00:20Z"),
    ]


async def test_the_same_conversation_twice_is_one_ticket(api: Api) -> None:
    first = (await api.client.post(url(api), json=escalation("conv-2"))).json()
    second = (await api.client.post(url(api), json=escalation("conv-2"))).json()
    assert first == second
    assert ticket_count(api) == 1
    assert (await ticket_detail(api, first["ticket_number"]))["message_count"] == 3


async def test_concurrent_escalations_of_one_conversation_are_one_ticket(api: Api) -> None:
    grown = [*CONVERSATION, {"role": "visitor", "content": "Hello?", "at": "2026-11-25T10:01:00Z"}]
    bodies = [escalation("conv-3"), escalation("conv-3", grown)] * 4
    answers = await asyncio.gather(*(api.client.post(url(api), json=b) for b in bodies))
    numbers = {a.json()["ticket_number"] for a in answers}
    assert [a.status_code for a in answers] == [200] * 8
    assert len(numbers) == 1
    assert ticket_count(api) == 1
    # Whichever request won, every message any of them carried is on the ticket, once.
    assert (await ticket_detail(api, numbers.pop()))["message_count"] == 4


async def test_a_continued_conversation_appends_only_the_new_messages(api: Api) -> None:
    first = (await api.client.post(url(api), json=escalation("conv-4"))).json()
    continued = [
        *CONVERSATION,
        {
            "role": "assistant",
            "content": "Thanks, a person will look.",
            "at": "2026-11-25T10:02:00Z",
        },
        {"role": "visitor", "content": "Any news?", "at": "2026-11-25T11:00:00Z"},
    ]
    again = (await api.client.post(url(api), json=escalation("conv-4", continued))).json()
    assert again["ticket_number"] == first["ticket_number"]
    ticket = await ticket_detail(api, first["ticket_number"])
    assert [m["body_text"] for m in ticket["messages"]][-2:] == [
        "Thanks, a person will look.",
        "Any news?",
    ]
    assert ticket["message_count"] == 5


async def test_a_visitor_without_email_still_gets_a_ticket(api: Api) -> None:
    body = escalation("conv-5", visitor={})
    answer = (await api.client.post(url(api), json=body)).json()
    ticket = await ticket_detail(api, answer["ticket_number"])
    assert ticket["requester"] == {
        "email": None,
        "name": "Website visitor",
        "reachable_by_email": False,
    }


@pytest.mark.parametrize(
    ("behaviour", "answer"),
    [
        (
            {"mode": "email", "email": "help@acme.example"},
            {"action": "email", "email": "help@acme.example"},
        ),
        ({"mode": "phone", "phone": "+1 555 0100"}, {"action": "phone", "phone": "+1 555 0100"}),
        (
            {"mode": "live_chat", "live_chat_url": "https://chat.acme.example"},
            {"action": "live_chat", "url": "https://chat.acme.example"},
        ),
    ],
)
async def test_other_modes_answer_without_a_ticket(api: Api, behaviour: Any, answer: Any) -> None:
    await api.client.put("/api/v1/agent/behavior", json={"escalation": behaviour}, headers=api.auth)
    response = await api.client.post(url(api), json=escalation("conv-6"))
    assert response.status_code == 200
    assert response.json() == answer
    assert ticket_count(api) == 0


async def test_live_chat_without_a_url_falls_back_to_a_ticket(api: Api) -> None:
    await api.client.put(
        "/api/v1/agent/behavior", json={"escalation": {"mode": "live_chat"}}, headers=api.auth
    )
    response = await api.client.post(url(api), json=escalation("conv-7"))
    assert response.json()["action"] == "ticket"
    assert ticket_count(api) == 1


def _many(n: int) -> list[dict[str, str]]:
    return [{"role": "visitor", "content": f"m{i}", "at": "2026-11-25T10:00:00Z"} for i in range(n)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in escalation("c").items() if k != "conversation_id"}, "conversation_id"),
        (escalation("has spaces"), "conversation_id"),
        (escalation("x" * 129), "conversation_id"),
        (escalation("c", []), "messages"),
        (escalation("c", _many(501)), "messages"),
        (
            escalation("c", [{"role": "robot", "content": "hi", "at": "2026-11-25T10:00:00Z"}]),
            "messages.0.role",
        ),
        (
            escalation("c", [{"role": "visitor", "content": "hi", "at": "yesterday"}]),
            "messages.0.at",
        ),
        (
            escalation("c", [{"role": "visitor", "content": "hi", "at": "2026-11-25T10:00:00"}]),
            "messages.0.at",
        ),
        (
            escalation("c", [{"role": "visitor", "content": "hi", "at": 1700000000}]),
            "messages.0.at",
        ),
        (
            escalation("c", [{"role": "visitor", "content": "   ", "at": "2026-11-25T10:00:00Z"}]),
            "messages.0.content",
        ),
        (
            escalation("c", [{"role": "visitor", "at": "2026-11-25T10:00:00Z"}]),
            "messages.0.content",
        ),
        (escalation("c", ["hello"]), "messages.0"),
        (escalation("c", visitor={"email": "not-an-address"}), "visitor.email"),
        (escalation("c", visitor="Sam"), "visitor"),
        (escalation("c", reason=7), "reason"),
    ],
)
async def test_bad_escalations_are_422_naming_the_field(api: Api, body: Any, field: str) -> None:
    response = await api.client.post(url(api), json=body)
    assert response.status_code == 422, response.text
    assert field in [f["field"] for f in response.json()["error"]["fields"]]
    assert ticket_count(api) == 0


async def test_broken_json_unknown_key_and_oversized_bodies(api: Api) -> None:
    broken = await api.client.post(url(api), content=b'{"conversation_id": ')
    unknown = await api.client.post(url(api, "pk_nobody"), json=escalation("c"))
    huge_message = [{"role": "visitor", "content": "x" * 20_000, "at": "2026-11-25T10:00:00Z"}] * 27
    too_big = await api.client.post(url(api), content=json.dumps(escalation("c", huge_message)))
    assert (broken.status_code, broken.json()["error"]["code"]) == (400, "invalid_json")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_public_key")
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "payload_too_large")
    assert ticket_count(api) == 0


async def test_escalations_are_rate_limited_per_ip(
    api: Api, dev_server_env: WorkflowEnvironment
) -> None:
    settings = make_api_settings(api.settings, escalation_rate_limit_per_minute=2)
    app = create_app(settings, dev_server_env.client, engine=api.engine)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("192.0.2.1", 1)), base_url="http://t"
    ) as client:
        codes = [
            (await client.post(url(api), json=escalation(f"r{i}"))).status_code for i in range(3)
        ]
        limited = await client.post(url(api), json=escalation("r9"))
    assert codes == [200, 200, 429]
    assert int(limited.headers["retry-after"]) >= 1
