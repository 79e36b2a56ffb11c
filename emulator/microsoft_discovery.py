"""`GET /{tenant}/v2.0/.well-known/openid-configuration`: what MSAL fetches first.

With `instance_discovery=False` it is the only request MSAL makes when it builds an app.
Every endpoint is `https://` on the emulator's own host: MSAL refuses anything else
(research/providers.md §3.1), and only `authorization_endpoint` and `token_endpoint`
are required; the rest mirrors Entra's multi-tenant document.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulator.microsoft_accounts import base_url
from emulator.state import EmulatorState

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")


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


async def openid_configuration_endpoint(_state: EmulatorState, request: Request) -> Response:
    tenant = request.path_params["tenant"]
    if not _TENANT.match(tenant):
        return JSONResponse(
            {
                "error": "invalid_tenant",
                "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
            },
            status_code=400,
        )
    return JSONResponse(openid_configuration(base_url(request), tenant))
