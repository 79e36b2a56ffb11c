"""`POST /{tenant}/oauth2/v2.0/token`: authorization codes and refresh tokens, as Entra.

`authorization_code` (PKCE verifier checked) and `refresh_token` grants. Like
Microsoft, every refresh answers a new refresh token; the old one keeps working unless
the mailbox rotates refresh tokens (control API). `client_info=1` adds base64url
`{"uid", "utid"}`. The id_token is unsigned (`alg: none`); MSAL 1.39 does not validate
id_tokens (research/providers.md §3.4).

Errors use Microsoft's bodies (`emulator.microsoft_accounts.aad_error`), since the
provider classifies refresh failures from them: a revoked grant answers `invalid_grant`
AADSTS700082 on refresh and AADSTS70008 for an authorization code.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulator.microsoft_accounts import (
    ID_NAMESPACE,
    OIDC_SCOPES,
    PROVIDER,
    aad_error,
    account_ids,
    base_url,
    display_name,
    entra_timestamp,
    normalize_scopes,
    resource_scopes,
)
from emulator.oauth_common import (
    Refusal,
    TokenRequest,
    b64url_json,
    token_client,
    unsigned_jwt,
    verifier_matches,
)
from emulator.state import EmulatorState, Mailbox
from emulator.tokens import OAuthClient

#: Microsoft tokens look nothing like Google's; the prefixes keep logs telling them apart.
ACCESS_PREFIX = "eyJ0eXAiOiJKV1Qi.emu-"
REFRESH_PREFIX = "0.AXEA-emu-rt-"

REVOKED_REFRESH = (
    700082,
    "The refresh token has expired due to inactivity. The token was issued on "
    "{issued} and was inactive for 90.00:00:00.",
)
EXPIRED_CODE = (
    70008,
    "The provided authorization code or refresh token has expired due to inactivity. "
    "Send a new interactive authorization request for this user and resource.",
)
#: How Entra words each refusal of the client: (status, error, (AADSTS number, text)).
_REFUSALS: dict[Refusal, tuple[int, str, tuple[int, str]]] = {
    Refusal.NOT_A_FORM: (
        400,
        "invalid_request",
        (900144, "The request body must contain the following parameter: 'grant_type'."),
    ),
    Refusal.NO_CLIENT_ID: (
        400,
        "invalid_request",
        (900144, "The request body must contain the following parameter: 'client_id'."),
    ),
    Refusal.UNKNOWN_CLIENT: (
        400,
        "unauthorized_client",
        (700016, "Application with identifier '{client_id}' was not found in the directory."),
    ),
    Refusal.WRONG_SECRET: (
        401,
        "invalid_client",
        (
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the "
            "request is the client secret value, not the client secret ID.",
        ),
    ),
}


def id_token(
    client_id: str, mailbox: Mailbox, base: str, nonce: str | None, now: float, life: int
) -> str:
    """An unsigned v2.0 id_token with the claims MSAL and apps read."""
    oid, tid = account_ids(mailbox)
    claims: dict[str, object] = {
        "aud": client_id,
        "iss": f"{base}/{tid}/v2.0",
        "iat": int(now),
        "nbf": int(now),
        "exp": int(now) + life,
        "name": display_name(mailbox),
        "oid": oid,
        "preferred_username": mailbox.address,
        # Entra's `sub` is pairwise: the same user looks different to each app.
        "sub": str(uuid.uuid5(ID_NAMESPACE, f"sub:{client_id}:{oid}")),
        "tid": tid,
        "ver": "2.0",
    }
    if nonce:
        claims["nonce"] = nonce
    return unsigned_jwt({"typ": "JWT", "alg": "none"}, claims)


def _token_body(
    state: EmulatorState,
    request: Request,
    form: dict[str, str],
    client: OAuthClient,
    mailbox: Mailbox,
    granted: list[str],
    refresh_token: str | None,
    nonce: str | None,
) -> JSONResponse:
    lifetime = state.access_token_lifetime
    scope = " ".join(s for s in granted if s != "offline_access")
    access = state.tokens.issue_access(
        provider=PROVIDER,
        client_id=client.client_id,
        address=mailbox.address,
        scope=scope,
        lifetime=lifetime,
        prefix=ACCESS_PREFIX,
    )
    body: dict[str, object] = {
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access.token,
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    if "openid" in granted:
        base = base_url(request)
        body["id_token"] = id_token(client.client_id, mailbox, base, nonce, state.clock(), 3600)
    if form.get("client_info") == "1":
        oid, tid = account_ids(mailbox)
        body["client_info"] = b64url_json({"uid": oid, "utid": tid})
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _unconsented(form: dict[str, str], granted: list[str]) -> list[str]:
    """Requested API scopes the user never consented to."""
    requested = normalize_scopes(form.get("scope", ""))
    allowed = resource_scopes(granted)
    return [s for s in requested if s.lower() not in OIDC_SCOPES and s.lower() not in allowed]


def _consent_required(
    state: EmulatorState, request: Request, client: OAuthClient, missing: list[str]
) -> Response:
    return aad_error(
        state,
        request,
        400,
        "invalid_grant",
        (
            65001,
            f"The user or administrator has not consented to use the application with ID "
            f"'{client.client_id}' for {', '.join(missing)}. Send an interactive "
            "authorization request for this user and resource.",
        ),
        suberror="consent_required",
    )


def _exchange_code(
    state: EmulatorState, request: Request, client: OAuthClient, form: dict[str, str]
) -> Response:
    if not form.get("code"):
        return aad_error(
            state,
            request,
            400,
            "invalid_request",
            (900144, "The request body must contain the following parameter: 'code'."),
        )
    grant = state.tokens.take_code(form["code"])
    mailbox = state.mailbox(grant.address) if grant is not None else None
    if grant is None or grant.client_id != client.client_id or mailbox is None:
        # Unknown, used, expired or revoked codes all look alike from here.
        return aad_error(state, request, 400, "invalid_grant", EXPIRED_CODE)
    if form.get("redirect_uri") != grant.redirect_uri:
        return aad_error(
            state,
            request,
            400,
            "invalid_grant",
            (
                500112,
                "The reply address does not match the reply address provided when "
                "requesting the authorization code.",
            ),
        )
    verifier = form.get("code_verifier", "")
    if not verifier_matches(verifier, grant.code_challenge):
        return aad_error(
            state,
            request,
            400,
            "invalid_grant",
            (
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the "
                "authorization request.",
            ),
        )
    granted = grant.scope.split()
    missing = _unconsented(form, granted)
    if missing:
        return _consent_required(state, request, client, missing)
    refresh = None
    if grant.issue_refresh_token:
        refresh = state.tokens.issue_refresh(
            provider=PROVIDER,
            client_id=client.client_id,
            address=mailbox.address,
            scope=grant.scope,
            prefix=REFRESH_PREFIX,
        ).token
    return _token_body(state, request, form, client, mailbox, granted, refresh, grant.nonce)


def _refresh(
    state: EmulatorState, request: Request, client: OAuthClient, form: dict[str, str]
) -> Response:
    if not form.get("refresh_token"):
        return aad_error(
            state,
            request,
            400,
            "invalid_request",
            (900144, "The request body must contain the following parameter: 'refresh_token'."),
        )
    record = state.tokens.refresh_token(form["refresh_token"])
    mailbox = state.mailbox(record.address) if record is not None else None
    if record is None or mailbox is None:
        number, text = REVOKED_REFRESH
        issued = entra_timestamp(state.clock() - 90 * 86400)
        return aad_error(
            state,
            request,
            400,
            "invalid_grant",
            (number, text.format(issued=issued)),
            suberror="bad_token",
        )
    if record.client_id != client.client_id or record.provider != PROVIDER:
        return aad_error(
            state,
            request,
            400,
            "invalid_grant",
            (70000, "Provided grant is invalid or malformed."),
        )
    granted = record.scope.split()
    missing = _unconsented(form, granted)
    if missing:
        return _consent_required(state, request, client, missing)
    if mailbox.rotate_refresh_tokens:
        # The old token dies at once, so a client that drops the new one fails loudly.
        state.tokens.drop_refresh(record.token)
    rotated = state.tokens.issue_refresh(
        provider=PROVIDER,
        client_id=client.client_id,
        address=mailbox.address,
        scope=record.scope,
        prefix=REFRESH_PREFIX,
    ).token
    return _token_body(state, request, form, client, mailbox, granted, rotated, None)


async def token(state: EmulatorState, request: Request) -> Response:
    found = await token_client(state, PROVIDER, request)
    if isinstance(found, tuple):
        refusal, client_id = found
        status, error, (number, text) = _REFUSALS[refusal]
        return aad_error(state, request, status, error, (number, text.format(client_id=client_id)))
    return _grant(state, request, found)


def _grant(state: EmulatorState, request: Request, found: TokenRequest) -> Response:
    if found.grant_type == "authorization_code":
        return _exchange_code(state, request, found.client, found.form)
    if found.grant_type == "refresh_token":
        return _refresh(state, request, found.client, found.form)
    return aad_error(
        state,
        request,
        400,
        "unsupported_grant_type",
        (70003, f"The app requested an unsupported grant type '{found.grant_type}'."),
    )
