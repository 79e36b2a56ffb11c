from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.outcomes import PushState
from domain.push import (
    FOLLOW_UP_MARGIN,
    MIN_RENEW_WAIT,
    RETRY_FAILED,
    follow_up_at,
    poll_interval,
    renew_at,
)

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


def test_a_follow_up_only_when_the_poll_came_inside_the_drop_window() -> None:
    notified = NOW
    soon = NOW + timedelta(milliseconds=300)
    assert follow_up_at(notified, soon, 1.0) == NOW + timedelta(seconds=1) + FOLLOW_UP_MARGIN
    assert follow_up_at(notified, NOW + timedelta(seconds=2), 1.0) is None  # a busy system
    assert follow_up_at(notified, soon, 0.0) is None  # a provider that drops nothing
    assert follow_up_at(None, soon, 1.0) is None  # a person's poll


def test_a_push_that_says_it_expires_now_is_not_renewed_in_a_loop() -> None:
    assert renew_at(NOW, NOW - timedelta(hours=1), PushState.LIVE) == NOW + MIN_RENEW_WAIT
