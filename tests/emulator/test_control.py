"""The control API of CONTRACT.md §4 and its extensions: happy paths and bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.emulator.support import ANN, deliver, make_message


def assert_error(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]


def test_mailbox_creation_is_idempotent(control: httpx.Client) -> None:
    body = {"provider": "gmail", "address": ANN}
    first = control.post("/_emulator/mailboxes", json=body)
    second = control.post(
        "/_emulator/mailboxes", json={"provider": "gmail", "address": "ANN@example.com"}
    )
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert first.json()["address"] == ANN
    assert len(control.get("/_emulator/mailboxes").json()["items"]) == 1


def test_outlook_mailboxes_are_stored_for_the_graph_side(control: httpx.Client) -> None:
    answer = control.post("/_emulator/mailboxes", json={"provider": "outlook", "address": "o@x.io"})
    assert answer.status_code == 201
    assert answer.json()["provider"] == "outlook"
    conflict = control.post("/_emulator/mailboxes", json={"provider": "gmail", "address": "o@x.io"})
    assert_error(conflict, 409, "provider_conflict")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"provider": "yahoo", "address": "a@b.c"}', 422, "unknown_provider"),
        (b'{"provider": "gmail"}', 422, "invalid_body"),
        (b'{"provider": "gmail", "address": "nobody"}', 422, "invalid_address"),
        (b'["gmail"]', 422, "invalid_body"),
        (b"{not json", 400, "invalid_json"),
    ],
)
def test_bad_mailbox_input(control: httpx.Client, body: bytes, status: int, code: str) -> None:
    answer = control.post(
        "/_emulator/mailboxes", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(answer, status, code)


def test_sent_mail_is_labelled_sent(control: httpx.Client, gmail: Any) -> None:
    stored = deliver(control, make_message(), folder="sent")
    message = gmail.users().messages().get(userId="me", id=stored["id"], format="minimal")
    assert message.execute()["labelIds"] == ["SENT"]
    assert gmail.users().messages().list(userId="me", q="in:inbox").execute() == {
        "resultSizeEstimate": 0
    }


@pytest.mark.parametrize(
    ("path", "params", "headers", "body", "status", "code"),
    [
        ("/_emulator/mailboxes/zed@example.com/messages", {}, "message/rfc822", b"x", 404,
         "mailbox_not_found"),
        (f"/_emulator/mailboxes/{ANN}/messages", {}, "text/plain", b"Subject: x\r\n\r\nx", 415,
         "unsupported_media_type"),
        (f"/_emulator/mailboxes/{ANN}/messages", {}, "message/rfc822", b"  ", 422,
         "empty_message"),
        (f"/_emulator/mailboxes/{ANN}/messages", {"folder": "spam"}, "message/rfc822", b"x", 422,
         "invalid_folder"),
        ("/_emulator/mailboxes/zed@example.com/revoke", {}, "application/json", b"", 404,
         "mailbox_not_found"),
        (f"/_emulator/mailboxes/{ANN}/refresh-token-rotation", {}, "application/json",
         b'{"enabled": "yes"}', 422, "invalid_body"),
    ],
)  # fmt: skip
def test_bad_mailbox_actions(
    control: httpx.Client,
    path: str,
    params: dict[str, str],
    headers: str,
    body: bytes,
    status: int,
    code: str,
) -> None:
    control.post("/_emulator/mailboxes", json={"provider": "gmail", "address": ANN})
    answer = control.post(path, params=params, content=body, headers={"Content-Type": headers})
    assert_error(answer, status, code)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"provider": "yahoo", "status": 500, "rate": 1}, "unknown_provider"),
        ({"provider": "gmail", "status": 200, "rate": 1}, "invalid_fault"),
        ({"provider": "gmail", "status": 500, "rate": 1.5}, "invalid_fault"),
        ({"provider": "gmail", "status": True, "rate": 1}, "invalid_fault"),
        ({"provider": "gmail", "status": 500, "count": 0}, "invalid_fault"),
        ({"provider": "gmail", "status": 500, "retry_after": -1}, "invalid_fault"),
        ({"provider": "gmail", "rate": 1}, "invalid_fault"),
        ({"provider": "gmail", "status": 500, "rat": 1}, "invalid_fault"),
    ],
)
def test_bad_faults_are_422(control: httpx.Client, fault: dict[str, Any], code: str) -> None:
    assert_error(control.post("/_emulator/faults", json=fault), 422, code)
    assert control.get("/_emulator/faults").json() == {"items": []}


def test_fault_is_echoed_with_defaults(control: httpx.Client) -> None:
    answer = control.post("/_emulator/faults", json={"provider": "any", "status": 503})
    assert answer.status_code == 201
    assert answer.json() | {"id": 0} == {
        "id": 0,
        "provider": "any",
        "status": 503,
        "rate": 1.0,
        "remaining": None,
        "retry_after": None,
        "delay": 0.0,
        "route": None,
        "reason": None,
        "skip": 0,
    }


def test_settings_and_client_registration(control: httpx.Client) -> None:
    assert control.get("/_emulator/settings").json() == {"access_token_lifetime": 3599}
    bad = control.patch("/_emulator/settings", json={"access_token_lifetime": 0})
    assert_error(bad, 422, "invalid_body")
    client = {"provider": "gmail", "client_id": "second-app", "client_secret": "s"}
    assert control.post("/_emulator/clients", json=client).status_code == 201
    assert_error(
        control.post("/_emulator/clients", json=client | {"provider": "aol"}),
        422,
        "unknown_provider",
    )


def test_reset_forgets_everything(control: httpx.Client) -> None:
    control.post("/_emulator/mailboxes", json={"provider": "gmail", "address": ANN})
    control.post("/_emulator/faults", json={"provider": "any", "status": 500})
    assert control.post("/_emulator/reset").status_code == 204
    assert control.get("/_emulator/mailboxes").json() == {"items": []}
    assert control.get("/_emulator/faults").json() == {"items": []}
    assert_error(control.post("/_emulator/reset", json={"seed": "x"}), 422, "invalid_body")


def test_unknown_routes_answer_in_the_error_shape(control: httpx.Client) -> None:
    assert control.get("/_emulator/health").json() == {"status": "ok"}
    assert_error(control.get("/_emulator/nothing-here"), 404, "not_found")
    assert_error(control.put("/_emulator/faults"), 405, "method_not_allowed")
