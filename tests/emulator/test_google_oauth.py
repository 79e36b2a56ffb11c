"""Google OAuth against the emulator: consent, PKCE, both client-auth styles, refresh, revoke."""

from __future__ import annotations

from typing import Any

import httplib2  # type: ignore[import-untyped]
import httpx
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import Request as HttplibRequest  # type: ignore[import-untyped]
from googleapiclient.errors import HttpError  # type: ignore[import-untyped]

from emulator.errors import INVALID_CREDENTIALS_MESSAGE
from emulator.server import RunningEmulator
from emulator.tokens import DEFAULT_GOOGLE_CLIENT_ID, DEFAULT_GOOGLE_CLIENT_SECRET
from tests.emulator.conftest import GmailFactory
from tests.emulator.support import (
    ANN,
    REDIRECT_URI,
    SCOPE,
    Grant,
    auth_params,
    connect,
    consent,
    exchange,
    id_token_claims,
    pkce_pair,
)

REVOKED = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}


def refresh(emulator: RunningEmulator, credentials: Credentials) -> None:
    """What google-auth does when a token runs out, over a CA-pinned httplib2 transport."""
    http = httplib2.Http(ca_certs=str(emulator.ca_path))
    try:
        credentials.refresh(HttplibRequest(http))  # type: ignore[no-untyped-call]
    finally:
        http.close()


def profile_status(control: httpx.Client, access_token: str) -> httpx.Response:
    return control.get(
        "/gmail/v1/users/me/profile", headers={"Authorization": f"Bearer {access_token}"}
    )


@pytest.mark.parametrize("basic_auth", [False, True], ids=["form-client-auth", "basic-client-auth"])
def test_code_exchange_issues_tokens_with_either_client_auth(
    control: httpx.Client, basic_auth: bool
) -> None:
    granted = consent(control, ANN)
    answer = exchange(control, granted, basic_auth=basic_auth)

    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert list(body) == [
        "access_token",
        "expires_in",
        "refresh_token",
        "scope",
        "token_type",
        "id_token",
    ]
    assert body["expires_in"] == 3599
    assert body["token_type"] == "Bearer"
    assert body["scope"] == SCOPE == granted.scope
    claims = id_token_claims(body["id_token"])
    assert claims["email"] == ANN
    assert claims["aud"] == DEFAULT_GOOGLE_CLIENT_ID
    assert claims["iss"] == "https://accounts.google.com"
    assert profile_status(control, body["access_token"]).json()["emailAddress"] == ANN


def test_consent_creates_the_login_hint_mailbox(control: httpx.Client) -> None:
    consent(control, "New.Person@Example.com")
    mailboxes = control.get("/_emulator/mailboxes").json()["items"]
    assert [(m["provider"], m["address"]) for m in mailboxes] == [
        ("gmail", "new.person@example.com")
    ]


def test_code_is_single_use(control: httpx.Client) -> None:
    granted = consent(control, ANN)
    assert exchange(control, granted).status_code == 200
    again = exchange(control, granted)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_wrong_code_verifier_is_invalid_grant(control: httpx.Client) -> None:
    granted = consent(control, ANN)
    other_verifier, _ = pkce_pair()
    answer = exchange(control, granted, code_verifier=other_verifier)
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid code verifier.",
    }


def test_redirect_uri_must_match_the_authorization_request(control: httpx.Client) -> None:
    answer = exchange(control, consent(control, ANN), redirect_uri=REDIRECT_URI + "/other")
    assert answer.status_code == 400
    assert answer.json()["error"] == "redirect_uri_mismatch"


@pytest.mark.parametrize("basic_auth", [False, True], ids=["form-client-auth", "basic-client-auth"])
def test_wrong_client_secret_is_invalid_client(control: httpx.Client, basic_auth: bool) -> None:
    granted = consent(control, ANN)
    data = {
        "grant_type": "authorization_code",
        "code": granted.code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": granted.verifier,
    }
    if basic_auth:
        answer = control.post("/token", data=data, auth=(DEFAULT_GOOGLE_CLIENT_ID, "wrong"))
    else:
        data |= {"client_id": DEFAULT_GOOGLE_CLIENT_ID, "client_secret": "wrong"}
        answer = control.post("/token", data=data)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("overrides", "status", "words"),
    [
        ({"login_hint": None}, 400, "login_hint"),
        ({"code_challenge": None}, 400, "code_challenge"),
        ({"code_challenge_method": "plain"}, 400, "S256"),
        ({"state": None}, 400, "state"),
        ({"response_type": "token"}, 400, "unsupported_response_type"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"redirect_uri": "not a url"}, 400, "redirect_uri_mismatch"),
        ({"login_hint": "not-an-address"}, 400, "not an email address"),
    ],
)
def test_authorization_url_errors_are_pages(
    control: httpx.Client, overrides: dict[str, str | None], status: int, words: str
) -> None:
    _, challenge = pkce_pair()
    answer = control.get("/o/oauth2/auth", params=auth_params(ANN, challenge, **overrides))
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert words in answer.text
    assert control.get("/_emulator/mailboxes").json()["items"] == []


def test_refresh_token_only_for_offline_access_and_forced_consent(control: httpx.Client) -> None:
    online = exchange(control, consent(control, ANN, access_type=None)).json()
    assert "refresh_token" not in online

    connect(control)
    # A live grant exists: Google sends no second refresh token unless consent is forced.
    quiet = exchange(control, consent(control, ANN)).json()
    assert "refresh_token" not in quiet
    forced = exchange(control, consent(control, ANN, prompt="consent")).json()
    assert forced["refresh_token"].startswith("1//")


def test_google_auth_refresh_gets_a_new_access_token(
    emulator: RunningEmulator, gmail_factory: GmailFactory, grant: Grant
) -> None:
    credentials = gmail_factory.credentials(grant)
    refresh(emulator, credentials)
    assert credentials.token != grant.access_token
    assert credentials.refresh_token == grant.refresh_token
    assert credentials.id_token is not None
    assert id_token_claims(credentials.id_token)["email"] == ANN


def test_rotated_refresh_token_replaces_the_old_one(
    emulator: RunningEmulator, control: httpx.Client, gmail_factory: GmailFactory, grant: Grant
) -> None:
    toggled = control.post(
        f"/_emulator/mailboxes/{ANN}/refresh-token-rotation", json={"enabled": True}
    )
    assert toggled.json()["rotate_refresh_tokens"] is True

    credentials = gmail_factory.credentials(grant)
    refresh(emulator, credentials)
    assert credentials.refresh_token not in (None, grant.refresh_token)

    stale = gmail_factory.credentials(grant)
    with pytest.raises(RefreshError) as raised:
        refresh(emulator, stale)
    assert raised.value.args[1] == REVOKED
    refresh(emulator, credentials)  # the saved, rotated token keeps working


def test_revoke_kills_access_and_refresh_until_consent_again(
    emulator: RunningEmulator, control: httpx.Client, gmail_factory: GmailFactory, grant: Grant
) -> None:
    revoked = control.post(f"/_emulator/mailboxes/{ANN}/revoke")
    assert revoked.status_code == 200
    assert revoked.json() == {"address": ANN, "revoked_tokens": 2}

    api = profile_status(control, grant.access_token)
    assert api.status_code == 401
    assert api.json() == {
        "error": {
            "code": 401,
            "message": INVALID_CREDENTIALS_MESSAGE,
            "errors": [
                {
                    "message": "Invalid Credentials",
                    "domain": "global",
                    "reason": "authError",
                    "location": "Authorization",
                    "locationType": "header",
                }
            ],
            "status": "UNAUTHENTICATED",
        }
    }

    gmail = gmail_factory.service(gmail_factory.credentials(grant))
    with pytest.raises(RefreshError) as raised:
        gmail.users().getProfile(userId="me").execute()
    assert raised.value.args == ("invalid_grant: Token has been expired or revoked.", REVOKED)
    assert raised.value.retryable is False

    again = connect(control)
    assert profile_status(control, again.access_token).status_code == 200


def test_expired_access_token_is_refreshed_by_the_client(
    control: httpx.Client, gmail_factory: GmailFactory, grant: Grant
) -> None:
    expired = control.post(f"/_emulator/mailboxes/{ANN}/expire-access-tokens")
    assert expired.json() == {"expired_tokens": 1}
    assert profile_status(control, grant.access_token).status_code == 401

    control.post("/_emulator/requests/reset")
    gmail = gmail_factory.service(gmail_factory.credentials(grant))
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"] == ANN
    assert control.get("/_emulator/requests").json()["counts"] == {
        "GET /gmail/v1/users/{user}/profile": 2,
        "POST /token": 1,
    }


def test_access_token_lifetime_is_configurable(control: httpx.Client) -> None:
    patched = control.patch("/_emulator/settings", json={"access_token_lifetime": 120})
    assert patched.json() == {"access_token_lifetime": 120}
    assert connect(control).body["expires_in"] == 120


def test_revoke_endpoint_ends_the_grant(control: httpx.Client, grant: Grant) -> None:
    assert control.post("/revoke", data={"token": grant.refresh_token}).status_code == 200
    assert profile_status(control, grant.access_token).status_code == 401
    refreshed = control.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": grant.refresh_token,
            "client_id": DEFAULT_GOOGLE_CLIENT_ID,
            "client_secret": DEFAULT_GOOGLE_CLIENT_SECRET,
        },
    )
    assert refreshed.status_code == 400
    assert refreshed.json() == REVOKED
    assert control.post("/revoke", data={"token": grant.refresh_token}).status_code == 400


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "refresh_token"}, 400, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "1//nope"}, 400, "invalid_grant"),
        ({"grant_type": "authorization_code", "code": "4/nope"}, 400, "invalid_grant"),
    ],
)
def test_token_endpoint_errors(
    control: httpx.Client, data: dict[str, Any], status: int, error: str
) -> None:
    data |= {"client_id": DEFAULT_GOOGLE_CLIENT_ID, "client_secret": DEFAULT_GOOGLE_CLIENT_SECRET}
    answer = control.post("/token", data=data)
    assert answer.status_code == status
    assert answer.json()["error"] == error


def test_token_endpoint_needs_client_credentials(control: httpx.Client) -> None:
    answer = control.post("/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    unknown = control.post(
        "/token", data={"grant_type": "refresh_token", "client_id": "who", "client_secret": "x"}
    )
    assert unknown.status_code == 401


def test_metadata_scope_cannot_read_bodies(
    control: httpx.Client, gmail_factory: GmailFactory
) -> None:
    scope = "https://www.googleapis.com/auth/gmail.metadata"
    granted = connect(control, scope=scope)
    gmail = gmail_factory.service(gmail_factory.credentials(granted))
    with pytest.raises(HttpError) as raised:
        gmail.users().messages().list(userId="me", q="in:inbox").execute()
    assert raised.value.status_code == 403
    assert gmail.users().messages().list(userId="me", labelIds=["INBOX"]).execute() == {
        "resultSizeEstimate": 0
    }
