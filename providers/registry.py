"""Every mail provider the system knows, and the one place that knows what each is.

Each room asks here: the API for the connect flow and labels, the worker for a client, the
workflow for the words on an expired card. Nothing is imported from a provider's package
until it is used, so the API and the workflow sandbox never load a client library they do
not need.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from core.settings import Settings
from providers.base import Credentials, MailboxProvider

CursorKind = Literal["gmail_history", "graph_delta"]
PushKind = Literal["gmail_watch", "graph_subscription"]


@dataclass(frozen=True)
class ProviderInfo:
    name: str  # what the API, the database and Temporal call it: "gmail"
    label: str  # the product, on cards: "Gmail"
    company: str  # who the person signs in with: "Google"
    connect_label: str  # the Sources button (CONTRACT.md §2)
    scopes: tuple[str, ...]  # what the consent asks for: read-only, always
    # The sign-in flow: `new_pkce_pair`, `authorization_url`, `exchange_code`.
    oauth_module: str
    client: str  # "module:Class", built with (settings, credentials)
    cursor_kind: CursorKind
    push_kind: PushKind | None = None

    def oauth(self) -> ModuleType:
        return importlib.import_module(self.oauth_module)

    def build(self, settings: Settings, credentials: Credentials) -> MailboxProvider:
        module, _, name = self.client.partition(":")
        cls: Callable[[Settings, Credentials], MailboxProvider]
        cls = getattr(importlib.import_module(module), name)
        return cls(settings, credentials)

    def auth_expired_words(self) -> str:
        return (
            f"{self.company} no longer accepts this connection. Click Reconnect to sign in again."
        )


GMAIL = ProviderInfo(
    name="gmail",
    label="Gmail",
    company="Google",
    connect_label="Connect Google Account",
    scopes=("https://www.googleapis.com/auth/gmail.readonly", "openid", "email"),
    oauth_module="providers.google_oauth",
    client="providers.gmail:GmailProvider",
    cursor_kind="gmail_history",
    push_kind="gmail_watch",
)
OUTLOOK = ProviderInfo(
    name="outlook",
    label="Outlook",
    company="Microsoft",
    connect_label="Connect Outlook Account",
    scopes=("Mail.Read", "User.Read", "offline_access", "openid", "profile"),
    oauth_module="providers.microsoft_oauth",
    client="providers.outlook:OutlookProvider",
    cursor_kind="graph_delta",
    push_kind="graph_subscription",
)

PROVIDERS: dict[str, ProviderInfo] = {info.name: info for info in (GMAIL, OUTLOOK)}


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
    from providers.google_transport import close_pooled_connections
    from providers.graph_client import close_shared_clients

    close_pooled_connections()
    close_shared_clients()
