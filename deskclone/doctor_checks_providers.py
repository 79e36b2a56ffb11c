"""Provider checks: a readable CA bundle; in production, the real endpoints (never the
emulator), both halves of each OAuth client, the secret key and a public https URL; IMAP's CA
file and plaintext setting."""

from __future__ import annotations

import re
import ssl
from urllib.parse import urlsplit

from pydantic import SecretStr

from core.settings import emulator_problems, is_emulator_host
from deskclone.doctor_checks import Check, Context, Finding, fail, first_line, ok, warn

AREA = "providers"


def ca_bundle_readable(ctx: Context) -> list[Finding]:
    bundle = ctx.settings.provider_ca_bundle
    if bundle is None:
        return []
    if not bundle.is_file():
        return [fail(AREA, f"DESKCLONE_PROVIDER_CA_BUNDLE={bundle} does not exist")]
    try:
        ssl.create_default_context(cafile=str(bundle))
    except (OSError, ssl.SSLError) as error:
        return [
            fail(
                AREA,
                f"DESKCLONE_PROVIDER_CA_BUNDLE={bundle} is not a readable PEM CA bundle: "
                f"{first_line(error)}",
            )
        ]
    return [ok(AREA, f"CA bundle {bundle} is readable")]


def real_endpoints(ctx: Context) -> list[Finding]:
    """Development may use the emulator (said, not judged); production must not."""
    emulated = emulator_problems(ctx.settings)
    if not ctx.production:
        where = "the provider emulator" if emulated else "the real Google and Microsoft endpoints"
        return [ok(AREA, f"development settings; providers are {where}")]
    return [
        fail(
            AREA,
            f"{problem}: production refuses the provider emulator. Unset it (the default "
            "is the real endpoint) or set the provider's real URL",
        )
        for problem in emulated
    ]


def _unset(value: str | SecretStr | None) -> bool:
    plain = value.get_secret_value() if isinstance(value, SecretStr) else value
    return not plain or "deskclone-emulator" in plain


def oauth_clients(ctx: Context) -> list[Finding]:
    if not ctx.production:
        return []
    settings = ctx.settings
    public_url = settings.public_url.rstrip("/")
    findings: list[Finding] = []
    configured = 0
    for label, provider, client_id, secret, id_var in (
        ("Gmail", "gmail", settings.google_client_id, settings.google_client_secret, "GOOGLE"),
        (
            "Outlook",
            "outlook",
            settings.microsoft_client_id,
            settings.microsoft_client_secret,
            "MICROSOFT",
        ),
    ):
        id_unset, secret_unset = _unset(client_id), _unset(secret)
        if id_unset and secret_unset:
            findings.append(ok(AREA, f"{label}: not configured (optional)"))
        elif id_unset or secret_unset:
            missing = f"DESKCLONE_{id_var}_CLIENT_{'ID' if id_unset else 'SECRET'}"
            findings.append(
                fail(
                    AREA,
                    f"{label}: {missing} is not set, so connecting a mailbox will fail; "
                    "see docs/providers.md",
                )
            )
        else:
            configured += 1
            findings.append(
                ok(
                    AREA,
                    f"{label}: OAuth client set; its redirect URI must be "
                    f"{public_url}/oauth/{provider}/callback",
                )
            )
    if configured == 0:
        findings.append(
            warn(
                AREA,
                "no OAuth provider is configured: Gmail and Outlook mailboxes cannot be "
                "connected, IMAP mailboxes can (docs/providers.md sets up Google and Microsoft)",
            )
        )
    return findings


def secret_key_set(ctx: Context) -> list[Finding]:
    key = ctx.settings.secret_key
    if not ctx.production or (key is not None and key.get_secret_value()):
        return []
    return [fail(AREA, "DESKCLONE_SECRET_KEY is not set: mailbox tokens cannot be stored or read")]


def public_https_url(ctx: Context) -> list[Finding]:
    if not ctx.production:
        return []
    public_url = ctx.settings.public_url.rstrip("/")
    parts = urlsplit(public_url)
    if parts.scheme == "https" and not is_emulator_host(parts.hostname or ""):
        return []
    return [
        warn(
            AREA,
            f"DESKCLONE_PUBLIC_URL={public_url} is not a public https URL; Google and "
            "Microsoft accept such redirect URIs only for local development",
        )
    ]


def imap_settings(ctx: Context) -> list[Finding]:
    """IMAP needs no registration: only its CA file must be readable, and plaintext logins
    are worth a word in production."""
    findings: list[Finding] = []
    ca_file = ctx.settings.imap_ca_file
    if ca_file is not None:
        try:
            ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as error:
            findings.append(
                fail(
                    AREA,
                    f"DESKCLONE_IMAP_CA_FILE={ca_file} is not a readable PEM CA file: "
                    f"{first_line(error)}; IMAP over TLS will fail",
                )
            )
        else:
            findings.append(ok(AREA, f"IMAP CA file {ca_file} is readable"))
    if ctx.production and ctx.settings.imap_allow_plaintext:
        findings.append(
            warn(
                AREA,
                "DESKCLONE_IMAP_ALLOW_PLAINTEXT is on: IMAP mailboxes may send their password "
                "in the clear",
            )
        )
    return findings


def push_settings(ctx: Context) -> list[Finding]:
    """Push half set up fails silently at run time (mailboxes just poll), so say it here."""
    if not ctx.production:
        return []
    settings = ctx.settings
    findings: list[Finding] = []
    topic, pusher = settings.gmail_push_topic, settings.gmail_push_service_account
    if bool(topic) != bool(pusher):
        missing = "SERVICE_ACCOUNT" if topic else "TOPIC"
        findings.append(
            fail(
                AREA,
                f"Gmail push: DESKCLONE_GMAIL_PUSH_{missing} is not set, so Gmail mailboxes "
                "only poll; set both (docs/push.md)",
            )
        )
    elif topic and not _TOPIC.fullmatch(topic):
        findings.append(
            fail(
                AREA,
                f"DESKCLONE_GMAIL_PUSH_TOPIC={topic} is not projects/PROJECT/topics/TOPIC",
            )
        )
    if not (settings.gmail_push_configured or settings.push_url):
        return [*findings, ok(AREA, "push: not configured; mailboxes poll (docs/push.md)")]
    base = (settings.push_url or settings.public_url).rstrip("/")
    parts = urlsplit(base)
    if parts.scheme != "https" or is_emulator_host(parts.hostname or ""):
        name = "DESKCLONE_PUSH_URL" if settings.push_url else "DESKCLONE_PUBLIC_URL"
        findings.append(
            fail(
                AREA,
                f"push: {name}={base} is not a public https URL; Pub/Sub and Graph deliver "
                "notifications only to one",
            )
        )
    elif not findings:
        findings.append(ok(AREA, f"push: notifications arrive at {base}/push/…"))
    return findings


_TOPIC = re.compile(r"projects/[^/]+/topics/[^/]+")

CHECKS: list[Check] = [
    ca_bundle_readable,
    real_endpoints,
    oauth_clients,
    secret_key_set,
    public_https_url,
    imap_settings,
    push_settings,
]
