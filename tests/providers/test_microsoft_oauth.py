"""Connect Outlook Account: authorization URL, the emulator's consent, code exchange."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import msal  # type: ignore[import-untyped]
import pytest

from core.settings import Settings
from emulator.server import RunningEmulator
from providers.outlook.auth import MsalSession, msal_app
from providers.outlook.oauth import (
    AUTHORIZATION_SCOPES,
    OAuthError,
    authorization_url,
    exchange_code,
    new_pkce_pair,
)
from tests.providers.conftest import (
    OLIVE,
    OUTLOOK_REDIRECT_URI,
    OutlookFactory,
    connect_outlook,
    outlook_consent,
    outlook_settings,
)
from tests.providers.support import closed_port_url, request_counts, reset_counts, since_last_week

DELTA = "GET /v1.0/me/mailFolders/{folder}/messages/delta"


def test_authorization_url_asks_for_what_msal_would_and_no_more(ms_settings: Settings) -> None:
    _, challenge = new_pkce_pair()
    ours = httpx.URL(
        authorization_url(
            ms_settings,
            state="s1",
            code_challenge=challenge,
            redirect_uri=OUTLOOK_REDIRECT_URI,
            login_hint=OLIVE,
        )
    )
    with MsalSession(ms_settings) as session:
        app = msal_app(ms_settings, session, msal.SerializableTokenCache())
        # MSAL warns unless response_mode is form_post; the callback is a GET route.
        with pytest.warns(UserWarning, match="form_post"):
            flow = app.initiate_auth_code_flow(
                ["Mail.Read", "User.Read"],
                redirect_uri=OUTLOOK_REDIRECT_URI,
                state="s1",
                login_hint=OLIVE,
                response_mode="query",
            )
    theirs = httpx.URL(flow["auth_uri"])

    assert str(ours.copy_with(query=None)) == str(theirs.copy_with(query=None))
    # Every parameter MSAL sends, with the same values where they are not random;
    # MSAL's X-AnchorMailbox is a routing hint for its own login_hint, nothing more.
    assert set(theirs.params) - {"X-AnchorMailbox"} == set(ours.params)
    for name in ("client_id", "response_type", "redirect_uri", "state", "login_hint"):
        assert ours.params[name] == theirs.params[name]
    assert ours.params["code_challenge"] == challenge
    assert ours.params["code_challenge_method"] == "S256"
    assert set(ours.params["scope"].split()) == set(theirs.params["scope"].split())
    assert set(AUTHORIZATION_SCOPES) == {
        "Mail.Read", "User.Read", "offline_access", "openid", "profile",
    }  # fmt: skip
    assert len(ours.params["nonce"]) == 64  # MSAL's shape: a SHA-256 hex digest


def test_connect_takes_the_address_from_graph(
    control: httpx.Client, ms_settings: Settings, make_outlook: OutlookFactory
) -> None:
    # The login hint is how the person typed it; /me is the mailbox's real address.
    grant = connect_outlook(control, ms_settings, login_hint="Olive@Example.ORG")

    assert grant.email == OLIVE
    assert set(grant.scopes) == {"Mail.Read", "User.Read", "openid", "profile"}
    credentials = grant.credentials
    assert credentials.scopes == grant.scopes
    assert credentials.access_token and credentials.expires_at is not None
    assert credentials.expires_at > datetime.now(UTC)
    # The stored secret is MSAL's token cache, refresh token and account included.
    cache = json.loads(credentials.refresh_token)
    assert {"AccessToken", "RefreshToken", "IdToken", "Account"} <= set(cache)
    assert [a["username"] for a in cache["Account"].values()] == [OLIVE]
    # The grant works for the provider straight away, with no token request.
    reset_counts(control)
    outlook = make_outlook(credentials)
    assert outlook.fetch_page(outlook.initial_cursor(since_last_week()), 50).messages == []
    assert request_counts(control) == {DELTA: 1}


def test_reconnecting_gets_a_new_refresh_token(
    control: httpx.Client, ms_settings: Settings
) -> None:
    first = connect_outlook(control, ms_settings)
    second = connect_outlook(control, ms_settings)
    old = json.loads(first.credentials.refresh_token)["RefreshToken"]
    new = json.loads(second.credentials.refresh_token)["RefreshToken"]
    assert [t["secret"] for t in old.values()] != [t["secret"] for t in new.values()]


def test_wrong_verifier_is_refused(control: httpx.Client, ms_settings: Settings) -> None:
    back = outlook_consent(control, ms_settings)
    other_verifier, _ = new_pkce_pair()
    with pytest.raises(OAuthError) as raised:
        exchange_code(
            ms_settings,
            code=back.code,
            code_verifier=other_verifier,
            redirect_uri=OUTLOOK_REDIRECT_URI,
        )
    assert raised.value.code == "invalid_grant"
    assert "connect again" in raised.value.message
    assert back.code not in str(raised.value)


def test_a_nonce_from_another_sign_in_is_refused(
    control: httpx.Client, ms_settings: Settings
) -> None:
    back = outlook_consent(control, ms_settings, nonce="f" * 64)
    with pytest.raises(OAuthError) as raised:
        exchange_code(
            ms_settings,
            code=back.code,
            code_verifier=back.verifier,
            redirect_uri=OUTLOOK_REDIRECT_URI,
        )
    assert raised.value.code == "nonce_mismatch"


@pytest.mark.parametrize(
    ("scope", "code"),
    [
        # Entra refuses to redeem a code for a scope never consented (AADSTS65001).
        ("User.Read openid profile offline_access", "invalid_grant"),
        (
            "Mail.Read Mail.ReadWrite User.Read openid profile offline_access",
            "unexpected_mail_scope",
        ),
        (
            "https://graph.microsoft.com/Mail.Send Mail.Read User.Read openid offline_access",
            "unexpected_mail_scope",
        ),
        ("Mail.Read User.Read openid profile", "no_refresh_token"),
    ],
)
def test_a_grant_other_than_read_only_offline_mail_is_refused(
    control: httpx.Client, ms_settings: Settings, scope: str, code: str
) -> None:
    # As a person declining a permission (or a tampered URL) changes what is consented.
    back = outlook_consent(control, ms_settings, scope=scope)
    with pytest.raises(OAuthError) as raised:
        exchange_code(
            ms_settings,
            code=back.code,
            code_verifier=back.verifier,
            redirect_uri=OUTLOOK_REDIRECT_URI,
        )
    assert raised.value.code == code
    if code == "invalid_grant":
        assert "AADSTS65001" in raised.value.message
        assert "accept" in raised.value.message


def test_a_wrong_client_secret_is_a_configuration_problem(
    control: httpx.Client, emulator: RunningEmulator
) -> None:
    wrong = outlook_settings(emulator, microsoft_client_secret="not-the-secret")
    back = outlook_consent(control, wrong)
    with pytest.raises(OAuthError) as raised:
        exchange_code(
            wrong, code=back.code, code_verifier=back.verifier, redirect_uri=OUTLOOK_REDIRECT_URI
        )
    assert raised.value.code == "invalid_client"
    assert (
        "AADSTS7000215" in raised.value.message and "client id and secret" in raised.value.message
    )


def test_microsoft_unreachable_is_a_retry_later(emulator: RunningEmulator) -> None:
    down = outlook_settings(emulator, microsoft_authority=closed_port_url() + "/common")
    with pytest.raises(OAuthError) as raised:
        exchange_code(down, code="0.x", code_verifier="v" * 43, redirect_uri=OUTLOOK_REDIRECT_URI)
    assert raised.value.code == "microsoft_unavailable"
    assert "try again" in raised.value.message
