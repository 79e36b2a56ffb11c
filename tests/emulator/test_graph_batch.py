"""Graph JSON batching, injected faults and request counts on the Microsoft side."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from emulator.server import RunningEmulator
from tests.emulator.conftest import GmailFactory
from tests.emulator.support import connect as connect_gmail
from tests.emulator.support import deliver, make_message
from tests.emulator.test_microsoft_identity import OLIVE, MsGrant, connect_outlook

BATCH = "POST /v1.0/$batch"
MIME = "GET /v1.0/me/messages/{id}/$value"
ME = "GET /v1.0/me"
DELTA = "GET /v1.0/me/mailFolders/{folder}/messages/delta"
PROFILE = "GET /gmail/v1/users/{user}/profile"


@pytest.fixture
def grant(emulator: RunningEmulator, control: httpx.Client) -> MsGrant:
    return connect_outlook(emulator, control)


def batch(
    control: httpx.Client, grant: MsGrant, requests: list[dict[str, Any]], token: str | None = None
) -> httpx.Response:
    return control.post(
        "/v1.0/$batch",
        json={"requests": requests},
        headers={"Authorization": f"Bearer {token or grant.access_token}"},
    )


def graph_id(control: httpx.Client, raw: bytes) -> str:
    found: str = deliver(control, raw, OLIVE)["id"]
    return found


def add_fault(control: httpx.Client, **fault: Any) -> None:
    answer = control.post("/_emulator/faults", json=fault)
    assert answer.status_code == 201, answer.text


def counts(control: httpx.Client) -> dict[str, int]:
    found: dict[str, int] = control.get("/_emulator/requests").json()["counts"]
    return found


def test_batch_answers_each_request_in_graphs_shape(control: httpx.Client, grant: MsGrant) -> None:
    raw = make_message(subject="Café ☕", to=OLIVE)
    message_id = graph_id(control, raw)
    control.post("/_emulator/requests/reset")

    answer = batch(
        control,
        grant,
        [
            {"id": "1", "method": "GET", "url": f"/me/messages/{message_id}/$value"},
            {"id": "2", "method": "GET", "url": "/me?$select=mail"},
            {"id": "3", "method": "GET", "url": "/me/messages/AAMkAGEmbTpmZmZm/$value"},
            {"id": "4", "method": "GET", "url": "me/messages/" + message_id, "dependsOn": ["1"]},
        ],
    )

    assert answer.status_code == 200
    responses = answer.json()["responses"]
    assert [(r["id"], r["status"]) for r in responses] == [
        ("1", 200), ("2", 200), ("3", 404), ("4", 200),
    ]  # fmt: skip
    mime, me, missing, message = responses
    # A body that is not JSON (the MIME) comes as base64 text.
    assert mime["headers"]["Content-Type"] == "text/plain"
    assert base64.b64decode(mime["body"]) == raw
    assert me["body"]["mail"] == OLIVE
    assert me["headers"]["Content-Type"].startswith("application/json")
    assert missing["body"]["error"]["code"] == "ErrorItemNotFound"
    assert message["body"]["subject"] == "Café ☕"
    # The batch and each part are counted, the parts under their own routes.
    assert counts(control) == {
        BATCH: 1, MIME: 2, ME: 1, "GET /v1.0/me/messages/{id}": 1,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"requests": [{"id": str(i), "method": "GET", "url": "/me"} for i in range(21)]}, "20"),
        ({"requests": []}, "Invalid batch payload"),
        ({"requests": [{"id": "1", "method": "GET", "url": "/me"}] * 2}, "unique"),
        ({"nope": 1}, "Invalid batch payload"),
    ],
)
def test_bad_batches_are_refused(
    control: httpx.Client, grant: MsGrant, payload: dict[str, Any], message: str
) -> None:
    answer = control.post(
        "/v1.0/$batch", json=payload, headers={"Authorization": f"Bearer {grant.access_token}"}
    )
    assert answer.status_code == 400
    assert message in answer.json()["error"]["message"]


def test_a_part_must_be_relative_to_the_version(control: httpx.Client, grant: MsGrant) -> None:
    answer = batch(
        control,
        grant,
        [
            {"id": "a", "method": "GET", "url": "https://graph.microsoft.com/v1.0/me"},
            {"id": "b", "method": "GET", "url": "/v1.0/me"},
        ],
    )
    assert [r["status"] for r in answer.json()["responses"]] == [400, 400]


def test_a_batch_with_a_bad_token_fails_whole(control: httpx.Client, grant: MsGrant) -> None:
    answer = batch(control, grant, [{"id": "1", "method": "GET", "url": "/me"}], token="nope")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert counts(control).get(ME) is None


def test_429_carries_retry_after_directly_and_inside_a_batch(
    control: httpx.Client, grant: MsGrant
) -> None:
    headers = {"Authorization": f"Bearer {grant.access_token}"}
    add_fault(control, provider="outlook", status=429, retry_after=7, count=1)
    throttled = control.get("/v1.0/me", headers=headers)
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "7"
    assert throttled.json()["error"]["code"] == "ApplicationThrottled"
    assert control.get("/v1.0/me", headers=headers).status_code == 200  # spent

    add_fault(control, provider="outlook", route=ME, status=429, retry_after=2.5, count=1)
    parts = batch(control, grant, [{"id": "1", "method": "GET", "url": "/me"}])
    assert parts.status_code == 200
    (part,) = parts.json()["responses"]
    assert part["status"] == 429
    assert part["headers"]["Retry-After"] == "3"


def test_a_fault_named_for_the_batch_fails_the_batch(control: httpx.Client, grant: MsGrant) -> None:
    add_fault(control, provider="outlook", route=BATCH, status=503, count=1)
    answer = batch(control, grant, [{"id": "1", "method": "GET", "url": "/me"}])
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "ServiceUnavailable"
    assert batch(control, grant, [{"id": "1", "method": "GET", "url": "/me"}]).status_code == 200


def test_faults_keep_to_their_provider(
    control: httpx.Client, grant: MsGrant, gmail_factory: GmailFactory
) -> None:
    google = connect_gmail(control)
    gmail = gmail_factory.service(gmail_factory.credentials(google))
    outlook_headers = {"Authorization": f"Bearer {grant.access_token}"}
    add_fault(control, provider="gmail", status=500)
    assert control.get("/v1.0/me", headers=outlook_headers).status_code == 200
    control.delete("/_emulator/faults")
    add_fault(control, provider="outlook", status=500)
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"]
    assert control.get("/v1.0/me", headers=outlook_headers).status_code == 500
    control.delete("/_emulator/faults")
    add_fault(control, provider="any", status=503, count=2)
    assert control.get("/v1.0/me", headers=outlook_headers).status_code == 503
    with pytest.raises(HttpError) as raised:
        gmail.users().getProfile(userId="me").execute()
    assert raised.value.status_code == 503
    # Tokens are not interchangeable either.
    google_headers = {"Authorization": f"Bearer {google.access_token}"}
    assert control.get("/v1.0/me", headers=google_headers).status_code == 401
    assert counts(control)[PROFILE] == 2


def test_a_delay_fault_slows_graph(control: httpx.Client, grant: MsGrant) -> None:
    add_fault(control, provider="outlook", delay=0.2, count=1)
    headers = {"Authorization": f"Bearer {grant.access_token}"}
    answer = control.get("/v1.0/me/mailFolders/inbox/messages/delta", headers=headers)
    assert answer.status_code == 200
    assert answer.elapsed.total_seconds() >= 0.2
    assert counts(control)[DELTA] == 1
