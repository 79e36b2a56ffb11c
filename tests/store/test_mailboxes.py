"""store.mailboxes on both databases: connecting, settings, polls, counts, OAuth states."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from domain.outcomes import MailboxStatus, Outcome, PushState
from store import ledger, mailboxes
from store.db import transaction
from store.ledger import NewInbound
from store.models import Agent, Mailbox, OAuthState, new_id
from tests.conftest import make_agent


def as_utc(stamp: datetime) -> datetime:
    """For tests of something else: SQLite hands back naive UTC (pinned by the aware tests)."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def connect(
    engine: Engine,
    agent: Agent,
    address: str = "help@example.com",
    *,
    provider: str = "gmail",
    credentials: str = "sealed-1",
) -> tuple[Mailbox, bool]:
    with transaction(engine) as session:
        return mailboxes.connect(
            session,
            agent_id=agent.id,
            provider=provider,
            address=address,
            credentials_encrypted=credentials,
        )


def load(session: Session, mailbox: Mailbox) -> Mailbox:
    found = mailboxes.get_for_worker(session, mailbox.id)
    assert found is not None
    return found


def reload(engine: Engine, mailbox: Mailbox) -> Mailbox:
    """The mailbox as stored, read in a transaction of its own."""
    with transaction(engine) as session:
        return load(session, mailbox)


def set_status(
    engine: Engine, mailbox: Mailbox, status: MailboxStatus, error: str | None = None
) -> None:
    with transaction(engine) as session:
        mailboxes.set_status(session, load(session, mailbox), status, error)


def record_poll(
    engine: Engine, mailbox: Mailbox, cursor: str | None, credentials: str | None = None
) -> datetime:
    polled_at = datetime.now(UTC)
    with transaction(engine) as session:
        mailboxes.record_poll(
            session,
            load(session, mailbox),
            cursor=cursor,
            credentials_encrypted=credentials,
            polled_at=polled_at,
        )
    return polled_at


def update_settings(
    engine: Engine,
    mailbox: Mailbox,
    *,
    allowed_senders: list[str] | None = None,
    poll_interval_seconds: int | None = None,
) -> None:
    with transaction(engine) as session:
        mailboxes.update_settings(
            session,
            load(session, mailbox),
            allowed_senders=allowed_senders,
            poll_interval_seconds=poll_interval_seconds,
        )


@pytest.fixture
def agent(engine: Engine) -> Agent:
    return make_agent(engine)[0]


# -- lookups ----------------------------------------------------------------------------


def test_get_is_scoped_to_the_agent_and_get_for_worker_is_not(engine: Engine, agent: Agent) -> None:
    stranger, _ = make_agent(engine)
    mailbox, _ = connect(engine, agent)
    with transaction(engine) as session:
        mine = mailboxes.get(session, agent.id, mailbox.id)
        assert mine is not None and mine.address == "help@example.com"
        assert mailboxes.get(session, stranger.id, mailbox.id) is None
        assert mailboxes.get(session, agent.id, new_id()) is None
        # The worker holds only a mailbox id; the row says which agent it acts for.
        worker = mailboxes.get_for_worker(session, mailbox.id)
        assert worker is not None and worker.agent_id == agent.id
        assert mailboxes.get_for_worker(session, new_id()) is None


def test_list_for_agent_is_oldest_first_without_disconnected_ones(
    engine: Engine, agent: Agent
) -> None:
    stranger, _ = make_agent(engine)
    first, _ = connect(engine, agent, "first@example.com")
    gone, _ = connect(engine, agent, "gone@example.com", provider="outlook")
    expired, _ = connect(engine, agent, "expired@example.com", provider="outlook")
    last, _ = connect(engine, agent, "last@example.com")
    connect(engine, stranger, "first@example.com")
    set_status(engine, gone, MailboxStatus.DISCONNECTED)
    set_status(engine, expired, MailboxStatus.AUTH_EXPIRED, "invalid_grant")
    with transaction(engine) as session:
        listed = mailboxes.list_for_agent(session, agent.id)
    assert [m.id for m in listed] == [first.id, expired.id, last.id]


def test_find_by_address_ignores_case_and_needs_the_provider(engine: Engine, agent: Agent) -> None:
    stranger, _ = make_agent(engine)
    mailbox, _ = connect(engine, agent, "Help@Example.COM")
    assert mailbox.address == "help@example.com"
    with transaction(engine) as session:
        for spelling in ("help@example.com", "HELP@example.com", "Help@Example.COM"):
            found = mailboxes.find_by_address(session, agent.id, "gmail", spelling)
            assert found is not None and found.id == mailbox.id
        assert mailboxes.find_by_address(session, agent.id, "outlook", "help@example.com") is None
        assert mailboxes.find_by_address(session, stranger.id, "gmail", "help@example.com") is None
        assert mailboxes.find_by_address(session, agent.id, "gmail", "other@example.com") is None


# -- connect, reconnect, settings, status -----------------------------------------------


def test_connect_makes_a_fresh_active_mailbox(engine: Engine, agent: Agent) -> None:
    mailbox, fresh = connect(engine, agent, credentials="sealed-1")
    stored = reload(engine, mailbox)
    assert fresh
    assert (stored.agent_id, stored.provider, stored.status) == (agent.id, "gmail", "active")
    assert (stored.cursor, stored.last_error, stored.last_polled_at) == (None, None, None)
    assert stored.credentials_encrypted == "sealed-1"
    assert (stored.allowed_senders, stored.poll_interval_seconds) == ([], 60)


def test_connecting_an_active_mailbox_again_keeps_its_cursor(engine: Engine, agent: Agent) -> None:
    mailbox, _ = connect(engine, agent, credentials="sealed-1")
    record_poll(engine, mailbox, "cursor-7")

    again, fresh = connect(engine, agent, "HELP@example.com", credentials="sealed-2")

    stored = reload(engine, again)
    assert not fresh and again.id == mailbox.id
    assert (stored.cursor, stored.status, stored.credentials_encrypted) == (
        "cursor-7",
        "active",
        "sealed-2",
    )

    # Expired access is not a disconnection either: connecting again picks up where it was.
    set_status(engine, mailbox, MailboxStatus.AUTH_EXPIRED, "invalid_grant")
    again, fresh = connect(engine, agent, credentials="sealed-3")
    stored = reload(engine, again)
    assert not fresh
    assert (stored.cursor, stored.status, stored.last_error) == ("cursor-7", "active", None)


def test_a_disconnected_mailbox_comes_back_fresh_with_its_settings(
    engine: Engine, agent: Agent
) -> None:
    mailbox, _ = connect(engine, agent, credentials="sealed-1")
    update_settings(engine, mailbox, allowed_senders=["example.com"], poll_interval_seconds=300)
    record_poll(engine, mailbox, "cursor-7")
    set_status(engine, mailbox, MailboxStatus.DISCONNECTED)

    back, fresh = connect(engine, agent, credentials="sealed-2")

    stored = reload(engine, back)
    assert fresh and back.id == mailbox.id  # the same row: its tickets and ledger stay with it
    assert (stored.cursor, stored.status, stored.credentials_encrypted) == (
        None,
        "active",
        "sealed-2",
    )
    assert (stored.allowed_senders, stored.poll_interval_seconds) == (["example.com"], 300)


def test_reconnect_keeps_settings_and_cursor(engine: Engine, agent: Agent) -> None:
    mailbox, _ = connect(engine, agent, credentials="sealed-1")
    update_settings(engine, mailbox, allowed_senders=["vip@example.com"], poll_interval_seconds=30)
    record_poll(engine, mailbox, "cursor-7")
    set_status(engine, mailbox, MailboxStatus.AUTH_EXPIRED, "invalid_grant")
    before = reload(engine, mailbox)

    with transaction(engine) as session:
        mailboxes.reconnect(session, load(session, mailbox), "sealed-2")

    stored = reload(engine, mailbox)
    assert (stored.status, stored.last_error, stored.credentials_encrypted) == (
        "active",
        None,
        "sealed-2",
    )
    assert stored.cursor == "cursor-7"
    assert (stored.allowed_senders, stored.poll_interval_seconds) == (["vip@example.com"], 30)
    assert as_utc(stored.updated_at) > as_utc(before.updated_at)


def test_update_settings_changes_only_what_is_given(engine: Engine, agent: Agent) -> None:
    mailbox, _ = connect(engine, agent)
    update_settings(engine, mailbox, allowed_senders=["a@example.com"])
    assert reload(engine, mailbox).allowed_senders == ["a@example.com"]
    update_settings(engine, mailbox, poll_interval_seconds=120)
    stored = reload(engine, mailbox)
    assert (stored.allowed_senders, stored.poll_interval_seconds) == (["a@example.com"], 120)
    update_settings(engine, mailbox, allowed_senders=[])  # an empty list is a value: clears it
    stored = reload(engine, mailbox)
    assert (stored.allowed_senders, stored.poll_interval_seconds) == ([], 120)
    assert as_utc(stored.updated_at) > as_utc(mailbox.updated_at)


def test_set_status_disconnected_drops_the_credentials(engine: Engine, agent: Agent) -> None:
    mailbox, _ = connect(engine, agent, credentials="sealed-1")
    set_status(engine, mailbox, MailboxStatus.AUTH_EXPIRED, "invalid_grant")
    stored = reload(engine, mailbox)
    # Expired access keeps the credentials: a Reconnect replaces them.
    assert (stored.status, stored.last_error, stored.credentials_encrypted) == (
        "auth_expired",
        "invalid_grant",
        "sealed-1",
    )
    set_status(engine, mailbox, MailboxStatus.DISCONNECTED)
    stored = reload(engine, mailbox)
    assert (stored.status, stored.last_error, stored.credentials_encrypted) == (
        "disconnected",
        None,
        None,
    )


def test_record_poll_advances_the_cursor_only_when_given(engine: Engine, agent: Agent) -> None:
    mailbox, _ = connect(engine, agent, credentials="sealed-1")
    set_status(engine, mailbox, MailboxStatus.ACTIVE, "HTTP 503")
    first = record_poll(engine, mailbox, "cursor-1")
    stored = reload(engine, mailbox)
    assert (stored.cursor, stored.last_error, stored.credentials_encrypted) == (
        "cursor-1",
        None,
        "sealed-1",
    )
    assert stored.last_polled_at is not None and as_utc(stored.last_polled_at) == first

    # An idle poll: no new cursor, but refreshed credentials and a new poll time.
    second = record_poll(engine, mailbox, None, credentials="sealed-2")
    stored = reload(engine, mailbox)
    assert (stored.cursor, stored.credentials_encrypted) == ("cursor-1", "sealed-2")
    assert stored.last_polled_at is not None and as_utc(stored.last_polled_at) == second


# -- counts -----------------------------------------------------------------------------


def test_counts_per_mailbox_and_outcome(engine: Engine, agent: Agent) -> None:
    busy, _ = connect(engine, agent, "busy@example.com")
    quiet, _ = connect(engine, agent, "quiet@example.com")
    outcomes = [Outcome.TICKET_CREATED, Outcome.APPENDED, Outcome.APPENDED]
    outcomes += [Outcome.SKIPPED, Outcome.FAILED, Outcome.PENDING]
    with transaction(engine) as session:
        rows = [
            NewInbound(f"m{i}", None, None, None, None, "", None, b"x")
            for i in range(len(outcomes))
        ]
        ids = ledger.insert_new(session, agent_id=agent.id, mailbox_id=busy.id, rows=rows)
        for row, outcome in zip(ledger.rows(session, ids), outcomes, strict=True):
            if outcome is not Outcome.PENDING:
                ledger.mark(session, row, outcome)
    unknown = new_id()
    with transaction(engine) as session:
        found = mailboxes.counts(session, [busy.id, quiet.id, unknown])
        assert mailboxes.counts(session, []) == {}
    zero = {"ticket_created": 0, "appended": 0, "skipped": 0, "failed": 0}
    # Pending mail is not an outcome yet: it is in no count.
    assert found == {
        busy.id: {"ticket_created": 1, "appended": 2, "skipped": 1, "failed": 1},
        quiet.id: zero,
        unknown: zero,
    }


# -- OAuth states -----------------------------------------------------------------------


def save_state(
    engine: Engine,
    agent: Agent,
    *,
    provider: str = "gmail",
    expires_in: timedelta = timedelta(minutes=10),
    verifier: str = "sealed-verifier",
    mailbox_id: str | None = None,
) -> str:
    state = secrets.token_urlsafe(24)
    with transaction(engine) as session:
        mailboxes.save_oauth_state(
            session,
            OAuthState(
                state=state,
                agent_id=agent.id,
                provider=provider,
                verifier_encrypted=verifier,
                mailbox_id=mailbox_id,
                login_hint="help@example.com",
                expires_at=datetime.now(UTC) + expires_in,
            ),
        )
    return state


def take(engine: Engine, state: str, provider: str = "gmail") -> OAuthState | None:
    with transaction(engine) as session:
        return mailboxes.take_oauth_state(session, state, provider)


def test_an_oauth_state_is_taken_once(engine: Engine, agent: Agent) -> None:
    mailbox, _ = connect(engine, agent)
    state = save_state(engine, agent, mailbox_id=mailbox.id)
    taken = take(engine, state)
    assert taken is not None
    assert (taken.agent_id, taken.provider, taken.mailbox_id) == (agent.id, "gmail", mailbox.id)
    assert (taken.verifier_encrypted, taken.login_hint) == ("sealed-verifier", "help@example.com")
    assert taken.used_at is not None
    assert take(engine, state) is None  # a replayed callback finds nothing


def test_an_expired_oauth_state_is_refused_and_spent(engine: Engine, agent: Agent) -> None:
    state = save_state(engine, agent, expires_in=timedelta(seconds=-1))
    assert take(engine, state) is None
    with transaction(engine) as session:
        row = session.get(OAuthState, state)
        assert row is not None and row.used_at is not None


def test_an_oauth_state_is_only_for_its_provider(engine: Engine, agent: Agent) -> None:
    state = save_state(engine, agent, provider="outlook")
    assert take(engine, state, "gmail") is None
    assert take(engine, secrets.token_urlsafe(24), "outlook") is None
    # The wrong provider did not spend it.
    taken = take(engine, state, "outlook")
    assert taken is not None and taken.provider == "outlook"


# -- key rotation -----------------------------------------------------------------------


def test_reencrypt_secrets_rotates_every_stored_secret_once(engine: Engine, agent: Agent) -> None:
    mark = "mine-" + secrets.token_hex(4)
    active, _ = connect(engine, agent, "a@example.com", credentials=f"{mark}-creds-a")
    expired, _ = connect(engine, agent, "b@example.com", credentials=f"{mark}-creds-b")
    gone, _ = connect(engine, agent, "c@example.com", credentials=f"{mark}-creds-c")
    set_status(engine, expired, MailboxStatus.AUTH_EXPIRED)
    set_status(engine, gone, MailboxStatus.DISCONNECTED)
    pending = save_state(engine, agent, verifier=f"{mark}-verifier-1")
    used = save_state(engine, agent, verifier=f"{mark}-verifier-2")
    assert take(engine, used) is not None
    with transaction(engine) as session:
        row = mailboxes.get_for_worker(session, active.id)
        assert row is not None
        mailboxes.record_push(
            session,
            row,
            state=PushState.LIVE,
            push_id=f"sub-{mark}",
            expires_at=None,
            secret_encrypted=f"{mark}-push-a",
            error=None,
        )
    seen: list[str] = []

    def rotate(secret: str) -> str:
        # Other tests' rows share the database: leave them as they are, count them all.
        seen.append(secret)
        return "rotated:" + secret if secret.startswith(mark) else secret

    with transaction(engine) as session:
        expected = stored_secret_count(session)
        assert mailboxes.reencrypt_secrets(session, rotate) == expected
    mine = sorted(s for s in seen if s.startswith(mark))
    # Each once; a used state's verifier is spent, and a disconnected mailbox has none.
    assert mine == sorted(
        [f"{mark}-creds-a", f"{mark}-push-a", f"{mark}-creds-b", f"{mark}-verifier-1"]
    )
    assert len(seen) == expected
    assert reload(engine, active).credentials_encrypted == f"rotated:{mark}-creds-a"
    assert reload(engine, active).push_secret_encrypted == f"rotated:{mark}-push-a"
    assert reload(engine, expired).credentials_encrypted == f"rotated:{mark}-creds-b"
    assert reload(engine, gone).credentials_encrypted is None
    with transaction(engine) as session:
        verifiers = {
            s.state: s.verifier_encrypted
            for s in (session.get(OAuthState, pending), session.get(OAuthState, used))
            if s is not None
        }
    assert verifiers == {
        pending: f"rotated:{mark}-verifier-1",
        used: f"{mark}-verifier-2",
    }


def stored_secret_count(session: Session) -> int:
    credentials = session.exec(
        select(sa.func.count()).where(col(Mailbox.credentials_encrypted).is_not(None))
    ).one()
    push_secrets = session.exec(
        select(sa.func.count()).where(col(Mailbox.push_secret_encrypted).is_not(None))
    ).one()
    verifiers = session.exec(select(sa.func.count()).where(col(OAuthState.used_at).is_(None))).one()
    return credentials + push_secrets + verifiers


# -- datetimes come back aware ----------------------------------------------------------

Stamps = list[datetime | None]


def _get(engine: Engine, mailbox: Mailbox) -> Stamps:
    with transaction(engine) as session:
        found = mailboxes.get(session, mailbox.agent_id, mailbox.id)
    assert found is not None
    return [found.created_at, found.updated_at, found.last_polled_at]


def _get_for_worker(engine: Engine, mailbox: Mailbox) -> Stamps:
    with transaction(engine) as session:
        found = mailboxes.get_for_worker(session, mailbox.id)
    assert found is not None
    return [found.created_at, found.updated_at, found.last_polled_at]


def _list_for_agent(engine: Engine, mailbox: Mailbox) -> Stamps:
    with transaction(engine) as session:
        (found,) = mailboxes.list_for_agent(session, mailbox.agent_id)
    return [found.created_at, found.updated_at, found.last_polled_at]


def _find_by_address(engine: Engine, mailbox: Mailbox) -> Stamps:
    with transaction(engine) as session:
        found = mailboxes.find_by_address(session, mailbox.agent_id, "gmail", mailbox.address)
    assert found is not None
    return [found.created_at, found.updated_at, found.last_polled_at]


def _take_oauth_state(engine: Engine, mailbox: Mailbox) -> Stamps:
    with transaction(engine) as session:
        agent = session.get(Agent, mailbox.agent_id)
    assert agent is not None
    taken = take(engine, save_state(engine, agent))
    assert taken is not None
    return [taken.created_at, taken.expires_at, taken.used_at]


@pytest.mark.parametrize(
    "read",
    [_get, _get_for_worker, _list_for_agent, _find_by_address, _take_oauth_state],
    ids=lambda read: read.__name__.lstrip("_"),
)
def test_datetimes_come_back_timezone_aware(
    engine: Engine, agent: Agent, read: Callable[[Engine, Mailbox], Stamps]
) -> None:
    mailbox, _ = connect(engine, agent)
    record_poll(engine, mailbox, "cursor-1")
    # Each reader reads in a transaction of its own: every value comes from the row.
    stamps = read(engine, mailbox)
    assert [s.utcoffset() if s is not None else "missing" for s in stamps] == [timedelta(0)] * 3
