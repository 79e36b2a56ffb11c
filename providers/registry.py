"""Building the provider for a mailbox from its name and credentials."""

from __future__ import annotations

from core.settings import Settings
from providers.base import Credentials, MailboxProvider

SUPPORTED = ("gmail", "outlook")


def build_provider(settings: Settings, provider: str, credentials: Credentials) -> MailboxProvider:
    if provider == "gmail":
        from providers.gmail import GmailProvider

        return GmailProvider(settings, credentials)
    if provider == "outlook":
        from providers.outlook import OutlookProvider

        return OutlookProvider(settings, credentials)
    raise ValueError(f"provider {provider!r} is not supported")


def close_shared_connections() -> None:
    """Close the connections providers keep alive between polls, shared by all mailboxes
    (process shutdown; tests, before their emulator stops)."""
    from providers.google_transport import close_pooled_connections
    from providers.graph_client import close_shared_clients

    close_pooled_connections()
    close_shared_clients()
