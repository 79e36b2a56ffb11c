"""OAuth clients, authorization codes and tokens, shared by every provider.

Tokens carry the provider and mailbox they were issued for, so one store
serves Google and the Microsoft identity platform, and revoking a mailbox
(`POST /_emulator/mailboxes/{address}/revoke`) kills all of them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

#: The Google OAuth client the emulator knows from the start, so `deskclone dev`
#: can connect Gmail mailboxes without registering anything.
DEFAULT_GOOGLE_CLIENT_ID = "deskclone-emulator.apps.googleusercontent.com"
DEFAULT_GOOGLE_CLIENT_SECRET = "deskclone-emulator-google-secret"
#: The Microsoft app registration known from the start (`Settings.microsoft_client_id`).
DEFAULT_MICROSOFT_CLIENT_ID = "deskclone-emulator-microsoft-client"
DEFAULT_MICROSOFT_CLIENT_SECRET = "deskclone-emulator-microsoft-secret"
#: How long an authorization code may wait before being exchanged (Google: minutes).
CODE_LIFETIME_SECONDS = 600.0


@dataclass(frozen=True)
class OAuthClient:
    """A registered app: `provider` is the mailbox provider it may connect."""

    provider: str
    client_id: str
    client_secret: str


@dataclass
class AuthorizationCode:
    code: str
    provider: str
    client_id: str
    address: str
    redirect_uri: str
    scope: str
    code_challenge: str
    nonce: str | None
    offline: bool
    issue_refresh_token: bool
    expires_at: float


@dataclass
class AccessToken:
    token: str
    provider: str
    client_id: str
    address: str
    scope: str
    expires_at: float


@dataclass
class RefreshToken:
    token: str
    provider: str
    client_id: str
    address: str
    scope: str


class TokenStore:
    """Everything a consent grants; nothing here survives a revoke."""

    def __init__(self, clock: Callable[[], float], clients: list[OAuthClient]) -> None:
        self._clock = clock
        self.clients: dict[str, OAuthClient] = {c.client_id: c for c in clients}
        self._codes: dict[str, AuthorizationCode] = {}
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, RefreshToken] = {}

    # -- clients ---------------------------------------------------------------

    def register_client(self, client: OAuthClient) -> None:
        self.clients[client.client_id] = client

    def client(self, provider: str, client_id: str) -> OAuthClient | None:
        client = self.clients.get(client_id)
        return client if client is not None and client.provider == provider else None

    # -- authorization codes ---------------------------------------------------

    def new_code(
        self,
        *,
        provider: str,
        client_id: str,
        address: str,
        redirect_uri: str,
        scope: str,
        code_challenge: str,
        nonce: str | None,
        offline: bool,
        issue_refresh_token: bool,
        prefix: str = "4/emu-",
    ) -> AuthorizationCode:
        code = AuthorizationCode(
            code=prefix + secrets.token_urlsafe(24),
            provider=provider,
            client_id=client_id,
            address=address,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            nonce=nonce,
            offline=offline,
            issue_refresh_token=issue_refresh_token,
            expires_at=self._clock() + CODE_LIFETIME_SECONDS,
        )
        self._codes[code.code] = code
        return code

    def take_code(self, code: str) -> AuthorizationCode | None:
        """The code's grant, removing it: codes are single-use like Google's."""
        grant = self._codes.pop(code, None)
        if grant is None or grant.expires_at <= self._clock():
            return None
        return grant

    # -- tokens ----------------------------------------------------------------

    def issue_access(
        self,
        *,
        provider: str,
        client_id: str,
        address: str,
        scope: str,
        lifetime: float,
        prefix: str = "ya29.emu-",
    ) -> AccessToken:
        token = AccessToken(
            token=prefix + secrets.token_urlsafe(32),
            provider=provider,
            client_id=client_id,
            address=address,
            scope=scope,
            expires_at=self._clock() + lifetime,
        )
        self._access[token.token] = token
        return token

    def issue_refresh(
        self, *, provider: str, client_id: str, address: str, scope: str, prefix: str = "1//emu-"
    ) -> RefreshToken:
        token = RefreshToken(
            token=prefix + secrets.token_urlsafe(32),
            provider=provider,
            client_id=client_id,
            address=address,
            scope=scope,
        )
        self._refresh[token.token] = token
        return token

    def valid_access(self, token: str) -> AccessToken | None:
        found = self._access.get(token)
        if found is None or found.expires_at <= self._clock():
            return None
        return found

    def refresh_token(self, token: str) -> RefreshToken | None:
        return self._refresh.get(token)

    def drop_refresh(self, token: str) -> None:
        self._refresh.pop(token, None)

    def has_live_grant(self, client_id: str, address: str) -> bool:
        """Whether a refresh token from an earlier consent still works.

        Google only hands out a new refresh token when there is none, or when
        the app forces the consent screen (`prompt=consent`).
        """
        return any(
            t.client_id == client_id and t.address == address for t in self._refresh.values()
        )

    def revoke_mailbox(self, address: str) -> int:
        """Forget every code and token of `address`; returns how many tokens died."""
        return self._revoke(lambda owner, _client: owner == address)

    def revoke_grant(self, client_id: str, address: str) -> int:
        return self._revoke(lambda owner, client: owner == address and client == client_id)

    def _revoke(self, doomed: Callable[[str, str], bool]) -> int:
        before = len(self._access) + len(self._refresh)
        self._access = {k: t for k, t in self._access.items() if not doomed(t.address, t.client_id)}
        self._refresh = {
            k: t for k, t in self._refresh.items() if not doomed(t.address, t.client_id)
        }
        self._codes = {k: c for k, c in self._codes.items() if not doomed(c.address, c.client_id)}
        return before - len(self._access) - len(self._refresh)

    def expire_access(self, address: str) -> int:
        """Make the mailbox's access tokens expired now; refresh tokens keep working."""
        now = self._clock()
        expired = 0
        for token in self._access.values():
            if token.address == address and token.expires_at > now:
                token.expires_at = now
                expired += 1
        return expired
