"""Building the provider for a mailbox from its name and credentials."""

from __future__ import annotations

from deskclone.settings import Settings
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
