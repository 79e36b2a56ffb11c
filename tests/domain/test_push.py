from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.outcomes import PushState
from domain.push import FOLLOW_UP, MIN_RENEW_WAIT, RETRY_FAILED, poll_interval, renew_at

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_live_push_polls_at_the_safety_interval_unless_the_mailbox_asks_for_longer() -> None:
    assert poll_interval(60, PushState.LIVE, 900) == 900
    assert poll_interval(3600, PushState.LIVE, 900) == 3600
    assert poll_interval(60, PushState.OFF, 900) == 60
    assert poll_interval(60, PushState.FAILED, 900) == 60


def test_renewal_is_daily_and_well_before_expiry() -> None:
    week = NOW + timedelta(days=7)
    assert renew_at(NOW, week, PushState.LIVE) == NOW + timedelta(days=1)
    soon = NOW + timedelta(hours=20)
    assert renew_at(NOW, soon, PushState.LIVE) == NOW + timedelta(hours=8)


def test_a_failed_push_is_tried_again_later_and_off_is_left_alone() -> None:
    assert renew_at(NOW, None, PushState.FAILED) == NOW + RETRY_FAILED
    assert renew_at(NOW, NOW + timedelta(days=7), PushState.OFF) is None


def test_the_follow_up_outlasts_gmails_one_second_limit() -> None:
    assert FOLLOW_UP >= timedelta(seconds=1)


def test_a_push_that_says_it_expires_now_is_not_renewed_in_a_loop() -> None:
    assert renew_at(NOW, NOW - timedelta(hours=1), PushState.LIVE) == NOW + MIN_RENEW_WAIT
