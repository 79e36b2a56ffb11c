"""OAuth 2.0 for "Connect Google Account": authorization URL, PKCE, code exchange.

Plain httpx rather than google-auth-oauthlib: oauthlib refuses http:// redirect
URIs without OAUTHLIB_INSECURE_TRANSPORT and reads CA settings from the
environment (research/providers.md §2.4); the two requests here are simple.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from core.settings import Settings
from providers.base import Credentials
from providers.gmail import GMAIL_READONLY, SCOPES
from providers.gmail.transport import httpx_client
from providers.oauth_common import Grant, OAuthError, json_object, new_pkce_pair

__all__ = ["OAuthError", "authorization_url", "exchange_code", "new_pkce_pair"]

#: Full mail access; every other Gmail scope is `.../auth/gmail.<name>`.
_FULL_MAIL_SCOPE = "https://mail.google.com/"
_GMAIL_SCOPE_PREFIX = "https://www.googleapis.com/auth/gmail."


def authorization_url(
    settings: Settings,
    *,
    state: str,
    code_challenge: str,
    redirect_uri: str,
    login_hint: str | None,
) -> str:
    params = {
        "client_id": settings.google_client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        # offline: we poll without the user present, so we need a refresh token.
        "access_type": "offline",
        # consent: Google only issues a new refresh token when the consent screen is
        # shown, and a Reconnect needs one. No include_granted_scopes: merging grants
        # from other flows could add Gmail scopes we then have to refuse.
        "prompt": "consent",
    }
    if login_hint:
        params["login_hint"] = login_hint
    separator = "&" if "?" in settings.google_auth_uri else "?"
    return settings.google_auth_uri + separator + urlencode(params)


def exchange_code(settings: Settings, *, code: str, code_verifier: str, redirect_uri: str) -> Grant:
    """Trade the callback's code for tokens, check what was granted, find the mailbox."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": code_verifier,
        "redirect_uri": redirect_uri,
        "client_id": settings.google_client_id,
        "client_secret": settings.google_client_secret.get_secret_value(),
    }
    with httpx_client(settings) as client:
        issued_at = datetime.now(UTC)
        body = _token_request(client, settings.google_token_uri, form)
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise OAuthError("bad_token_response", "Google's answer carried no access token.")
        scopes = _checked_scopes(body)
        refresh_token = body.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise OAuthError(
                "no_refresh_token",
                "Google did not grant offline access, so DeskClone could not keep reading "
                "this mailbox. Remove DeskClone under 'Third-party apps' in the Google "
                "Account, then connect again.",
            )
        email = _profile_address(client, settings, access_token)
    expires_in = body.get("expires_in")
    expires_at = (
        issued_at + timedelta(seconds=int(expires_in))
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
        else None
    )
    credentials = Credentials(
        refresh_token=refresh_token,
        access_token=access_token,
        expires_at=expires_at,
        scopes=scopes,
    )
    return Grant(credentials=credentials, email=email, scopes=scopes)


def _token_request(client: httpx.Client, url: str, form: dict[str, str]) -> dict[str, Any]:
    try:
        answer = client.post(url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as error:
        raise OAuthError(
            "google_unavailable",
            f"Google's sign-in service could not be reached ({type(error).__name__}). "
            "Please try again in a minute.",
        ) from None  # the request carried the code, verifier and client secret
    body = json_object(answer)
    if answer.status_code >= 500 or answer.status_code == 429:
        raise OAuthError(
            "google_unavailable",
            f"Google's sign-in service had a temporary problem (HTTP {answer.status_code}). "
            "Please try again in a minute.",
        )
    if answer.status_code != 200:
        code = str(body.get("error") or f"http_{answer.status_code}")
        raise OAuthError(code, _token_error_message(code))
    return body


def _token_error_message(error: str) -> str:
    if error == "invalid_grant":
        return (
            "Google did not accept the sign-in: it expired, was already used, or did not "
            "come from this browser session. Please connect again."
        )
    if error in ("invalid_client", "unauthorized_client"):
        return "DeskClone's Google OAuth client is not set up correctly (client id or secret)."
    if error == "redirect_uri_mismatch":
        return "The sign-in returned to an address Google did not expect (redirect URI)."
    return f"Google refused the sign-in ({error}). Please connect again."


def _checked_scopes(body: dict[str, Any]) -> tuple[str, ...]:
    granted = tuple(str(body.get("scope", "")).split())
    if GMAIL_READONLY not in granted:
        raise OAuthError(
            "missing_gmail_scope",
            "Google did not grant read access to Gmail. Connect again and leave the "
            "'Read your email' permission ticked.",
        )
    broader = [s for s in granted if s == _FULL_MAIL_SCOPE or _is_other_gmail_scope(s)]
    if broader:
        raise OAuthError(
            "unexpected_gmail_scope",
            "Google granted more Gmail access than read-only ("
            + ", ".join(sorted(broader))
            + "). DeskClone only accepts read-only access; please connect again.",
        )
    return granted


def _is_other_gmail_scope(scope: str) -> bool:
    # gmail.metadata is narrower, but while it is present Gmail refuses format=raw.
    return scope.startswith(_GMAIL_SCOPE_PREFIX) and scope != GMAIL_READONLY


def _profile_address(client: httpx.Client, settings: Settings, access_token: str) -> str:
    """The mailbox address from `users.getProfile`: the id_token's email may be another alias."""
    url = settings.gmail_api_url.rstrip("/") + "/gmail/v1/users/me/profile"
    try:
        answer = client.get(url, headers={"Authorization": f"Bearer {access_token}"})
    except httpx.HTTPError as error:
        raise OAuthError(
            "google_unavailable",
            f"Gmail could not be reached to confirm the mailbox ({type(error).__name__}). "
            "Please try again in a minute.",
        ) from None  # the request carried the new access token
    address = json_object(answer).get("emailAddress")
    if answer.status_code != 200 or not isinstance(address, str) or "@" not in address:
        raise OAuthError(
            "profile_unavailable",
            f"Google accepted the sign-in, but Gmail did not tell us the mailbox address "
            f"(HTTP {answer.status_code}). Please try again.",
        )
    return address.strip()
