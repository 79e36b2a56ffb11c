"""Mail on a real Dovecot becomes tickets through the real workflow, and the system only ever
reads: every message's flags are the same after the polls as before (no \\Seen)."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from store.models import InboundMessage
from tests.api.conftest import Api
from tests.fakes import make_email
from tests.imap.conftest import Account
from tests.imap.support import connected, ledger, mailbox_now, poll, tickets, until


async def test_mail_becomes_tickets_and_no_flag_changes(imap_api: Api, account: Account) -> None:
    mailbox = await connected(imap_api, account)
    # Flags a person set in their mail program must stay exactly as they are.
    account.dovecot.append(account.user, make_email(subject="Flagged one"), flags="(\\Flagged)")
    account.deliver(make_email(subject="Printer on fire", sender="ann@customer.example"))
    account.deliver(make_email(subject="Invoice question", sender="bob@customer.example"))
    before = account.dovecot.flags(account.user)

    made = await until(
        lambda: tickets(imap_api, mailbox),
        lambda found: len(found) == 3,
        nudge=lambda: poll(imap_api, mailbox),
    )

    assert sorted(t["title"] for t in made) == [
        "Flagged one",
        "Invoice question",
        "Printer on fire",
    ]
    assert {t["requester"]["email"] for t in made} >= {
        "ann@customer.example",
        "bob@customer.example",
    }
    for _ in range(2):  # more polls read nothing new and change nothing
        await poll(imap_api, mailbox)
    await until(lambda: mailbox_now(imap_api, mailbox), lambda m: m["last_polled_at"] is not None)
    after = account.dovecot.flags(account.user)
    assert after == before
    assert not any("\\Seen" in flags for flags in after.values())
    assert before[min(before)] == {"\\Flagged"}
    state = await mailbox_now(imap_api, mailbox)
    assert state["status"] == "active" and state["counts"]["tickets_created"] == 3


async def test_a_reply_is_appended_to_its_ticket(imap_api: Api, account: Account) -> None:
    mailbox = await connected(imap_api, account)
    account.deliver(make_email(subject="Broken login", message_id="<first@customer.example>"))
    await until(
        lambda: tickets(imap_api, mailbox),
        lambda found: len(found) == 1,
        nudge=lambda: poll(imap_api, mailbox),
    )
    account.deliver(make_email(subject="Re: Broken login", in_reply_to="<first@customer.example>"))
    entries = await until(
        lambda: ledger(imap_api, mailbox),
        lambda rows: len(rows) == 2 and all(r["outcome"] != "pending" for r in rows),
        nudge=lambda: poll(imap_api, mailbox),
    )
    assert sorted(r["outcome"] for r in entries) == ["appended", "ticket_created"]
    assert len(await tickets(imap_api, mailbox)) == 1


async def test_an_oversized_message_is_skipped_without_being_downloaded(
    imap_api: Api, account: Account
) -> None:
    mailbox = await connected(imap_api, account)
    big = make_email(subject="Huge scan", body="x" * (26 * 1024 * 1024))
    account.deliver(big)
    account.deliver(make_email(subject="Small one"))

    rows = await until(
        lambda: ledger(imap_api, mailbox),
        lambda found: len(found) == 2 and all(r["outcome"] != "pending" for r in found),
        nudge=lambda: poll(imap_api, mailbox),
        timeout=60,
    )

    by_subject = {r["subject"]: r for r in rows}
    assert by_subject["Huge scan"]["outcome"] == "skipped"
    assert by_subject["Huge scan"]["skip_reason"] == "too_large"
    assert by_subject["Small one"]["outcome"] == "ticket_created"
    with Session(imap_api.engine) as session:
        row = session.exec(
            select(InboundMessage).where(InboundMessage.id == by_subject["Huge scan"]["id"])
        ).one()
    # Only its header was read: the ledger holds that, and the size the server told.
    assert row.size >= len(big) - 100 and len(row.raw) < 4096
    assert not any("\\Seen" in f for f in account.dovecot.flags(account.user).values())


@pytest.mark.parametrize("with_message_id", [True, False])
async def test_a_renumbered_folder_loses_and_doubles_nothing(
    imap_api: Api, account: Account, with_message_id: bool
) -> None:
    mailbox = await connected(imap_api, account)

    def mail(subject: str) -> bytes:
        raw = make_email(subject=subject)
        if not with_message_id:  # deduplicated by a content hash instead
            raw = b"\r\n".join(
                line for line in raw.split(b"\r\n") if not line.lower().startswith(b"message-id:")
            )
            raw = b"\n".join(
                line for line in raw.split(b"\n") if not line.lower().startswith(b"message-id:")
            )
        return raw

    for subject in ("One", "Two"):
        account.deliver(mail(subject))
    await until(
        lambda: tickets(imap_api, mailbox),
        lambda found: len(found) == 2,
        nudge=lambda: poll(imap_api, mailbox),
    )
    account.dovecot.set_uid_validity(account.user, account.dovecot.uid_validity(account.user) + 7)
    account.deliver(mail("Three"))

    made = await until(
        lambda: tickets(imap_api, mailbox),
        lambda found: len(found) >= 3,
        nudge=lambda: poll(imap_api, mailbox),
    )
    for _ in range(3):
        await poll(imap_api, mailbox)
    rows = await until(
        lambda: ledger(imap_api, mailbox),
        lambda found: all(r["outcome"] != "pending" for r in found),
    )
    made = await tickets(imap_api, mailbox)
    assert sorted(t["title"] for t in made) == ["One", "Three", "Two"]
    assert len(rows) == 3


async def test_mail_without_a_message_id_or_unparseable_never_stops_the_fetch(
    imap_api: Api, account: Account
) -> None:
    mailbox = await connected(imap_api, account)
    account.deliver(b"From: ann@customer.example\r\nSubject: No id\r\n\r\nHello.\r\n")
    account.deliver(b"\x00\xff garbage that is no email at all \r\n\r\n\x80\x81")
    account.deliver(make_email(subject="After them"))

    rows = await until(
        lambda: ledger(imap_api, mailbox),
        lambda found: len(found) == 3 and all(r["outcome"] != "pending" for r in found),
        nudge=lambda: poll(imap_api, mailbox),
    )

    assert all(r["outcome"] in {"ticket_created", "skipped", "failed"} for r in rows)
    titles = sorted(t["title"] for t in await tickets(imap_api, mailbox))
    assert "After them" in titles and "No id" in titles


async def test_a_folder_other_than_the_inbox_is_read_and_only_it(
    imap_api: Api, account: Account
) -> None:
    account.dovecot.create_folder(account.user, "Support")
    mailbox = await connected(imap_api, account, folder="Support")
    assert mailbox["imap"]["folder"] == "Support"
    account.deliver(make_email(subject="In the inbox"))
    account.dovecot.append(account.user, make_email(subject="In Support"), folder="Support")

    made = await until(
        lambda: tickets(imap_api, mailbox),
        lambda found: len(found) >= 1,
        nudge=lambda: poll(imap_api, mailbox),
    )
    await poll(imap_api, mailbox)
    assert [t["title"] for t in made] == ["In Support"]
    assert not any("\\Seen" in f for f in account.dovecot.flags(account.user, "Support").values())
