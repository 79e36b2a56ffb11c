"""The emulator's stand-in for Google's OIDC signing keys: push tokens and their certs.

Pub/Sub signs each authenticated push with a Google-issued ID token (RS256, `kid` in
the header); receivers verify it against `https://www.googleapis.com/oauth2/v1/certs`,
a JSON object mapping each `kid` to a PEM X.509 certificate. The emulator makes one
RSA key and a self-signed certificate for it, on first use, for the life of the state
(kept across resets, so a verifier's cached certs stay good) and serves them the same way at
`GET /oauth2/v1/certs`, so `google.oauth2.id_token.verify_token(token, request,
audience=..., certs_url=<emulator>/oauth2/v1/certs)` verifies emulator pushes exactly
as it verifies Google's.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulator.api import roll_fault
from emulator.errors import google_error_body
from emulator.state import EmulatorState

CERTS_PATH = "/oauth2/v1/certs"
ISSUER = "https://accounts.google.com"
#: Google's ID tokens live an hour.
TOKEN_LIFETIME_SECONDS = 3600
#: Google's certs rotate within weeks; the emulator's live as long as the process.
CERT_VALIDITY = dt.timedelta(days=30)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def self_signed(
    key: rsa.RSAPrivateKey, common_name: str, not_before: dt.datetime, not_after: dt.datetime
) -> x509.Certificate:
    """A certificate for `key` signed by itself, as Google publishes its token-signing keys."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )


@dataclass(frozen=True)
class _Material:
    key: rsa.RSAPrivateKey
    certificate_pem: str
    kid: str


class SigningKey:
    """One RS256 key, its certificate and `kid`, as Google publishes its signing keys.

    Made on first use (an RSA key takes about 0.1 s, and most emulator states never push).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._made: _Material | None = None
        self._lock = threading.Lock()

    def _material(self) -> _Material:
        with self._lock:
            if self._made is None:
                self._made = self._make()
            return self._made

    def _make(self) -> _Material:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        certificate = self_signed(
            key, "emulator.googleapis.com", now - dt.timedelta(hours=1), now + CERT_VALIDITY
        )
        der = certificate.public_bytes(serialization.Encoding.DER)
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        # Google's kids are 40 hex characters; a digest of the certificate keeps that shape.
        return _Material(key, pem, hashlib.sha1(der).hexdigest())

    def certs(self) -> dict[str, str]:
        """`{kid: PEM certificate}`, the body of Google's v1 certs endpoint."""
        made = self._material()
        return {made.kid: made.certificate_pem}

    def id_token(self, *, audience: str, email: str, subject: str) -> str:
        """A Google-style OIDC ID token, as Pub/Sub attaches to an authenticated push."""
        now = int(self._clock())
        claims = {
            "aud": audience,
            "azp": subject,
            "email": email,
            "email_verified": True,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "iat": now,
            "iss": ISSUER,
            "sub": subject,
        }
        made = self._material()
        header = {"alg": "RS256", "kid": made.kid, "typ": "JWT"}
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        signature = made.key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return signing_input + "." + _b64url(signature)


def service_account_subject(email: str) -> str:
    """A service account's stable numeric unique id (`sub` and `azp` of its tokens)."""
    return str(int(hashlib.sha256(email.encode()).hexdigest(), 16))[:21]


def certs_route(state: EmulatorState) -> Route:
    """`GET /oauth2/v1/certs`: counted; faulted only by a fault naming this route."""
    key = f"GET {CERTS_PATH}"

    async def certs(_request: Request) -> Response:
        state.requests.record(key)
        fault = await roll_fault(state, "gmail", key, api=False)
        if fault is not None and fault.status is not None:
            return JSONResponse(google_error_body(fault.status), status_code=fault.status)
        # Google lets verifiers cache its certs for a few hours.
        return JSONResponse(state.push.signing.certs(), headers={"Cache-Control": "max-age=19000"})

    return Route(CERTS_PATH, certs, methods=["GET"])
