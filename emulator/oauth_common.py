"""What Google's and Microsoft's OAuth endpoints in the emulator do alike.

Both token endpoints read a form, find the client from the form (google-auth, MSAL) or
HTTP Basic (requests-oauthlib), check its secret and dispatch on `grant_type`; both check
PKCE S256 the same way; both hand out unsigned id_tokens; both are counted and faulted
only by a fault naming their route. The error each refusal answers differs per provider
(Google's RFC 6749 bodies, Entra's AADSTS bodies), so `token_client` says *why* it refuses
and each provider words it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from emulator.api import roll_fault
from emulator.faults import Fault
from emulator.state import EmulatorState
from emulator.tokens import OAuthClient

#: RFC 7636 §4.1: 43 to 128 unreserved characters.
_VERIFIER_CHARS = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")

Handler = Callable[[EmulatorState, Request], Awaitable[Response]]
FaultAnswer = Callable[[Request, Fault], Response]


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verifier_matches(verifier: str, challenge: str) -> bool:
    """Whether a PKCE `code_verifier` is well formed and hashes (S256) to `challenge`."""
    return bool(_VERIFIER_CHARS.match(verifier)) and s256(verifier) == challenge


def b64url_json(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def unsigned_jwt(header: dict[str, object], claims: dict[str, object]) -> str:
    """An `alg: none` JWT: the emulator's id_tokens are decoded by clients, never verified."""
    return b64url_json(header) + "." + b64url_json(claims) + "."


def redirect_with(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    """302 back to the app with `params` added to whatever query its URI already has."""
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params), status_code=302)


class Refusal(enum.Enum):
    """Why a token request was refused before its grant was looked at."""

    NOT_A_FORM = "not_a_form"
    NO_CLIENT_ID = "no_client_id"
    UNKNOWN_CLIENT = "unknown_client"
    WRONG_SECRET = "wrong_secret"


@dataclass(frozen=True)
class TokenRequest:
    client: OAuthClient
    form: dict[str, str]

    @property
    def grant_type(self) -> str:
        return self.form.get("grant_type", "")


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str | None] | None:
    """(client_id, client_secret) from HTTP Basic or from the form body."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, secret = decoded.partition(":")
        # RFC 6749 §2.3.1 form-encodes both before Basic; unquoting plain ones is harmless.
        return unquote_plus(client_id), unquote_plus(secret)
    if "client_id" in form:
        return form["client_id"], form.get("client_secret")
    return None


async def token_client(
    state: EmulatorState, provider: str, request: Request
) -> TokenRequest | tuple[Refusal, str]:
    """The authenticated client and form of a token request, or why not (and the client id)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return Refusal.NOT_A_FORM, ""
    body = (await request.body()).decode("utf-8", "replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    credentials = _client_credentials(request, form)
    if credentials is None:
        return Refusal.NO_CLIENT_ID, ""
    client_id, secret = credentials
    client = state.tokens.client(provider, client_id)
    if client is None:
        return Refusal.UNKNOWN_CLIENT, client_id
    if secret != client.client_secret:
        return Refusal.WRONG_SECRET, client_id
    return TokenRequest(client, form)


def oauth_route(
    state: EmulatorState,
    provider: str,
    method: str,
    path: str,
    handler: Handler,
    on_fault: FaultAnswer,
) -> Route:
    """A counted OAuth endpoint, faulted only by a fault naming its route.

    An API fault ("429 on the next Gmail call") must not be swallowed by the token
    refresh that precedes the call, hence `api=False`.
    """
    key = f"{method} {path}"

    async def endpoint(request: Request) -> Response:
        state.requests.record(key)
        fault = await roll_fault(state, provider, key, api=False)
        if fault is not None:
            return on_fault(request, fault)
        return await handler(state, request)

    return Route(path, endpoint, methods=[method])
