"""The Gmail API subset, driven by google-api-python-client and checked against its schemas."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from emulator.errors import MISSING_CREDENTIALS_MESSAGE
from tests.emulator.schema import assert_schema
from tests.emulator.support import ANN, Grant, b64url_decode, deliver, make_message

PDF = b"%PDF-1.4 pretend this is a report\n" * 3


def collect(request: Any, next_page: Any, key: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every item of a paged list, and every page as the client saw it."""
    items: list[Any] = []
    pages: list[dict[str, Any]] = []
    while request is not None:
        page = request.execute()
        pages.append(page)
        items.extend(page.get(key, []))
        request = next_page(request, page)
    return items, pages


def test_profile(gmail: Any, control: httpx.Client) -> None:
    before = gmail.users().getProfile(userId="me").execute()
    deliver(control, make_message())
    reply = deliver(control, make_message(), folder="sent")
    after = gmail.users().getProfile(userId=ANN).execute()

    assert_schema(after, "Profile")
    assert after == {
        "emailAddress": ANN,
        "messagesTotal": 2,
        "threadsTotal": 2,
        "historyId": reply["history_id"],
    }
    assert int(after["historyId"]) == int(before["historyId"]) + 2


def test_messages_list_by_folder_label_and_search(gmail: Any, control: httpx.Client) -> None:
    first = deliver(control, make_message(subject="one"))
    second = deliver(control, make_message(subject="two"))
    sent = deliver(control, make_message(subject="sent"), folder="sent")
    messages = gmail.users().messages()

    inbox = messages.list(userId="me", q="in:inbox").execute()
    assert_schema(inbox, "ListMessagesResponse")
    assert inbox == {
        "messages": [
            {"id": second["id"], "threadId": second["thread_id"]},
            {"id": first["id"], "threadId": first["thread_id"]},
        ],
        "resultSizeEstimate": 2,
    }
    assert [m["id"] for m in messages.list(userId="me", q="in:sent").execute()["messages"]] == [
        sent["id"]
    ]
    by_label = messages.list(userId="me", labelIds=["INBOX", "UNREAD"]).execute()
    assert [m["id"] for m in by_label["messages"]] == [second["id"], first["id"]]
    everything = messages.list(userId="me", includeSpamTrash=True).execute()
    assert everything["resultSizeEstimate"] == 3
    assert messages.list(userId="me", q="is:read in:inbox").execute() == {"resultSizeEstimate": 0}


def test_messages_list_pages_with_list_next(gmail: Any, control: httpx.Client) -> None:
    delivered = [deliver(control, make_message(subject=f"n{i}"))["id"] for i in range(5)]
    messages = gmail.users().messages()

    items, pages = collect(
        messages.list(userId="me", q="in:inbox", maxResults=2), messages.list_next, "messages"
    )

    assert [m["id"] for m in items] == list(reversed(delivered))
    assert [len(p["messages"]) for p in pages] == [2, 2, 1]
    assert "nextPageToken" not in pages[-1]
    for page in pages:
        assert_schema(page, "ListMessagesResponse")


def test_unsupported_search_is_a_400_not_a_silent_match(gmail: Any) -> None:
    with pytest.raises(HttpError) as raised:
        gmail.users().messages().list(userId="me", q="from:bob@example.com").execute()
    assert raised.value.status_code == 400
    assert raised.value.error_details[0]["reason"] == "invalidArgument"


def test_message_formats(gmail: Any, control: httpx.Client) -> None:
    raw = make_message(
        subject="=?utf-8?q?Caf=C3=A9_is_closed?=",
        text="Don't panic: the café <reopens> tomorrow.",
        html="<p>Don't panic</p>",
        attachments=(("report.pdf", "application/pdf", PDF),),
    )
    stored = deliver(control, raw)
    get = gmail.users().messages().get

    minimal = get(userId="me", id=stored["id"], format="minimal").execute()
    assert list(minimal) == [
        "id",
        "threadId",
        "labelIds",
        "snippet",
        "sizeEstimate",
        "historyId",
        "internalDate",
    ]
    assert minimal["labelIds"] == ["INBOX", "UNREAD"]
    assert minimal["snippet"] == "Don&#39;t panic: the café &lt;reopens&gt; tomorrow."
    assert minimal["historyId"] == stored["history_id"]
    assert minimal["internalDate"].isdigit()
    assert minimal["sizeEstimate"] == len(raw)

    metadata = get(
        userId="me", id=stored["id"], format="metadata", metadataHeaders=["subject", "From"]
    ).execute()
    assert metadata["payload"] == {
        "mimeType": "multipart/mixed",
        "headers": [
            {"name": "From", "value": "Bob <bob@example.com>"},
            {"name": "Subject", "value": "Café is closed"},
        ],
    }

    full = get(userId="me", id=stored["id"]).execute()
    payload = full["payload"]
    assert (payload["partId"], payload["mimeType"], payload["body"]) == (
        "",
        "multipart/mixed",
        {"size": 0},
    )
    alternative, attachment = payload["parts"]
    assert [p["partId"] for p in alternative["parts"]] == ["0.0", "0.1"]
    plain = alternative["parts"][0]
    assert plain["mimeType"] == "text/plain"
    assert b64url_decode(plain["body"]["data"]).decode() == (
        "Don't panic: the café <reopens> tomorrow.\n"
    )
    assert plain["body"]["size"] == len(b64url_decode(plain["body"]["data"]))
    assert attachment["partId"] == "1"
    assert attachment["filename"] == "report.pdf"
    assert attachment["body"]["size"] == len(PDF)
    assert set(attachment["body"]) == {"attachmentId", "size"}

    as_raw = get(userId="me", id=stored["id"], format="raw").execute()
    assert b64url_decode(as_raw["raw"]) == raw
    assert "payload" not in as_raw

    for message in (minimal, metadata, full, as_raw):
        assert_schema(message, "Message")


def test_single_part_message_carries_its_body_at_the_top(gmail: Any, control: httpx.Client) -> None:
    raw = b"From: bob@example.com\r\nSubject: plain\r\n\r\nHello\r\n"
    stored = deliver(control, raw)
    payload = gmail.users().messages().get(userId="me", id=stored["id"]).execute()["payload"]
    assert payload["partId"] == ""
    assert payload["mimeType"] == "text/plain"
    assert b64url_decode(payload["body"]["data"]) == b"Hello\r\n"
    assert "parts" not in payload
    assert_schema(payload, "MessagePart")


def test_attachment_get_returns_the_decoded_bytes(gmail: Any, control: httpx.Client) -> None:
    stored = deliver(control, make_message(attachments=(("r.pdf", "application/pdf", PDF),)))
    messages = gmail.users().messages()
    full = messages.get(userId="me", id=stored["id"]).execute()
    attachment_id = full["payload"]["parts"][1]["body"]["attachmentId"]

    body = messages.attachments().get(userId="me", messageId=stored["id"], id=attachment_id)
    answer = body.execute()

    assert_schema(answer, "MessagePartBody")
    assert b64url_decode(answer["data"]) == PDF
    assert answer["size"] == len(PDF)
    with pytest.raises(HttpError) as raised:
        messages.attachments().get(userId="me", messageId=stored["id"], id="nonsense").execute()
    assert raised.value.status_code == 400


def test_replies_join_the_thread_they_reference(gmail: Any, control: httpx.Client) -> None:
    first = deliver(control, make_message(message_id="<first@example.com>"))
    ours = deliver(
        control,
        make_message(message_id="<ours@example.com>", in_reply_to="<first@example.com>"),
        folder="sent",
    )
    theirs = deliver(
        control,
        make_message(references="<first@example.com> <ours@example.com>"),
    )
    unrelated = deliver(control, make_message(in_reply_to="<unknown@example.com>"))

    assert ours["thread_id"] == theirs["thread_id"] == first["thread_id"] == first["id"]
    assert unrelated["thread_id"] == unrelated["id"]

    thread = gmail.users().threads().get(userId="me", id=first["thread_id"]).execute()
    assert_schema(thread, "Thread")
    assert thread["id"] == first["id"]
    assert [m["id"] for m in thread["messages"]] == [first["id"], ours["id"], theirs["id"]]
    assert thread["historyId"] == theirs["history_id"]
    minimal = gmail.users().threads().get(userId="me", id=first["id"], format="minimal").execute()
    assert "payload" not in minimal["messages"][0]


def test_history_pages_through_new_mail(gmail: Any, control: httpx.Client) -> None:
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    delivered = [deliver(control, make_message(subject=f"n{i}")) for i in range(5)]
    history = gmail.users().history()

    records, pages = collect(
        history.list(
            userId="me",
            startHistoryId=start,
            historyTypes=["messageAdded"],
            labelId="INBOX",
            maxResults=2,
        ),
        history.list_next,
        "history",
    )

    assert [len(p["history"]) for p in pages] == [2, 2, 1]
    assert [r["messagesAdded"][0]["message"]["id"] for r in records] == [d["id"] for d in delivered]
    assert records[0]["messagesAdded"][0]["message"]["labelIds"] == ["INBOX", "UNREAD"]
    assert records[0]["messages"] == [
        {"id": delivered[0]["id"], "threadId": delivered[0]["thread_id"]}
    ]
    assert [r["id"] for r in records] == [d["history_id"] for d in delivered]
    assert {p["historyId"] for p in pages} == {delivered[-1]["history_id"]}
    for page in pages:
        assert_schema(page, "ListHistoryResponse")

    caught_up = history.list(userId="me", startHistoryId=pages[-1]["historyId"]).execute()
    assert caught_up == {"historyId": delivered[-1]["history_id"]}


def test_history_filters_by_label_and_type(gmail: Any, control: httpx.Client) -> None:
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    deliver(control, make_message(), folder="sent")
    inbox = deliver(control, make_message())
    history = gmail.users().history()

    only_inbox = history.list(userId="me", startHistoryId=start, labelId="INBOX").execute()
    assert [r["id"] for r in only_inbox["history"]] == [inbox["history_id"]]
    everything = history.list(userId="me", startHistoryId=start).execute()
    assert len(everything["history"]) == 2
    labels = history.list(userId="me", startHistoryId=start, historyTypes=["labelAdded"]).execute()
    assert "history" not in labels


def test_history_is_404_once_expired(gmail: Any, control: httpx.Client) -> None:
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    deliver(control, make_message())
    expired = control.post(f"/_emulator/mailboxes/{ANN}/expire-history").json()

    with pytest.raises(HttpError) as raised:
        gmail.users().history().list(userId="me", startHistoryId=start).execute()
    assert raised.value.status_code == 404
    assert raised.value.error_details == [
        {"message": "Requested entity was not found.", "domain": "global", "reason": "notFound"}
    ]

    fresh = gmail.users().history().list(userId="me", startHistoryId=expired["history_id"])
    assert fresh.execute() == {"historyId": expired["history_id"]}


def test_history_needs_a_valid_start(control: httpx.Client, grant: Grant) -> None:
    headers = {"Authorization": f"Bearer {grant.access_token}"}
    for params in ({}, {"startHistoryId": "abc"}):
        answer = control.get("/gmail/v1/users/me/history", params=params, headers=headers)
        assert answer.status_code == 400
        assert answer.json()["error"]["errors"][0]["reason"] == "invalidArgument"


def test_missing_and_bad_ids(gmail: Any) -> None:
    get = gmail.users().messages().get
    with pytest.raises(HttpError) as missing:
        get(userId="me", id="18f0000000000000").execute()
    assert missing.value.status_code == 404
    with pytest.raises(HttpError) as malformed:
        get(userId="me", id="not-hex").execute()
    assert malformed.value.status_code == 400
    with pytest.raises(HttpError) as no_thread:
        gmail.users().threads().get(userId="me", id="18f0000000000000").execute()
    assert no_thread.value.status_code == 404


def test_calls_without_valid_credentials_get_googles_401(
    control: httpx.Client, grant: Grant
) -> None:
    bare = control.get("/gmail/v1/users/me/profile")
    assert bare.status_code == 401
    assert bare.json()["error"]["message"] == MISSING_CREDENTIALS_MESSAGE
    assert bare.json()["error"]["errors"][0]["reason"] == "required"

    wrong = control.get(
        "/gmail/v1/users/me/profile", headers={"Authorization": "Bearer ya29.made-up"}
    )
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert wrong.json()["error"]["errors"][0]["reason"] == "authError"


def test_another_users_mailbox_is_forbidden(gmail: Any, control: httpx.Client) -> None:
    control.post("/_emulator/mailboxes", json={"provider": "gmail", "address": "zed@example.com"})
    with pytest.raises(HttpError) as raised:
        gmail.users().getProfile(userId="zed@example.com").execute()
    assert raised.value.status_code == 403
    assert raised.value.error_details[0]["reason"] == "forbidden"


def test_unknown_gmail_path_is_a_google_404(control: httpx.Client, grant: Grant) -> None:
    answer = control.post(
        "/gmail/v1/users/me/messages/send",
        headers={"Authorization": f"Bearer {grant.access_token}"},
    )
    assert answer.status_code == 404
    assert answer.json()["error"]["status"] == "NOT_FOUND"
