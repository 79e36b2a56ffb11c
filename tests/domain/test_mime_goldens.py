"""Every .eml fixture normalises to exactly its reviewed golden file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.loop_guards import check_loop
from domain.mime import normalise_email, read_headers
from tests.domain.builders import reserialise
from tests.domain.goldens import MAILBOX, fixture_paths, golden_path, golden_view

FIXTURES = fixture_paths()


def test_fixtures_cover_at_least_thirty_real_world_cases() -> None:
    assert len(FIXTURES) >= 30
    missing = [path.name for path in FIXTURES if not golden_path(path).exists()]
    assert missing == []


@pytest.mark.parametrize("eml", FIXTURES, ids=[path.stem for path in FIXTURES])
def test_normalise_email_matches_golden(eml: Path) -> None:
    expected = json.loads(golden_path(eml).read_text(encoding="utf-8"))
    assert golden_view(eml.read_bytes()) == expected


@pytest.mark.parametrize("eml", FIXTURES, ids=[path.stem for path in FIXTURES])
def test_normalise_email_is_stable_when_reserialised(eml: Path) -> None:
    first = normalise_email(eml.read_bytes())
    second = normalise_email(reserialise(first))
    fields = ("subject", "from_address", "from_name", "to", "cc", "message_id")
    assert [getattr(second, name) for name in fields] == [getattr(first, name) for name in fields]
    assert (second.in_reply_to, second.references) == (first.in_reply_to, first.references)
    assert (second.date, second.text) == (first.date, first.text)


HEADER_FIELDS = (
    "message_id",
    "in_reply_to",
    "references",
    "subject",
    "from_address",
    "from_name",
    "reply_to",
    "to",
    "cc",
    "date",
    "headers",
    "content_type",
    "size",
)


@pytest.mark.parametrize("eml", FIXTURES, ids=[path.stem for path in FIXTURES])
def test_read_headers_agrees_with_the_full_parse_on_every_header_field(eml: Path) -> None:
    raw = eml.read_bytes()
    full, headers = normalise_email(raw), read_headers(raw)
    assert [getattr(headers, name) for name in HEADER_FIELDS] == [
        getattr(full, name) for name in HEADER_FIELDS
    ]
    # What the filter decides from the headers alone is what it decided from the full parse.
    assert check_loop(headers, MAILBOX) == check_loop(full, MAILBOX)
    assert (headers.text, headers.attachments) == ("", ())
