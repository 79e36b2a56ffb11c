"""Outlook and Microsoft 365, read through Microsoft Graph with delegated `Mail.Read`:
`messages/delta` on the inbox, raw messages through `$batch`, MSAL for tokens. Only the facts
here; the client libraries are imported by the modules that use them."""

from __future__ import annotations

from providers.base import ProviderInfo

# What Graph calls need; MSAL adds its reserved scopes (sign-in, a refresh token) itself.
GRAPH_SCOPES = ("Mail.Read", "User.Read")
RESERVED_SCOPES = ("offline_access", "openid", "profile")
SCOPES = (*GRAPH_SCOPES, *RESERVED_SCOPES)

INFO = ProviderInfo(
    name="outlook",
    label="Outlook",
    company="Microsoft",
    connect_label="Connect Outlook Account",
    scopes=SCOPES,
    oauth_module="providers.outlook.oauth",
    client="providers.outlook.client:OutlookProvider",
    shared_connections="providers.outlook.graph:close_shared_clients",
    cursor_kind="graph_delta",
    push_kind="graph_subscription",
)
