"""The Microsoft identity platform (v2.0 endpoints) as MSAL speaks to it; HTTPS only.

Routes, each counted under its pattern and faulted only by a fault naming its route:

- `GET /{tenant}/v2.0/.well-known/openid-configuration` (`emulator.microsoft_discovery`)
- `GET /{tenant}/oauth2/v2.0/authorize`, the auto-approving consent screen
  (`emulator.microsoft_authorize`)
- `POST /{tenant}/oauth2/v2.0/token`, authorization-code and refresh grants
  (`emulator.microsoft_token`)

The accounts they sign in (ids, names, scopes, Entra's error shapes) are in
`emulator.microsoft_accounts`, which Graph shares; what both identity providers do
alike (client authentication, PKCE, route counting) is in `emulator.oauth_common`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.faults import Fault
from emulator.microsoft_accounts import PROVIDER, aad_error, error_page
from emulator.microsoft_authorize import authorize
from emulator.microsoft_discovery import openid_configuration_endpoint
from emulator.microsoft_token import token
from emulator.oauth_common import Handler, oauth_route
from emulator.state import EmulatorState

TENANT_PREFIX = "/{tenant}"
OPENID_CONFIGURATION_PATH = TENANT_PREFIX + "/v2.0/.well-known/openid-configuration"
AUTHORIZE_PATH = TENANT_PREFIX + "/oauth2/v2.0/authorize"
TOKEN_PATH = TENANT_PREFIX + "/oauth2/v2.0/token"
TRANSIENT = (90033, "A transient error has occurred. Please try again.")


def microsoft_identity_routes(state: EmulatorState) -> list[Route]:
    def fault_answer(request: Request, fault: Fault) -> Response:
        status = fault.status or 500
        if request.method == "GET" and request.url.path.endswith("/authorize"):
            return error_page(status, *TRANSIENT)
        error = "temporarily_unavailable" if status in (429, 503) else "server_error"
        return aad_error(
            state, request, status, error, TRANSIENT, headers=fault.retry_after_header()
        )

    def counted(method: str, path: str, handler: Handler) -> Route:
        return oauth_route(state, PROVIDER, method, path, handler, fault_answer)

    return [
        counted("GET", OPENID_CONFIGURATION_PATH, openid_configuration_endpoint),
        counted("GET", AUTHORIZE_PATH, authorize),
        counted("POST", TOKEN_PATH, token),
    ]
