"""Graph v1.0 mail on the emulator, with tokens from real MSAL and httpx as the client."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulator.server import RunningEmulator
from tests.emulator.support import deliver, make_message
from tests.emulator.test_microsoft_identity import (
    OLIVE,
    REDIRECT_URI,
    MsGrant,
    code_for,
    connect_outlook,
    token_form,
)

DELTA = "GET /v1.0/me/mailFolders/{folder}/messages/delta"
INBOX_DELTA = "/v1.0/me/mailFolders('inbox')/messages/delta"
SELECT = {"$select": "id,subject,conversationId,receivedDateTime"}


class Graph:
    """httpx on the emulator with Olive's bearer token."""

    def __init__(self, client: httpx.Client, grant: MsGrant) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {grant.access_token}"}

    def get(
        self, url: str, params: dict[str, str] | None = None, *, page_size: int | None = None
    ) -> httpx.Response:
        headers = dict(self.headers)
        if page_size is not None:
            headers["Prefer"] = f"odata.maxpagesize={page_size}"
        return self.client.get(url, params=params, headers=headers)

    def rounds(
        self, url: str, page_size: int, params: dict[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Every row of one delta round, and its deltaLink."""
        rows: list[dict[str, Any]] = []
        answer = self.get(url, params, page_size=page_size)
        while True:
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert len(body["value"]) <= page_size
            rows += body["value"]
            if "@odata.deltaLink" in body:
                assert "@odata.nextLink" not in body
                return rows, body["@odata.deltaLink"]
            answer = self.get(body["@odata.nextLink"], page_size=page_size)


@pytest.fixture
def grant(emulator: RunningEmulator, control: httpx.Client) -> MsGrant:
    return connect_outlook(emulator, control)


@pytest.fixture
def graph(control: httpx.Client, grant: MsGrant) -> Iterator[Graph]:
    yield Graph(control, grant)


def deliver_to_olive(control: httpx.Client, raw: bytes | None = None, **kwargs: Any) -> str:
    """Deliver to Olive; the message's Graph id (what the control API answers)."""
    graph_id: str = deliver(control, raw or make_message(to=OLIVE), OLIVE, **kwargs)["id"]
    return graph_id


def test_me_describes_the_signed_in_user(graph: Graph, grant: MsGrant) -> None:
    me = graph.get("/v1.0/me").json()
    assert me["mail"] == me["userPrincipalName"] == OLIVE
    assert me["id"] == grant.result["id_token_claims"]["oid"]
    assert me["displayName"] == "Olive"
    assert graph.get("/v1.0/me", {"$select": "mail"}).json().keys() == {
        "@odata.context", "mail", "id",
    }  # fmt: skip


def test_delta_pages_with_maxpagesize_and_absolute_links(
    emulator: RunningEmulator, graph: Graph, control: httpx.Client
) -> None:
    ids = [deliver_to_olive(control, make_message(subject=f"n{i}", to=OLIVE)) for i in range(5)]

    first = graph.get(INBOX_DELTA, SELECT, page_size=2)
    assert first.headers["preference-applied"] == "odata.maxpagesize=2"
    body = first.json()
    assert body["@odata.context"] == emulator.url + "/v1.0/$metadata#Collection(message)"
    assert [set(row) for row in body["value"]] == [
        {"@odata.type", "@odata.etag", "id", "subject", "conversationId", "receivedDateTime"}
    ] * 2
    next_link = body["@odata.nextLink"]
    assert next_link.startswith(emulator.url + "/v1.0/me/mailfolders('")
    assert "$skiptoken=" in next_link

    rows, delta_link = graph.rounds("/v1.0/me/mailFolders/inbox/messages/delta", 2, SELECT)
    assert [r["id"] for r in rows] == ids
    assert [r["subject"] for r in rows] == [f"n{i}" for i in range(5)]
    assert delta_link.startswith(emulator.url) and "$deltatoken=" in delta_link
    counts = control.get("/_emulator/requests").json()["counts"]
    assert counts[DELTA] == 1 + 3  # both spellings count under one pattern

    # An idle round, then a round with what arrived since.
    idle = graph.get(delta_link, page_size=2).json()
    assert idle["value"] == [] and "@odata.deltaLink" in idle
    newer = deliver_to_olive(control)
    rows, _ = graph.rounds(idle["@odata.deltaLink"], 2)
    # Query options travel inside the token: the round keeps the first request's $select.
    assert [r["id"] for r in rows] == [newer] and "subject" in rows[0] and "body" not in rows[0]


def test_deleted_messages_come_as_removed_rows(graph: Graph, control: httpx.Client) -> None:
    kept, gone = deliver_to_olive(control), deliver_to_olive(control)
    _, delta_link = graph.rounds(INBOX_DELTA, 10, SELECT)
    assert control.delete(f"/_emulator/mailboxes/{OLIVE}/messages/{gone}").status_code == 204
    assert graph.get(f"/v1.0/me/messages/{gone}").status_code == 404

    rows, _ = graph.rounds(delta_link, 10)

    assert rows == [
        {"@odata.type": "#microsoft.graph.message", "id": gone, "@removed": {"reason": "deleted"}}
    ]
    assert graph.get(f"/v1.0/me/messages/{kept}").status_code == 200


def test_change_type_narrows_the_rows(graph: Graph, control: httpx.Client) -> None:
    gone = deliver_to_olive(control)
    _, delta_link = graph.rounds(INBOX_DELTA, 10, {"changeType": "created", **SELECT})
    control.delete(f"/_emulator/mailboxes/{OLIVE}/messages/{gone}")
    new = deliver_to_olive(control)
    rows, _ = graph.rounds(delta_link, 10)
    assert [r["id"] for r in rows] == [new]


def test_the_inbox_delta_leaves_sent_mail_out(graph: Graph, control: httpx.Client) -> None:
    inbox = deliver_to_olive(control)
    sent = deliver_to_olive(control, folder="sent")
    rows, _ = graph.rounds(INBOX_DELTA, 10, SELECT)
    assert [r["id"] for r in rows] == [inbox]
    sent_rows, _ = graph.rounds("/v1.0/me/mailFolders('SentItems')/messages/delta", 10, SELECT)
    assert [r["id"] for r in sent_rows] == [sent]


def test_received_date_filter(graph: Graph, control: httpx.Client) -> None:
    deliver_to_olive(control)
    past, _ = graph.rounds(INBOX_DELTA, 10, {"$filter": "receivedDateTime ge 2020-01-01T00:00:00Z"})
    future, _ = graph.rounds(
        INBOX_DELTA, 10, {"$filter": "receivedDateTime gt 2999-01-01T00:00:00Z"}
    )
    assert len(past) == 1 and future == []
    refused = graph.get(INBOX_DELTA, {"$filter": "subject eq 'x'"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "ErrorInvalidUrlQueryFilter"
    assert graph.get(INBOX_DELTA, {"$orderby": "subject"}).status_code == 400


def test_expired_delta_tokens_answer_410_with_a_location(
    emulator: RunningEmulator, graph: Graph, control: httpx.Client
) -> None:
    deliver_to_olive(control)
    params = {**SELECT, "$filter": "receivedDateTime ge 2020-01-01T00:00:00Z"}
    _, delta_link = graph.rounds(INBOX_DELTA, 10, params)
    answer = control.post(f"/_emulator/mailboxes/{OLIVE}/expire-delta-tokens")
    assert answer.json() == {"address": OLIVE, "delta_expired_status": 410}

    gone = graph.get(delta_link)

    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "SyncStateNotFound"
    location = gone.headers["location"]
    assert location.startswith(emulator.url + "/v1.0/me/mailfolders('")
    assert location.endswith("$deltatoken=")
    # Following it restarts with the same query: a full round again.
    rows, _ = graph.rounds(location, 10)
    assert len(rows) == 1 and set(rows[0]) > {"subject"}


def test_expired_delta_tokens_can_answer_sync_state_not_found(
    graph: Graph, control: httpx.Client
) -> None:
    _, delta_link = graph.rounds(INBOX_DELTA, 10)
    control.post(f"/_emulator/mailboxes/{OLIVE}/expire-delta-tokens", json={"status": 400})
    answer = graph.get(delta_link)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "syncStateNotFound"
    bad = control.post(f"/_emulator/mailboxes/{OLIVE}/expire-delta-tokens", json={"status": 302})
    assert bad.status_code == 422


def test_a_message_as_graph_renders_it(graph: Graph, control: httpx.Client) -> None:
    original = deliver_to_olive(
        control,
        make_message(
            subject="Printer on fire",
            sender="Bob Stone <bob@example.com>",
            to=f"Olive <{OLIVE}>",
            html="<p>The <b>printer</b> is on fire.</p>",
            message_id="<q1@example.com>",
            attachments=(("log.txt", "text/plain", b"smoke\n"),),
        ),
    )
    reply = deliver_to_olive(
        control,
        make_message(subject="Re: Printer on fire", in_reply_to="<q1@example.com>", to=OLIVE),
    )

    message = graph.get(f"/v1.0/me/messages/{original}").json()

    assert message["id"] == original
    assert message["subject"] == "Printer on fire"
    assert message["from"] == {"emailAddress": {"name": "Bob Stone", "address": "bob@example.com"}}
    assert message["sender"] == message["from"]
    assert message["toRecipients"] == [{"emailAddress": {"name": "Olive", "address": OLIVE}}]
    assert message["internetMessageId"] == "<q1@example.com>"
    assert message["hasAttachments"] is True and message["isRead"] is False
    assert message["bodyPreview"].startswith("The printer on floor 2")
    assert message["receivedDateTime"].endswith("Z")
    assert "body" not in message and "internetMessageHeaders" not in message
    folders = {
        m["parentFolderId"] for m in graph.rounds(INBOX_DELTA, 10, {"$select": "parentFolderId"})[0]
    }
    assert folders == {message["parentFolderId"]}
    reply_body = graph.get(f"/v1.0/me/messages/{reply}", {"$select": "conversationId"}).json()
    assert reply_body["conversationId"] == message["conversationId"]

    chosen = graph.get(
        f"/v1.0/me/messages/{original}", {"$select": "body,internetMessageHeaders"}
    ).json()
    assert chosen["body"] == {
        "contentType": "html",
        "content": "<p>The <b>printer</b> is on fire.</p>\n",
    }
    assert {"name": "Message-ID", "value": "<q1@example.com>"} in chosen["internetMessageHeaders"]
    assert graph.get(f"/v1.0/me/messages/{original}", {"$select": "nonsense"}).status_code == 400


def test_value_is_the_raw_mime(graph: Graph, control: httpx.Client) -> None:
    raw = make_message(subject="Café ☕", text="Ünïcode\n", to=OLIVE)
    message_id = deliver_to_olive(control, raw)
    answer = graph.get(f"/v1.0/me/messages/{message_id}/$value")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.content == raw
    assert graph.get("/v1.0/me/messages/AAMkAGEmbTpmZmZm/$value").status_code == 404
    malformed = graph.get("/v1.0/me/messages/not-an-id/$value")
    assert malformed.json()["error"]["code"] == "ErrorInvalidIdMalformed"


def test_attachments(graph: Graph, control: httpx.Client) -> None:
    forwarded = make_message(subject="Old thread", to=OLIVE)
    message_id = deliver_to_olive(
        control,
        make_message(
            to=OLIVE,
            attachments=(
                ("log.txt", "text/plain", b"smoke\n"),
                ("photo.png", "image/png", b"\x89PNG fake"),
                ("old.eml", "message/rfc822", forwarded),
            ),
        ),
    )
    items = graph.get(f"/v1.0/me/messages/{message_id}/attachments").json()["value"]
    assert [(a["@odata.type"], a["name"], a["contentType"]) for a in items] == [
        ("#microsoft.graph.fileAttachment", "log.txt", "text/plain"),
        ("#microsoft.graph.fileAttachment", "photo.png", "image/png"),
        ("#microsoft.graph.itemAttachment", "old.eml", "message/rfc822"),
    ]
    assert base64.b64decode(items[1]["contentBytes"]) == b"\x89PNG fake"
    assert items[0]["size"] == 6 and items[0]["isInline"] is False
    assert "contentBytes" not in items[2]
    assert len({a["id"] for a in items}) == 3


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Access token is empty."),
        ("Bearer not-a-token", "Access token has expired or is not yet valid."),
        ("Basic b2xpdmU6cHc=", "Access token has expired or is not yet valid."),
    ],
)
def test_401_invalid_authentication_token(
    control: httpx.Client, header: str | None, message: str
) -> None:
    headers = {"Authorization": header} if header else {}
    answer = control.get(INBOX_DELTA, headers={**headers, "client-request-id": "abc"})
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["message"] == message
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert error["innerError"]["client-request-id"] == "abc"
    assert answer.headers["www-authenticate"].startswith("Bearer ")


def test_expired_and_revoked_tokens_are_401(graph: Graph, control: httpx.Client) -> None:
    assert graph.get("/v1.0/me").status_code == 200
    control.post(f"/_emulator/mailboxes/{OLIVE}/expire-access-tokens")
    assert graph.get("/v1.0/me").status_code == 401


def test_a_grant_without_mail_read_cannot_read_mail(
    emulator: RunningEmulator, control: httpx.Client
) -> None:
    code, verifier = code_for(control, scope="User.Read openid profile offline_access")
    token = control.post(
        "/common/oauth2/v2.0/token",
        data=token_form(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=verifier,
            scope="User.Read",
        ),
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert control.get("/v1.0/me", headers=headers).status_code == 200
    denied = control.get(INBOX_DELTA, headers=headers)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "ErrorAccessDenied"


def test_unknown_paths_answer_in_graphs_shape(graph: Graph) -> None:
    answer = graph.get("/v1.0/me/calendar/events")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"
    assert graph.get("/v1.0/me/mailFolders('Archive')/messages/delta").status_code == 404
