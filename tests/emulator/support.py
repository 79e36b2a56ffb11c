"""Helpers for driving the emulator with real clients: OAuth consent, mail, Gmail service."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx
from google.auth import jwt

from emulator.tokens import DEFAULT_GOOGLE_CLIENT_ID, DEFAULT_GOOGLE_CLIENT_SECRET

GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
SCOPE = f"openid email {GMAIL_READONLY}"
REDIRECT_URI = "http://127.0.0.1:9/oauth/gmail/callback"
ANN = "ann@example.com"


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) as RFC 7636 makes them."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class Consent:
    code: str
    state: str
    scope: str
    verifier: str


def auth_params(address: str | None, challenge: str, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": DEFAULT_GOOGLE_CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "state": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "access_type": "offline",
        "login_hint": address,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def consent(client: httpx.Client, address: str, **overrides: str | None) -> Consent:
    """Follow the authorization URL to the app's callback redirect; check what it carries."""
    verifier, challenge = pkce_pair()
    params = auth_params(address, challenge, **overrides)
    answer = client.get("/o/oauth2/auth", params=params)
    assert answer.status_code == 302, answer.text
    callback = httpx.URL(answer.headers["location"])
    assert str(callback.copy_with(query=None)) == params["redirect_uri"]
    assert callback.params["state"] == params["state"]
    return Consent(callback.params["code"], params["state"], callback.params["scope"], verifier)


def exchange(
    client: httpx.Client, grant: Consent, *, basic_auth: bool = False, **form: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": grant.code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": grant.verifier,
        **form,
    }
    if basic_auth:
        return client.post(
            "/token", data=data, auth=(DEFAULT_GOOGLE_CLIENT_ID, DEFAULT_GOOGLE_CLIENT_SECRET)
        )
    data |= {"client_id": DEFAULT_GOOGLE_CLIENT_ID, "client_secret": DEFAULT_GOOGLE_CLIENT_SECRET}
    return client.post("/token", data=data)


@dataclass(frozen=True)
class Grant:
    address: str
    access_token: str
    refresh_token: str
    body: dict[str, Any]


def connect(client: httpx.Client, address: str = ANN, **overrides: str | None) -> Grant:
    """A full consent for `address`: authorization URL, then code exchange."""
    answer = exchange(client, consent(client, address, **overrides))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return Grant(address, body["access_token"], body["refresh_token"], body)


def make_message(
    *,
    subject: str = "Printer on fire",
    sender: str = "Bob <bob@example.com>",
    to: str = ANN,
    text: str = "The printer on floor 2 is on fire again.",
    html: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> bytes:
    """RFC 822 bytes; attachments are (filename, mime type, content)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or f"<{secrets.token_hex(8)}@example.com>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, mime_type, content in attachments:
        maintype, _, subtype = mime_type.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def deliver(
    client: httpx.Client, raw: bytes, address: str = ANN, folder: str | None = None
) -> dict[str, Any]:
    params = {"folder": folder} if folder else {}
    answer = client.post(
        f"/_emulator/mailboxes/{address}/messages",
        content=raw,
        params=params,
        headers={"Content-Type": "message/rfc822"},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def id_token_claims(token: str) -> dict[str, Any]:
    """The claims of an id_token; the emulator's are unsigned, so nothing is verified."""
    claims: dict[str, Any] = jwt.decode(token, verify=False)  # type: ignore[no-untyped-call]
    return claims
