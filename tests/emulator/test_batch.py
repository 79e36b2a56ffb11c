"""Google's multipart batch endpoint, driven by googleapiclient's BatchHttpRequest."""

from __future__ import annotations

from typing import Any

import httpx
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from tests.emulator.conftest import GmailFactory
from tests.emulator.schema import assert_schema
from tests.emulator.support import Grant, deliver, make_message

Outcome = tuple[Any, HttpError | None]


def recorder() -> tuple[dict[str, Outcome], Any]:
    outcomes: dict[str, Outcome] = {}

    def callback(request_id: str, response: Any, error: HttpError | None) -> None:
        outcomes[request_id] = (response, error)

    return outcomes, callback


# Only the real client, unpatched: a part with a stale token would make googleapiclient refresh
# through a throwaway httplib2.Http() that trusts only the process-wide CA list, so that path is
# not driven here. The provider refreshes before every batch and never relies on it.
def test_batch_of_50_with_a_missing_message(
    control: httpx.Client, gmail_factory: GmailFactory, grant: Grant
) -> None:
    ids = [deliver(control, make_message(subject=f"m{i}"))["id"] for i in range(49)]
    gmail = gmail_factory.service(gmail_factory.credentials(grant))
    control.post("/_emulator/requests/reset")

    outcomes, callback = recorder()
    batch = gmail_factory.batch()
    for message_id in ids:
        batch.add(
            gmail.users().messages().get(userId="me", id=message_id, format="metadata"),
            callback=callback,
            request_id=message_id,
        )
    batch.add(
        gmail.users().messages().get(userId="me", id="18f0000000000000"),
        callback=callback,
        request_id="missing",
    )
    batch.execute()

    assert len(outcomes) == 50
    for message_id in ids:
        response, error = outcomes[message_id]
        assert error is None
        assert response["id"] == message_id
        assert_schema(response, "Message")
    missing_response, missing_error = outcomes["missing"]
    assert missing_response is None
    assert isinstance(missing_error, HttpError)
    assert missing_error.status_code == 404
    assert missing_error.error_details[0]["reason"] == "notFound"
    assert control.get("/_emulator/requests").json()["counts"] == {
        "GET /gmail/v1/users/{user}/messages/{id}": 50,
        "POST /batch/gmail/v1": 1,
    }


def test_batch_is_also_served_at_the_discovery_batch_path(
    control: httpx.Client, gmail_factory: GmailFactory, gmail: Any
) -> None:
    stored = deliver(control, make_message())
    outcomes, callback = recorder()
    batch = gmail_factory.batch("/batch")
    batch.add(gmail.users().getProfile(userId="me"), callback=callback, request_id="profile")
    batch.add(gmail.users().threads().get(userId="me", id=stored["thread_id"]), callback=callback)
    batch.execute()

    assert outcomes["profile"][0]["messagesTotal"] == 1
    assert outcomes["1"][0]["id"] == stored["thread_id"]
    counts = control.get("/_emulator/requests").json()["counts"]
    assert counts["POST /batch"] == 1
    assert counts["GET /gmail/v1/users/{user}/threads/{id}"] == 1


def test_faults_hit_batch_parts_one_by_one(
    control: httpx.Client, gmail_factory: GmailFactory, gmail: Any
) -> None:
    fault = {"provider": "gmail", "status": 429, "rate": 1, "count": 1, "retry_after": 3}
    assert control.post("/_emulator/faults", json=fault).status_code == 201
    outcomes, callback = recorder()
    batch = gmail_factory.batch()
    for _ in range(3):
        batch.add(gmail.users().getProfile(userId="me"), callback=callback)
    batch.execute()

    _, throttled = outcomes["1"]
    assert isinstance(throttled, HttpError)
    assert throttled.status_code == 429
    assert throttled.resp["retry-after"] == "3"
    assert [outcomes[i][1] for i in ("2", "3")] == [None, None]


def test_batch_needs_a_multipart_body(control: httpx.Client, grant: Grant) -> None:
    headers = {"Authorization": f"Bearer {grant.access_token}"}
    wrong = control.post("/batch/gmail/v1", content=b"{}", headers=headers)
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == 400


def test_batch_refuses_more_than_100_calls(control: httpx.Client, grant: Grant) -> None:
    part = (
        "--b\r\nContent-Type: application/http\r\nContent-ID: <x + {i}>\r\n\r\n"
        "GET /gmail/v1/users/me/profile HTTP/1.1\r\n\r\n"
    )
    body = "".join(part.format(i=i) for i in range(101)) + "--b--\r\n"
    answer = control.post(
        "/batch/gmail/v1",
        content=body.encode(),
        headers={
            "Content-Type": 'multipart/mixed; boundary="b"',
            "Authorization": f"Bearer {grant.access_token}",
        },
    )
    assert answer.status_code == 400
    assert "100" in answer.json()["error"]["message"]


def test_batch_part_inherits_the_outer_authorization(control: httpx.Client, grant: Grant) -> None:
    body = (
        "--b\r\nContent-Type: application/http\r\nContent-ID: <x + 1>\r\n\r\n"
        "GET /gmail/v1/users/me/profile HTTP/1.1\r\n\r\n"
        "--b\r\nContent-Type: application/http\r\nContent-ID: <x + 2>\r\n\r\n"
        "GET /_emulator/health HTTP/1.1\r\n\r\n--b--\r\n"
    )
    answer = control.post(
        "/batch",
        content=body.encode(),
        headers={
            "Content-Type": "multipart/mixed; boundary=b",
            "Authorization": f"Bearer {grant.access_token}",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("multipart/mixed; boundary=batch_")
    text = answer.text
    assert "Content-ID: <response-x + 1>\r\n\r\nHTTP/1.1 200 OK\r\n" in text
    assert "Content-ID: <response-x + 2>\r\n\r\nHTTP/1.1 404 Not Found\r\n" in text
