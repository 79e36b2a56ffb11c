"""Google's side of a Pub/Sub push, played locally: RSA signing keys with self-signed
certificates, a certs server shaped like `https://www.googleapis.com/oauth2/v1/certs`
(`{kid: PEM certificate}`, cacheable), and OIDC tokens signed (or forged) with them.

Tokens are signed with google-auth's own signer (`google.auth.crypt`, `google.auth.jwt`), the
library our API verifies them with; the forgeries are built by hand.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import google.auth.crypt
import google.auth.jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.push_signing import self_signed

ISSUER = "https://accounts.google.com"
PUSHER = "gmail-push@deskclone-test.iam.gserviceaccount.com"
CERTS_PATH = "/oauth2/v1/certs"


@dataclass(frozen=True)
class SigningKey:
    """One RSA key under a key id, as Google publishes its token-signing keys."""

    kid: str
    private_pem: bytes
    certificate_pem: str

    @classmethod
    def make(cls, kid: str) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.now(dt.UTC)
        certificate = self_signed(
            key, "test.googleapis.com", now - dt.timedelta(days=1), now + dt.timedelta(days=30)
        )
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cls(kid, private_pem, certificate.public_bytes(serialization.Encoding.PEM).decode())

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        """An RS256 JWT; `kid` names another key in the header (a forgery's trick)."""
        from_pem = google.auth.crypt.RSASigner.from_string
        signer = from_pem(self.private_pem, key_id=kid or self.kid)  # type: ignore[no-untyped-call]
        token: bytes = google.auth.jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
        return token.decode()


def google_claims(audience: str, **overrides: Any) -> dict[str, Any]:
    """What Pub/Sub puts in a push's OIDC token (research/push.md); `overrides` with a None
    value drop that claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": audience,
        "azp": "104476375842953174926",
        "sub": "104476375842953174926",
        "email": PUSHER,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """`alg: none` with an empty signature: what a careless verifier accepts."""
    header = {"alg": "none", "typ": "JWT", "kid": kid}
    return f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}."


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class CertsServer:
    """Serves `{kid: PEM}` for `keys` at `url`, cacheable for an hour, and counts the GETs."""

    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{CERTS_PATH}"

    def body(self) -> bytes:
        with self._lock:
            self.fetches += 1
            return json.dumps({k.kid: k.certificate_pem for k in self.keys}).encode()


def _handler(certs: CertsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != CERTS_PATH:
                self.send_error(404)
                return
            body = certs.body()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Cache-Control", "public, max-age=3600, must-revalidate")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


@contextmanager
def running_certs(*keys: SigningKey) -> Iterator[CertsServer]:
    certs = CertsServer(keys=list(keys))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(certs))
    server.daemon_threads = True
    certs.port = int(server.server_address[1])
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="google-certs", daemon=True
    )
    thread.start()
    try:
        yield certs
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
