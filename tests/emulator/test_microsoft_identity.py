"""The Microsoft identity platform side of the emulator, driven by real MSAL over HTTPS.

The helpers here (an MSAL app on the emulator, a consent, a connected grant) are
also what the Graph test modules use to get tokens.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import msal  # type: ignore[import-untyped]
import pytest
import requests

from emulator.server import RunningEmulator
from emulator.tokens import DEFAULT_MICROSOFT_CLIENT_ID, DEFAULT_MICROSOFT_CLIENT_SECRET
from tests.emulator.support import pkce_pair

OLIVE = "olive@example.org"
REDIRECT_URI = "http://127.0.0.1:9/oauth/outlook/callback"
SCOPES = ["Mail.Read", "User.Read"]
OPENID = "GET /{tenant}/v2.0/.well-known/openid-configuration"
AUTHORIZE = "GET /{tenant}/oauth2/v2.0/authorize"
TOKEN = "POST /{tenant}/oauth2/v2.0/token"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@contextmanager
def msal_client(
    emulator: RunningEmulator, cache: Any = None, *, secret: str = DEFAULT_MICROSOFT_CLIENT_SECRET
) -> Iterator[Any]:
    """A fresh MSAL app on the emulator (research §3: explicit session, no discovery)."""
    session = requests.Session()
    session.trust_env = False  # this machine's REQUESTS_CA_BUNDLE would win otherwise
    session.verify = str(emulator.ca_path)
    try:
        yield msal.ConfidentialClientApplication(
            DEFAULT_MICROSOFT_CLIENT_ID,
            client_credential=secret,
            authority=emulator.url + "/common",
            instance_discovery=False,
            http_client=session,
            token_cache=cache if cache is not None else msal.SerializableTokenCache(),
        )
    finally:
        session.close()


def browser_form_post(control: httpx.Client, auth_uri: str) -> dict[str, str]:
    """Follow MSAL's authorization URL (form_post) and read the fields it would post back."""
    answer = control.get(auth_uri)
    assert answer.status_code == 200, answer.text
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(answer.text)}


@dataclass(frozen=True)
class MsGrant:
    result: dict[str, Any]
    cache: Any

    @property
    def access_token(self) -> str:
        return str(self.result["access_token"])


def connect_outlook(
    emulator: RunningEmulator, control: httpx.Client, address: str = OLIVE
) -> MsGrant:
    """The whole MSAL auth-code flow for `address`; its tokens and cache."""
    cache = msal.SerializableTokenCache()
    with msal_client(emulator, cache) as app:
        flow = app.initiate_auth_code_flow(
            SCOPES, redirect_uri=REDIRECT_URI, login_hint=address, response_mode="form_post"
        )
        result = app.acquire_token_by_auth_code_flow(
            flow, browser_form_post(control, flow["auth_uri"])
        )
    assert "access_token" in result, result
    return MsGrant(result, cache)


def b64url_json(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def authorize_params(challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "client_id": DEFAULT_MICROSOFT_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "Mail.Read User.Read offline_access openid profile",
        "state": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": "n-123",
        "login_hint": OLIVE,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def token_form(**fields: str) -> dict[str, str]:
    return {
        "client_id": DEFAULT_MICROSOFT_CLIENT_ID,
        "client_secret": DEFAULT_MICROSOFT_CLIENT_SECRET,
        "client_info": "1",
        **fields,
    }


def code_for(control: httpx.Client, **overrides: str | None) -> tuple[str, str]:
    """(code, verifier) from a plain query-mode authorization."""
    verifier, challenge = pkce_pair()
    answer = control.get(
        "/common/oauth2/v2.0/authorize", params=authorize_params(challenge, **overrides)
    )
    assert answer.status_code == 302, answer.text
    return httpx.URL(answer.headers["location"]).params["code"], verifier


def test_openid_configuration_advertises_https_endpoints_on_the_emulator(
    emulator: RunningEmulator, control: httpx.Client
) -> None:
    config = control.get("/common/v2.0/.well-known/openid-configuration").json()
    assert config["authorization_endpoint"] == emulator.url + "/common/oauth2/v2.0/authorize"
    assert config["token_endpoint"] == emulator.url + "/common/oauth2/v2.0/token"
    assert emulator.url.startswith("https://")
    assert config["issuer"] == emulator.url + "/{tenantid}/v2.0"
    assert {"jwks_uri", "response_modes_supported", "scopes_supported"} <= set(config)
    other = control.get(
        "/11111111-2222-3333-4444-555555555555/v2.0/.well-known/openid-configuration"
    )
    assert other.json()["token_endpoint"].endswith(
        "/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token"
    )
    assert control.get("/_emulator/requests").json()["counts"] == {OPENID: 2}


def test_msal_auth_code_flow_end_to_end(emulator: RunningEmulator, control: httpx.Client) -> None:
    cache = msal.SerializableTokenCache()
    with msal_client(emulator, cache) as app:
        flow = app.initiate_auth_code_flow(
            SCOPES, redirect_uri=REDIRECT_URI, login_hint=OLIVE, response_mode="form_post"
        )
        posted = browser_form_post(control, flow["auth_uri"])
        assert set(posted) == {"code", "state", "session_state"}
        result = app.acquire_token_by_auth_code_flow(flow, posted)
        accounts = app.get_accounts()

    assert set(result) >= {"access_token", "refresh_token", "id_token", "client_info", "expires_in"}
    assert result["token_type"] == "Bearer"
    assert set(result["scope"].split()) == {"Mail.Read", "User.Read", "openid", "profile"}
    claims = result["id_token_claims"]
    assert {
        "aud",
        "iss",
        "iat",
        "nbf",
        "exp",
        "oid",
        "tid",
        "sub",
        "preferred_username",
        "name",
    } <= set(claims)
    assert claims["aud"] == DEFAULT_MICROSOFT_CLIENT_ID
    assert claims["preferred_username"] == OLIVE
    assert claims["iss"] == f"{emulator.url}/{claims['tid']}/v2.0"
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    # The nonce sent at /authorize (MSAL sends its SHA-256) is copied into the id_token.
    assert claims["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    client_info = b64url_json(result["client_info"])
    assert client_info == {"uid": claims["oid"], "utid": claims["tid"]}
    assert [a["home_account_id"] for a in accounts] == [f"{claims['oid']}.{claims['tid']}"]
    assert [a["username"] for a in accounts] == [OLIVE]
    # The consent created the Outlook mailbox.
    mailboxes = control.get("/_emulator/mailboxes").json()["items"]
    assert [(m["provider"], m["address"]) for m in mailboxes] == [("outlook", OLIVE)]
    assert control.get("/_emulator/requests").json()["counts"] == {
        OPENID: 1,
        AUTHORIZE: 1,
        TOKEN: 1,
    }


def test_query_mode_redirects_with_code_state_and_session_state(control: httpx.Client) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(challenge)
    answer = control.get("/organizations/oauth2/v2.0/authorize", params=params)
    assert answer.status_code == 302
    back = httpx.URL(answer.headers["location"])
    assert str(back.copy_with(query=None)) == REDIRECT_URI
    assert set(back.params) == {"code", "state", "session_state"}
    assert back.params["state"] == params["state"]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"state": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_authorize_sends_protocol_errors_back_to_the_app(
    control: httpx.Client, overrides: dict[str, str | None], error: str
) -> None:
    _, challenge = pkce_pair()
    answer = control.get(
        "/common/oauth2/v2.0/authorize", params=authorize_params(challenge, **overrides)
    )
    assert answer.status_code == 302
    back = httpx.URL(answer.headers["location"])
    assert back.params["error"] == error
    assert back.params["error_description"].startswith("AADSTS")
    assert "code" not in back.params


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({"client_id": "someone-else"}, "AADSTS700016"),
        ({"redirect_uri": "javascript:alert(1)"}, "AADSTS50011"),
        ({"login_hint": None}, "login_hint"),
    ],
)
def test_authorize_shows_a_page_when_it_cannot_answer_the_app(
    control: httpx.Client, overrides: dict[str, str | None], text: str
) -> None:
    _, challenge = pkce_pair()
    answer = control.get(
        "/common/oauth2/v2.0/authorize", params=authorize_params(challenge, **overrides)
    )
    assert answer.status_code == 400
    assert text in answer.text


def test_a_code_needs_its_verifier_and_works_once(control: httpx.Client) -> None:
    code, verifier = code_for(control)
    wrong, _ = pkce_pair()
    form = token_form(grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI)
    refused = control.post("/common/oauth2/v2.0/token", data={**form, "code_verifier": wrong})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert refused.json()["error_codes"] == [501481]

    code, verifier = code_for(control)
    form["code"] = code
    first = control.post("/common/oauth2/v2.0/token", data={**form, "code_verifier": verifier})
    assert first.status_code == 200, first.text
    assert b64url_json(first.json()["client_info"])["uid"]
    again = control.post("/common/oauth2/v2.0/token", data={**form, "code_verifier": verifier})
    assert again.json()["error_codes"] == [70008]


def test_every_refresh_hands_out_a_new_refresh_token(
    emulator: RunningEmulator, control: httpx.Client
) -> None:
    grant = connect_outlook(emulator, control)
    with msal_client(emulator, grant.cache) as app:
        account = app.get_accounts()[0]
        renewed = app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert renewed["access_token"] != grant.access_token
    assert renewed["refresh_token"] != grant.result["refresh_token"]
    assert "nonce" not in renewed["id_token_claims"]
    # Like Entra, the old refresh token keeps working...
    old = control.post(
        "/common/oauth2/v2.0/token",
        data=token_form(grant_type="refresh_token", refresh_token=grant.result["refresh_token"]),
    )
    assert old.status_code == 200
    # ...unless the mailbox rotates them (control API), which kills each on use.
    control.post(f"/_emulator/mailboxes/{OLIVE}/refresh-token-rotation", json={"enabled": True})
    rotated = control.post(
        "/common/oauth2/v2.0/token",
        data=token_form(grant_type="refresh_token", refresh_token=old.json()["refresh_token"]),
    )
    assert rotated.status_code == 200
    dead = control.post(
        "/common/oauth2/v2.0/token",
        data=token_form(grant_type="refresh_token", refresh_token=old.json()["refresh_token"]),
    )
    assert dead.json()["error_codes"] == [700082]


def test_revoke_answers_invalid_grant_with_an_aadsts_body(
    emulator: RunningEmulator, control: httpx.Client
) -> None:
    grant = connect_outlook(emulator, control)
    code, verifier = code_for(control)
    assert control.post(f"/_emulator/mailboxes/{OLIVE}/revoke").json()["revoked_tokens"] == 2

    with msal_client(emulator, grant.cache) as app:
        account = app.get_accounts()[0]
        result = app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [700082]
    assert result["suberror"] == "bad_token"

    raw = control.post(
        "/common/oauth2/v2.0/token",
        data=token_form(grant_type="refresh_token", refresh_token=grant.result["refresh_token"]),
        headers={"client-request-id": "c0ffee00-0000-4000-8000-000000000000"},
    )
    body = raw.json()
    assert raw.status_code == 400
    assert set(body) == {
        "error", "error_description", "error_codes", "timestamp", "trace_id",
        "correlation_id", "error_uri", "suberror",
    }  # fmt: skip
    assert body["error_description"].startswith("AADSTS700082: ")
    assert body["correlation_id"] == "c0ffee00-0000-4000-8000-000000000000"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])
    # A code handed out before the revoke is dead too.
    late = control.post(
        "/common/oauth2/v2.0/token",
        data=token_form(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=verifier,
        ),
    )
    assert late.json()["error_codes"] == [70008]


def test_client_authentication(control: httpx.Client) -> None:
    form = token_form(grant_type="refresh_token", refresh_token="0.AXEA-nothing")
    wrong = control.post("/common/oauth2/v2.0/token", data={**form, "client_secret": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.json()["error_codes"] == [7000215]
    unknown = control.post("/common/oauth2/v2.0/token", data={**form, "client_id": "stranger"})
    assert unknown.json()["error"] == "unauthorized_client"
    basic = control.post(
        "/common/oauth2/v2.0/token",
        data={"grant_type": "refresh_token", "refresh_token": "0.AXEA-nothing"},
        auth=(DEFAULT_MICROSOFT_CLIENT_ID, DEFAULT_MICROSOFT_CLIENT_SECRET),
    )
    assert basic.json()["error_codes"] == [700082]  # authenticated; the token is unknown


def test_a_refresh_for_unconsented_scopes_needs_consent(
    emulator: RunningEmulator, control: httpx.Client
) -> None:
    grant = connect_outlook(emulator, control)
    answer = control.post(
        "/common/oauth2/v2.0/token",
        data=token_form(
            grant_type="refresh_token",
            refresh_token=grant.result["refresh_token"],
            scope="https://graph.microsoft.com/Mail.Send offline_access",
        ),
    )
    assert answer.json()["error"] == "invalid_grant"
    assert answer.json()["error_codes"] == [65001]
    assert answer.json()["suberror"] == "consent_required"


def test_identity_endpoints_are_only_faulted_by_name(
    emulator: RunningEmulator, control: httpx.Client
) -> None:
    assert control.post("/_emulator/faults", json={"provider": "outlook", "status": 500}).is_success
    grant = connect_outlook(emulator, control)  # a plain Outlook fault hits Graph, not sign-in
    control.delete("/_emulator/faults")
    fault = {"provider": "outlook", "route": TOKEN, "status": 503, "retry_after": 2, "count": 1}
    assert control.post("/_emulator/faults", json=fault).is_success
    with msal_client(emulator, grant.cache) as app:
        account = app.get_accounts()[0]
        with pytest.raises(msal.exceptions.MsalServiceError):
            app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    answer = control.post(
        "/common/oauth2/v2.0/token",
        data=token_form(grant_type="refresh_token", refresh_token=grant.result["refresh_token"]),
    )
    assert answer.status_code == 200  # count=1: spent
