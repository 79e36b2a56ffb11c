"""The browser session of the pages: a signed cookie, and the CSRF token it carries.

The cookie holds `{"a": agent id, "m": token mark, "c": csrf token}`, signed (not encrypted)
with itsdangerous under the app's secret key and limited in age. The token mark binds the
session to the admin token it was opened with: rotating the token signs every browser out.
A visitor without a session still gets one (no agent, only a CSRF token) so the login form
is protected like every other form. The CSRF token is bound to the session and checked on
every state-changing request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from api.limits import RateLimiter
from core.settings import Settings

log = logging.getLogger("deskclone.api")

COOKIE = "deskclone_session"
MAX_AGE_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class BrowserSession:
    csrf: str
    agent_id: str | None = None
    mark: str | None = None
    # Not stored: whether this session must be (re)written on the response.
    fresh: bool = False


class PagesState:
    """What the pages keep per app: the cookie signer and the login rate limiter."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        if secret is None:
            # Without a configured key sessions still work, but only in this process and
            # only until it restarts.
            log.warning("DESKCLONE_SECRET_KEY is not set: page sign-ins last until a restart")
            secret = secrets.token_urlsafe(32)
        self._secret = secret.encode()
        self._serializer = URLSafeTimedSerializer(secret, salt="deskclone.pages.session")
        self.secure_cookie = settings.public_url.startswith("https://")
        self.login_limiter = RateLimiter(10)

    def token_mark(self, admin_token_sha256: str) -> str:
        digest = hmac.new(self._secret, admin_token_sha256.encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def load(self, request: Request) -> BrowserSession:
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                data: Any = self._serializer.loads(raw, max_age=MAX_AGE_SECONDS)
            except BadSignature:
                data = None
            if isinstance(data, dict) and isinstance(data.get("c"), str) and data["c"]:
                agent_id, mark = data.get("a"), data.get("m")
                if isinstance(agent_id, str) and isinstance(mark, str):
                    return BrowserSession(csrf=data["c"], agent_id=agent_id, mark=mark)
                return BrowserSession(csrf=data["c"])
        return BrowserSession(csrf=secrets.token_urlsafe(24), fresh=True)

    def signed_in(self, agent_id: str, admin_token_sha256: str) -> BrowserSession:
        """A new session (new CSRF token too): nothing from before the sign-in carries over."""
        return BrowserSession(
            csrf=secrets.token_urlsafe(24),
            agent_id=agent_id,
            mark=self.token_mark(admin_token_sha256),
            fresh=True,
        )

    def anonymous(self) -> BrowserSession:
        return BrowserSession(csrf=secrets.token_urlsafe(24), fresh=True)

    def write(self, request: Request, response: Response, session: BrowserSession) -> None:
        payload: dict[str, str] = {"c": session.csrf}
        if session.agent_id is not None and session.mark is not None:
            payload.update(a=session.agent_id, m=session.mark)
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(payload),
            max_age=MAX_AGE_SECONDS,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure_cookie or request.url.scheme == "https",
        )

    def csrf_ok(self, session: BrowserSession, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")


def pages_state(request: Request) -> PagesState:
    state: PagesState = request.app.state.pages
    return state
