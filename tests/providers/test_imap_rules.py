"""The IMAP provider's pure rules: what each failure means, the cursor, a message's id."""

from __future__ import annotations

import imaplib
import socket
import ssl

import pytest
from imapclient.exceptions import LoginError  # type: ignore[import-untyped]

from providers.base import AuthExpired, Throttled, Transient
from providers.cursor_json import CursorFormatError
from providers.imap.client import message_key
from providers.imap.cursor import ImapCursor
from providers.imap.errors import classify, refused
from providers.imap.server import ImapServer, StepFailed

SERVER = ImapServer("imap.example.com", 993, "tls", "ann", "INBOX")


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (
            StepFailed("login", LoginError("[AUTHENTICATIONFAILED] Authentication failed.")),
            AuthExpired,
        ),
        (StepFailed("login", LoginError("Invalid credentials (Failure)")), AuthExpired),
        (
            StepFailed("login", LoginError("[UNAVAILABLE] Temporary authentication failure")),
            Throttled,
        ),
        (
            StepFailed("login", LoginError("[LIMIT] Maximum number of connections exceeded")),
            Throttled,
        ),
        (StepFailed("login", LoginError("[SERVERBUG] Internal error")), Transient),
        # The server went away during LOGIN: imapclient turns imaplib's `abort` into a
        # LoginError too, and only its words tell the two apart.
        (StepFailed("login", LoginError("command: LOGIN => socket error: EOF")), Transient),
        (StepFailed("login", LoginError("socket error: [Errno 104] Connection reset")), Transient),
        # A line dropped during LOGIN is not a refused password.
        (StepFailed("login", imaplib.IMAP4.abort("socket error: EOF")), Transient),
        (StepFailed("login", TimeoutError("timed out")), Transient),
        (StepFailed("connect", ConnectionRefusedError(111, "refused")), Transient),
        (StepFailed("connect", socket.gaierror(-2, "Name or service not known")), Transient),
        (StepFailed("tls", ssl.SSLError("wrong version number")), Transient),
        (StepFailed("folder", imaplib.IMAP4.error("select failed: no such mailbox")), Transient),
        (imaplib.IMAP4.abort("command: FETCH => socket error: EOF"), Transient),
        (imaplib.IMAP4.abort("BYE Too many connections"), Throttled),
        (ConnectionResetError(104, "reset"), Transient),
    ],
)
def test_each_failure_has_its_kind(failure: BaseException, kind: type) -> None:
    assert type(classify(failure)) is kind


def test_throttling_waits_a_pause_of_its_own() -> None:
    throttled = classify(StepFailed("login", LoginError("[UNAVAILABLE] busy")))
    assert isinstance(throttled, Throttled) and throttled.retry_after == 30.0


@pytest.mark.parametrize(
    ("failure", "code", "field"),
    [
        (
            StepFailed("login", LoginError("[AUTHENTICATIONFAILED] x")),
            "imap_auth_failed",
            "password",
        ),
        (StepFailed("connect", socket.gaierror(-2, "unknown")), "imap_unreachable", "host"),
        (StepFailed("connect", ConnectionRefusedError(111, "x")), "imap_unreachable", "host"),
        (StepFailed("connect", TimeoutError("timed out")), "imap_unreachable", "host"),
        (StepFailed("login", LoginError("[UNAVAILABLE] busy")), "imap_unreachable", "host"),
        (StepFailed("tls", ssl.SSLError("wrong version")), "imap_tls_failed", "security"),
        (
            StepFailed("tls", imaplib.IMAP4.error("STARTTLS extension not supported by server.")),
            "imap_tls_failed",
            "security",
        ),
        (
            StepFailed("folder", imaplib.IMAP4.error("select failed")),
            "imap_folder_missing",
            "folder",
        ),
        (StepFailed("folder", TimeoutError("timed out")), "imap_unreachable", "host"),
    ],
)
def test_a_refused_connect_names_its_code_and_field(
    failure: StepFailed, code: str, field: str
) -> None:
    answer = refused(SERVER, failure, 30)
    assert (answer.code, answer.field) == (code, field)
    assert answer.words.endswith(".")


def test_the_cursor_round_trips_and_refuses_strangers() -> None:
    cursor = ImapCursor(uid_validity=7, last_uid=41, since=1_700_000_000, expired=True)
    assert ImapCursor.decode(cursor.encode()) == cursor
    assert ImapCursor.decode(cursor.after(50, more=False).encode()).expired is False
    assert ImapCursor.decode(cursor.after(50, more=True).encode()).expired is True
    for stranger in ('{"v":1,"h":"12","t":3}', "not json", '{"v":2,"u":1,"l":1,"s":1}'):
        with pytest.raises(CursorFormatError):
            ImapCursor.decode(stranger)


def test_a_message_is_known_by_its_message_id_or_its_bytes() -> None:
    with_id = b"Message-ID: <a@x.example>\r\nSubject: hi\r\n\r\nbody"
    assert message_key(with_id, with_id) == "<a@x.example>"
    without = b"Subject: hi\r\n\r\nbody"
    assert message_key(without, without).startswith("sha256:")
    assert message_key(without, without) == message_key(without, without)
    assert message_key(without, without) != message_key(without, without + b"!")
    long_id = b"Message-ID: <" + b"a" * 300 + b"@x.example>\r\n\r\n"
    key = message_key(long_id, long_id)
    assert key.startswith("mid-sha256:") and len(key) < 255
    empty_id = b"Message-ID: \r\nSubject: hi\r\n\r\nbody"
    assert message_key(empty_id, empty_id).startswith("sha256:")
