"""Encryption at rest for provider credentials and PKCE verifiers.

Fernet (AES-128-CBC + HMAC-SHA256) with keys derived from `DESKCLONE_SECRET_KEY`; earlier keys
in `DESKCLONE_OLD_SECRET_KEYS` still decrypt, so the key can be rotated without losing tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.settings import Settings
from domain.credentials import Credentials


class SecretsUnavailable(RuntimeError):
    """Raised when something must be encrypted or decrypted and no usable key is set."""


def _fernet(secret: str) -> Fernet:
    # Any length of secret works: Fernet wants 32 url-safe base64 bytes, a SHA-256 is 32 bytes.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


class Cipher:
    def __init__(self, secret: str, old_secrets: list[str] | None = None) -> None:
        self._fernet = MultiFernet([_fernet(secret), *(_fernet(s) for s in old_secrets or [])])

    @classmethod
    def from_settings(cls, settings: Settings) -> Cipher:
        if settings.secret_key is None:
            raise SecretsUnavailable("DESKCLONE_SECRET_KEY is not set; it encrypts OAuth tokens")
        old = [s.get_secret_value() for s in settings.old_secret_keys]
        return cls(settings.secret_key.get_secret_value(), old)

    def encrypt(self, plain: bytes) -> str:
        return self._fernet.encrypt(plain).decode()

    def decrypt(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken as error:
            raise SecretsUnavailable(
                "stored secret cannot be decrypted with the configured keys"
            ) from error

    def rotate(self, token: str) -> str:
        """The same secret, encrypted again under the current key (for `deskclone rotate-key`)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as error:
            raise SecretsUnavailable(
                "stored secret cannot be decrypted with the configured keys"
            ) from error

    def encrypt_credentials(self, credentials: Credentials) -> str:
        data = asdict(credentials)
        data["expires_at"] = credentials.expires_at.isoformat() if credentials.expires_at else None
        return self.encrypt(json.dumps(data).encode())

    def decrypt_credentials(self, token: str) -> Credentials:
        data = json.loads(self.decrypt(token))
        expires = data.get("expires_at")
        return Credentials(
            refresh_token=data["refresh_token"],
            access_token=data.get("access_token"),
            expires_at=datetime.fromisoformat(expires) if expires else None,
            scopes=tuple(data.get("scopes") or ()),
            password=data.get("password"),
            server=data.get("server"),
        )
