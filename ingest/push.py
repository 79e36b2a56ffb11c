"""Keeping a mailbox's push alive: a Gmail watch or a Graph subscription set up, renewed,
replaced when it proved broken, and stopped when the mailbox is disconnected.

Push is only ever a hint (CONTRACT.md §5): what these functions keep decides how soon a poll
comes, never what it reads.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from sqlalchemy import Engine

from core import metrics
from core.crypto import Cipher
from core.settings import Settings
from domain.outcomes import MailboxStatus, PushState
from domain.push import PushStatus
from providers.base import (
    MailboxProvider,
    ProviderError,
    PushLease,
    PushRefused,
    PushTarget,
)
from providers.cache import ProviderCache
from providers.registry import provider_info
from store import mailboxes
from store.db import transaction
from store.models import Mailbox

log = logging.getLogger("deskclone.ingest.push")


def push_target(settings: Settings, mailbox: Mailbox, secret: str) -> PushTarget | None:
    """Where this mailbox's provider should push, or None where push is not configured."""
    kind = provider_info(mailbox.provider).push_kind
    if kind == "gmail_watch" and settings.gmail_push_configured:
        return PushTarget(gmail_topic=settings.gmail_push_topic)
    if kind == "graph_subscription" and settings.push_url:
        base = settings.push_url.rstrip("/")
        return PushTarget(
            notification_url=f"{base}/push/outlook",
            lifecycle_url=f"{base}/push/outlook/lifecycle",
            client_state=secret,
        )
    return None


def keep_push(
    engine: Engine,
    settings: Settings,
    providers: ProviderCache,
    cipher: Callable[[], Cipher],
    mailbox_id: str,
    *,
    replace: bool = False,
) -> PushStatus:
    """Set up or renew the mailbox's push; `replace` drops the one held first (it proved
    broken). `AuthExpired`, `Throttled` and `Transient` propagate for the caller to map; a
    refusal (`PushRefused`) is recorded as `failed`."""
    safety = settings.push_safety_poll_seconds
    off = PushStatus(safety_poll_seconds=safety)
    with transaction(engine) as session:
        mailbox = mailboxes.get_for_worker(session, mailbox_id)
        if mailbox is None or mailbox.status != MailboxStatus.ACTIVE:
            return off
        held = _held(mailbox)
        stored_secret = mailbox.push_secret_encrypted
        secret = cipher().decrypt(stored_secret).decode() if stored_secret else _new_secret()
        target = push_target(settings, mailbox, secret)
        if target is None:
            # Not configured (any more): whatever was held lapses by itself.
            if mailbox.push_state != PushState.OFF:
                mailboxes.record_push(
                    session,
                    mailbox,
                    state=PushState.OFF,
                    push_id=None,
                    expires_at=None,
                    secret_encrypted=None,
                    error=None,
                )
            return off
        provider, _known = providers.get(
            mailbox.id, mailbox.provider, mailbox.credentials_encrypted
        )
        name = mailbox.provider
    if replace and held is not None:
        _stop_quietly(provider, held, mailbox_id)
        held = None
    try:
        lease = provider.watch(target, held)
    except PushRefused as error:
        metrics.push_renewed(name, PushState.FAILED)
        status = PushStatus(PushState.FAILED, error=str(error), safety_poll_seconds=safety)
        _record(engine, mailbox_id, status, None, cipher().encrypt(secret.encode()))
        return status
    metrics.push_renewed(name, PushState.LIVE)
    status = PushStatus(PushState.LIVE, lease.expires_at.isoformat(), None, safety)
    _record(engine, mailbox_id, status, lease, cipher().encrypt(secret.encode()))
    return status


def release(engine: Engine, providers: ProviderCache, mailbox_id: str) -> None:
    """A disconnected mailbox's last act: stop its push with its credentials, then drop both."""
    with transaction(engine) as session:
        mailbox = mailboxes.get_for_worker(session, mailbox_id)
        if mailbox is None or mailbox.status != MailboxStatus.DISCONNECTED:
            return  # connected again meanwhile: nothing to release
        held = _held(mailbox)
        credentials = mailbox.credentials_encrypted
        name = mailbox.provider
    if held is not None and credentials is not None:
        try:
            provider, _ = providers.get(mailbox_id, name, credentials)
            _stop_quietly(provider, held, mailbox_id)
        except ProviderError as error:  # no credentials left that work: it will expire
            log.info("mailbox %s: push not stopped (%s); it expires by itself", mailbox_id, error)
    providers.forget(mailbox_id)
    with transaction(engine) as session:
        mailbox = mailboxes.get_for_worker(session, mailbox_id)
        if mailbox is not None and mailbox.status == MailboxStatus.DISCONNECTED:
            mailboxes.release(session, mailbox)


def _held(mailbox: Mailbox) -> PushLease | None:
    if mailbox.push_state == PushState.OFF or mailbox.push_expires_at is None:
        return None
    return PushLease(id=mailbox.push_id, expires_at=mailbox.push_expires_at)


def _stop_quietly(provider: MailboxProvider, held: PushLease, mailbox_id: str) -> None:
    try:
        provider.unwatch(held)
    except ProviderError as error:
        log.info("mailbox %s: the old push was not stopped (%s)", mailbox_id, error)


def _record(
    engine: Engine,
    mailbox_id: str,
    status: PushStatus,
    lease: PushLease | None,
    secret_encrypted: str | None,
) -> None:
    with transaction(engine) as session:
        mailbox = mailboxes.get_for_worker(session, mailbox_id)
        if mailbox is None or mailbox.status == MailboxStatus.DISCONNECTED:
            return
        mailboxes.record_push(
            session,
            mailbox,
            state=status.state,
            push_id=lease.id if lease else None,
            expires_at=lease.expires_at if lease else None,
            secret_encrypted=secret_encrypted,
            error=status.error,
        )


def _new_secret() -> str:
    # Graph echoes it as clientState (at most 128 characters) with every notification.
    return secrets.token_urlsafe(48)
