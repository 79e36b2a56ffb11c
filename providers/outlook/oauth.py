"""OAuth 2.0 for "Connect Outlook Account": authorization URL, PKCE, nonce, code exchange.

The same shapes as `providers.gmail.oauth`, so the API treats both alike:

1. `verifier, challenge = new_pkce_pair()`; store the verifier (encrypted) with the
   `state`, exactly as for Google.
2. `authorization_url(settings, state=..., code_challenge=challenge, redirect_uri=...,
   login_hint=...)` -> the URL to send the browser to.
3. On the callback, after checking `state`: `exchange_code(settings, code=...,
   code_verifier=verifier, redirect_uri=...)` -> `Grant`, or `OAuthError`.

The OpenID nonce needs no storage of its own: it is derived from the PKCE challenge,
itself the hash of the stored verifier (OIDC Core §15.5.2 suggests exactly this:
a hash of a secret kept server-side). MSAL checks the id_token's nonce during the
exchange, as its own auth-code flow does.

The URL carries what MSAL's `initiate_auth_code_flow` sends (the test suite
compares them), built here so that `state`, PKCE and nonce are the caller's, and
without MSAL's network lookup at click time: the `authorize` endpoint is
`{authority}/oauth2/v2.0/authorize` on Microsoft and on the emulator alike. The
exchange is MSAL's `acquire_token_by_auth_code_flow`, so the tokens land in
MSAL's cache, which becomes the stored credential (see `providers.outlook.auth`).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import msal  # type: ignore[import-untyped]

from core.settings import Settings
from providers.base import Credentials
from providers.oauth_common import (
    Grant,
    OAuthError,
    json_object,
    new_pkce_pair,
    pkce_challenge,
)
from providers.outlook import SCOPES
from providers.outlook.auth import (
    MsalSession,
    classify_msal_exception,
    describe_token_error,
    msal_app,
    serialize_cache,
)
from providers.outlook.graph import graph_ssl_context

__all__ = [
    "AUTHORIZATION_SCOPES",
    "OAuthError",
    "authorization_url",
    "exchange_code",
    "new_pkce_pair",
]

#: Everything the consent asks for: read mail, read the profile (for the address),
#: and MSAL's reserved scopes (sign-in, and offline_access for a refresh token).
AUTHORIZATION_SCOPES = SCOPES
_GRAPH_RESOURCE = "https://graph.microsoft.com/"
MAIL_READ = "mail.read"
#: The flow state handed to MSAL: the caller has already matched the real one.
_CHECKED_STATE = "checked-by-caller"


def _raw_nonce(code_challenge: str) -> str:
    digest = hashlib.sha256(b"deskclone-oidc-nonce:" + code_challenge.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _nonce_in_request(raw_nonce: str) -> str:
    # MSAL sends the SHA-256 hex of its nonce and expects that back in the id_token.
    return hashlib.sha256(raw_nonce.encode("ascii")).hexdigest()


def authorization_url(
    settings: Settings,
    *,
    state: str,
    code_challenge: str,
    redirect_uri: str,
    login_hint: str | None,
) -> str:
    params = {
        "client_id": settings.microsoft_client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        # The callback is a GET route; query is Entra's default for the code flow.
        "response_mode": "query",
        "scope": " ".join(AUTHORIZATION_SCOPES),
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "nonce": _nonce_in_request(_raw_nonce(code_challenge)),
        "client_info": "1",
    }
    if login_hint:
        params["login_hint"] = login_hint
    endpoint = settings.microsoft_authority.rstrip("/") + "/oauth2/v2.0/authorize"
    return endpoint + "?" + urlencode(params)


def exchange_code(settings: Settings, *, code: str, code_verifier: str, redirect_uri: str) -> Grant:
    """Trade the callback's code for tokens, check what was granted, find the mailbox."""
    flow = {
        # The keys MSAL's initiate_auth_code_flow stores; acquire_token_by_auth_code_flow
        # reads them to send the code, redirect URI, scopes and PKCE verifier, and to check
        # the state and the id_token's nonce.
        "state": _CHECKED_STATE,
        "redirect_uri": redirect_uri,
        "scope": list(AUTHORIZATION_SCOPES),
        "code_verifier": code_verifier,
        "nonce": _raw_nonce(pkce_challenge(code_verifier)),
        "claims_challenge": None,
    }
    cache = msal.SerializableTokenCache()
    with MsalSession(settings) as session:
        issued_at = datetime.now(UTC)
        try:
            app = msal_app(settings, session, cache)
            result = app.acquire_token_by_auth_code_flow(
                flow, {"code": code, "state": _CHECKED_STATE}
            )
        except RuntimeError as error:
            # MSAL's nonce check: the sign-in was not started by this request.
            raise OAuthError(
                "nonce_mismatch",
                "Microsoft's answer belongs to a different sign-in. Please connect again.",
            ) from error
        except Exception as error:
            if classify_msal_exception(error, "connecting Outlook") is None:
                raise  # a bug, not Microsoft
            # The request carried the code, verifier and client secret: no chaining.
            raise _unavailable(error, session.last_status) from None
    if "error" in result:
        code_name = str(result["error"])
        raise OAuthError(code_name, _token_error_message(result))
    access_token = result.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise OAuthError("bad_token_response", "Microsoft's answer carried no access token.")
    scopes = _checked_scopes(result)
    if not result.get("refresh_token"):
        raise OAuthError(
            "no_refresh_token",
            "Microsoft did not grant offline access, so DeskClone could not keep reading "
            "this mailbox. Connect again and accept all the permissions asked for.",
        )
    email = _profile_address(settings, access_token)
    expires_in = result.get("expires_in")
    expires_at = (
        issued_at + timedelta(seconds=int(expires_in))
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
        else None
    )
    credentials = Credentials(
        refresh_token=serialize_cache(cache),
        access_token=access_token,
        expires_at=expires_at,
        scopes=scopes,
    )
    return Grant(credentials=credentials, email=email, scopes=scopes)


def _unavailable(error: BaseException, status: int | None) -> OAuthError:
    detail = f"HTTP {status}" if status is not None and status >= 400 else type(error).__name__
    return OAuthError(
        "microsoft_unavailable",
        f"Microsoft's sign-in service could not be reached or answered badly ({detail}). "
        "Please try again in a minute.",
    )


def _token_error_message(result: dict[str, Any]) -> str:
    error = str(result.get("error"))
    what = describe_token_error(result)
    if 65001 in (result.get("error_codes") or []):
        return (
            f"Microsoft did not grant every permission DeskClone asks for ({what}). Connect "
            "again and accept them: reading mail and the basic profile."
        )
    if error == "invalid_grant":
        return (
            f"Microsoft did not accept the sign-in ({what}): it expired, was already used, or "
            "did not come from this browser session. Please connect again."
        )
    if error in ("invalid_client", "unauthorized_client"):
        return (
            f"DeskClone's Microsoft app registration is not set up correctly ({what}): check "
            "the client id and secret."
        )
    if error in ("interaction_required", "consent_required", "access_denied"):
        return f"Microsoft needs more from the person signing in ({what}). Please connect again."
    if error in ("temporarily_unavailable", "server_error"):
        return f"Microsoft had a temporary problem ({what}). Please try again in a minute."
    return f"Microsoft refused the sign-in ({what}). Please connect again."


def _checked_scopes(result: dict[str, Any]) -> tuple[str, ...]:
    granted = tuple(str(result.get("scope", "")).split())
    names = [_short(s) for s in granted]
    if MAIL_READ not in names:
        raise OAuthError(
            "missing_mail_scope",
            "Microsoft did not grant read access to the mailbox (Mail.Read). Connect again "
            "and accept the permission to read your mail.",
        )
    broader = [s for s, name in zip(granted, names, strict=True) if _is_broader_mail(name)]
    if broader:
        raise OAuthError(
            "unexpected_mail_scope",
            "Microsoft granted more mail access than read-only ("
            + ", ".join(sorted(broader))
            + "). DeskClone only accepts read-only access; please connect again.",
        )
    return granted


def _short(scope: str) -> str:
    lowered = scope.lower()
    return lowered[len(_GRAPH_RESOURCE) :] if lowered.startswith(_GRAPH_RESOURCE) else lowered


def _is_broader_mail(name: str) -> bool:
    # Mail.ReadWrite, Mail.Send, Mail.Read.Shared, ...; Mail.ReadBasic is narrower but
    # while it is the only mail scope, Graph refuses the MIME ($value) DeskClone reads.
    return name.startswith("mail.") and name not in (MAIL_READ, "mail.readbasic")


def _profile_address(settings: Settings, access_token: str) -> str:
    """The mailbox address from Graph `/me`: the sign-in name may be another alias."""
    url = settings.graph_api_url.rstrip("/") + "/me"
    try:
        with httpx.Client(
            verify=graph_ssl_context(settings),
            trust_env=False,
            timeout=settings.provider_timeout_seconds,
            follow_redirects=False,
        ) as client:
            answer = client.get(
                url,
                params={"$select": "mail,userPrincipalName"},
                headers={"Authorization": f"Bearer {access_token}"},
            )
    except httpx.HTTPError as error:
        raise OAuthError(
            "microsoft_unavailable",
            f"Microsoft Graph could not be reached to confirm the mailbox "
            f"({type(error).__name__}). Please try again in a minute.",
        ) from None  # the request carried the new access token
    body = json_object(answer)
    address = body.get("mail") or body.get("userPrincipalName")
    if answer.status_code != 200 or not isinstance(address, str) or "@" not in address:
        raise OAuthError(
            "profile_unavailable",
            f"Microsoft accepted the sign-in, but Graph did not tell us the mailbox address "
            f"(HTTP {answer.status_code}). Please try again.",
        )
    return address.strip()
