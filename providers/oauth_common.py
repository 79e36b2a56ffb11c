"""What the sign-in flows of every OAuth provider share: PKCE, the grant they hand back,
their error, and reading a token endpoint's JSON."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from providers.base import Credentials


class OAuthError(Exception):
    """The connect flow failed; `message` is meant for the person connecting the mailbox."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Grant:
    """What a finished consent gives: the credentials, and the mailbox's own address as the
    provider reports it (authoritative, whatever the person typed as a hint)."""

    credentials: Credentials
    email: str
    scopes: tuple[str, ...]


def new_pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) as RFC 7636 makes them."""
    verifier = secrets.token_urlsafe(64)  # 86 characters, within 43..128
    return verifier, pkce_challenge(verifier)


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def json_object(answer: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object, or {} when it is not one (an error page, say)."""
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
