"""MSAL's discovery is fetched once per process, while every token request stays a real one:
a refresh that gets a 5xx or a 429 fails at once, and the next refresh asks again."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from core.settings import Settings
from providers.base import Throttled, Transient
from providers.oauth_common import Grant
from providers.outlook.auth import DISCOVERY, MicrosoftTokens
from tests.providers.conftest import connect_outlook
from tests.providers.support import request_counts, reset_counts

TOKEN = "POST /{tenant}/oauth2/v2.0/token"
OPENID = "GET /{tenant}/v2.0/.well-known/openid-configuration"


@pytest.fixture(autouse=True)
def forget_discovery() -> Iterator[None]:
    yield
    DISCOVERY.clear()  # the next test's emulator state owes nothing to this one's


def new_process(control: httpx.Client) -> None:
    """From here on as a new process would be (nothing discovered yet), counting afresh."""
    DISCOVERY.clear()
    reset_counts(control)


def add_fault(control: httpx.Client, route: str, status: int, **more: object) -> None:
    fault = {"provider": "outlook", "route": route, "status": status, "count": 1, **more}
    answer = control.post("/_emulator/faults", json=fault)
    assert answer.status_code == 201, answer.text


def test_discovery_once_per_process_across_refreshes_and_mailboxes(
    outlook_grant: Grant, ms_settings: Settings, control: httpx.Client
) -> None:
    other = connect_outlook(control, ms_settings, login_hint="paul@example.org")
    new_process(control)
    olive = MicrosoftTokens(ms_settings, outlook_grant.credentials)
    paul = MicrosoftTokens(ms_settings, other.credentials)
    tokens = {olive.refresh(force=True) for _ in range(3)}
    tokens |= {paul.refresh(force=True) for _ in range(2)}
    assert len(tokens) == 5  # each refresh a new token from the token endpoint
    assert request_counts(control) == {OPENID: 1, TOKEN: 5}


@pytest.mark.parametrize(
    ("status", "raised"), [(503, Transient), (500, Transient), (429, Throttled)]
)
def test_a_failed_refresh_fails_at_once_and_the_next_one_asks_again(
    outlook_grant: Grant,
    ms_settings: Settings,
    control: httpx.Client,
    status: int,
    raised: type[Exception],
) -> None:
    tokens = MicrosoftTokens(ms_settings, outlook_grant.credentials)
    tokens.refresh(force=True)  # discovery is in hand now
    add_fault(control, TOKEN, status, retry_after=7)
    reset_counts(control)
    with pytest.raises(raised) as failed:
        tokens.refresh(force=True)
    if isinstance(failed.value, Throttled):
        assert failed.value.retry_after == 7.0
    assert request_counts(control) == {TOKEN: 1}
    # MSAL would replay its cached 429/5xx for Retry-After seconds in the same app; a
    # fresh app per request really asks the token endpoint, and gets the token.
    assert tokens.refresh(force=True)
    assert request_counts(control) == {TOKEN: 2}


def test_a_failed_discovery_is_not_kept(
    outlook_grant: Grant, ms_settings: Settings, control: httpx.Client
) -> None:
    add_fault(control, OPENID, 503)
    new_process(control)
    tokens = MicrosoftTokens(ms_settings, outlook_grant.credentials)
    with pytest.raises(Transient):
        tokens.refresh(force=True)
    assert request_counts(control) == {OPENID: 1}
    assert tokens.refresh(force=True)
    assert tokens.refresh(force=True)
    assert request_counts(control) == {OPENID: 2, TOKEN: 2}
