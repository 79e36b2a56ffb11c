"""Mailbox queries. Admin-facing ones are scoped by agent; the worker's take a mailbox id."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from domain import events as shapes
from domain.outcomes import FINAL_OUTCOMES, MailboxStatus, Outcome, PushState
from store import agents, events
from store.models import InboundMessage, Mailbox, OAuthState, utcnow
from store.notify import notify_at_commit


def get(session: Session, agent_id: str, mailbox_id: str) -> Mailbox | None:
    return session.exec(
        select(Mailbox).where(Mailbox.agent_id == agent_id, Mailbox.id == mailbox_id)
    ).first()


def get_for_worker(session: Session, mailbox_id: str) -> Mailbox | None:
    """The worker acts for whichever agent owns the mailbox; the row says which."""
    return session.get(Mailbox, mailbox_id)


def list_for_agent(session: Session, agent_id: str) -> Sequence[Mailbox]:
    return session.exec(
        select(Mailbox)
        .where(Mailbox.agent_id == agent_id, Mailbox.status != MailboxStatus.DISCONNECTED)
        .order_by(col(Mailbox.created_at))
    ).all()


def find_by_address(session: Session, agent_id: str, provider: str, address: str) -> Mailbox | None:
    return session.exec(
        select(Mailbox).where(
            Mailbox.agent_id == agent_id,
            Mailbox.provider == provider,
            Mailbox.address == address.lower(),
        )
    ).first()


def connect(
    session: Session,
    *,
    agent_id: str,
    provider: str,
    address: str,
    credentials_encrypted: str,
    server: dict[str, str | int] | None = None,
) -> tuple[Mailbox, bool]:
    """Create the mailbox, or bring back a disconnected one with its settings and history.

    Returns the mailbox and whether it needs a fresh sync cursor (new or was disconnected).
    """
    mailbox = find_by_address(session, agent_id, provider, address)
    fresh = mailbox is None or mailbox.status == MailboxStatus.DISCONNECTED
    if mailbox is None:
        mailbox = Mailbox(agent_id=agent_id, provider=provider, address=address.lower())
    _status_event(session, mailbox, MailboxStatus.ACTIVE)
    if fresh:
        mailbox.cursor = None
        _clear_push(mailbox)
    mailbox.status = MailboxStatus.ACTIVE
    mailbox.last_error = None
    mailbox.credentials_encrypted = credentials_encrypted
    if server is not None:
        mailbox.server = server
    mailbox.updated_at = utcnow()
    session.add(mailbox)
    session.flush()
    ring_watchers(session, mailbox)
    return mailbox, fresh


def reconnect(session: Session, mailbox: Mailbox, credentials_encrypted: str) -> Mailbox:
    """New credentials for the same mailbox: every setting and the cursor stay as they were."""
    _status_event(session, mailbox, MailboxStatus.ACTIVE)
    mailbox.credentials_encrypted = credentials_encrypted
    mailbox.status = MailboxStatus.ACTIVE
    mailbox.last_error = None
    mailbox.updated_at = utcnow()
    session.add(mailbox)
    session.flush()
    ring_watchers(session, mailbox)
    return mailbox


def update_settings(
    session: Session,
    mailbox: Mailbox,
    *,
    allowed_senders: list[str] | None,
    poll_interval_seconds: int | None,
) -> Mailbox:
    if allowed_senders is not None:
        mailbox.allowed_senders = allowed_senders
    if poll_interval_seconds is not None:
        mailbox.poll_interval_seconds = poll_interval_seconds
    mailbox.updated_at = utcnow()
    session.add(mailbox)
    session.flush()
    return mailbox


def set_status(
    session: Session, mailbox: Mailbox, status: MailboxStatus, last_error: str | None = None
) -> Mailbox:
    _status_event(session, mailbox, status, last_error)
    mailbox.status = status
    mailbox.last_error = last_error
    if status == MailboxStatus.DISCONNECTED:
        # A disconnected mailbox keeps no way to read mail.
        mailbox.credentials_encrypted = None
        _clear_push(mailbox)
    mailbox.updated_at = utcnow()
    session.add(mailbox)
    session.flush()
    ring_watchers(session, mailbox)
    return mailbox


def disconnect(session: Session, mailbox: Mailbox) -> Mailbox:
    """Disconnected for everyone at once; the credentials stay until the mailbox's workflow
    has used them one last time to stop its push, then `release` drops them."""
    mailbox.status = MailboxStatus.DISCONNECTED
    mailbox.last_error = None
    mailbox.updated_at = utcnow()
    session.add(mailbox)
    session.flush()
    ring_watchers(session, mailbox)
    return mailbox


def release(session: Session, mailbox: Mailbox) -> None:
    """A disconnected mailbox keeps no way to read mail, and no push."""
    mailbox.credentials_encrypted = None
    _clear_push(mailbox)
    session.add(mailbox)
    session.flush()


def record_push(
    session: Session,
    mailbox: Mailbox,
    *,
    state: PushState,
    push_id: str | None,
    expires_at: datetime | None,
    secret_encrypted: str | None,
    error: str | None,
) -> None:
    mailbox.push_state = state
    mailbox.push_id = push_id
    mailbox.push_expires_at = expires_at
    mailbox.push_secret_encrypted = secret_encrypted
    mailbox.push_error = error
    session.add(mailbox)
    session.flush()


# The PostgreSQL NOTIFY channel a mailbox's connect, reconnect, disconnect or status change
# rings on commit: the worker's IMAP IDLE supervisor listens, to start or stop a watcher now.
WATCHERS_CHANNEL = "deskclone_mailboxes"


def ring_watchers(session: Session, mailbox: Mailbox) -> None:
    notify_at_commit(session, WATCHERS_CHANNEL, mailbox.id)


@dataclass(frozen=True)
class Watchable:
    mailbox_id: str
    credentials_encrypted: str
    push_state: PushState


def watchable(session: Session, provider: str) -> list[Watchable]:
    """Every active mailbox of the provider that has credentials: what the IDLE supervisor
    watches (an expired or disconnected one is left alone until Reconnect)."""
    rows = session.exec(
        select(Mailbox.id, Mailbox.credentials_encrypted, Mailbox.push_state).where(
            Mailbox.provider == provider,
            Mailbox.status == MailboxStatus.ACTIVE,
            col(Mailbox.credentials_encrypted).is_not(None),
        )
    ).all()
    return [Watchable(key, token, PushState(state)) for key, token, state in rows if token]


def record_watch(
    session: Session,
    mailbox_id: str,
    credentials_encrypted: str,
    state: PushState,
    error: str | None,
) -> bool:
    """The watcher's push state, kept only while the mailbox is active with the credentials the
    watcher used (not after a disconnect or a Reconnect it has not seen yet); True if kept."""
    done = session.execute(
        sa.update(Mailbox)
        .where(
            col(Mailbox.id) == mailbox_id,
            col(Mailbox.status) == MailboxStatus.ACTIVE,
            col(Mailbox.credentials_encrypted) == credentials_encrypted,
        )
        .values(push_state=state, push_error=error, push_id=None, push_expires_at=None)
    )
    return bool(getattr(done, "rowcount", 0))


def clear_watch(session: Session, mailbox_id: str) -> None:
    """A watched mailbox that expired or was disconnected: its push is off until Reconnect."""
    session.execute(
        sa.update(Mailbox)
        .where(col(Mailbox.id) == mailbox_id, col(Mailbox.status) != MailboxStatus.ACTIVE)
        .values(push_state=PushState.OFF, push_error=None)
    )


def _clear_push(mailbox: Mailbox) -> None:
    mailbox.push_state = PushState.OFF
    mailbox.push_id = mailbox.push_expires_at = mailbox.push_secret_encrypted = None
    mailbox.push_error = None


def for_gmail_push(session: Session, address: str) -> Sequence[Mailbox]:
    """Every connected Gmail mailbox of this address, in any workspace: a push names only
    the address."""
    return session.exec(
        select(Mailbox).where(
            Mailbox.provider == "gmail",
            Mailbox.address == address.strip().lower(),
            Mailbox.status != MailboxStatus.DISCONNECTED,
        )
    ).all()


def for_push_id(session: Session, push_id: str) -> Mailbox | None:
    """The mailbox holding this Graph subscription, unless it is disconnected."""
    return session.exec(
        select(Mailbox).where(
            Mailbox.push_id == push_id, Mailbox.status != MailboxStatus.DISCONNECTED
        )
    ).first()


def note_notifications(session: Session, mailbox_ids: Sequence[str], at: datetime) -> None:
    if mailbox_ids:
        session.execute(
            sa.update(Mailbox)
            .where(col(Mailbox.id).in_(mailbox_ids))
            .values(last_notification_at=at)
        )


def _status_event(
    session: Session, mailbox: Mailbox, status: MailboxStatus, last_error: str | None = None
) -> None:
    """The event this status change is (expired, reconnected), in its transaction. Called
    before the mailbox row changes: the workspace lock first, as every event writer takes it."""
    kind = shapes.mailbox_status_event(mailbox.status, status)
    if kind is None:
        return
    agent = agents.lock(session, mailbox.agent_id)
    facts = replace(events.mailbox_facts(mailbox), status=status, last_error=last_error)
    events.record_locked(session, agent, kind, shapes.mailbox_data(facts))


def record_poll(
    session: Session,
    mailbox: Mailbox,
    *,
    cursor: str | None,
    credentials_encrypted: str | None,
    polled_at: datetime,
) -> None:
    """Called only after the page's messages are in the ledger: the cursor never runs ahead."""
    if cursor is not None:
        mailbox.cursor = cursor
    if credentials_encrypted is not None:
        mailbox.credentials_encrypted = credentials_encrypted
    mailbox.last_polled_at = polled_at
    mailbox.last_error = None
    session.add(mailbox)
    session.flush()


def counts(session: Session, mailbox_ids: Sequence[str]) -> dict[str, dict[Outcome, int]]:
    result: dict[str, dict[Outcome, int]] = {
        mid: dict.fromkeys(FINAL_OUTCOMES, 0) for mid in mailbox_ids
    }
    if not mailbox_ids:
        return result
    rows = session.exec(
        select(InboundMessage.mailbox_id, InboundMessage.outcome, sa.func.count())
        .where(col(InboundMessage.mailbox_id).in_(mailbox_ids))
        .group_by(col(InboundMessage.mailbox_id), col(InboundMessage.outcome))
    ).all()
    for mailbox_id, outcome, count in rows:
        if outcome in FINAL_OUTCOMES:
            result[mailbox_id][Outcome(outcome)] = count
    return result


def save_oauth_state(session: Session, state: OAuthState) -> None:
    session.add(state)
    session.flush()


def take_oauth_state(session: Session, state: str, provider: str) -> OAuthState | None:
    """Single use: the row is marked used under a lock, so a replayed callback finds nothing."""
    row = session.exec(
        select(OAuthState)
        .where(OAuthState.state == state, OAuthState.provider == provider)
        .with_for_update()
    ).first()
    if row is None or row.used_at is not None:
        return None
    row.used_at = utcnow()
    session.add(row)
    session.flush()
    return row if row.expires_at > utcnow() else None


def reencrypt_secrets(session: Session, rotate: Callable[[str], str]) -> int:
    """Apply `rotate` to every stored secret (credentials, push secrets, PKCE verifiers);
    returns how many."""
    count = 0
    for mailbox in session.exec(
        select(Mailbox).where(
            sa.or_(
                col(Mailbox.credentials_encrypted).is_not(None),
                col(Mailbox.push_secret_encrypted).is_not(None),
            )
        )
    ).all():
        if mailbox.credentials_encrypted is not None:
            mailbox.credentials_encrypted = rotate(mailbox.credentials_encrypted)
            count += 1
        if mailbox.push_secret_encrypted is not None:
            mailbox.push_secret_encrypted = rotate(mailbox.push_secret_encrypted)
            count += 1
        session.add(mailbox)
    for state in session.exec(select(OAuthState).where(col(OAuthState.used_at).is_(None))).all():
        state.verifier_encrypted = rotate(state.verifier_encrypted)
        session.add(state)
        count += 1
    session.flush()
    return count
