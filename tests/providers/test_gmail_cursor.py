"""The cursor's encoding: compact, round-trips, and refuses what it did not make."""

from __future__ import annotations

import pytest

from providers.gmail.cursor import CatchUp, CursorFormatError, GmailCursor


def test_an_idle_cursor_is_short() -> None:
    cursor = GmailCursor(history_id="1732540123", advanced_at=1732540000)
    assert cursor.encode() == '{"v":1,"h":"1732540123","t":1732540000}'


@pytest.mark.parametrize(
    "cursor",
    [
        GmailCursor("10", 5),
        GmailCursor("10", 5, page_token="aDoxMg"),
        GmailCursor("10", 5, catch_up=CatchUp(after=1, page_token="bToz", expired=True)),
        GmailCursor("10", 5, catch_up=CatchUp(after=1)),
        GmailCursor("10", 5, page_token="x", pending=("18c", "18d")),
    ],
)
def test_round_trip(cursor: GmailCursor) -> None:
    assert GmailCursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "[]",
        '{"v":2,"h":"1","t":1}',
        '{"v":1,"t":1}',
        '{"v":1,"h":1,"t":1}',
        '{"v":1,"h":"1","t":"1"}',
        '{"v":1,"h":"1","t":1,"c":{}}',
        "https://graph/delta?x",
    ],
)
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(CursorFormatError):
        GmailCursor.decode(text)
