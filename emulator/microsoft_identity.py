"""The Microsoft identity platform (v2.0 endpoints) as MSAL speaks to it; HTTPS only.

- `GET /{tenant}/v2.0/.well-known/openid-configuration`: what MSAL fetches when it
  builds an app (with `instance_discovery=False`). Every endpoint is `https://` on the
  emulator's own host: MSAL refuses anything else (research/providers.md §3.1).
- `GET /{tenant}/oauth2/v2.0/authorize`: approves at once as `login_hint`, creating
  that Outlook mailbox if needed, and redirects (302) to `redirect_uri` with `code`,
  `state` and `session_state` (`response_mode=form_post` answers an auto-submitting
  form instead). Stricter than Microsoft where the project must not cut corners:
  `state` and PKCE S256 are required. The `nonce` is kept for the id_token.
- `POST /{tenant}/oauth2/v2.0/token`: `authorization_code` (PKCE verifier checked) and
  `refresh_token` grants. Like Microsoft, every refresh answers a new refresh token;
  the old one keeps working unless the mailbox rotates refresh tokens (control API).
  `client_info=1` adds base64url `{"uid", "utid"}`. The id_token is unsigned
  (`alg: none`); MSAL 1.39 does not validate id_tokens (§3.4).

Errors use Microsoft's bodies (`error`, `error_description` starting `AADSTS<n>:`,
`error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`, `suberror`),
since the provider classifies refresh failures from them: a revoked grant answers
`invalid_grant` AADSTS700082 on refresh and AADSTS70008 for an authorization code.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import html
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from emulator.api import roll_fault
from emulator.faults import Fault
from emulator.google_oauth import s256
from emulator.state import EmulatorState, InvalidAddressError, Mailbox, ProviderConflictError
from emulator.tokens import OAuthClient

PROVIDER = "outlook"
TENANT_PREFIX = "/{tenant}"
OPENID_CONFIGURATION_PATH = TENANT_PREFIX + "/v2.0/.well-known/openid-configuration"
AUTHORIZE_PATH = TENANT_PREFIX + "/oauth2/v2.0/authorize"
TOKEN_PATH = TENANT_PREFIX + "/oauth2/v2.0/token"
#: Graph's resource URI; `https://graph.microsoft.com/Mail.Read` is `Mail.Read`.
GRAPH_RESOURCE = "https://graph.microsoft.com/"
#: Scopes about the sign-in itself rather than an API.
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
#: Microsoft tokens look nothing like Google's; the prefixes keep logs telling them apart.
CODE_PREFIX = "0.AXEA-emu-code-"
ACCESS_PREFIX = "eyJ0eXAiOiJKV1Qi.emu-"
REFRESH_PREFIX = "0.AXEA-emu-rt-"
_VERIFIER_CHARS = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")
_ID_NAMESPACE = uuid.UUID("6f1c6a52-4e0b-4d8a-9a43-6c2f4e3a9d11")

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


def normalize_scopes(raw: str) -> list[str]:
    """Scope names without Graph's resource prefix, in order, each once."""
    names = []
    for scope in raw.split():
        if scope.lower().startswith(GRAPH_RESOURCE):
            scope = scope[len(GRAPH_RESOURCE) :]
        if scope and scope not in names:
            names.append(scope)
    return names


def resource_scopes(scopes: list[str]) -> set[str]:
    """The API scopes among `scopes` (case-insensitive, as Microsoft compares them)."""
    return {s.lower() for s in scopes if s.lower() not in OIDC_SCOPES}


def account_ids(mailbox: Mailbox) -> tuple[str, str]:
    """(oid, tid): the user's object id and their tenant (one per mail domain)."""
    domain = mailbox.address.rpartition("@")[2]
    oid = uuid.uuid5(_ID_NAMESPACE, "user:" + mailbox.address)
    tid = uuid.uuid5(_ID_NAMESPACE, "tenant:" + domain)
    return str(oid), str(tid)


def display_name(mailbox: Mailbox) -> str:
    local = mailbox.address.partition("@")[0]
    return " ".join(part.capitalize() for part in re.split(r"[._\-+]+", local) if part)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _b64url_json(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _timestamp(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def aad_error(
    state: EmulatorState,
    request: Request,
    status: int,
    error: str,
    code: tuple[int, str],
    *,
    suberror: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A token-endpoint error as Microsoft Entra writes it."""
    number, text = code
    timestamp = _timestamp(state.clock())
    trace_id = str(uuid.uuid4())
    # Entra echoes the client's `client-request-id` (MSAL sends one) as the correlation id.
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    body: dict[str, object] = {
        "error": error,
        "error_description": (
            f"AADSTS{number}: {text} Trace ID: {trace_id} Correlation ID: {correlation_id} "
            f"Timestamp: {timestamp}"
        ),
        "error_codes": [number],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={number}",
    }
    if suberror is not None:
        body["suberror"] = suberror
    answer = JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    answer.headers.update(headers or {})
    return answer


def _page(status: int, code: int, description: str) -> HTMLResponse:
    """Sign-in errors that cannot go back to the app are shown as a page, as Entra does."""
    text = html.escape(f"AADSTS{code}: {description}")
    body = (
        "<!doctype html><html><head><title>Sign in to your account</title></head>"
        f"<body><h1>Sorry, but we're having trouble signing you in.</h1><p>{text}</p>"
        "</body></html>"
    )
    return HTMLResponse(body, status_code=status)


# -- openid-configuration ------------------------------------------------------


def openid_configuration(base: str, tenant: str) -> dict[str, object]:
    root = f"{base}/{tenant}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        # Entra's multi-tenant documents carry this placeholder literally.
        "issuer": f"{base}/{{tenantid}}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "cloud_instance_name",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "tenant_region_scope": None,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }


async def _openid_configuration(_state: EmulatorState, request: Request) -> Response:
    tenant = request.path_params["tenant"]
    if not _TENANT.match(tenant):
        return JSONResponse(
            {
                "error": "invalid_tenant",
                "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
            },
            status_code=400,
        )
    return JSONResponse(openid_configuration(_base_url(request), tenant))


# -- authorize -----------------------------------------------------------------


def _back_to_app(redirect_uri: str, params: dict[str, str], response_mode: str) -> Response:
    if response_mode == "form_post":
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        page = (
            "<!doctype html><html><head><title>Working...</title></head>"
            '<body onload="document.forms[0].submit()">'
            f'<form method="POST" name="hiddenform" action="{html.escape(redirect_uri)}">'
            f'{fields}<noscript><input type="submit" value="Continue"></noscript>'
            "</form></body></html>"
        )
        return HTMLResponse(page)
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params), status_code=302)


async def _authorize(state: EmulatorState, request: Request) -> Response:
    q = request.query_params
    client = state.tokens.client(PROVIDER, q.get("client_id", ""))
    if client is None:
        return _page(
            400,
            700016,
            f"Application with identifier '{q.get('client_id', '')}' was not found in the "
            "directory.",
        )
    redirect_uri = q.get("redirect_uri", "")
    target = urlsplit(redirect_uri)
    if target.scheme not in ("http", "https") or not target.netloc:
        return _page(400, 50011, f"The redirect URI '{redirect_uri}' is not valid.")
    response_mode = q.get("response_mode", "query")
    if response_mode not in ("query", "form_post"):
        return _page(400, 900144, "The emulator answers response_mode query or form_post.")

    def refuse(error: str, code: int, description: str) -> Response:
        params = {"error": error, "error_description": f"AADSTS{code}: {description}"}
        if q.get("state"):
            params["state"] = q["state"]
        return _back_to_app(redirect_uri, params, response_mode)

    if q.get("response_type") != "code":
        return refuse("unsupported_response_type", 700054, "response_type must be 'code'.")
    for name in ("scope", "state", "code_challenge"):
        if not q.get(name):
            return refuse(
                "invalid_request",
                900144,
                f"The request body must contain the following parameter: '{name}'.",
            )
    if q.get("code_challenge_method") != "S256":
        return refuse("invalid_request", 501491, "code_challenge_method must be S256.")
    login_hint = q.get("login_hint", "")
    if not login_hint:
        return _page(
            400,
            900144,
            "Missing login_hint: the emulator's consent screen signs in as the login_hint "
            "address, so the authorization URL must carry one.",
        )
    try:
        mailbox, _ = state.ensure_mailbox(PROVIDER, login_hint)
    except (InvalidAddressError, ProviderConflictError) as error:
        return _page(400, 50034, str(error))
    scopes = normalize_scopes(q["scope"])
    grant = state.tokens.new_code(
        provider=PROVIDER,
        client_id=client.client_id,
        address=mailbox.address,
        redirect_uri=redirect_uri,
        scope=" ".join(scopes),
        code_challenge=q["code_challenge"],
        nonce=q.get("nonce"),
        offline="offline_access" in scopes,
        # Microsoft hands out a refresh token at every redemption when offline_access is
        # granted: a Reconnect needs no equivalent of Google's prompt=consent.
        issue_refresh_token="offline_access" in scopes,
        prefix=CODE_PREFIX,
    )
    params = {"code": grant.code, "state": q["state"], "session_state": str(uuid.uuid4())}
    return _back_to_app(redirect_uri, params, response_mode)


# -- token -----------------------------------------------------------------------


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str | None] | None:
    """(client_id, client_secret) from the form (MSAL) or HTTP Basic."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)
    if "client_id" in form:
        return form["client_id"], form.get("client_secret")
    return None


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
        "sub": str(uuid.uuid5(_ID_NAMESPACE, f"sub:{client_id}:{oid}")),
        "tid": tid,
        "ver": "2.0",
    }
    if nonce:
        claims["nonce"] = nonce
    return _b64url_json({"typ": "JWT", "alg": "none"}) + "." + _b64url_json(claims) + "."


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
        base = _base_url(request)
        body["id_token"] = id_token(client.client_id, mailbox, base, nonce, state.clock(), 3600)
    if form.get("client_info") == "1":
        oid, tid = account_ids(mailbox)
        body["client_info"] = _b64url_json({"uid": oid, "utid": tid})
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
    if not _VERIFIER_CHARS.match(verifier) or s256(verifier) != grant.code_challenge:
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
        issued = _timestamp(state.clock() - 90 * 86400)
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


async def _token(state: EmulatorState, request: Request) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return aad_error(
            state,
            request,
            400,
            "invalid_request",
            (900144, "The request body must contain the following parameter: 'grant_type'."),
        )
    body = (await request.body()).decode("utf-8", "replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    credentials = _client_credentials(request, form)
    if credentials is None:
        return aad_error(
            state,
            request,
            400,
            "invalid_request",
            (900144, "The request body must contain the following parameter: 'client_id'."),
        )
    client = state.tokens.client(PROVIDER, credentials[0])
    if client is None:
        return aad_error(
            state,
            request,
            400,
            "unauthorized_client",
            (
                700016,
                f"Application with identifier '{credentials[0]}' was not found in the directory.",
            ),
        )
    if credentials[1] != client.client_secret:
        return aad_error(
            state,
            request,
            401,
            "invalid_client",
            (
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the "
                "request is the client secret value, not the client secret ID.",
            ),
        )
    grant_type = form.get("grant_type", "")
    if grant_type == "authorization_code":
        return _exchange_code(state, request, client, form)
    if grant_type == "refresh_token":
        return _refresh(state, request, client, form)
    return aad_error(
        state,
        request,
        400,
        "unsupported_grant_type",
        (70003, f"The app requested an unsupported grant type '{grant_type}'."),
    )


def _fault_response(state: EmulatorState, request: Request, method: str, fault: Fault) -> Response:
    status = fault.status or 500
    if method == "GET" and request.url.path.endswith("/authorize"):
        return _page(status, 90033, "A transient error has occurred. Please try again.")
    error = "temporarily_unavailable" if status in (429, 503) else "server_error"
    return aad_error(
        state,
        request,
        status,
        error,
        (90033, "A transient error has occurred. Please try again."),
        headers=fault.retry_after_header(),
    )


def microsoft_identity_routes(state: EmulatorState) -> list[Route]:
    def counted(
        method: str, path: str, handler: Callable[[EmulatorState, Request], Awaitable[Response]]
    ) -> Route:
        key = f"{method} {path}"

        async def endpoint(request: Request) -> Response:
            state.requests.record(key)
            # Identity endpoints are only faulted by a fault naming their route.
            fault = await roll_fault(state, PROVIDER, key, api=False)
            if fault is not None:
                return _fault_response(state, request, method, fault)
            return await handler(state, request)

        return Route(path, endpoint, methods=[method])

    return [
        counted("GET", OPENID_CONFIGURATION_PATH, _openid_configuration),
        counted("GET", AUTHORIZE_PATH, _authorize),
        counted("POST", TOKEN_PATH, _token),
    ]
