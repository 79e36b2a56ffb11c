"""Error bodies in the shapes the real services and the control API use.

Provider routes must fail exactly like Google does, because the project's
provider adapters classify errors from `HttpError.error_details` and
`RefreshError.args[1]`; the control API uses the project's own error shape
(CONTRACT.md §2) so tests can treat both the same way.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

#: What Google says for a token it does not accept (expired, revoked, unknown).
INVALID_CREDENTIALS_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
#: What Google says when no credentials were sent at all.
MISSING_CREDENTIALS_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
NOT_FOUND_MESSAGE = "Requested entity was not found."

# status -> (reason, google status, domain, default message), as Google's
# APIs report them; used for injected faults and generic failures.
_GOOGLE_DEFAULTS: dict[int, tuple[str, str, str, str]] = {
    400: ("badRequest", "INVALID_ARGUMENT", "global", "Bad Request"),
    401: ("authError", "UNAUTHENTICATED", "global", "Invalid Credentials"),
    403: ("userRateLimitExceeded", "PERMISSION_DENIED", "usageLimits", "User-rate limit exceeded."),
    404: ("notFound", "NOT_FOUND", "global", NOT_FOUND_MESSAGE),
    409: ("conflict", "ABORTED", "global", "Conflict"),
    429: (
        "rateLimitExceeded",
        "RESOURCE_EXHAUSTED",
        "usageLimits",
        "Resource has been exhausted (e.g. check quota).",
    ),
    500: ("backendError", "INTERNAL", "global", "Backend Error"),
    502: ("backendError", "UNAVAILABLE", "global", "Bad Gateway"),
    503: ("backendError", "UNAVAILABLE", "global", "The service is currently unavailable."),
    504: ("backendError", "DEADLINE_EXCEEDED", "global", "Deadline exceeded."),
}


def google_error_body(
    status: int, message: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    """`{"error": {"code", "message", "errors": [...], "status"}}` for `status`."""
    if status == 401:
        return unauthenticated_body(missing=False)
    default_reason, google_status, domain, default_message = _GOOGLE_DEFAULTS.get(
        status, ("unknown", "UNKNOWN", "global", HTTPStatus(status).phrase)
    )
    text = message or default_message
    return {
        "error": {
            "code": status,
            "message": text,
            "errors": [{"message": text, "domain": domain, "reason": reason or default_reason}],
            "status": google_status,
        }
    }


def unauthenticated_body(*, missing: bool) -> dict[str, Any]:
    """Google's 401 body; it words a missing header differently from a bad token."""
    if missing:
        message, detail, reason = MISSING_CREDENTIALS_MESSAGE, "Login Required.", "required"
    else:
        message, detail, reason = INVALID_CREDENTIALS_MESSAGE, "Invalid Credentials", "authError"
    return {
        "error": {
            "code": 401,
            "message": message,
            "errors": [
                {
                    "message": detail,
                    "domain": "global",
                    "reason": reason,
                    "location": "Authorization",
                    "locationType": "header",
                }
            ],
            "status": "UNAUTHENTICATED",
        }
    }


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """An RFC 6749 token-endpoint error, as Google's token endpoint writes it."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


class ControlError(Exception):
    """Bad input to a control route; rendered as the project's error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def control_error_response(status: int, code: str, message: str) -> JSONResponse:
    """`{"error": {"code": "snake_case", "message": "..."}}` (CONTRACT.md §2)."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
