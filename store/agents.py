"""Agents (workspaces): looked up by public key (widget, form) or by admin token (API)."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, select

from store.models import Agent


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_public_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


def get_by_public_key(session: Session, public_key: str) -> Agent | None:
    return session.exec(select(Agent).where(Agent.public_key == public_key)).first()


def get_by_admin_token(session: Session, token: str) -> Agent | None:
    digest = token_digest(token)
    return session.exec(select(Agent).where(Agent.admin_token_sha256 == digest)).first()


def get(session: Session, agent_id: str) -> Agent | None:
    return session.get(Agent, agent_id)


def lock(session: Session, agent_id: str) -> Agent:
    """The agent row, locked until the transaction ends: ticket numbers and event numbers are
    handed out under it. Read afresh even if this session holds the row already: a copy read
    before the lock was granted would hand out a number another transaction has just used."""
    return session.exec(
        select(Agent)
        .where(Agent.id == agent_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def create(
    session: Session, *, name: str, admin_token: str, public_key: str | None = None
) -> Agent:
    agent = Agent(
        name=name,
        public_key=public_key or new_public_key(),
        admin_token_sha256=token_digest(admin_token),
    )
    session.add(agent)
    session.flush()
    return agent


def ensure_for_token(session: Session, *, name: str, admin_token: str) -> Agent:
    """The agent that `admin_token` opens, created on first use (the demo agent of `dev`)."""
    return get_by_admin_token(session, admin_token) or create(
        session, name=name, admin_token=admin_token
    )


def set_escalation(
    session: Session,
    agent: Agent,
    *,
    mode: str,
    email: str | None,
    phone: str | None,
    live_chat_url: str | None,
) -> Agent:
    """Replaces the whole behaviour: values the new one does not name are cleared."""
    agent.escalation_mode = mode
    agent.escalation_email = email
    agent.escalation_phone = phone
    agent.escalation_live_chat_url = live_chat_url
    session.add(agent)
    session.flush()
    return agent
