"""Connect Google Account: authorization URL, the emulator's consent, code exchange."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from core.settings import Settings
from providers.gmail import GMAIL_READONLY
from providers.gmail import SCOPES as GMAIL_SCOPES
from providers.gmail.oauth import (
    OAuthError,
    authorization_url,
    exchange_code,
    new_pkce_pair,
)
from tests.providers.conftest import ProviderFactory
from tests.providers.support import REDIRECT_URI, browser_consent, connect, since_last_week


def test_authorization_url_asks_for_offline_read_only_access(settings: Settings) -> None:
    verifier, challenge = new_pkce_pair()
    assert 43 <= len(verifier) <= 128 and challenge != verifier
    url = httpx.URL(
        authorization_url(
            settings,
            state="s1",
            code_challenge=challenge,
            redirect_uri=REDIRECT_URI,
            login_hint=None,
        )
    )
    assert str(url.copy_with(query=None)) == settings.google_auth_uri
    assert dict(url.params) == {
        "client_id": settings.google_client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": " ".join(GMAIL_SCOPES),
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",
        "prompt": "consent",
    }
    assert GMAIL_SCOPES == (GMAIL_READONLY, "openid", "email")


def test_connect_takes_the_address_from_the_gmail_profile(
    control: httpx.Client, settings: Settings, make_provider: ProviderFactory
) -> None:
    # The login hint is how the person typed it; the profile is the mailbox's real address.
    grant = connect(control, settings, login_hint="Ann@Example.COM")

    assert grant.email == "ann@example.com"
    assert set(grant.scopes) == set(GMAIL_SCOPES)
    assert grant.credentials.scopes == grant.scopes
    assert grant.credentials.refresh_token and grant.credentials.access_token
    assert grant.credentials.expires_at is not None
    assert grant.credentials.expires_at > datetime.now(UTC)
    # The grant works for the provider straight away.
    assert make_provider(grant.credentials).initial_cursor(since_last_week())


def test_reconnecting_gets_a_new_refresh_token(control: httpx.Client, settings: Settings) -> None:
    # prompt=consent: Google issues a refresh token even though one is still live.
    first = connect(control, settings)
    second = connect(control, settings)
    assert second.credentials.refresh_token != first.credentials.refresh_token


def test_wrong_verifier_is_refused(control: httpx.Client, settings: Settings) -> None:
    back = browser_consent(control, settings)
    other_verifier, _ = new_pkce_pair()
    with pytest.raises(OAuthError) as raised:
        exchange_code(
            settings, code=back.code, code_verifier=other_verifier, redirect_uri=REDIRECT_URI
        )
    assert raised.value.code == "invalid_grant"
    assert "connect again" in raised.value.message
    assert back.code not in str(raised.value)


def test_a_grant_without_gmail_read_access_is_refused(
    control: httpx.Client, settings: Settings
) -> None:
    back = browser_consent(control, settings, scope="openid email")
    with pytest.raises(OAuthError) as raised:
        exchange_code(
            settings, code=back.code, code_verifier=back.verifier, redirect_uri=REDIRECT_URI
        )
    assert raised.value.code == "missing_gmail_scope"
    assert "Google did not grant read access to Gmail" in raised.value.message


def test_a_grant_with_broader_gmail_access_is_refused(
    control: httpx.Client, settings: Settings
) -> None:
    modify = "https://www.googleapis.com/auth/gmail.modify"
    back = browser_consent(control, settings, scope=f"openid email {GMAIL_READONLY} {modify}")
    with pytest.raises(OAuthError) as raised:
        exchange_code(
            settings, code=back.code, code_verifier=back.verifier, redirect_uri=REDIRECT_URI
        )
    assert raised.value.code == "unexpected_gmail_scope"
    assert modify in raised.value.message


def test_a_grant_without_offline_access_is_refused(
    control: httpx.Client, settings: Settings
) -> None:
    back = browser_consent(control, settings, access_type="online")
    with pytest.raises(OAuthError) as raised:
        exchange_code(
            settings, code=back.code, code_verifier=back.verifier, redirect_uri=REDIRECT_URI
        )
    assert raised.value.code == "no_refresh_token"


def test_google_unreachable_is_a_retry_later(emulator_down_settings: Settings) -> None:
    with pytest.raises(OAuthError) as raised:
        exchange_code(
            emulator_down_settings, code="4/x", code_verifier="v" * 43, redirect_uri=REDIRECT_URI
        )
    assert raised.value.code == "google_unavailable"
