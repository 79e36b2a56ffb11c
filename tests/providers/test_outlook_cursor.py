"""The Outlook cursor's encoding: compact, exact round trips, loud on anything else."""

from __future__ import annotations

import pytest

from providers.gmail.cursor import CatchUp, GmailCursor
from providers.outlook.cursor import CursorFormatError, Listed, OutlookCursor

LINK = "https://graph.microsoft.com/v1.0/me/mailfolders('AQMk')/messages/delta?$deltatoken=abc"


def test_an_idle_cursor_is_just_the_link_and_the_floor() -> None:
    cursor = OutlookCursor(link=LINK, floor=1_700_000_000)
    assert cursor.encode() == '{"v":1,"l":"' + LINK + '","f":1700000000}'
    assert OutlookCursor.decode(cursor.encode()) == cursor


def test_every_field_round_trips() -> None:
    cursor = OutlookCursor(
        link=LINK,
        floor=1_700_000_000,
        in_round=True,
        round_started=1_700_000_100,
        resync=True,
        pending=(Listed("AAMk1", "AAQk1", "2024-05-01T10:00:00Z"), Listed("AAMk2", None, None)),
    )
    assert OutlookCursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"v":2,"l":"x","f":1}',
        '{"v":1,"f":1}',
        '{"v":1,"l":"x","f":"1"}',
        '{"v":1,"l":"x","f":1,"q":[["only-id"]]}',
        GmailCursor("123", 1, catch_up=CatchUp(after=0)).encode(),
    ],
)
def test_anything_else_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(CursorFormatError) as raised:
        OutlookCursor.decode(text)
    assert "unreadable Outlook cursor" in str(raised.value) or "not an Outlook" in str(raised.value)
