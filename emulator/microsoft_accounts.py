"""Microsoft accounts as the emulator's identity platform and Graph both see them.

The user's object id and tenant id (stable per address and per mail domain), display
name, scope names without Graph's resource prefix, and the two ways Entra refuses: a
JSON error body with an AADSTS code (token endpoint) or an error page (sign-in).
"""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from emulator.state import EmulatorState, Mailbox

PROVIDER = "outlook"
#: Graph's resource URI; `https://graph.microsoft.com/Mail.Read` is `Mail.Read`.
GRAPH_RESOURCE = "https://graph.microsoft.com/"
#: Scopes about the sign-in itself rather than an API.
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
ID_NAMESPACE = uuid.UUID("6f1c6a52-4e0b-4d8a-9a43-6c2f4e3a9d11")


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
    oid = uuid.uuid5(ID_NAMESPACE, "user:" + mailbox.address)
    tid = uuid.uuid5(ID_NAMESPACE, "tenant:" + domain)
    return str(oid), str(tid)


def display_name(mailbox: Mailbox) -> str:
    local = mailbox.address.partition("@")[0]
    return " ".join(part.capitalize() for part in re.split(r"[._\-+]+", local) if part)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def entra_timestamp(now: float) -> str:
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
    timestamp = entra_timestamp(state.clock())
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


def error_page(status: int, code: int, description: str) -> HTMLResponse:
    """Sign-in errors that cannot go back to the app are shown as a page, as Entra does."""
    text = html.escape(f"AADSTS{code}: {description}")
    body = (
        "<!doctype html><html><head><title>Sign in to your account</title></head>"
        f"<body><h1>Sorry, but we're having trouble signing you in.</h1><p>{text}</p>"
        "</body></html>"
    )
    return HTMLResponse(body, status_code=status)
