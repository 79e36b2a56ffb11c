from __future__ import annotations

import pytest

from domain.flood import check_flood


@pytest.mark.parametrize(("opened", "allowed"), [(0, True), (19, True), (20, False), (500, False)])
def test_check_flood_allows_up_to_the_limit(opened: int, allowed: bool) -> None:
    verdict = check_flood("ann@example.com", opened, 20)
    assert verdict.allowed is allowed
    if not allowed:
        assert "ann@example.com" in verdict.reason and "20" in verdict.reason


def test_check_flood_never_blocks_an_unknown_sender() -> None:
    assert check_flood(None, 1000, 20).allowed
