"""Google's OAuth 2.0 endpoints: auto-consent, token exchange/refresh, revoke.

`GET /o/oauth2/auth` (and `/o/oauth2/v2/auth`) approves at once as
`login_hint`, so the whole flow runs without a person. Stricter than Google
where the project must not cut corners: `state` and PKCE S256 are required.
Like Google, a refresh token is only issued for `access_type=offline`, and
only when the user has no working one for that client unless the app forces
the consent screen with `prompt=consent`, which is what a Reconnect needs.

`POST /token` accepts client credentials in the form body (google-auth) or as
HTTP Basic (requests-oauthlib); both must work (`emulator.oauth_common`, shared with
the Microsoft side).
"""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from emulator.errors import oauth_error
from emulator.faults import Fault
from emulator.oauth_common import (
    Handler,
    Refusal,
    oauth_route,
    redirect_with,
    token_client,
    unsigned_jwt,
    verifier_matches,
)
from emulator.state import EmulatorState, InvalidAddressError, Mailbox, ProviderConflictError
from emulator.tokens import OAuthClient

PROVIDER = "gmail"
AUTH_PATHS = ("/o/oauth2/auth", "/o/oauth2/v2/auth")
TOKEN_PATH = "/token"
REVOKE_PATH = "/revoke"
ISSUER = "https://accounts.google.com"
REVOKED_DESCRIPTION = "Token has been expired or revoked."
#: How Google's token endpoint words each refusal of the client (status, error, description).
_REFUSALS = {
    Refusal.NOT_A_FORM: (400, "invalid_request", "Expected a form-encoded body."),
    Refusal.NO_CLIENT_ID: (400, "invalid_request", "Could not determine client ID from request."),
    Refusal.UNKNOWN_CLIENT: (401, "invalid_client", "The OAuth client was not found."),
    Refusal.WRONG_SECRET: (401, "invalid_client", "Unauthorized"),
}


def _page(status: int, error: str, description: str) -> HTMLResponse:
    """Google's consent screen shows errors as a page, not a redirect."""
    title = f"Error {status}: {html.escape(error)}"
    body = (
        f"<!doctype html><html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>{html.escape(description)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _fault_answer(request: Request, fault: Fault) -> Response:
    assert fault.status is not None
    if request.method == "GET":
        return _page(fault.status, "server_error", "Injected fault.")
    # google-auth treats these error codes (and 5xx/429) as retryable.
    error = "rate_limit_exceeded" if fault.status == 429 else "internal_failure"
    response = oauth_error(fault.status, error, "Backend Error")
    response.headers.update(fault.retry_after_header())
    return response


def id_token(client_id: str, mailbox: Mailbox, nonce: str | None, now: float, life: int) -> str:
    """An unsigned (`alg: none`) JWT with Google's claims; only decoded, never verified."""
    claims: dict[str, object] = {
        "iss": ISSUER,
        "azp": client_id,
        "aud": client_id,
        "sub": mailbox.subject_id,
        "email": mailbox.address,
        "email_verified": True,
        "iat": int(now),
        "exp": int(now) + life,
    }
    if nonce:
        claims["nonce"] = nonce
    return unsigned_jwt({"alg": "none", "typ": "JWT"}, claims)


async def _authorize(state: EmulatorState, request: Request) -> Response:
    q = request.query_params
    client = state.tokens.client(PROVIDER, q.get("client_id", ""))
    if client is None:
        return _page(401, "invalid_client", "The OAuth client was not found.")
    redirect_uri = q.get("redirect_uri", "")
    target = urlsplit(redirect_uri)
    if target.scheme not in ("http", "https") or not target.netloc:
        return _page(400, "redirect_uri_mismatch", f"Bad redirect_uri: {redirect_uri!r}")
    if q.get("response_type") != "code":
        return _page(400, "unsupported_response_type", "response_type must be 'code'.")
    missing = [p for p in ("scope", "state", "code_challenge") if not q.get(p)]
    if missing:
        return _page(400, "invalid_request", f"Missing required parameter: {missing[0]}")
    if q.get("code_challenge_method") != "S256":
        return _page(400, "invalid_request", "code_challenge_method must be S256.")
    login_hint = q.get("login_hint", "")
    if not login_hint:
        return _page(
            400,
            "invalid_request",
            "Missing login_hint: the emulator's consent screen signs in as the login_hint "
            "address, so the authorization URL must carry one.",
        )
    try:
        mailbox, _ = state.ensure_mailbox(PROVIDER, login_hint)
    except (InvalidAddressError, ProviderConflictError) as error:
        return _page(400, "invalid_request", str(error))
    offline = q.get("access_type") == "offline"
    forced = "consent" in q.get("prompt", "").split()
    grant = state.tokens.new_code(
        provider=PROVIDER,
        client_id=client.client_id,
        address=mailbox.address,
        redirect_uri=redirect_uri,
        scope=q["scope"],
        code_challenge=q["code_challenge"],
        nonce=q.get("nonce"),
        offline=offline,
        issue_refresh_token=offline
        and (forced or not state.tokens.has_live_grant(client.client_id, mailbox.address)),
    )
    return redirect_with(
        redirect_uri, {"state": q["state"], "code": grant.code, "scope": grant.scope}
    )


def _token_body(
    state: EmulatorState,
    client: OAuthClient,
    mailbox: Mailbox,
    scope: str,
    refresh_token: str | None,
    *,
    nonce: str | None,
    with_id_token: bool,
) -> JSONResponse:
    lifetime = state.access_token_lifetime
    access = state.tokens.issue_access(
        provider=PROVIDER,
        client_id=client.client_id,
        address=mailbox.address,
        scope=scope,
        lifetime=lifetime,
    )
    body: dict[str, object] = {"access_token": access.token, "expires_in": lifetime}
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    body["scope"] = scope
    body["token_type"] = "Bearer"
    if with_id_token:
        body["id_token"] = id_token(client.client_id, mailbox, nonce, state.clock(), lifetime)
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _exchange_code(state: EmulatorState, client: OAuthClient, form: dict[str, str]) -> Response:
    if not form.get("code"):
        return oauth_error(400, "invalid_request", "Missing required parameter: code")
    grant = state.tokens.take_code(form["code"])
    if grant is None or grant.client_id != client.client_id:
        return oauth_error(400, "invalid_grant", "Malformed auth code.")
    if form.get("redirect_uri") != grant.redirect_uri:
        return oauth_error(400, "redirect_uri_mismatch", "Bad Request")
    verifier = form.get("code_verifier")
    if not verifier:
        return oauth_error(400, "invalid_grant", "Missing code verifier.")
    if not verifier_matches(verifier, grant.code_challenge):
        return oauth_error(400, "invalid_grant", "Invalid code verifier.")
    mailbox = state.mailbox(grant.address)
    if mailbox is None:
        return oauth_error(400, "invalid_grant", REVOKED_DESCRIPTION)
    refresh = None
    if grant.issue_refresh_token:
        refresh = state.tokens.issue_refresh(
            provider=PROVIDER,
            client_id=client.client_id,
            address=mailbox.address,
            scope=grant.scope,
        ).token
    return _token_body(
        state, client, mailbox, grant.scope, refresh, nonce=grant.nonce, with_id_token=True
    )


def _refresh(state: EmulatorState, client: OAuthClient, form: dict[str, str]) -> Response:
    if not form.get("refresh_token"):
        return oauth_error(400, "invalid_request", "Missing required parameter: refresh_token")
    record = state.tokens.refresh_token(form["refresh_token"])
    mailbox = state.mailbox(record.address) if record is not None else None
    if record is None or mailbox is None:
        return oauth_error(400, "invalid_grant", REVOKED_DESCRIPTION)
    if record.client_id != client.client_id:
        return oauth_error(400, "unauthorized_client", "Unauthorized")
    rotated = None
    if mailbox.rotate_refresh_tokens:
        # The old token dies at once, so a client that drops the new one fails loudly.
        state.tokens.drop_refresh(record.token)
        rotated = state.tokens.issue_refresh(
            provider=PROVIDER,
            client_id=client.client_id,
            address=mailbox.address,
            scope=record.scope,
        ).token
    return _token_body(
        state,
        client,
        mailbox,
        record.scope,
        rotated,
        nonce=None,
        with_id_token="openid" in record.scope.split(),
    )


async def _token(state: EmulatorState, request: Request) -> Response:
    found = await token_client(state, PROVIDER, request)
    if isinstance(found, tuple):
        return oauth_error(*_REFUSALS[found[0]])
    if found.grant_type == "authorization_code":
        return _exchange_code(state, found.client, found.form)
    if found.grant_type == "refresh_token":
        return _refresh(state, found.client, found.form)
    return oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {found.grant_type}")


async def _revoke(state: EmulatorState, request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    token = form.get("token") or request.query_params.get("token", "")
    owner = state.tokens.refresh_token(token) or state.tokens.valid_access(token)
    if owner is None:
        return oauth_error(400, "invalid_token", "Token expired or revoked")
    # Revoking either token ends the whole grant, as with Google.
    state.tokens.revoke_grant(owner.client_id, owner.address)
    return JSONResponse({})


def google_oauth_routes(state: EmulatorState) -> list[Route]:
    def counted(method: str, path: str, handler: Handler) -> Route:
        return oauth_route(state, PROVIDER, method, path, handler, _fault_answer)

    return [
        *(counted("GET", path, _authorize) for path in AUTH_PATHS),
        counted("POST", TOKEN_PATH, _token),
        counted("POST", REVOKE_PATH, _revoke),
    ]
