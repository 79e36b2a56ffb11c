"""Every .eml fixture normalises to exactly its reviewed golden file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.mime import normalise_email
from tests.domain.builders import reserialise
from tests.domain.goldens import fixture_paths, golden_path, golden_view

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
