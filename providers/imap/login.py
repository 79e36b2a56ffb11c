"""The connect test a password provider runs before anything is stored (CONTRACT.md §7):
log in and open the folder read-only, exactly as every fetch will. Blocking: the API runs it
on a thread."""

from __future__ import annotations

from core.settings import Settings
from providers.base import Credentials, LoginRefused
from providers.imap.errors import refused
from providers.imap.server import ImapServer, StepFailed, opened


def check(settings: Settings, credentials: Credentials) -> None:
    """Returns when the login and the folder work; raises `LoginRefused` (code and words)."""
    if credentials.server is None or credentials.password is None:
        raise LoginRefused("validation_error", "An IMAP mailbox needs a server and a password.")
    server = ImapServer.from_dict(credentials.server)
    if server.security == "none" and not settings.imap_allow_plaintext:
        raise LoginRefused(
            "imap_plaintext_refused",
            "Connecting without TLS would send the password in the clear, so it is refused. "
            "Choose TLS or STARTTLS (an operator can allow plain connections with "
            "DESKCLONE_IMAP_ALLOW_PLAINTEXT=1, for a server on a trusted network).",
            field="security",
        )
    try:
        with opened(settings, server, credentials.password):
            return
    except StepFailed as error:
        raise refused(server, error, settings.imap_timeout_seconds) from None
