"""Any mail server, read over IMAP with a password: `EXAMINE` (read-only), `UID FETCH` of
`BODY.PEEK[]` from a `(UIDVALIDITY, last UID)` cursor, never a flag changed. Only the facts
here; `imapclient` is imported by the modules that use it."""

from __future__ import annotations

from providers.base import ProviderInfo

INFO = ProviderInfo(
    name="imap",
    label="IMAP",
    company="The mail server",
    connect_label="Connect another mail server (IMAP)",
    scopes=(),
    oauth_module=None,
    client="providers.imap.client:ImapProvider",
    shared_connections="providers.imap.client:close_shared_connections",
    cursor_kind="imap_uid",
    # IDLE, held by the worker's supervisor (api/idle_supervisor.py, providers/imap/idle.py).
    push_kind="imap_idle",
    sign_in="password",
    login_module="providers.imap.login",
)
