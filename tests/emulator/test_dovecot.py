"""The test Dovecot itself: users, passwords, APPEND, flags, UIDVALIDITY, restart."""

from __future__ import annotations

import imaplib
import ssl

import pytest

from emulator.dovecot import Dovecot

MAIL = b"From: ann@example.com\r\nSubject: hi\r\nMessage-ID: <t1@example.com>\r\n\r\nbody\r\n"


def test_append_then_flags_and_uids(dovecot: Dovecot, dovecot_user: tuple[str, str]) -> None:
    user, _ = dovecot_user
    first = dovecot.append(user, MAIL)
    second = dovecot.append(user, MAIL)
    assert second == first + 1
    assert dovecot.uids(user) == [first, second]
    assert dovecot.flags(user) == {first: frozenset(), second: frozenset()}


def test_password_change_takes_effect(dovecot: Dovecot, dovecot_user: tuple[str, str]) -> None:
    user, old = dovecot_user
    dovecot.set_password(user, "new-secret")
    conn = imaplib.IMAP4(dovecot.host, dovecot.port)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        conn.login(user, old)
    conn.logout()


def test_tls_and_starttls_verify_against_the_ca_file(
    dovecot: Dovecot, dovecot_user: tuple[str, str]
) -> None:
    user, password = dovecot_user
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    with imaplib.IMAP4_SSL("localhost", dovecot.tls_port, ssl_context=context) as conn:
        assert conn.login(user, password)[0] == "OK"
    with imaplib.IMAP4("localhost", dovecot.port) as conn:
        conn.starttls(context)
        assert conn.login(user, password)[0] == "OK"
    with pytest.raises(ssl.SSLCertVerificationError):  # not a CA the system trusts
        imaplib.IMAP4_SSL("localhost", dovecot.tls_port, ssl_context=ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError):  # not the name on the certificate
        imaplib.IMAP4_SSL(dovecot.host, dovecot.tls_port, ssl_context=context)


def test_uid_validity_can_be_changed(dovecot: Dovecot, dovecot_user: tuple[str, str]) -> None:
    user, _ = dovecot_user
    dovecot.append(user, MAIL)
    dovecot.set_uid_validity(user, 4242)
    assert dovecot.uid_validity(user) == 4242


def test_stop_and_start_keep_ports_and_mail(
    dovecot: Dovecot, dovecot_user: tuple[str, str]
) -> None:
    user, _ = dovecot_user
    uid = dovecot.append(user, MAIL)
    port = dovecot.port
    dovecot.stop()
    assert dovecot.process_count() == 0
    with pytest.raises(OSError):
        imaplib.IMAP4(dovecot.host, port, timeout=2)
    dovecot.start()
    assert dovecot.port == port
    assert dovecot.uids(user) == [uid]
    assert dovecot.process_count() >= 3
