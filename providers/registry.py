"""Every mail provider the system knows: one `ProviderInfo` per folder under providers/, listed
here once. Each room asks here (the API for the connect flow and labels, the worker for a
client, the workflow for the words on an expired card). A provider's package `__init__` holds
only its facts, so nothing of its client library is imported until it is used: the API and the
workflow sandbox never load a library they do not need.
"""

from __future__ import annotations

from core.settings import Settings
from providers import gmail, imap, outlook
from providers.base import Credentials, MailboxProvider, ProviderInfo

PROVIDERS: dict[str, ProviderInfo] = {
    info.name: info for info in (gmail.INFO, outlook.INFO, imap.INFO)
}


def provider_info(name: str) -> ProviderInfo:
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"provider {name!r} is not supported") from None


def build_provider(settings: Settings, provider: str, credentials: Credentials) -> MailboxProvider:
    return provider_info(provider).build(settings, credentials)


def close_shared_connections() -> None:
    """Close the connections providers keep alive between polls, shared by all mailboxes
    (process shutdown; tests, before their emulator stops)."""
    for info in PROVIDERS.values():
        info.close_shared()
