"""Injected faults and request counts, seen through the real Gmail client."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from emulator.tokens import DEFAULT_GOOGLE_CLIENT_ID, DEFAULT_GOOGLE_CLIENT_SECRET
from tests.emulator.conftest import GmailFactory
from tests.emulator.support import Grant, connect

PROFILE = "GET /gmail/v1/users/{user}/profile"


def add_fault(control: httpx.Client, **fault: Any) -> dict[str, Any]:
    answer = control.post("/_emulator/faults", json=fault)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def profile_outcomes(gmail: Any, calls: int) -> list[int]:
    statuses = []
    for _ in range(calls):
        try:
            gmail.users().getProfile(userId="me").execute()
            statuses.append(200)
        except HttpError as error:
            statuses.append(error.status_code)
    return statuses


def test_429_carries_retry_after_and_googles_reason(gmail: Any, control: httpx.Client) -> None:
    add_fault(control, provider="gmail", status=429, rate=1, count=1, retry_after=7)
    with pytest.raises(HttpError) as raised:
        gmail.users().getProfile(userId="me").execute()
    assert raised.value.status_code == 429
    assert raised.value.resp["retry-after"] == "7"
    assert raised.value.error_details[0]["reason"] == "rateLimitExceeded"
    # count=1: the fault is spent.
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"]
    assert control.get("/_emulator/requests").json()["counts"][PROFILE] == 2


def test_500_until_the_faults_are_cleared(gmail: Any, control: httpx.Client) -> None:
    add_fault(control, provider="any", status=500, rate=1)
    with pytest.raises(HttpError) as raised:
        gmail.users().messages().list(userId="me").execute()
    assert raised.value.status_code == 500
    assert raised.value.error_details[0]["reason"] == "backendError"
    assert "retry-after" not in raised.value.resp

    assert control.delete("/_emulator/faults").status_code == 204
    assert gmail.users().messages().list(userId="me").execute() == {"resultSizeEstimate": 0}


def test_delay_slows_the_answer_down(gmail: Any, control: httpx.Client) -> None:
    add_fault(control, provider="gmail", delay=0.3, count=1)
    started = time.monotonic()
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"]
    assert time.monotonic() - started >= 0.3
    assert control.get("/_emulator/faults").json() == {"items": []}


def test_rate_is_deterministic_for_a_seed(
    control: httpx.Client, gmail_factory: GmailFactory
) -> None:
    runs = []
    for _ in range(2):
        assert control.post("/_emulator/reset", json={"seed": 7}).status_code == 204
        gmail = gmail_factory.service(gmail_factory.credentials(connect(control)))
        add_fault(control, provider="gmail", status=503, rate=0.5)
        runs.append(profile_outcomes(gmail, 16))
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 503}


def test_faults_spare_other_providers_oauth_and_control_routes(
    gmail: Any, control: httpx.Client, grant: Grant
) -> None:
    add_fault(control, provider="outlook", status=500, rate=1)
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"]

    add_fault(control, provider="gmail", status=500, rate=1)
    assert control.get("/_emulator/mailboxes").status_code == 200
    refreshed = control.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": grant.refresh_token,
            "client_id": DEFAULT_GOOGLE_CLIENT_ID,
            "client_secret": DEFAULT_GOOGLE_CLIENT_SECRET,
        },
    )
    assert refreshed.status_code == 200


def test_a_fault_naming_a_route_hits_only_that_route(
    gmail: Any, control: httpx.Client, grant: Grant
) -> None:
    add_fault(control, provider="gmail", status=503, rate=1, count=1, route="POST /token")
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"]
    refreshed = control.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": grant.refresh_token,
            "client_id": DEFAULT_GOOGLE_CLIENT_ID,
            "client_secret": DEFAULT_GOOGLE_CLIENT_SECRET,
        },
    )
    assert refreshed.status_code == 503
    assert refreshed.json()["error"] == "internal_failure"


def test_request_counts_and_reset(gmail: Any, control: httpx.Client) -> None:
    gmail.users().getProfile(userId="me").execute()
    gmail.users().messages().list(userId="me", q="in:inbox").execute()
    assert control.get("/_emulator/requests").json() == {
        "counts": {
            "GET /gmail/v1/users/{user}/messages": 1,
            "GET /gmail/v1/users/{user}/profile": 1,
            "GET /o/oauth2/auth": 1,
            "POST /token": 1,
        },
        "pushes": {},
    }
    assert control.post("/_emulator/requests/reset").status_code == 204
    assert control.get("/_emulator/requests").json() == {"counts": {}, "pushes": {}}
