"""Gmail, read through the Gmail API with `gmail.readonly`: `users.history.list` from a history
id, raw messages in batches, Google's OAuth consent. Only the facts here; the client library is
imported by the modules that use it."""

from __future__ import annotations

from providers.base import ProviderInfo

GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
SCOPES = (GMAIL_READONLY, "openid", "email")

INFO = ProviderInfo(
    name="gmail",
    label="Gmail",
    company="Google",
    connect_label="Connect Google Account",
    scopes=SCOPES,
    oauth_module="providers.gmail.oauth",
    client="providers.gmail.client:GmailProvider",
    shared_connections="providers.gmail.transport:close_pooled_connections",
    cursor_kind="gmail_history",
    push_kind="gmail_watch",
    push_min_interval_seconds=1.0,
)
