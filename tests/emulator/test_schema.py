"""The schema checker itself must catch drift, or the shape tests prove nothing."""

from __future__ import annotations

import pytest

from tests.emulator.schema import SchemaMismatch, assert_schema


def test_accepts_a_well_formed_message() -> None:
    assert_schema(
        {
            "id": "18f",
            "threadId": "18f",
            "labelIds": ["INBOX"],
            "historyId": "12",
            "internalDate": "1700000000000",
            "sizeEstimate": 10,
            "payload": {"partId": "", "body": {"size": 2, "data": "aGk="}, "parts": []},
        },
        "Message",
    )


@pytest.mark.parametrize(
    ("value", "schema", "complaint"),
    [
        ({"emailAddress": "a@b.c", "historyID": "1"}, "Profile", "historyID"),
        ({"historyId": 12}, "Profile", "expected a string"),
        ({"historyId": "twelve"}, "Profile", "uint64"),
        ({"messagesTotal": "3"}, "Profile", "expected an integer"),
        ({"messagesTotal": True}, "Profile", "expected an integer"),
        ({"messages": {"id": "1"}}, "ListMessagesResponse", "expected an array"),
        ({"payload": {"body": {"data": "a+b/"}}}, "Message", "base64url"),
        ({"history": [{"messagesAdded": [{"msg": {}}]}]}, "ListHistoryResponse", "msg"),
    ],
)
def test_rejects_drift(value: object, schema: str, complaint: str) -> None:
    with pytest.raises(SchemaMismatch, match=complaint):
        assert_schema(value, schema)
