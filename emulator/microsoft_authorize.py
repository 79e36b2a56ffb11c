"""`GET /{tenant}/oauth2/v2.0/authorize`: the consent screen that approves at once.

It signs in as `login_hint`, creating that Outlook mailbox if needed, and goes back to
`redirect_uri` with `code`, `state` and `session_state`: a 302 (`response_mode=query`)
or an auto-submitting form (`response_mode=form_post`, what MSAL asks for). Stricter
than Microsoft where the project must not cut corners: `state` and PKCE S256 are
required. The `nonce` is kept for the id_token.
"""

from __future__ import annotations

import html
import uuid
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from emulator.microsoft_accounts import PROVIDER, error_page, normalize_scopes
from emulator.oauth_common import redirect_with
from emulator.state import EmulatorState, InvalidAddressError, ProviderConflictError

#: Microsoft codes look nothing like Google's; the prefix keeps logs telling them apart.
CODE_PREFIX = "0.AXEA-emu-code-"


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
    return redirect_with(redirect_uri, params)


async def authorize(state: EmulatorState, request: Request) -> Response:
    q = request.query_params
    client = state.tokens.client(PROVIDER, q.get("client_id", ""))
    if client is None:
        return error_page(
            400,
            700016,
            f"Application with identifier '{q.get('client_id', '')}' was not found in the "
            "directory.",
        )
    redirect_uri = q.get("redirect_uri", "")
    target = urlsplit(redirect_uri)
    if target.scheme not in ("http", "https") or not target.netloc:
        return error_page(400, 50011, f"The redirect URI '{redirect_uri}' is not valid.")
    response_mode = q.get("response_mode", "query")
    if response_mode not in ("query", "form_post"):
        return error_page(400, 900144, "The emulator answers response_mode query or form_post.")

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
        return error_page(
            400,
            900144,
            "Missing login_hint: the emulator's consent screen signs in as the login_hint "
            "address, so the authorization URL must carry one.",
        )
    try:
        mailbox, _ = state.ensure_mailbox(PROVIDER, login_hint)
    except (InvalidAddressError, ProviderConflictError) as error:
        return error_page(400, 50034, str(error))
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
