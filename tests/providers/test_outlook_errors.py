"""How Outlook failures reach the workflow: AuthExpired, Throttled or Transient."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import httpx
import pytest

from emulator.server import RunningEmulator
from providers.base import AuthExpired, ProviderError, Throttled, Transient
from providers.oauth_common import Grant
from providers.outlook.auth import classify_token_error
from providers.outlook.client import OutlookProvider
from providers.outlook.cursor import OutlookCursor
from tests.providers.conftest import (
    OLIVE,
    OutlookFactory,
    deliver_to_outlook,
    drain,
    outlook_settings,
)
from tests.providers.support import (
    closed_port_url,
    request_counts,
    reset_counts,
    since_last_week,
)
from tests.providers.test_gmail_errors import messages_of

DELTA = "GET /v1.0/me/mailFolders/{folder}/messages/delta"
MIME = "GET /v1.0/me/messages/{id}/$value"
BATCH = "POST /v1.0/$batch"
TOKEN = "POST /{tenant}/oauth2/v2.0/token"
BOX = f"/_emulator/mailboxes/{OLIVE}"


def synced_cursor(outlook: OutlookProvider) -> str:
    return drain(outlook, outlook.initial_cursor(since_last_week())).cursor


def add_fault(control: httpx.Client, **fault: Any) -> None:
    answer = control.post("/_emulator/faults", json={"provider": "outlook", **fault})
    assert answer.status_code == 201, answer.text


def test_revoked_access_is_auth_expired_without_leaking_tokens(
    outlook: OutlookProvider, outlook_grant: Grant, control: httpx.Client
) -> None:
    cursor = synced_cursor(outlook)
    assert control.post(BOX + "/revoke").json()["revoked_tokens"] == 2
    reset_counts(control)

    with pytest.raises(AuthExpired) as raised:
        outlook.fetch_page(cursor, 50)

    # One 401, one forced renewal refused with invalid_grant (AADSTS700082): no retry loop.
    # (MSAL's discovery was fetched once for this process, by the consent's code exchange.)
    assert request_counts(control) == {DELTA: 1, TOKEN: 1}
    assert "AADSTS700082" in str(raised.value) and "reconnected" in str(raised.value)
    text = messages_of(raised.value)
    assert outlook_grant.credentials.refresh_token not in text
    assert str(outlook_grant.credentials.access_token) not in text


def test_a_persistent_401_gets_one_renewal_then_auth_expired(
    outlook: OutlookProvider, control: httpx.Client
) -> None:
    cursor = synced_cursor(outlook)
    add_fault(control, route=DELTA, status=401)
    reset_counts(control)

    with pytest.raises(AuthExpired) as raised:
        outlook.fetch_page(cursor, 50)

    assert request_counts(control) == {DELTA: 2, TOKEN: 1}
    assert "HTTP 401 (InvalidAuthenticationToken)" in str(raised.value)


def test_rotated_refresh_tokens_are_kept_and_work(
    outlook_grant: Grant, make_outlook: OutlookFactory, control: httpx.Client
) -> None:
    assert control.post(BOX + "/refresh-token-rotation", json={"enabled": True}).is_success
    control.post(BOX + "/expire-access-tokens")
    outlook = make_outlook(outlook_grant.credentials)
    cursor = synced_cursor(outlook)  # 401, renewal (rotates the refresh token), retry
    rotated = outlook.credentials()
    assert rotated.refresh_token != outlook_grant.credentials.refresh_token

    # The saved cache renews on its own (its refresh token is the new one)...
    control.post(BOX + "/expire-access-tokens")
    fresh = make_outlook(replace(rotated, access_token=None, expires_at=None))
    assert fresh.fetch_page(cursor, 50).messages == []
    # ...and the old cache is dead, as its refresh token was rotated out.
    control.post(BOX + "/expire-access-tokens")
    stale = make_outlook(outlook_grant.credentials)
    with pytest.raises(AuthExpired):
        stale.fetch_page(cursor, 50)


def test_429_is_throttled_with_retry_after(outlook: OutlookProvider, control: httpx.Client) -> None:
    cursor = synced_cursor(outlook)
    add_fault(control, status=429, retry_after=7, count=1)
    with pytest.raises(Throttled) as raised:
        outlook.fetch_page(cursor, 50)
    assert raised.value.retry_after == 7.0


def test_a_throttled_batch_part_fails_the_page_and_a_retry_gets_it_all(
    outlook: OutlookProvider, control: httpx.Client
) -> None:
    cursor = synced_cursor(outlook)
    ids = deliver_to_outlook(control, 3)
    add_fault(control, route=MIME, status=429, retry_after=3, count=1)

    with pytest.raises(Throttled) as raised:
        outlook.fetch_page(cursor, 50)
    assert raised.value.retry_after == 3.0

    # The cursor did not advance: the caller retries the same page.
    assert [m.provider_message_id for m in outlook.fetch_page(cursor, 50).messages] == ids


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (500, None, Transient),
        (503, None, Transient),
        (504, None, Transient),
        (400, None, Transient),
        (403, None, AuthExpired),
        (403, "ErrorQuotaExceeded", Transient),
        (429, None, Throttled),
    ],
)
def test_http_errors_are_classified(
    outlook: OutlookProvider,
    control: httpx.Client,
    status: int,
    reason: str | None,
    expected: type[ProviderError],
) -> None:
    cursor = synced_cursor(outlook)
    add_fault(control, status=status, **({"reason": reason} if reason else {}))
    with pytest.raises(ProviderError) as raised:
        outlook.fetch_page(cursor, 50)
    assert type(raised.value) is expected
    assert f"HTTP {status}" in str(raised.value)


def test_a_failing_batch_request_is_transient(
    outlook: OutlookProvider, control: httpx.Client
) -> None:
    cursor = synced_cursor(outlook)
    deliver_to_outlook(control, 2)
    add_fault(control, route=BATCH, status=502, count=1)
    with pytest.raises(Transient):
        outlook.fetch_page(cursor, 50)


@pytest.mark.parametrize(
    ("status", "expected"), [(503, Transient), (500, Transient), (429, Throttled)]
)
def test_a_failing_token_endpoint_is_retried_later(
    outlook: OutlookProvider, control: httpx.Client, status: int, expected: type[ProviderError]
) -> None:
    cursor = synced_cursor(outlook)
    control.post(BOX + "/expire-access-tokens")
    add_fault(control, route=TOKEN, status=status, retry_after=4)
    with pytest.raises(ProviderError) as raised:
        outlook.fetch_page(cursor, 50)
    assert type(raised.value) is expected
    if isinstance(raised.value, Throttled):
        assert raised.value.retry_after == 4.0
    # The failure is not cached by MSAL: the next attempt (a fresh app) reaches the server.
    control.delete("/_emulator/faults")
    assert outlook.fetch_page(cursor, 50).messages == []


def test_a_slow_answer_is_transient(
    emulator: RunningEmulator,
    outlook_grant: Grant,
    make_outlook: OutlookFactory,
    control: httpx.Client,
) -> None:
    timeout = 0.3
    outlook = make_outlook(
        outlook_grant.credentials, outlook_settings(emulator, provider_timeout_seconds=timeout)
    )
    cursor = synced_cursor(outlook)
    add_fault(control, delay=timeout + 0.5, count=1)

    started = time.monotonic()
    with pytest.raises(Transient) as raised:
        outlook.fetch_page(cursor, 50)
    assert time.monotonic() - started < timeout + 0.4
    assert "in time" in str(raised.value)
    # Let the emulator finish the abandoned request before the next test resets it.
    time.sleep(max(0.0, timeout + 0.5 - (time.monotonic() - started)))


def test_an_unreachable_graph_is_transient(
    emulator: RunningEmulator, outlook_grant: Grant, make_outlook: OutlookFactory
) -> None:
    down = outlook_settings(emulator, graph_api_url=closed_port_url() + "/v1.0")
    outlook = make_outlook(outlook_grant.credentials, down)
    with pytest.raises(Transient) as raised:
        outlook.fetch_page(outlook.initial_cursor(since_last_week()), 50)
    assert "network error" in str(raised.value)


def test_an_unreachable_sign_in_service_is_transient(
    emulator: RunningEmulator, outlook_grant: Grant, make_outlook: OutlookFactory
) -> None:
    down = outlook_settings(emulator, microsoft_authority=closed_port_url() + "/common")
    bare = replace(outlook_grant.credentials, access_token=None, expires_at=None)
    outlook = make_outlook(bare, down)
    with pytest.raises(Transient) as raised:
        outlook.fetch_page(outlook.initial_cursor(since_last_week()), 50)
    assert "sign-in service" in str(raised.value)


def test_unreadable_stored_credentials_are_auth_expired(
    outlook_grant: Grant, make_outlook: OutlookFactory
) -> None:
    broken = replace(
        outlook_grant.credentials, refresh_token="not a token cache", access_token=None
    )
    outlook = make_outlook(broken)
    with pytest.raises(AuthExpired) as raised:
        outlook.fetch_page(outlook.initial_cursor(since_last_week()), 50)
    assert "not a token cache" not in messages_of(raised.value)


def test_a_link_for_another_host_is_never_followed(
    outlook: OutlookProvider, control: httpx.Client
) -> None:
    ids = deliver_to_outlook(control, 2)
    cursor = OutlookCursor.decode(synced_cursor(outlook))
    # As if the Graph endpoint moved (settings changed): the token must not go there.
    foreign = replace(cursor, link="https://graph.example.net/v1.0/me/messages/delta?x=1")
    reset_counts(control)

    synced = drain(outlook, foreign.encode())

    assert synced.pages[0].catching_up and synced.ids == ids
    assert request_counts(control)[DELTA] == 1


@pytest.mark.parametrize(
    ("result", "expected", "words"),
    [
        ({"error": "invalid_grant", "error_codes": [50173]}, AuthExpired, "revoked"),
        ({"error": "invalid_grant", "error_codes": [70008]}, AuthExpired, "expired"),
        ({"error": "interaction_required", "error_codes": [50076]}, AuthExpired, "multi-factor"),
        ({"error": "invalid_grant", "error_codes": [65001]}, AuthExpired, "consent"),
        ({"error": "unauthorized_client", "error_codes": [700016]}, AuthExpired, "registered"),
        ({"error": "invalid_client", "error_codes": [7000222]}, Transient, "AADSTS7000222"),
        ({"error": "temporarily_unavailable"}, Transient, "temporary"),
    ],
)
def test_token_errors_from_entra_are_classified(
    result: dict[str, Any], expected: type[ProviderError], words: str
) -> None:
    # The answers MSAL returns as dicts; the emulator itself only produces some of them.
    classified = classify_token_error(result, "renewing Microsoft access")
    assert type(classified) is expected
    assert words in str(classified)
