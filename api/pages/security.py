"""Security headers. Every response: `nosniff`. HTML: a Content-Security-Policy without
inline scripts or styles and no framing, except the hosted support form (`/forms/...`),
which exists to be embedded in other sites and so may be framed by anyone."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import Settings

_COMMON = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "object-src 'none'",
)


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def page_policy(settings: Settings) -> str:
    # The Connect and Reconnect forms post here and are redirected to the provider's consent
    # screen; browsers check form-action on that redirect too.
    consent = sorted(
        {
            origin
            for origin in (_origin(settings.google_auth_uri), _origin(settings.microsoft_authority))
            if origin
        }
    )
    return "; ".join(
        (
            *_COMMON,
            "frame-src 'self'",
            " ".join(("form-action 'self'", *consent)),
            "frame-ancestors 'none'",
        )
    )


def hosted_form_policy() -> str:
    return "; ".join((*_COMMON, "form-action 'self'"))


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: Settings, frameable_prefix: str = "/forms/") -> None:
        self.app = app
        self.page_policy = page_policy(settings)
        self.form_policy = hosted_form_policy()
        self.frameable_prefix = frameable_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        frameable = scope["path"].startswith(self.frameable_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    if frameable:
                        headers.setdefault("Content-Security-Policy", self.form_policy)
                        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
                    else:
                        headers.setdefault("Content-Security-Policy", self.page_policy)
                        headers.setdefault("X-Frame-Options", "DENY")
                        headers.setdefault("Referrer-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, send_with_headers)
